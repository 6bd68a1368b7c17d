//! `cmg client`: the device agent (cmg-agent). `run` serves until SIGINT/SIGTERM,
//! `status` prints what the agent's state says (as `SMS_ActiveMPCandidate` and the
//! control panel show it), `content` downloads one content item through the site's
//! content location, resuming and checking its hash.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use cmg_agent::{Agent, Config, Progress, State, StatusView, SystemClock};
use cmg_core::shutdown::Shutdown;

use crate::{logging, signal};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Run the client agent until SIGINT/SIGTERM.
    Run(RunArgs),
    /// Show connection type (and why), management point, candidates, location, token
    /// and policy, from the agent's state.
    Status(StatusArgs),
    /// Download content through the site's content location (resumes, checks SHA-256).
    Content(ContentArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The client's TOML config file.
    #[arg(long, short)]
    config: PathBuf,
    /// Write the agent's log (ClientLocation.log) into this directory.
    #[arg(long)]
    log_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long, short)]
    config: PathBuf,
    /// Print JSON (keys: site, connection, management_point, candidates,
    /// last_location_refresh, ...).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ContentArgs {
    #[arg(long, short)]
    config: PathBuf,
    /// The content ID (blob name).
    #[arg(long)]
    id: String,
    /// Its expected SHA-256 (hex).
    #[arg(long)]
    sha256: String,
    /// Where to write it (a partial download is kept next to it as `<out>.partial`).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(cmd: ClientCommand) -> ExitCode {
    let (log_dir, quiet) = match &cmd {
        ClientCommand::Run(a) => (a.log_dir.clone(), false),
        _ => (None, true),
    };
    let _guards = match logging::init(log_dir.as_deref(), quiet) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("cmg client: cannot open log directory: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cmg client: cannot start runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(async {
        match cmd {
            ClientCommand::Run(a) => serve(&a.config).await,
            ClientCommand::Status(a) => status(&a.config, a.json),
            ClientCommand::Content(a) => content(&a).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cmg client: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn open(config: &Path) -> anyhow::Result<Agent> {
    let c = Config::from_file(config)?;
    Agent::open(c, Arc::new(SystemClock)).context("opening the client state")
}

async fn serve(config: &Path) -> anyhow::Result<()> {
    let agent = open(config)?;
    let shutdown = Shutdown::new();
    let stopper = {
        let s = shutdown.clone();
        tokio::spawn(async move {
            signal::stop_requested().await;
            tracing::info!("stop requested");
            s.token.cancel();
        })
    };
    let (tx, _rx) = tokio::sync::watch::channel(Progress::default());
    agent.run(shutdown.clone(), tx).await;
    shutdown.tracker.close();
    shutdown.tracker.wait().await;
    stopper.abort();
    Ok(())
}

fn status(config: &Path, json: bool) -> anyhow::Result<()> {
    let c = Config::from_file(config)?;
    let state = State::load(&c.state_dir, c.site.as_str())?;
    let fresh = state.is_none();
    let state = state.unwrap_or_else(|| State::new(c.site.as_str(), String::new()));
    let now = cmg_agent::unix(std::time::SystemTime::now());
    let view = StatusView::new(&c, &state, now);
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        if fresh {
            println!(
                "(no state yet in {}: the agent has not run)",
                c.state_dir.display()
            );
        }
        print!("{}", view.text());
    }
    Ok(())
}

async fn content(a: &ContentArgs) -> anyhow::Result<()> {
    let mut agent = open(&a.config)?;
    agent.evaluate().await;
    agent.ensure_token().await.ok();
    let d = agent.download_content(&a.id, &a.sha256, &a.out).await?;
    println!(
        "{}: {} bytes, SHA-256 checked{}",
        a.out.display(),
        d.bytes,
        if d.resumed_from > 0 {
            format!(" (resumed after {} bytes)", d.resumed_from)
        } else {
            String::new()
        }
    );
    Ok(())
}
