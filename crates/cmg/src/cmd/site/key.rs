//! `cmg site key ...`: the site's token and bundle signing keys: roll to a new one
//! (the previous stays valid for an overlap), list them.

use std::path::Path;

use clap::Subcommand;
use cmg_site::model::KeyRoll;
use http::Method;

use super::api::{list, send_and_show, ApiArgs};
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
    }
}
