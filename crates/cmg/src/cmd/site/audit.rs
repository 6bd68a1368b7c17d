//! `cmg site audit`: the audit log, newest first, as a table or the API's JSON.

use std::path::Path;

use clap::Args;
use cmg_site::model::AuditEntry;

use super::api::{list, with_query, ApiArgs};
use crate::output::{self, Table};

// No doc comment on purpose: the `audit` variant's is its help line.
#[derive(Debug, Args)]
pub(super) struct AuditArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// How many entries.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// An entry's detail as compact JSON, its times (`*_at` fields) as RFC 3339.
fn detail(v: &serde_json::Value) -> String {
    let mut v = v.clone();
    if let Some(fields) = v.as_object_mut() {
        for (k, field) in fields.iter_mut() {
            if let (true, Some(at)) = (k.ends_with("_at"), field.as_i64()) {
                *field = output::time(at).into();
            }
        }
    }
    v.to_string()
}

/// The entries as a table; each entry's detail as compact JSON in the last column.
fn table(entries: &[AuditEntry], now: i64) -> Table {
    let mut t = Table::new(&["AT", "ACTOR", "ACTION", "TARGET", "DETAIL"]);
    for e in entries {
        t.row(vec![
            output::when(e.at, now),
            e.actor.clone(),
            e.action.clone(),
            e.target.clone(),
            detail(&e.detail),
        ]);
    }
    t
}

pub(super) async fn run(dir: &Path, args: AuditArgs) -> anyhow::Result<()> {
    let path = with_query("/api/v1/audit", &[("limit", &args.limit.to_string())]);
    list(dir, &args.api, &path, args.json, table).await
}
