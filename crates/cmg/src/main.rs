//! `cmg`: one binary, one subcommand per role. Errors end here as `anyhow` with the
//! file and field they concern, printed once with their causes (`output::error`); exit
//! status 78 (`EX_CONFIG`) for a configuration error, 2 for another setup error, 1 for a
//! failed check (README, "Exit statuses").

mod cmd;
mod logging;
mod output;
mod service;
mod signal;

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

/// The process allocator. Every request allocates and frees many small buffers (HTTP
/// heads, HPACK, body chunks) across worker threads; glibc's malloc showed up as the
/// gateway's largest single cost in `bench/run.sh PERF=1`. mimalloc's per-thread free
/// lists cut that: gateway CPU per 64 KiB request -10 to -20 % in A/B runs of
/// `bench/run.sh`, for about the same memory per idle client connection (11.4 KiB
/// against 11.0 with glibc). The `mimalloc` feature is on by default. The one
/// process-wide item, by necessity.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// cmg: an open Cloud Management Gateway.
#[derive(Debug, Parser)]
#[command(name = "cmg", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a gateway instance (internet-facing).
    Gateway(cmd::role::RoleArgs),
    /// Run a connection point (on-premises; dials out to every gateway instance).
    Connector(cmd::role::RoleArgs),
    /// Run the reference management point (an internal role, for demos and tests).
    Mp(cmd::role::RoleArgs),
    /// Certificates: write a demo PKI, verify a certificate as the gateway does.
    #[command(subcommand)]
    Cert(cmd::cert::CertCommand),
    /// Site tokens from a local signing key: keygen, new (bulk or device), verify.
    #[command(subcommand)]
    Token(cmd::token::TokenCommand),
    /// The site (control plane): init, serve, and admin commands over its REST API.
    Site(Box<cmd::site::SiteArgs>),
    /// The device agent: run it, show its status, download content.
    #[command(subcommand)]
    Client(cmd::client::ClientCommand),
    /// Run the whole system on loopback, check it end to end, then keep it running.
    Demo(cmd::demo::DemoArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages, one per command, into DIR.
    Man {
        /// The directory (created if missing).
        dir: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Cert(c) => cmd::cert::run(c),
        Command::Gateway(a) => cmd::role::run(cmd::role::Role::Gateway, a),
        Command::Connector(a) => cmd::role::run(cmd::role::Role::Connector, a),
        Command::Mp(a) => cmd::role::run(cmd::role::Role::Mp, a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Token(c) => cmd::token::run(c),
        Command::Site(a) => cmd::site::run(*a),
        Command::Client(c) => cmd::client::run(c),
        Command::Completions { shell } => cmd::generate::completions(shell, Cli::command()),
        Command::Man { dir } => cmd::generate::man(&dir, Cli::command()),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
