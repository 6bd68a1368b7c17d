//! `cmg site boundary-group ...`: which gateway (and fallback gateway) the clients of
//! a boundary group use.

use std::path::Path;

use clap::Subcommand;
use cmg_site::model::BoundaryGroupSet;
use http::Method;

use super::api::{send_and_show, show, ApiArgs};

#[derive(Debug, Subcommand)]
pub(super) enum BoundaryCommand {
    /// Create or replace a boundary group and its gateways.
    Set {
        #[command(flatten)]
        api: ApiArgs,
        /// The boundary group's name.
        name: String,
        /// The gateway its clients use.
        #[arg(long)]
        gateway: Option<String>,
        /// The gateway they use when that one fails.
        #[arg(long)]
        fallback_gateway: Option<String>,
    },
    /// List the boundary groups with their gateways.
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Remove a boundary group.
    Remove {
        #[command(flatten)]
        api: ApiArgs,
        /// The boundary group's name.
        name: String,
    },
}

pub(super) async fn run(dir: &Path, cmd: BoundaryCommand) -> anyhow::Result<()> {
    match cmd {
        BoundaryCommand::Set {
            api,
            name,
            gateway,
            fallback_gateway,
        } => {
            let req = BoundaryGroupSet {
                gateway,
                fallback_gateway,
            };
            let path = format!("/api/v1/boundary-groups/{name}");
            send_and_show(dir, &api, Method::PUT, &path, &req).await
        }
        BoundaryCommand::List { api } => {
            show(dir, &api, Method::GET, "/api/v1/boundary-groups").await
        }
        BoundaryCommand::Remove { api, name } => {
            let path = format!("/api/v1/boundary-groups/{name}");
            show(dir, &api, Method::DELETE, &path).await
        }
    }
}
