//! `cmg site key ...`: the site's token and bundle signing keys: roll to a new one
//! (the previous stays valid for an overlap), list them; and the master key ring: add a
//! key to the ring's file, show the ring, move every sealed value to its newest key
//! (`rewrap`, through the API, while the site runs).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::Subcommand;
use cmg_site::model::{KeyRoll, MasterKeyRewrap, MasterKeyStatus};
use cmg_site::{KeyRing, MasterKey, Secret};
use http::Method;

use super::api::{decode, list, print, send_and_show, show, Api, ApiArgs};
use super::db::write_secret;
use super::views;
use crate::output::{self, Table};
use cmg_site::model::KeyView;

#[derive(Debug, Subcommand)]
pub(super) enum KeyCommand {
    /// Roll the signing key; the previous key stays valid for the overlap.
    Roll {
        #[command(flatten)]
        api: ApiArgs,
        /// Hours (default 168).
        #[arg(long)]
        overlap_hours: Option<u64>,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the signing keys with their state (their public keys with --json).
    List {
        #[command(flatten)]
        api: ApiArgs,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Append a new random master key to the ring's file (it seals once the site reads
    /// the ring again: `rewrap`, or a restart). Works on the file, not the API.
    AddMaster {
        /// The ring's file (default DIR/master.key).
        #[arg(long)]
        master_key_file: Option<PathBuf>,
    },
    /// Show the master key ring the site holds (key ids) and how many sealed values name
    /// each key.
    Master {
        #[command(flatten)]
        api: ApiArgs,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Read the master key ring again and seal every secret anew with its newest key,
    /// while the site runs; then the older keys may leave the file.
    Rewrap {
        #[command(flatten)]
        api: ApiArgs,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Appends a new key to the ring in `file`, after checking the file and the ring.
fn add_master(file: &Path) -> anyhow::Result<()> {
    let old = Secret::new(
        cmg_core::private_file::read_to_string(file)
            .context("reading the master key ring (`cmg site init` writes it)")?,
    );
    let ring = KeyRing::parse(old.expose()).with_context(|| format!("{}", file.display()))?;
    let (key, text) = MasterKey::generate()?;
    let old = old.expose().trim_end();
    let new = Secret::new(format!(
        "{old}{}# added {} by cmg site key add-master\n{}",
        if old.is_empty() { "" } else { "\n" },
        output::time(cmg_site::now()),
        text.expose()
    ));
    write_secret(file, new.expose())?;
    println!(
        "master key {} added to {} (the ring holds {}); run `cmg site key rewrap` to seal \
         every secret with it, then the older keys may be removed",
        key.id(),
        file.display(),
        ring.ids().len() + 1
    );
    Ok(())
}

/// The ring and the sealed values per key, as text.
fn master_text(s: &MasterKeyStatus, _now: i64) -> String {
    let mut out = format!(
        "sealing key: {}\nring (oldest first): {}\n",
        s.sealing_key,
        s.ring.join(", ")
    );
    let mut t = Table::new(&["KEY", "SEALED VALUES"]);
    for (id, n) in &s.values {
        t.row(vec![id.clone(), n.to_string()]);
    }
    out.push_str(&t.render());
    out
}

/// What a rewrap moved, as text.
fn rewrap_text(r: &MasterKeyRewrap, _now: i64) -> String {
    let from: Vec<String> = r
        .from
        .iter()
        .map(|(id, n)| format!("{n} from {id}"))
        .collect();
    format!(
        "{} sealed value(s) moved to master key {} ({}); {} left under other keys\n",
        r.resealed,
        r.sealing_key,
        if from.is_empty() {
            "none needed".to_owned()
        } else {
            from.join(", ")
        },
        r.left
    )
}

/// The keys as a table (the public keys only in `--json`).
fn table(keys: &[KeyView], now: i64) -> Table {
    let mut t = Table::new(&["KID", "STATE", "CREATED", "RETIRES"]);
    for k in keys {
        t.row(vec![
            k.kid.clone(),
            k.state.clone(),
            output::when(k.created_at, now),
            k.retire_at
                .map(|r| output::when(r, now))
                .unwrap_or_default(),
        ]);
    }
    t
}

pub(super) async fn run(dir: &Path, cmd: KeyCommand) -> anyhow::Result<()> {
    match cmd {
        KeyCommand::Roll {
            api,
            overlap_hours,
            json,
        } => {
            let req = KeyRoll { overlap_hours };
            let call = (Method::POST, "/api/v1/keys/roll");
            send_and_show(dir, &api, call, &req, json, views::key).await
        }
        KeyCommand::List { api, json } => list(dir, &api, "/api/v1/keys", json, table).await,
        KeyCommand::AddMaster { master_key_file } => {
            if master_key_file.is_none()
                && std::env::var_os(cmg_site::secret::MASTER_KEY_ENV).is_some()
            {
                bail!(
                    "the master key ring comes from {}: add the new key there (separated by \
                     a space, last) and restart the site, or give --master-key-file",
                    cmg_site::secret::MASTER_KEY_ENV
                );
            }
            add_master(&master_key_file.unwrap_or_else(|| dir.join("master.key")))
        }
        KeyCommand::Master { api, json } => {
            let path = "/api/v1/keys/master";
            show(dir, &api, Method::GET, path, json, master_text).await
        }
        KeyCommand::Rewrap { api, json } => {
            let v = Api::connect(dir, &api)?
                .call(Method::POST, "/api/v1/keys/master/rewrap")
                .await?;
            let report: MasterKeyRewrap = decode(v.clone())?;
            if json {
                print(v)?;
            } else {
                print!("{}", rewrap_text(&report, cmg_site::now()));
            }
            if report.left > 0 {
                bail!(
                    "{} sealed value(s) still name another master key (changes made during the \
                     rewrap); run `cmg site key rewrap` again before removing a key",
                    report.left
                );
            }
            Ok(())
        }
    }
}
