//! `cmg completions SHELL` and `cmg man DIR`: shell completions and man pages made from
//! the clap definitions, so they never drift from the options the binary parses.
//!
//! It writes what clap_complete and clap_mangen generate; it does not install them (the
//! README says where each shell and `man` look).

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap_complete::Shell;

/// Writes the completion script for `shell` to stdout (built in memory first: a closed
/// pipe is an error message, not a panic).
pub fn completions(shell: Shell, mut cli: clap::Command) -> ExitCode {
    let name = cli.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cli, name, &mut script);
    match std::io::stdout().write_all(&script) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cmg completions: writing to stdout: {e}");
            ExitCode::from(1)
        }
    }
}

/// Writes one man page per command and subcommand into `dir` (`cmg.1`,
/// `cmg-site-gateway-list.1`, ...), created if missing.
pub fn man(dir: &Path, cli: clap::Command) -> ExitCode {
    match write_man(dir, cli) {
        Ok(n) => {
            println!("{n} man pages in {}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cmg man: {}", crate::output::error(&e));
            ExitCode::from(1)
        }
    }
}

fn write_man(dir: &Path, cli: clap::Command) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cli = cli;
    cli.build();
    let mut written = 0;
    let mut stack = vec![cli];
    while let Some(cmd) = stack.pop() {
        if cmd.is_hide_set() {
            continue;
        }
        let path = dir.join(format!(
            "{}.1",
            cmd.get_display_name().unwrap_or(cmd.get_name())
        ));
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd.clone())
            .render(&mut page)
            .with_context(|| format!("rendering {}", path.display()))?;
        std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
        written += 1;
        stack.extend(
            cmd.get_subcommands()
                .filter(|c| c.get_name() != "help")
                .cloned(),
        );
    }
    Ok(written)
}
