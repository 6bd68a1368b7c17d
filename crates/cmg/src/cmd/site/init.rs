//! `cmg site init`: creates the site in its database (site code, GUID, CA, signing key)
//! and, when they do not exist yet, the master key and admin token files. Works on the
//! database directly; it does not start the API.

use std::path::Path;

use anyhow::Context as _;
use clap::Args;
use cmg_proto::SiteCode;
use cmg_site::store::InitParams;
use cmg_site::{Actor, MasterKey, Store};

use super::db::{write_secret, DbArgs};
use super::{admin_token, whoami};

// No doc comment on purpose: the `init` variant's is its help line.
#[derive(Debug, Args)]
pub(super) struct InitArgs {
    #[command(flatten)]
    db: DbArgs,
    /// The site code.
    #[arg(long, default_value = "PS1")]
    site_code: String,
    /// Names (DNS or IP) in the API's server certificate.
    #[arg(long = "api-name", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
    api_names: Vec<String>,
}

fn random_hex() -> anyhow::Result<String> {
    let (_, text) = MasterKey::generate()?;
    Ok(text.expose().to_owned())
}

pub(super) async fn run(dir: &Path, args: InitArgs) -> anyhow::Result<()> {
    let InitArgs {
        db,
        site_code,
        api_names,
    } = args;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key_file = dir.join("master.key");
    if db.master_key_file.is_none()
        && std::env::var_os(cmg_site::secret::MASTER_KEY_ENV).is_none()
        && !key_file.exists()
    {
        write_secret(&key_file, &random_hex()?)?;
        println!(
            "master key written to {} (keep a copy: without it the site's secrets are lost)",
            key_file.display()
        );
    }
    let url = db.url(dir);
    let store = Store::open_from(&url, db.key_source(dir)).await?;
    let site = store
        .init(
            &InitParams {
                site_code: SiteCode::new(&site_code)?,
                api_names,
            },
            &Actor::new(format!("cli:{}", whoami())),
        )
        .await?;
    std::fs::write(dir.join("site-ca.pem"), &site.ca_pem)?;
    let token_file = dir.join("admin.token");
    if !token_file.exists() && std::env::var_os(admin_token::ENV).is_none() {
        write_secret(&token_file, &random_hex()?)?;
        println!("admin token written to {}", token_file.display());
    }
    store.close().await;
    println!(
        "site {} created (GUID {}), database {}, site CA {}",
        site.code,
        site.guid,
        cmg_site::db::redact_url(&url),
        dir.join("site-ca.pem").display()
    );
    Ok(())
}
