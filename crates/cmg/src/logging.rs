//! Logging: human-readable lines on stderr, and with `--log-dir` the product's log files:
//! `CMGService.log` (gateway service and channels), `CMGHttpHandler.log` (one access line
//! per request), `SMS_Cloud_ProxyConnector.log` (connection point), `MP.log`, `CloudMgr.log` (site:
//! lifecycle, publishing, key rotation) and `CMGSetup.log` (deployment packages).
//! `RUST_LOG` overrides the stderr filter (default `info`, access lines off stderr).

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, Layer};

const ACCESS: &str = "cmg_gateway::access";
/// Deployment packages (`cmg site gateway export`) and instance setup.
const SETUP: &str = "cmg_site::setup";

/// Keeps the file writers flushing until dropped (at exit).
#[derive(Debug)]
pub struct Guards(#[allow(dead_code)] Vec<WorkerGuard>);

fn file_layer<S>(
    dir: &Path,
    name: &str,
    keep: impl Fn(&str) -> bool + Send + Sync + 'static,
    guards: &mut Vec<WorkerGuard>,
) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let (writer, guard) =
        tracing_appender::non_blocking(tracing_appender::rolling::never(dir, name));
    guards.push(guard);
    fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_filter(filter_fn(move |m| {
            keep(m.target()) && *m.level() <= tracing::Level::INFO
        }))
        .boxed()
}

/// Installs the global subscriber. `quiet` lowers stderr to warnings (the demo prints
/// its own summary).
pub fn init(log_dir: Option<&Path>, quiet: bool) -> std::io::Result<Guards> {
    let default = if quiet {
        "warn"
    } else {
        "info,cmg_gateway::access=warn"
    };
    let stderr_filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(stderr_filter)
        .boxed();
    let mut guards = Vec::new();
    let mut layers = vec![stderr];
    if let Some(dir) = log_dir {
        std::fs::create_dir_all(dir)?;
        layers.push(file_layer(
            dir,
            "CMGHttpHandler.log",
            |t| t == ACCESS,
            &mut guards,
        ));
        layers.push(file_layer(
            dir,
            "CMGService.log",
            |t| t.starts_with("cmg_gateway") && t != ACCESS || t.starts_with("cmg_pki"),
            &mut guards,
        ));
        layers.push(file_layer(
            dir,
            "SMS_Cloud_ProxyConnector.log",
            |t| t.starts_with("cmg_connector"),
            &mut guards,
        ));
        layers.push(file_layer(
            dir,
            "CloudMgr.log",
            |t| t.starts_with("cmg_site") && t != SETUP,
            &mut guards,
        ));
        layers.push(file_layer(dir, "CMGSetup.log", |t| t == SETUP, &mut guards));
        layers.push(file_layer(
            dir,
            "MP.log",
            |t| t.starts_with("cmg_mp"),
            &mut guards,
        ));
    }
    tracing_subscriber::registry().with(layers).init();
    Ok(Guards(guards))
}
