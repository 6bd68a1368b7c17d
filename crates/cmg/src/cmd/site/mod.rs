//! `cmg site ...`: the site (control plane).
//!
//! `init` and `serve` work on the database directly (they own it). Every other command
//! is a client of the running site's REST API (`--url`, the site CA from `--ca-file`, the
//! admin token from `--admin-token-file` or `CMG_SITE_ADMIN_TOKEN`), so changes go
//! through one place, are audited and wake the connection points' long polls.
//!
//! One module per resource, each with its subcommands and what they send; `api.rs` is
//! the one way they reach the site. This module holds the command tree's root, the
//! logging and runtime setup, and the dispatch.

mod admin_token;
mod analyze;
mod api;
mod audit;
mod boundary;
mod client;
mod client_settings;
mod connection_point;
mod db;
mod gateway;
mod init;
mod key;
mod reports;
mod role;
mod serve;
mod token;
mod views;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::{logging, output};

#[derive(Debug, Args)]
pub struct SiteArgs {
    /// The site's directory: SQLite database, master key, admin token, site CA
    /// (defaults for the options below).
    #[arg(long, env = "CMG_SITE_DIR", default_value = "cmg-site", global = true)]
    dir: PathBuf,
    #[command(subcommand)]
    command: SiteCommand,
}

/// Every variant's doc comment is its help line: the argument structs they flatten
/// carry none (clap would show a struct's own doc for a variant without one).
#[derive(Debug, Subcommand)]
enum SiteCommand {
    /// Create the site (database, site code, GUID, CA, signing key, admin token). Works
    /// on the database directly.
    Init(init::InitArgs),
    /// Serve the REST API and the publishing API over HTTPS. Works on the database directly.
    Serve(serve::ServeArgs),
    /// Each gateway's status with its instances, connection points and channels (API client).
    Status(reports::StatusArgs),
    /// Traffic per endpoint: requests, bytes, status classes, latency, egress (API client).
    Traffic(reports::TrafficArgs),
    /// 14-day traffic alerts (API client).
    #[command(subcommand)]
    Alert(reports::AlertCommand),
    /// Gateways (API client).
    #[command(subcommand)]
    Gateway(gateway::GatewayCommand),
    /// Management points and software update points (API client).
    #[command(subcommand)]
    Role(role::RoleCommand),
    /// Connection points (API client).
    #[command(subcommand, name = "connection-point")]
    ConnectionPoint(connection_point::CpCommand),
    /// Boundary groups (API client).
    #[command(subcommand, name = "boundary-group")]
    BoundaryGroup(boundary::BoundaryCommand),
    /// Show or set client settings (API client).
    ClientSettings(client_settings::ClientSettingsArgs),
    /// Clients seen by the location service, and the site keys they trust (API client).
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Bulk registration tokens (API client).
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Token and bundle signing keys (API client).
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// The audit log, newest first (API client).
    Audit(audit::AuditArgs),
    /// Connection analyzer: check a gateway from a client's side with a certificate or
    /// a token; exit status 0 only when no step failed (API client).
    Analyze(analyze::AnalyzeArgs),
}

pub fn run(args: SiteArgs) -> ExitCode {
    let log_dir = match &args.command {
        SiteCommand::Serve(s) => s.log_dir.clone(),
        _ => None,
    };
    let quiet = !matches!(args.command, SiteCommand::Serve(_) | SiteCommand::Init(_));
    let _guards = match logging::init(log_dir.as_deref(), quiet) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("cmg: cannot open log directory: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cmg: cannot start runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(dispatch(&args.dir, args.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cmg site: {}", output::error(&e));
            crate::service::exit_code(&e, 1)
        }
    }
}

async fn dispatch(dir: &Path, cmd: SiteCommand) -> anyhow::Result<()> {
    match cmd {
        SiteCommand::Init(a) => init::run(dir, a).await,
        SiteCommand::Serve(a) => serve::run(dir, a).await,
        SiteCommand::Status(a) => reports::status(dir, a).await,
        SiteCommand::Traffic(a) => reports::traffic(dir, a).await,
        SiteCommand::Alert(c) => reports::alert(dir, c).await,
        SiteCommand::Gateway(c) => gateway::run(dir, c).await,
        SiteCommand::Role(c) => role::run(dir, c).await,
        SiteCommand::ConnectionPoint(c) => connection_point::run(dir, c).await,
        SiteCommand::BoundaryGroup(c) => boundary::run(dir, c).await,
        SiteCommand::ClientSettings(a) => client_settings::run(dir, a).await,
        SiteCommand::Client(c) => client::run(dir, c).await,
        SiteCommand::Token(c) => token::run(dir, c).await,
        SiteCommand::Key(c) => key::run(dir, c).await,
        SiteCommand::Audit(a) => audit::run(dir, a).await,
        SiteCommand::Analyze(a) => analyze::run(dir, a).await,
    }
}

/// Who runs the command, for the audit log: `USER`, else `LOGNAME` (set where `USER`
/// is not, as under cron and some service managers).
fn whoami() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// A text file the command sends (a certificate, a CA).
fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}
