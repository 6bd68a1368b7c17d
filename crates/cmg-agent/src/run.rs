//! The agent's run loop. At start: decide, token, location, policy. Then it sleeps
//! until the first of:
//! - a network change from netlink (after `timing.network_settle` of quiet): decide
//!   again, refresh location (seed 004 / FACTS: "on a network configuration change"),
//!   and poll policy at once when the connection type changed;
//! - the policy interval the site set (default 60 minutes): poll policy;
//! - `timing.reevaluate_every` (24 hours) since the last full cycle: the whole cycle;
//! - the stop token: save the state and return.
//!
//! A failed step is retried after `timing.retry_after`, never in a tight loop.

use std::time::Duration;

use cmg_core::shutdown::Shutdown;
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

use crate::agent::{Agent, DEFAULT_POLICY_INTERVAL_SECS};
use crate::netwatch;

/// What the loop reports to whoever watches it (tests, `cmg demo`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Completed full cycles (start, 24-hour, network change).
    pub cycles: u64,
    /// Successful policy polls.
    pub polls: u64,
    /// Network changes acted upon.
    pub network_changes: u64,
}

impl Agent {
    /// Decide, token, location, policy; true when every step succeeded.
    pub async fn cycle(&mut self) -> bool {
        self.evaluate().await;
        // A certificate client needs no token: its registration on the intranet is
        // worth a try, never a failed cycle.
        let token = self.ensure_token().await.is_ok() || !self.config.credential.is_token();
        let location = self.refresh_location(None).await.is_ok();
        let policy = self.poll_policy().await.is_ok();
        token && location && policy
    }

    fn policy_interval(&self) -> Duration {
        Duration::from_secs(
            self.state
                .policy_interval_secs
                .unwrap_or(DEFAULT_POLICY_INTERVAL_SECS)
                .max(1),
        )
    }

    /// Runs until `shutdown` is cancelled, publishing its progress on `progress`.
    pub async fn run(mut self, shutdown: Shutdown, progress: watch::Sender<Progress>) {
        let mut changes = match netwatch::watch_changes(&shutdown) {
            Ok(rx) => Some(rx),
            Err(e) => {
                tracing::warn!(target: "cmg_agent", error = %e,
                    "cannot watch network changes (netlink); re-deciding only at start and every reevaluate_every");
                None
            }
        };
        let timing = self.config.timing;
        let mut ok = self.cycle().await;
        progress.send_modify(|p| p.cycles += 1);
        if self.state.policy.last_poll.is_some() && ok {
            progress.send_modify(|p| p.polls += 1);
        }
        let mut next_cycle = Instant::now()
            + if ok {
                timing.reevaluate_every
            } else {
                timing.retry_after
            };
        let mut next_poll = Instant::now()
            + if ok {
                self.policy_interval()
            } else {
                timing.retry_after
            };
        loop {
            tokio::select! {
                _ = shutdown.token.cancelled() => break,
                _ = changed(&mut changes) => {
                    if !settle(&mut changes, timing.network_settle, &shutdown).await {
                        break;
                    }
                    progress.send_modify(|p| p.network_changes += 1);
                    let switched = self.evaluate().await;
                    let _ = self.ensure_token().await;
                    let _ = self.refresh_location(None).await;
                    if switched {
                        next_poll = Instant::now();
                    }
                }
                _ = sleep_until(next_cycle) => {
                    ok = self.cycle().await;
                    progress.send_modify(|p| p.cycles += 1);
                    if ok {
                        progress.send_modify(|p| p.polls += 1);
                    }
                    next_cycle = Instant::now() + if ok { timing.reevaluate_every } else { timing.retry_after };
                    next_poll = Instant::now() + self.policy_interval();
                }
                _ = sleep_until(next_poll) => {
                    let _ = self.ensure_token().await;
                    let polled = self.poll_policy().await.is_ok();
                    if polled {
                        progress.send_modify(|p| p.polls += 1);
                    }
                    next_poll = Instant::now() + if polled { self.policy_interval() } else { timing.retry_after };
                }
            }
        }
        self.save();
        tracing::info!(target: "cmg_agent", "client agent stopped");
    }
}

/// Resolves when the netlink counter moves; never without a watcher.
async fn changed(rx: &mut Option<watch::Receiver<u64>>) {
    match rx {
        Some(r) => {
            if r.changed().await.is_err() {
                // The watcher ended (its socket failed); stop listening to it.
                *rx = None;
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// Waits until no change has come for `quiet`. False when stopped meanwhile.
async fn settle(
    rx: &mut Option<watch::Receiver<u64>>,
    quiet: Duration,
    shutdown: &Shutdown,
) -> bool {
    loop {
        tokio::select! {
            _ = shutdown.token.cancelled() => return false,
            _ = tokio::time::sleep(quiet) => return true,
            _ = changed(rx) => {}
        }
    }
}
