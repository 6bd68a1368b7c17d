//! `cmg site gateway storage ...`: the storage account a gateway serves content from
//! (cloud distribution point) and its key rotation.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use cmg_site::model::StorageSet;
use cmg_site::Secret;
use http::Method;

use crate::cmd::site::api::{self, send_and_show, show, ApiArgs};
use crate::cmd::site::views;

#[derive(Debug, Subcommand)]
pub(in crate::cmd::site) enum StorageCommand {
    /// Set the storage account (both keys, read from files; key1 goes in force).
    Set {
        #[command(flatten)]
        api: ApiArgs,
        /// The gateway's name.
        gateway: String,
        /// The storage account's name.
        #[arg(long)]
        account: String,
        /// The blob container content is served from.
        #[arg(long)]
        container: String,
        /// Blob service URL (default `https://ACCOUNT.blob.core.windows.net`).
        #[arg(long)]
        endpoint: Option<String>,
        /// File holding key1 (base64, as the provider shows it).
        #[arg(long)]
        key1_file: PathBuf,
        /// File holding key2.
        #[arg(long)]
        key2_file: PathBuf,
        /// Days between automatic rotations (default 180).
        #[arg(long)]
        rotation_days: Option<u32>,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The account, the key in force and the next rotation (never a key).
    Show {
        #[command(flatten)]
        api: ApiArgs,
        /// The gateway's name.
        gateway: String,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Switch to the other key now and publish. The retired key is not regenerated at
    /// the provider (not implemented): regenerate it there and `set` it again.
    Rotate {
        #[command(flatten)]
        api: ApiArgs,
        /// The gateway's name.
        gateway: String,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn read_key(path: &Path) -> anyhow::Result<Secret> {
    Ok(Secret::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("read {}", path.display()))?
            .trim(),
    ))
}

pub(super) async fn run(dir: &Path, cmd: StorageCommand) -> anyhow::Result<()> {
    match cmd {
        StorageCommand::Set {
            api,
            gateway,
            account,
            container,
            endpoint,
            key1_file,
            key2_file,
            rotation_days,
            json,
        } => {
            let req = StorageSet {
                account,
                endpoint,
                container,
                key1: read_key(&key1_file)?,
                key2: read_key(&key2_file)?,
                rotation_days,
            };
            let path = api::path(&["gateways", &gateway, "storage"]);
            let call = (Method::PUT, path.as_str());
            send_and_show(dir, &api, call, &req, json, views::storage).await
        }
        StorageCommand::Show { api, gateway, json } => {
            let path = api::path(&["gateways", &gateway, "storage"]);
            show(dir, &api, Method::GET, &path, json, views::storage).await
        }
        StorageCommand::Rotate { api, gateway, json } => {
            let path = api::path(&["gateways", &gateway, "storage", "rotate"]);
            show(dir, &api, Method::POST, &path, json, views::storage_rotated).await
        }
    }
}
