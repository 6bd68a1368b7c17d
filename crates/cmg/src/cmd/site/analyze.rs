//! `cmg site analyze`: the connection analyzer against the real deployment. This module
//! fetches the deployment's view of one gateway from the site's admin API (the gateway
//! with its server chain, its settings bundle, the roles, the connection points'
//! reports), (built by `cmg_site::analyze`) hands it with the credential to `cmg_analyze::analyze`, and prints the
//! report. The exit status is 0 only when no step failed.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::{ArgGroup, Args};
use cmg_analyze::{Credential, Deployment, Targets};
use cmg_proto::settings::SettingsBundle;
use cmg_site::model::{GatewayStatus, GatewayView, RoleView};
use http::Method;

use super::api::{self, decode, Api, ApiArgs};
use super::read;

// No doc comment on purpose: the `analyze` variant's is its help line.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("credential").required(true).args(["cert", "token"])))]
pub(super) struct AnalyzeArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The gateway's name.
    #[arg(long)]
    gateway: String,
    /// An instance's client address (host:port), repeatable; default: every address of
    /// the service name on port 443.
    #[arg(long = "instance", value_name = "ADDR")]
    instances: Vec<String>,
    /// The client certificate (PEM, leaf first, then its intermediates).
    #[arg(
        long,
        requires = "key",
        conflicts_with = "token",
        required_unless_present = "token"
    )]
    cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// A file with a bearer token (site-issued or from an OIDC issuer).
    #[arg(long)]
    token: Option<PathBuf>,
    /// Print the report as JSON: {"steps": [{"name","status","detail","remedy"}], "ok"}.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(dir: &Path, args: AnalyzeArgs) -> anyhow::Result<()> {
    let credential = match (&args.cert, &args.key, &args.token) {
        (Some(cert), Some(key), None) => Credential::Certificate {
            chain_pem: read(cert)?,
            key_pem: read(key)?,
        },
        (None, None, Some(token)) => Credential::Token(read(token)?.trim().to_owned()),
        _ => bail!("give --cert and --key, or --token"),
    };
    let deployment = fetch(dir, &args).await?;
    let targets = if args.instances.is_empty() {
        Targets::ServiceName
    } else {
        Targets::Addresses(args.instances.clone())
    };
    let report = cmg_analyze::analyze(&deployment, &credential, &targets).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    if !report.ok {
        let failed = report
            .steps
            .iter()
            .filter(|s| s.status == cmg_analyze::Status::Fail)
            .count();
        bail!("{failed} step(s) failed");
    }
    Ok(())
}

/// The deployment's view of the gateway, from four admin calls.
async fn fetch(dir: &Path, args: &AnalyzeArgs) -> anyhow::Result<Deployment> {
    let api = Api::connect(dir, &args.api)?;
    let name = &args.gateway;
    let gateway: GatewayView = decode(
        api.call(Method::GET, &api::path(&["gateways", name]))
            .await?,
    )?;
    let bundle: SettingsBundle = decode(
        api.call(Method::GET, &api::path(&["gateways", name, "bundle"]))
            .await?,
    )?;
    let roles: Vec<RoleView> = decode(api.call(Method::GET, "/api/v1/roles").await?)?;
    let statuses: Vec<GatewayStatus> = decode(api.call(Method::GET, "/api/v1/status").await?)?;
    let status = statuses
        .into_iter()
        .find(|s| s.gateway == *name)
        .with_context(|| format!("the site reports no status for gateway {name}"))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Ok(cmg_site::analyze::deployment(
        gateway, bundle, roles, status, now,
    ))
}
