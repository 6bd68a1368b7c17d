//! `cmg site key ...`: the site's token and bundle signing keys: roll to a new one
//! (the previous stays valid for an overlap), list them.

use std::path::Path;

use clap::Subcommand;
use cmg_site::model::KeyRoll;
use http::Method;

use super::api::{send_and_show, show, ApiArgs};

#[derive(Debug, Subcommand)]
pub(super) enum KeyCommand {
    /// Roll the signing key; the previous key stays valid for the overlap.
    Roll {
        #[command(flatten)]
        api: ApiArgs,
        /// Hours (default 168).
        #[arg(long)]
        overlap_hours: Option<u64>,
    },
    /// List the signing keys with their state and public key.
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
}

pub(super) async fn run(dir: &Path, cmd: KeyCommand) -> anyhow::Result<()> {
    match cmd {
        KeyCommand::Roll { api, overlap_hours } => {
            let req = KeyRoll { overlap_hours };
            send_and_show(dir, &api, Method::POST, "/api/v1/keys/roll", &req).await
        }
        KeyCommand::List { api } => show(dir, &api, Method::GET, "/api/v1/keys").await,
    }
}
