//! `cmg site boundary-group ...`: boundary groups (seed 004, "Configure boundary
//! groups"): their boundaries, the management points and gateways they reference,
//! their neighbours and "prefer cloud-based sources".

use std::path::Path;

use anyhow::{bail, Context as _};
use clap::Subcommand;
use cmg_site::model::{BoundaryGroup, BoundaryGroupSet, BoundaryNeighbour};
use http::Method;

use super::api::{self, act, list, send_and_show, ApiArgs};
use super::views;
use crate::output::Table;

#[derive(Debug, Subcommand)]
pub(super) enum BoundaryCommand {
    /// Create or replace a boundary group.
    Set {
        #[command(flatten)]
        api: ApiArgs,
        /// The boundary group's name.
        name: String,
        /// A boundary: subnet 10.1.0.0/16, IPv6 prefix 2001:db8::/48 or range
        /// 10.1.0.10-10.1.0.99 (repeat for more).
        #[arg(long = "boundary")]
        boundaries: Vec<String>,
        /// A management point it references, by role ID (repeat for more).
        #[arg(long = "mp")]
        management_points: Vec<String>,
        /// A gateway it references: an intranet cloud source (repeat for more).
        #[arg(long = "gateway")]
        gateways: Vec<String>,
        /// A neighbour group: NAME, NAME:mp-never (no management point fallback),
        /// NAME:content=MINUTES or NAME:content=never, options joined by ':'.
        #[arg(long = "neighbour")]
        neighbours: Vec<String>,
        /// Prefer cloud-based sources over on-premises ones.
        #[arg(long)]
        prefer_cloud: bool,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the boundary groups.
    List {
        #[command(flatten)]
        api: ApiArgs,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a boundary group.
    Remove {
        #[command(flatten)]
        api: ApiArgs,
        /// The boundary group's name.
        name: String,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `NAME[:mp-never][:content=MINUTES|never]`.
fn neighbour(text: &str) -> anyhow::Result<BoundaryNeighbour> {
    let mut parts = text.split(':');
    let group = parts.next().unwrap_or_default().trim().to_owned();
    if group.is_empty() {
        bail!("--neighbour {text:?}: no group name");
    }
    let mut n = BoundaryNeighbour {
        group,
        management_points: true,
        content_after_minutes: Some(120),
    };
    for opt in parts {
        match opt.trim() {
            "mp-never" => n.management_points = false,
            "content=never" => n.content_after_minutes = None,
            o => match o.strip_prefix("content=") {
                Some(m) => {
                    n.content_after_minutes = Some(
                        m.parse()
                            .with_context(|| format!("--neighbour {text:?}: minutes"))?,
                    )
                }
                None => bail!("--neighbour {text:?}: unknown option {o:?}"),
            },
        }
    }
    Ok(n)
}

/// The boundary groups as a table.
fn table(groups: &[BoundaryGroup], _now: i64) -> Table {
    let list = |v: &[String]| {
        if v.is_empty() {
            "-".to_owned()
        } else {
            v.join(",")
        }
    };
    let mut t = Table::new(&[
        "NAME",
        "BOUNDARIES",
        "MANAGEMENT POINTS",
        "GATEWAYS",
        "NEIGHBOURS",
        "PREFER CLOUD",
    ]);
    for g in groups {
        let neighbours: Vec<String> = g.neighbours.iter().map(|n| n.group.clone()).collect();
        t.row(vec![
            g.name.clone(),
            list(&g.boundaries),
            list(&g.management_points),
            list(&g.gateways),
            list(&neighbours),
            if g.prefer_cloud { "yes" } else { "no" }.to_owned(),
        ]);
    }
    t
}

pub(super) async fn run(dir: &Path, cmd: BoundaryCommand) -> anyhow::Result<()> {
    match cmd {
        BoundaryCommand::Set {
            api,
            name,
            boundaries,
            management_points,
            gateways,
            neighbours,
            prefer_cloud,
            json,
        } => {
            let req = BoundaryGroupSet {
                boundaries,
                management_points,
                gateways,
                neighbours: neighbours
                    .iter()
                    .map(|n| neighbour(n))
                    .collect::<anyhow::Result<_>>()?,
                prefer_cloud,
            };
            let path = api::path(&["boundary-groups", &name]);
            let call = (Method::PUT, path.as_str());
            send_and_show(dir, &api, call, &req, json, views::boundary_group).await
        }
        BoundaryCommand::List { api, json } => {
            list(dir, &api, "/api/v1/boundary-groups", json, table).await
        }
        BoundaryCommand::Remove { api, name, json } => {
            let path = api::path(&["boundary-groups", &name]);
            let done = format!("boundary group {name} removed");
            act(dir, &api, Method::DELETE, &path, json, &done).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::neighbour;

    #[test]
    fn neighbour_options() {
        let n = neighbour("lyon").expect("plain");
        assert!(n.management_points && n.content_after_minutes == Some(120));
        let n = neighbour("lyon:mp-never:content=30").expect("options");
        assert!(!n.management_points && n.content_after_minutes == Some(30));
        let n = neighbour("lyon:content=never").expect("never");
        assert_eq!(n.content_after_minutes, None);
        assert!(neighbour(":mp-never").is_err());
        assert!(neighbour("lyon:fast").is_err());
    }
}
