//! `cmg site role ...`: the site roles (management points, software update points)
//! clients reach through the gateways; the site generates their URL mappings.

use std::path::Path;

use clap::Subcommand;
use cmg_site::mappings::{RoleKind, RoleMode};
use cmg_site::model::{RoleCreate, RoleModify, RoleView};
use http::Method;

use super::api::{self, act, list, send_and_show, ApiArgs};
use super::views;
use crate::output::Table;

#[derive(Debug, Subcommand)]
pub(super) enum RoleCommand {
    /// Add a management point or software update point.
    Add {
        #[command(flatten)]
        api: ApiArgs,
        /// Role ID (decimal).
        #[arg(long)]
        id: String,
        /// management_point or software_update_point.
        #[arg(long, default_value = "management_point", value_parser = kind)]
        kind: RoleKind,
        /// Internal base URL, e.g. <https://mp01.corp.example>.
        #[arg(long)]
        internal_url: String,
        /// http, enhanced_http or https.
        #[arg(long, default_value = "https", value_parser = mode)]
        mode: RoleMode,
        /// Let clients reach the role through the gateways (generates its mappings).
        #[arg(long)]
        allow_gateway_traffic: bool,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Change a role's internal URL, mode or gateway traffic.
    Modify {
        #[command(flatten)]
        api: ApiArgs,
        /// Role ID (decimal).
        id: String,
        /// Internal base URL.
        #[arg(long)]
        internal_url: Option<String>,
        /// http, enhanced_http or https.
        #[arg(long, value_parser = mode)]
        mode: Option<RoleMode>,
        /// Let clients reach the role through the gateways.
        #[arg(long)]
        allow_gateway_traffic: Option<bool>,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove a role (its mappings go with it).
    Remove {
        #[command(flatten)]
        api: ApiArgs,
        /// Role ID (decimal).
        id: String,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the roles with their URL mappings.
    List {
        #[command(flatten)]
        api: ApiArgs,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn kind(s: &str) -> Result<RoleKind, String> {
    RoleKind::parse(s).ok_or_else(|| {
        format!("{s:?} is not a role kind: management_point or software_update_point")
    })
}

fn mode(s: &str) -> Result<RoleMode, String> {
    RoleMode::parse(s).ok_or_else(|| format!("{s:?} is not a mode: http, enhanced_http or https"))
}

/// The roles as a table (their mappings in `--json`).
fn table(roles: &[RoleView], _now: i64) -> Table {
    let mut t = Table::new(&[
        "ROLE ID",
        "KIND",
        "MODE",
        "GATEWAY TRAFFIC",
        "MAPPINGS",
        "INTERNAL URL",
    ]);
    for r in roles {
        t.row(vec![
            r.role_id.clone(),
            r.kind.as_str().into(),
            r.mode.as_str().into(),
            if r.allow_gateway_traffic {
                "allowed"
            } else {
                "no"
            }
            .into(),
            r.mappings.len().to_string(),
            r.internal_url.clone(),
        ]);
    }
    t
}

pub(super) async fn run(dir: &Path, cmd: RoleCommand) -> anyhow::Result<()> {
    match cmd {
        RoleCommand::Add {
            api,
            id,
            kind,
            internal_url,
            mode,
            allow_gateway_traffic,
            json,
        } => {
            let req = RoleCreate {
                role_id: id,
                kind,
                internal_url,
                mode,
                allow_gateway_traffic,
            };
            let call = (Method::POST, "/api/v1/roles");
            send_and_show(dir, &api, call, &req, json, views::role).await
        }
        RoleCommand::Modify {
            api,
            id,
            internal_url,
            mode,
            allow_gateway_traffic,
            json,
        } => {
            let req = RoleModify {
                internal_url,
                mode,
                allow_gateway_traffic,
            };
            let path = api::path(&["roles", &id]);
            let call = (Method::PATCH, path.as_str());
            send_and_show(dir, &api, call, &req, json, views::role).await
        }
        RoleCommand::Remove { api, id, json } => {
            let path = api::path(&["roles", &id]);
            let done = format!("role {id} removed (its mappings with it)");
            act(dir, &api, Method::DELETE, &path, json, &done).await
        }
        RoleCommand::List { api, json } => list(dir, &api, "/api/v1/roles", json, table).await,
    }
}
