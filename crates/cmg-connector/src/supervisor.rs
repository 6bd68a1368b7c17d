//! Keeping channels to every gateway instance: one supervisor task per instance and
//! lane (one lane per data-path thread) dials, serves, and after the channel ends waits
//! a jittered backoff and dials again, until shutdown. A checker looks at the lane-0
//! channels every `check_interval`, warns about the missing ones and cuts their backoff
//! short; the other lanes redial on their own backoff.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::backoff::Backoff;
use crate::channel::{self, ChannelCtx, Dialer};
use crate::config::Timing;
use crate::error::ConnectorError;
use crate::forward::Forwarder;
use crate::relay::Relay;
use crate::status::{ChannelState, ConnectorStatus};

/// Owns one channel (one lane) to one gateway instance.
#[derive(Debug)]
pub(crate) struct Supervisor {
    ctx: ChannelCtx,
    retry: Arc<Notify>,
}

impl Supervisor {
    pub fn new(
        (index, lane, lanes): (usize, usize, usize),
        gateway: SocketAddr,
        dialer: Arc<Dialer>,
        forwarder: Arc<Forwarder>,
        relay: Arc<Relay>,
        status: Arc<watch::Sender<ConnectorStatus>>,
        timing: Timing,
    ) -> Self {
        Self {
            ctx: ChannelCtx {
                index,
                lane,
                lanes,
                gateway,
                dialer,
                forwarder,
                relay,
                status,
                timing,
            },
            retry: Arc::new(Notify::new()),
        }
    }

    /// Wakes the supervisor from its backoff to dial at once.
    pub fn retry_handle(&self) -> Arc<Notify> {
        self.retry.clone()
    }

    fn set(&self, state: ChannelState) {
        if self.ctx.lane != 0 {
            // The status shows one channel per instance: lane 0.
            return;
        }
        let index = self.ctx.index;
        self.ctx
            .status
            .send_if_modified(|s| match s.channels.get_mut(index) {
                Some(c) if c.state != state => {
                    c.state = state;
                    true
                }
                _ => false,
            });
    }

    pub async fn run(self, token: CancellationToken) {
        let gateway = self.ctx.gateway;
        let timing = self.ctx.timing;
        let mut backoff = Backoff::new(timing.backoff_base, timing.backoff_max);
        while !token.is_cancelled() {
            self.set(ChannelState::Connecting);
            let end = channel::run(&self.ctx, &token).await;
            if token.is_cancelled() {
                break;
            }
            if end.was_up {
                backoff.reset();
            }
            let error = match end.result {
                Ok(()) => ConnectorError::ChannelClosed { gateway },
                Err(e) => e,
            };
            let delay = backoff.next_delay();
            if end.was_up {
                warn!(%gateway, error = %error, retry_in = ?delay, "channel lost");
            } else {
                warn!(%gateway, error = %error, retry_in = ?delay, "channel attempt failed");
            }
            self.set(ChannelState::Down {
                last_error: error.to_string(),
            });
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.retry.notified() => {}
                _ = token.cancelled() => break,
            }
        }
        self.set(ChannelState::Down {
            last_error: "connection point shut down".to_owned(),
        });
    }
}

/// Every `interval`, checks that there is a channel to every gateway instance; logs the
/// missing ones and wakes their supervisors.
pub(crate) async fn check_all(
    status: watch::Receiver<ConnectorStatus>,
    interval: Duration,
    retries: Vec<Arc<Notify>>,
    token: CancellationToken,
) {
    let start = tokio::time::Instant::now() + interval;
    let mut tick = tokio::time::interval_at(start, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = token.cancelled() => return,
        }
        let current = status.borrow().clone();
        let missing: Vec<String> = current
            .channels
            .iter()
            .filter(|c| !c.state.is_up())
            .map(|c| c.gateway.to_string())
            .collect();
        if missing.is_empty() {
            info!(
                channels = current.channels.len(),
                "channel check: connected to every gateway instance"
            );
            continue;
        }
        warn!(
            up = current.up(),
            total = current.channels.len(),
            missing = %missing.join(", "),
            "channel check: no channel to some gateway instances; retrying them now"
        );
        for (c, retry) in current.channels.iter().zip(&retries) {
            if matches!(c.state, ChannelState::Down { .. }) {
                retry.notify_one();
            }
        }
    }
}
