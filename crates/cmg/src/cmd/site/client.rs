//! `cmg site client ...`: the clients the location service has seen (which boundary
//! groups each fell in, how it came), and the site public keys a client is enrolled
//! with (the file its config names to verify location answers).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use cmg_site::model::{ClientView, KeyView};
use http::Method;

use super::api::{decode, print, Api, ApiArgs};
use crate::output::{self, Table};

#[derive(Debug, Subcommand)]
pub(super) enum ClientCommand {
    /// The clients, most recently seen first: auth, how they came, their boundary groups.
    List {
        #[command(flatten)]
        api: ApiArgs,
        /// Most clients to show (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write the site's public keys in force (PEM) to the file a client verifies
    /// location answers with.
    Trust {
        #[command(flatten)]
        api: ApiArgs,
        /// Where to write them.
        #[arg(long)]
        out: PathBuf,
    },
}

pub(super) async fn run(dir: &Path, cmd: ClientCommand) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::List { api, limit, json } => {
            let api = Api::connect(dir, &api)?;
            let v = api
                .call(Method::GET, &format!("/api/v1/clients?limit={limit}"))
                .await?;
            if json {
                return print(v);
            }
            let clients: Vec<ClientView> = decode(v)?;
            print!("{}", table(&clients, cmg_site::now()));
            Ok(())
        }
        ClientCommand::Trust { api, out } => {
            let api = Api::connect(dir, &api)?;
            let keys: Vec<KeyView> = decode(api.call(Method::GET, "/api/v1/keys").await?)?;
            let now = cmg_site::now();
            let pem: String = keys
                .iter()
                .filter(|k| k.state == "active" || k.retire_at.is_some_and(|t| t > now))
                .map(|k| k.public_pem.clone())
                .collect();
            anyhow::ensure!(!pem.is_empty(), "the site has no signing key in force");
            std::fs::write(&out, pem).with_context(|| format!("writing {}", out.display()))?;
            println!("site keys written to {}", out.display());
            Ok(())
        }
    }
}

/// The client list as a table; a line says so when it is empty.
fn table(clients: &[ClientView], now: i64) -> String {
    let mut t = Table::new(&[
        "CLIENT",
        "AUTH",
        "VIA",
        "BOUNDARY GROUPS",
        "ADDRESSES",
        "FIRST SEEN",
        "LAST SEEN",
    ]);
    for c in clients {
        t.row(vec![
            c.id.clone(),
            c.auth.clone(),
            c.via.clone(),
            output::list(&c.boundary_groups),
            output::list(&c.addresses),
            output::when(c.first_seen, now),
            output::when(c.last_location_at, now),
        ]);
    }
    let mut s = t.render();
    if clients.is_empty() {
        s.push_str("(no client has asked for its location yet)\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_each_clients_groups() {
        let c = ClientView {
            id: "dev-1".into(),
            auth: "token".into(),
            via: "gateway".into(),
            addresses: vec!["10.1.0.4".into()],
            boundary_groups: vec!["paris".into(), "lyon".into()],
            first_seen: 90,
            last_location_at: 95,
        };
        let t = table(&[c], 100);
        let line = t.lines().nth(1).expect("row");
        assert!(line.starts_with("dev-1 "), "{line}");
        assert!(
            line.contains("paris, lyon")
                && line.contains("gateway")
                && line.ends_with(" (5 s ago)"),
            "{line}"
        );
        assert!(table(&[], 0).contains("no client"));
    }
}
