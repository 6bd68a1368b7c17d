//! `cmg token`: site tokens from a local signing key, until the site holds the key
//! (`cmg site token ...`). `keygen` writes a key pair; `new` issues a bulk registration
//! or device token and prints it once (stdout) with its tracking ID (stderr); `verify`
//! checks a token against public keys as the gateway does.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Subcommand;
use cmg_token::site::{generate_key_pem, BULK_DEFAULT_LIFETIME, DEVICE_DEFAULT_LIFETIME};
use cmg_token::{SiteGuid, SiteSigner, SiteVerifier};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Write a new RSA 2048 site signing key to DIR/site-signing.pem (mode 0600) and its
    /// public key, for gateways' `tokens.site_keys`, to DIR/site-signing.pub.pem.
    Keygen { dir: PathBuf },
    /// Issue a token: a bulk registration token (default) or, with --device, a device
    /// token. The token is printed once on stdout and never stored; the tracking ID (to
    /// block it: gateways' `tokens.blocked_token_ids`) goes to stderr.
    New {
        /// The site signing key (PEM).
        #[arg(long)]
        key: PathBuf,
        /// The site GUID (the token issuer is urn:sccm:oauth2:GUID).
        #[arg(long)]
        site_guid: String,
        /// Issue a device token for this device ID instead of a bulk registration token.
        #[arg(long)]
        device: Option<String>,
        /// Lifetime in minutes (bulk: default 3 days, at most 7; device: default and at
        /// most 90 days).
        #[arg(long)]
        lifetime: Option<u64>,
    },
    /// Check a token (read from stdin) against site public keys, as a gateway does;
    /// exit 0 and print its type, subject, tracking ID and expiry, or 1 with the reason.
    Verify {
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        #[arg(long)]
        site_guid: String,
        /// Tracking IDs to treat as blocked.
        #[arg(long = "blocked")]
        blocked: Vec<String>,
    },
}

pub fn run(cmd: TokenCommand) -> ExitCode {
    let result = match cmd {
        TokenCommand::Keygen { dir } => keygen(&dir),
        TokenCommand::New {
            key,
            site_guid,
            device,
            lifetime,
        } => new(&key, &site_guid, device.as_deref(), lifetime),
        TokenCommand::Verify {
            keys,
            site_guid,
            blocked,
        } => return verify(&keys, &site_guid, &blocked),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", crate::output::error(&e));
            ExitCode::from(2)
        }
    }
}

fn keygen(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let key = generate_key_pem()?;
    let guid: SiteGuid = "00000000-0000-4000-8000-000000000000".parse()?;
    let public = SiteSigner::from_pem(key.as_bytes(), &guid)?.public_key_pem();
    let key_path = dir.join("site-signing.pem");
    write_private(&key_path, &key)?;
    let pub_path = dir.join("site-signing.pub.pem");
    std::fs::write(&pub_path, public).with_context(|| format!("write {}", pub_path.display()))?;
    println!("{}\n{}", key_path.display(), pub_path.display());
    Ok(())
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    if path.exists() {
        anyhow::bail!("create {}: it must not exist yet", path.display());
    }
    Ok(cmg_core::private_file::write(path, text.as_bytes())?)
}

fn new(key: &Path, guid: &str, device: Option<&str>, lifetime: Option<u64>) -> anyhow::Result<()> {
    let guid: SiteGuid = guid.parse().context("--site-guid")?;
    let pem = std::fs::read(key).with_context(|| format!("read {}", key.display()))?;
    let signer = SiteSigner::from_pem(&pem, &guid).with_context(|| key.display().to_string())?;
    let minutes = |m: u64| Duration::from_secs(m.saturating_mul(60));
    let issued = match device {
        Some(id) => signer.issue_device(id, lifetime.map_or(DEVICE_DEFAULT_LIFETIME, minutes))?,
        None => signer.issue_bulk(lifetime.map_or(BULK_DEFAULT_LIFETIME, minutes))?,
    };
    eprintln!(
        "{} token, tracking ID {}, expires {} (unix {})",
        issued.kind.as_str(),
        issued.tracking_id,
        rfc3339(issued.expires_at),
        unix(issued.expires_at)
    );
    println!("{}", issued.token);
    Ok(())
}

fn verify(keys: &[PathBuf], guid: &str, blocked: &[String]) -> ExitCode {
    let run = || -> anyhow::Result<Result<String, String>> {
        let guid: SiteGuid = guid.parse().context("--site-guid")?;
        let pems = keys
            .iter()
            .map(|k| std::fs::read(k).with_context(|| format!("read {}", k.display())))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let verifier = SiteVerifier::from_pems(&pems, &guid)?;
        let mut token = String::new();
        std::io::stdin()
            .take(64 * 1024)
            .read_to_string(&mut token)
            .context("read the token from stdin")?;
        let token = token.trim();
        if token.is_empty() {
            bail!("no token on stdin");
        }
        Ok(
            match verifier.verify(token, &|id| blocked.iter().any(|b| b == id)) {
                Ok(t) => Ok(format!(
                    "valid {} token; subject {}; tracking ID {}; expires unix {}",
                    t.kind.as_str(),
                    t.subject.as_deref().unwrap_or("-"),
                    t.tracking_id,
                    unix(t.expires_at)
                )),
                Err(e) => Err(e.reason()),
            },
        )
    };
    match run() {
        Ok(Ok(summary)) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Ok(Err(reason)) => {
            println!("refused: {reason}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {}", crate::output::error(&e));
            ExitCode::from(2)
        }
    }
}

fn unix(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn rfc3339(t: std::time::SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "?".into())
}
