//! `cmg gateway|connector|mp --config FILE`: load and validate the file, bind, serve
//! until SIGINT/SIGTERM, drain.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use cmg_core::shutdown::Shutdown;

use crate::{logging, signal};

#[derive(Debug, Args)]
pub struct RoleArgs {
    /// The role's TOML config file.
    #[arg(long, short)]
    config: PathBuf,
    /// Write the product's log files into this directory.
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// Data-path threads (default: one per core; for the gateway and the connection
    /// point this overrides the config file's `threads`).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Debug, Clone, Copy)]
pub enum Role {
    Gateway,
    Connector,
    Mp,
}

pub fn run(role: Role, args: RoleArgs) -> ExitCode {
    let _guards = match logging::init(args.log_dir.as_deref(), false) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("cmg: cannot open log directory: {e}");
            return ExitCode::from(2);
        }
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    match (role, args.threads) {
        // The connection point's data path runs on threads of its own (`threads`, one
        // runtime per core); this runtime runs its control tasks.
        (Role::Connector, _) => {
            rt.worker_threads(1);
        }
        // The gateway's too; this runtime also runs the TLS handshakes (which may wait
        // for a CRL fetch) before a connection moves to its data-path thread.
        (Role::Gateway | Role::Mp, Some(n)) => {
            rt.worker_threads(n.max(1));
        }
        (Role::Gateway | Role::Mp, None) => {}
    }
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cmg: cannot start runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(serve(role, &args.config, args.threads)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("cmg: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn serve(role: Role, config: &std::path::Path, threads: Option<usize>) -> anyhow::Result<()> {
    let shutdown = Shutdown::new();
    let stopper = {
        let s = shutdown.clone();
        tokio::spawn(async move {
            signal::stop_requested().await;
            tracing::info!("stop requested; draining");
            s.token.cancel();
        })
    };
    match role {
        Role::Gateway => {
            let mut c = cmg_gateway::Config::from_file(config)?;
            if let Some(n) = threads {
                c.threads = cmg_core::shards::threads_setting(Some(n))
                    .map_err(|e| anyhow::anyhow!("--threads: {e}"))?;
            }
            let bound = cmg_gateway::bind(c).await.context("starting the gateway")?;
            bound.run(shutdown).await;
        }
        Role::Connector => {
            let mut c = cmg_connector::Config::from_file(config)?;
            if let Some(n) = threads {
                c.threads = cmg_core::shards::threads_setting(Some(n))
                    .map_err(|e| anyhow::anyhow!("--threads: {e}"))?;
            }
            let bound = cmg_connector::bind(c)
                .await
                .context("starting the connection point")?;
            bound.run(shutdown).await;
        }
        Role::Mp => {
            let c = cmg_mp::Config::from_file(config)?;
            let bound = cmg_mp::bind(c)
                .await
                .context("starting the management point")?;
            tracing::info!(addr = %bound.local_addr(), "management point listening");
            bound.run(shutdown).await;
        }
    }
    stopper.abort();
    Ok(())
}
