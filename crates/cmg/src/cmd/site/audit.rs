//! `cmg site audit`: the audit log, newest first, as the API's JSON.

use std::path::Path;

use clap::Args;
use http::Method;

use super::api::{show, ApiArgs};

// No doc comment on purpose: the `audit` variant's is its help line.
#[derive(Debug, Args)]
pub(super) struct AuditArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// How many entries.
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

pub(super) async fn run(dir: &Path, args: AuditArgs) -> anyhow::Result<()> {
    let path = format!("/api/v1/audit?limit={}", args.limit);
    show(dir, &args.api, Method::GET, &path).await
}
