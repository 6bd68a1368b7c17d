//! `cmg site token ...`: bulk registration tokens: issue one (printed once, never
//! stored by the site), list, block and unblock them.

use std::path::Path;

use clap::Subcommand;
use cmg_site::model::{TokenNew, TokenView};
use http::Method;

use super::api::{self, act, list, send_and_show, ApiArgs};
use super::views;
use crate::output::{self, Table};

#[derive(Debug, Subcommand)]
pub(super) enum TokenCommand {
    /// Issue a bulk registration token; printed once, never stored.
    New {
        #[command(flatten)]
        api: ApiArgs,
        /// Minutes (default 4320 = 3 days, at most 10080 = 7 days).
        #[arg(long)]
        lifetime_minutes: Option<u64>,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the bulk tokens issued (never the tokens themselves).
    List {
        #[command(flatten)]
        api: ApiArgs,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Block a bulk token: clients can no longer register with it.
    Block {
        #[command(flatten)]
        api: ApiArgs,
        /// The token's tracking ID (`token list`).
        tracking_id: String,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Unblock a blocked bulk token.
    Unblock {
        #[command(flatten)]
        api: ApiArgs,
        /// The token's tracking ID (`token list`).
        tracking_id: String,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// The tokens issued as a table.
fn table(tokens: &[TokenView], now: i64) -> Table {
    let mut t = Table::new(&["TRACKING ID", "ISSUED", "EXPIRES", "BY", "BLOCKED"]);
    for k in tokens {
        t.row(vec![
            k.tracking_id.clone(),
            output::when(k.issued_at, now),
            output::when(k.expires_at, now),
            k.issued_by.clone(),
            if k.blocked { "yes" } else { "no" }.into(),
        ]);
    }
    t
}

pub(super) async fn run(dir: &Path, cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::New {
            api,
            lifetime_minutes,
            json,
        } => {
            let req = TokenNew { lifetime_minutes };
            let call = (Method::POST, "/api/v1/tokens");
            send_and_show(dir, &api, call, &req, json, views::token_issued).await
        }
        TokenCommand::List { api, json } => list(dir, &api, "/api/v1/tokens", json, table).await,
        TokenCommand::Block {
            api,
            tracking_id,
            json,
        } => {
            let path = api::path(&["tokens", &tracking_id, "block"]);
            let done =
                format!("token {tracking_id} blocked: clients can no longer register with it");
            act(dir, &api, Method::POST, &path, json, &done).await
        }
        TokenCommand::Unblock {
            api,
            tracking_id,
            json,
        } => {
            let path = api::path(&["tokens", &tracking_id, "unblock"]);
            let done = format!("token {tracking_id} unblocked");
            act(dir, &api, Method::POST, &path, json, &done).await
        }
    }
}
