//! `cmg site serve`: the REST API and the publishing API over HTTPS, until SIGINT or
//! SIGTERM, then a bounded drain. Works on the database directly. Tells systemd when it
//! serves and when it drains; an admin token, master key or proxy setting that cannot be
//! read exits 78. `--check` reads them and exits without opening the database.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use cmg_core::Shutdown;
use cmg_site::{server, Store};

use super::admin_token;
use super::db::DbArgs;
use crate::service::config_error;
use crate::{service, signal};

// No doc comment on purpose: the `serve` variant's is its help line.
#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    #[command(flatten)]
    db: DbArgs,
    /// The HTTPS listener of the REST and publishing API.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// File with the admin token (default: CMG_SITE_ADMIN_TOKEN, else DIR/admin.token).
    #[arg(long)]
    admin_token_file: Option<PathBuf>,
    /// Write CloudMgr.log and CMGSetup.log into this directory.
    #[arg(long)]
    pub(super) log_dir: Option<PathBuf>,
    /// The connection points' report interval: a gateway whose connection points
    /// have not reported for twice this is shown Disconnected.
    #[arg(long, default_value = "5m", value_parser = period)]
    report_interval: Duration,
    /// How often every gateway's 14-day traffic alert is evaluated (also after
    /// each report).
    #[arg(long, default_value = "6m", value_parser = period)]
    alert_interval: Duration,
    /// Plain HTTP listener for `/metrics` (Prometheus) and `/ready`: loopback or a
    /// private address.
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Check the configuration (admin token, master key, outbound proxy) and exit: 0
    /// when valid, 78 when not. Opens neither the database nor a listener.
    #[arg(long)]
    check: bool,
}

fn period(s: &str) -> Result<Duration, String> {
    cmg_site::alerts::parse_period(s)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{s:?} is not a period like 30s, 5m, 6h or 1d"))
}

pub(super) async fn run(dir: &Path, args: ServeArgs) -> anyhow::Result<()> {
    let token = admin_token::load(dir, args.admin_token_file.as_deref()).map_err(config_error)?;
    let mut config = server::Config::new(args.listen, token);
    config.report_interval = args.report_interval;
    config.alert_interval = args.alert_interval;
    config.admin_listen = args.admin_listen;
    // Alert webhooks go out through the environment's proxy, as curl's would.
    config.outbound_proxy = cmg_core::proxy::Proxy::from_env(|k| std::env::var(k).ok())
        .map_err(config_error)?
        .map(std::sync::Arc::new);
    let db = &args.db;
    let key_source = db.key_source(dir);
    key_source.load().map_err(config_error)?;
    if args.check {
        println!("site configuration valid (admin token, master key, outbound proxy; the database and the listeners were not opened)");
        return Ok(());
    }
    // A ring that lacks a key a sealed value names, or a database file others may read,
    // is the configuration's fault (78).
    let store = Store::open_from(&db.url(dir), key_source)
        .await
        .map_err(|e| {
            if e.is_configuration() {
                config_error(e)
            } else {
                e.into()
            }
        })?;
    let bound = server::bind(store.clone(), config.clone())
        .await
        .context("starting the site API")?;
    let addr = bound.local_addr()?;
    println!("site API on https://{addr}");
    if let Some(a) = bound.admin_addr() {
        println!("site metrics on http://{a}/metrics");
    }
    service::ready(&format!("site API on https://{addr}"));
    let shutdown = Shutdown::new();
    let stopper = {
        let s = shutdown.clone();
        tokio::spawn(async move {
            signal::stop_requested().await;
            tracing::info!("stop requested; draining");
            service::stopping();
            s.token.cancel();
        })
    };
    bound.run(shutdown.clone()).await;
    let drain = shutdown.drain(Duration::from_secs(10)).await;
    tracing::info!(?drain, "site stopped");
    store.close().await;
    stopper.abort();
    Ok(())
}
