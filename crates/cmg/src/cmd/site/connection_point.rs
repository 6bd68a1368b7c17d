//! `cmg site connection-point ...`: issue a connection point (its certificate and key,
//! handed out once) and write its files; list and remove connection points.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use cmg_site::files::{connector_files, write_files, ConnectorOptions};
use cmg_site::model::{ConnectionPointAdd, ConnectionPointIssued, ConnectionPointView};
use http::Method;

use super::api::{self, act, decode, list, Api, ApiArgs};
use super::read;
use crate::output::{self, Table};

#[derive(Debug, Subcommand)]
pub(super) enum CpCommand {
    /// Issue a connection point certificate and write its configuration into DIR.
    Add {
        #[command(flatten)]
        api: ApiArgs,
        /// The gateway it relays for.
        #[arg(long)]
        gateway: String,
        /// Its ID (default: generated, `cp-` and 8 hex digits).
        #[arg(long)]
        id: Option<String>,
        /// Channel address of a gateway instance (repeat for each).
        #[arg(long = "gateway-addr")]
        gateway_addrs: Vec<String>,
        /// CA certificate file the gateway's server certificate chains to (default: the
        /// last certificate of the gateway's chain).
        #[arg(long)]
        gateway_ca: Option<PathBuf>,
        /// The directory its files are written into.
        out: PathBuf,
    },
    /// List the connection points with their certificates.
    List {
        #[command(flatten)]
        api: ApiArgs,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a connection point and its reports.
    Remove {
        #[command(flatten)]
        api: ApiArgs,
        /// The connection point's ID.
        id: String,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// The connection points as a table.
fn table(cps: &[ConnectionPointView], now: i64) -> Table {
    let mut t = Table::new(&["ID", "GATEWAY", "CERTIFICATE EXPIRES", "ADDED"]);
    for c in cps {
        t.row(vec![
            c.id.clone(),
            c.gateway.clone(),
            output::when(c.certificate.not_after, now),
            output::when(c.created_at, now),
        ]);
    }
    t
}

pub(super) async fn run(dir: &Path, cmd: CpCommand) -> anyhow::Result<()> {
    match cmd {
        CpCommand::Add {
            api,
            gateway,
            id,
            gateway_addrs,
            gateway_ca,
            out,
        } => {
            let req = ConnectionPointAdd { gateway, id };
            let issued: ConnectionPointIssued = decode(
                Api::connect(dir, &api)?
                    .send(Method::POST, "/api/v1/connection-points", &req)
                    .await?,
            )?;
            let opts = ConnectorOptions {
                gateways: gateway_addrs,
                gateway_ca_pem: gateway_ca.as_deref().map(read).transpose()?,
                site_url: api.url.join(","),
            };
            write_files(&out, &connector_files(&issued, &opts))
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "connection point {} for gateway {} written to {} (connector.toml, cp.pem, cp.key, site-ca.pem, gateway-ca.pem)",
                issued.id,
                issued.gateway,
                out.display()
            );
            if opts.gateways.is_empty() {
                println!("note: no --gateway-addr given; fill `gateways` in connector.toml before starting it");
            }
            Ok(())
        }
        CpCommand::List { api, json } => {
            list(dir, &api, "/api/v1/connection-points", json, table).await
        }
        CpCommand::Remove { api, id, json } => {
            let path = api::path(&["connection-points", &id]);
            let done =
                format!("connection point {id} removed: its certificate is refused from now on");
            act(dir, &api, Method::DELETE, &path, json, &done).await
        }
    }
}
