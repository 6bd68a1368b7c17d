//! `cmg gateway|connector|mp --config FILE`: load and validate the file, bind, tell
//! systemd it is ready, serve until SIGINT/SIGTERM, tell systemd it is stopping, drain.
//! A file that does not load, or key material a role cannot use, exits 78
//! (`service::EX_CONFIG`); a failure a restart may cure (an address in use) exits 2.
//! With `--check`: load, validate and check what `bind` would short of sockets and
//! connections (the role's `check`), then exit 0 or 78.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use cmg_core::shutdown::Shutdown;

use crate::service::config_error;
use crate::{logging, output, service, signal};

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
    /// Check the configuration (file, certificates, keys, trust) without binding or
    /// dialing, then exit: 0 valid, 78 not.
    #[arg(long)]
    check: bool,
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
    let result = if args.check {
        rt.block_on(check(role, &args.config))
    } else {
        rt.block_on(serve(role, &args.config, args.threads))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Once, on stderr (a log line next to it printed it twice).
        Err(e) => {
            eprintln!("cmg: {}", output::error(&e));
            if args.check {
                ExitCode::from(service::EX_CONFIG)
            } else {
                service::exit_code(&e, 2)
            }
        }
    }
}

/// `--check`: everything the role checks before it binds; prints what was checked.
async fn check(role: Role, config: &std::path::Path) -> anyhow::Result<()> {
    match role {
        Role::Gateway => {
            let c = cmg_gateway::Config::from_file(config)?;
            cmg_gateway::check(&c).context("checking the gateway")?;
        }
        Role::Connector => {
            let c = cmg_connector::Config::from_file(config)?;
            cmg_connector::check(&c).context("checking the connection point")?;
        }
        Role::Mp => {
            cmg_mp::Config::from_file(config)?;
        }
    }
    println!("{}: configuration valid", config.display());
    Ok(())
}

async fn serve(role: Role, config: &std::path::Path, threads: Option<usize>) -> anyhow::Result<()> {
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
    let threads = threads
        .map(|n| cmg_core::shards::threads_setting(Some(n)))
        .transpose()
        .map_err(|e| config_error(anyhow::anyhow!("--threads: {e}")))?;
    match role {
        Role::Gateway => {
            let mut c = cmg_gateway::Config::from_file(config).map_err(config_error)?;
            if let Some(n) = threads {
                c.threads = n;
            }
            let bound = cmg_gateway::bind(c).await.map_err(|e| {
                use cmg_gateway::SetupError as E;
                let configured = matches!(e, E::Pki(_) | E::Tls(_) | E::File { .. });
                let e = anyhow::Error::new(e).context("starting the gateway");
                if configured {
                    config_error(e)
                } else {
                    e
                }
            })?;
            service::ready(&format!(
                "gateway serving clients on {}",
                bound.client_addr()
            ));
            bound.run(shutdown).await;
        }
        Role::Connector => {
            let mut c = cmg_connector::Config::from_file(config).map_err(config_error)?;
            if let Some(n) = threads {
                c.threads = n;
            }
            let bound = cmg_connector::bind(c).await.map_err(|e| {
                use cmg_connector::ConnectorError as E;
                let runtime = matches!(e, E::Shards(_) | E::AdminBind { .. });
                let e = anyhow::Error::new(e).context("starting the connection point");
                if runtime {
                    e
                } else {
                    config_error(e)
                }
            })?;
            service::ready("connection point dialling its gateway instances");
            bound.run(shutdown).await;
        }
        Role::Mp => {
            let c = cmg_mp::Config::from_file(config).map_err(config_error)?;
            let bound = cmg_mp::bind(c).await.map_err(|e| {
                use cmg_mp::MpError as E;
                let configured = matches!(e, E::TlsFile(_) | E::Tls(_));
                let e = anyhow::Error::new(e).context("starting the management point");
                if configured {
                    config_error(e)
                } else {
                    e
                }
            })?;
            tracing::info!(addr = %bound.local_addr(), "management point listening");
            service::ready(&format!("management point on {}", bound.local_addr()));
            bound.run(shutdown).await;
        }
    }
    stopper.abort();
    Ok(())
}
