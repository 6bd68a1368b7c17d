//! What `cmg` tells a service manager: systemd's readiness protocol (`Type=notify`:
//! `READY=1` once a role has bound its listeners, `STOPPING=1` when its drain begins,
//! both no-ops when `NOTIFY_SOCKET` is unset) and the exit status that marks a
//! configuration error (78, `EX_CONFIG` from sysexits.h), which the units in
//! `deploy/systemd/` name in `RestartPreventExitStatus=` so that a broken file is not
//! restarted in a loop. It does not run a watchdog or pass sockets.

use std::fmt;
use std::process::ExitCode;

/// The exit status of a configuration error (sysexits.h `EX_CONFIG`).
pub const EX_CONFIG: u8 = 78;

/// An error in what the operator configured (a file that does not parse or validate,
/// key material that cannot be used, a bad option value), as opposed to one a restart
/// may cure (an address in use, a database that is down). `main` exits with
/// [`EX_CONFIG`] when the error chain holds one.
#[derive(Debug)]
pub struct ConfigError(pub anyhow::Error);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Wraps any error as a [`ConfigError`] (for `map_err`).
pub fn config_error(e: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(ConfigError(e.into()))
}

/// The exit status for a failed command: [`EX_CONFIG`] for a configuration error,
/// else `other`.
pub fn exit_code(e: &anyhow::Error, other: u8) -> ExitCode {
    if e.chain().any(|c| c.is::<ConfigError>()) {
        ExitCode::from(EX_CONFIG)
    } else {
        ExitCode::from(other)
    }
}

/// Tells the service manager the role serves (`READY=1`), with a status line.
pub fn ready(status: &str) {
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(status),
    ]);
}

/// Tells the service manager the role is draining (`STOPPING=1`).
pub fn stopping() {
    notify(&[
        sd_notify::NotifyState::Stopping,
        sd_notify::NotifyState::Status("draining"),
    ]);
}

fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_error_anywhere_in_the_chain_exits_78() {
        let e = config_error(anyhow::anyhow!("gw.toml: unknown field `x`")).context("starting");
        assert_eq!(
            format!("{:?}", exit_code(&e, 2)),
            format!("{:?}", ExitCode::from(78))
        );
        let other = anyhow::anyhow!("cannot bind 127.0.0.1:443: address in use");
        assert_eq!(
            format!("{:?}", exit_code(&other, 2)),
            format!("{:?}", ExitCode::from(2))
        );
    }
}
