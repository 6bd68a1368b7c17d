//! `cmg site gateway ...`: create, change, redeploy, delete, list and show gateways;
//! their storage account (`storage.rs`) and deployment packages (`export.rs`).

mod export;
mod pfx;
mod settings;
mod storage;

use std::path::Path;

use clap::Subcommand;
use cmg_site::model::{GatewayRedeploy, GatewayView};
use http::Method;

use super::api::{self, act, list, send_and_show, show, with_query, ApiArgs};
use super::views;
use crate::output::{self, Table};
use settings::GatewaySettings;

#[derive(Debug, Subcommand)]
pub(super) enum GatewayCommand {
    /// Create a gateway from a PEM server certificate and key.
    Create {
        #[command(flatten)]
        api: ApiArgs,
        /// The gateway's name.
        name: String,
        /// For a wildcard certificate: the host name replacing `*`.
        #[arg(long)]
        service_name: Option<String>,
        /// The region the gateway is deployed in.
        #[arg(long, default_value = "default")]
        region: String,
        #[command(flatten)]
        settings: GatewaySettings,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Change settings that apply without redeploy (a new settings version).
    Modify {
        #[command(flatten)]
        api: ApiArgs,
        /// The gateway's name.
        name: String,
        #[command(flatten)]
        settings: GatewaySettings,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Change the service name or region (needs new deployment packages).
    Redeploy {
        #[command(flatten)]
        api: ApiArgs,
        /// The gateway's name.
        name: String,
        /// The new service name (the host name clients use).
        #[arg(long)]
        service_name: Option<String>,
        /// The new region.
        #[arg(long)]
        region: Option<String>,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete a gateway (refused for the last one unless --force).
    Delete {
        #[command(flatten)]
        api: ApiArgs,
        /// The gateway's name.
        name: String,
        /// Delete the last gateway even while clients are told to use one.
        #[arg(long)]
        force: bool,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the gateways with their settings.
    List {
        #[command(flatten)]
        api: ApiArgs,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one gateway's settings, certificates and settings version.
    Show {
        #[command(flatten)]
        api: ApiArgs,
        /// The gateway's name.
        name: String,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The storage account content is served from, and its key rotation.
    #[command(subcommand)]
    Storage(storage::StorageCommand),
    /// Write an instance's deployment package into DIR.
    Export(export::ExportArgs),
}

/// The gateways as a table (every setting in `--json` and `show`).
fn table(gateways: &[GatewayView], now: i64) -> Table {
    let mut t = Table::new(&[
        "NAME",
        "SERVICE NAME",
        "REGION",
        "INSTANCES",
        "SETTINGS",
        "STOPPED",
        "CERTIFICATE EXPIRES",
    ]);
    for g in gateways {
        t.row(vec![
            g.name.clone(),
            g.service_name.clone(),
            g.region.clone(),
            g.instances.to_string(),
            format!("v{}", g.settings_version),
            g.service_stopped.clone().unwrap_or_else(|| "no".into()),
            output::when(g.certificate.not_after, now),
        ]);
    }
    t
}

pub(super) async fn run(dir: &Path, cmd: GatewayCommand) -> anyhow::Result<()> {
    match cmd {
        GatewayCommand::Create {
            api,
            name,
            service_name,
            region,
            settings,
            json,
        } => {
            let mut req = settings.create(name)?;
            req.service_name = service_name;
            req.region = region;
            let call = (Method::POST, "/api/v1/gateways");
            send_and_show(dir, &api, call, &req, json, views::gateway).await
        }
        GatewayCommand::Modify {
            api,
            name,
            settings,
            json,
        } => {
            let path = api::path(&["gateways", &name]);
            let call = (Method::PATCH, path.as_str());
            send_and_show(dir, &api, call, &settings.modify()?, json, views::changed).await
        }
        GatewayCommand::Redeploy {
            api,
            name,
            service_name,
            region,
            json,
        } => {
            let req = GatewayRedeploy {
                service_name,
                region,
            };
            let path = api::path(&["gateways", &name, "redeploy"]);
            let call = (Method::POST, path.as_str());
            send_and_show(dir, &api, call, &req, json, views::redeployed).await
        }
        GatewayCommand::Delete {
            api,
            name,
            force,
            json,
        } => {
            let path = with_query(
                &api::path(&["gateways", &name]),
                &[("force", &force.to_string())],
            );
            let done = format!("gateway {name} deleted");
            act(dir, &api, Method::DELETE, &path, json, &done).await
        }
        GatewayCommand::List { api, json } => {
            list(dir, &api, "/api/v1/gateways", json, table).await
        }
        GatewayCommand::Show { api, name, json } => {
            let path = api::path(&["gateways", &name]);
            show(dir, &api, Method::GET, &path, json, views::gateway).await
        }
        GatewayCommand::Storage(cmd) => storage::run(dir, cmd).await,
        GatewayCommand::Export(args) => export::run(dir, args).await,
    }
}
