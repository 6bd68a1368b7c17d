//! Keeping a channel to one gateway instance: one supervisor task per instance and
//! lane (one lane per data-path thread) dials, serves, and after the channel ends waits
//! a jittered backoff and dials again, until its token is cancelled (shutdown, or the
//! instance left the list: [`crate::instances`]).
//!
//! An instance has one or more channel addresses in order of preference. Each dial tries
//! them in that order and keeps the first that completes TCP, TLS and ALPN. While the
//! channel runs on a fallback address (normally the instance's client port, where the
//! gateway also answers the channel by ALPN), the supervisor dials the preferred
//! addresses again every `timing.fallback_probe`; the first that completes the same full
//! handshake becomes the new channel at once, and only then is the old one sent a GOAWAY
//! and left to drain, so the instance never goes without a channel during the move.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use cmg_proto::addr::HostPort;

use crate::backoff::Backoff;
use crate::channel::{self, ChannelCtx, ChannelEnd};
use crate::error::ConnectorError;
use crate::status::ChannelState;

/// Owns one channel (one lane) to one gateway instance.
#[derive(Debug)]
pub(crate) struct Supervisor {
    ctx: Arc<ChannelCtx>,
    addrs: Vec<HostPort>,
    retry: Arc<Notify>,
}

impl Supervisor {
    pub fn new(ctx: ChannelCtx, addrs: Vec<HostPort>, retry: Arc<Notify>) -> Self {
        Self {
            ctx: Arc::new(ctx),
            addrs,
            retry,
        }
    }

    fn set(&self, state: ChannelState) {
        if self.ctx.lane != 0 {
            // The status shows one channel per instance: lane 0.
            return;
        }
        let key = &self.ctx.key;
        self.ctx.status.send_if_modified(|s| {
            match s.channels.iter_mut().find(|c| c.gateway == *key) {
                Some(c) if c.state != state => {
                    if !state.is_up() {
                        c.via = None;
                    }
                    c.state = state;
                    true
                }
                _ => false,
            }
        });
    }

    /// Dials the addresses of `addrs` in order; the index and stream of the first that
    /// answers, or every address's error.
    async fn dial_first(
        &self,
        addrs: &[HostPort],
    ) -> Result<(usize, TlsStream<TcpStream>), Vec<ConnectorError>> {
        let mut errors = Vec::new();
        for (i, addr) in addrs.iter().enumerate() {
            match self.ctx.dialer.dial(addr).await {
                Ok(tls) => return Ok((i, tls)),
                Err(e) => {
                    debug!(gateway = %addr, error = %e, "channel address did not answer");
                    errors.push(e);
                }
            }
        }
        Err(errors)
    }

    pub async fn run(self, token: CancellationToken) {
        let timing = self.ctx.timing;
        let mut backoff = Backoff::new(timing.backoff_base, timing.backoff_max);
        // A stream the fallback probe already opened: served next, without a dial.
        let mut next: Option<(usize, TlsStream<TcpStream>)> = None;
        // Channels left to drain after a move back to a preferred address.
        let mut draining: Vec<JoinHandle<ChannelEnd>> = Vec::new();
        while !token.is_cancelled() {
            let dialled = match next.take() {
                Some(d) => Ok(d),
                None => {
                    self.set(ChannelState::Connecting);
                    tokio::select! {
                        r = self.dial_first(&self.addrs) => r,
                        _ = token.cancelled() => break,
                    }
                }
            };
            let end = match dialled {
                Ok((i, tls)) => {
                    let (end, moved) = self.serve(i, tls, &token, &mut draining).await;
                    if let Some(m) = moved {
                        next = Some(m);
                        backoff.reset();
                        continue;
                    }
                    end
                }
                Err(errors) => ChannelEnd {
                    was_up: false,
                    result: Err(ConnectorError::NoAddressAnswered(
                        errors
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; "),
                    )),
                },
            };
            if token.is_cancelled() {
                break;
            }
            if end.was_up {
                backoff.reset();
            }
            let gateway = &self.ctx.key;
            let error = match end.result {
                Ok(()) => "channel closed".to_owned(),
                Err(e) => e.to_string(),
            };
            let delay = backoff.next_delay();
            if end.was_up {
                warn!(%gateway, %error, retry_in = ?delay, "channel lost");
            } else {
                warn!(%gateway, %error, retry_in = ?delay, "channel attempt failed");
            }
            self.set(ChannelState::Down { last_error: error });
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.retry.notified() => {}
                _ = token.cancelled() => break,
            }
        }
        for d in draining {
            let _ = d.await;
        }
        self.set(ChannelState::Down {
            last_error: "connection point shut down".to_owned(),
        });
    }

    /// Serves the channel dialled on address `i` until it ends; while `i` is a fallback,
    /// probes the preferred addresses and, when one answers, returns its stream (the
    /// old channel then drains in a task of its own, pushed to `draining`).
    async fn serve(
        &self,
        i: usize,
        tls: TlsStream<TcpStream>,
        token: &CancellationToken,
        draining: &mut Vec<JoinHandle<ChannelEnd>>,
    ) -> (ChannelEnd, Option<(usize, TlsStream<TcpStream>)>) {
        let addr = self.addrs[i].clone();
        let channel_token = token.child_token();
        let mut serving = tokio::spawn(
            channel::serve(self.ctx.clone(), addr.clone(), tls, channel_token.clone())
                .in_current_span(),
        );
        let joined = |r: Result<ChannelEnd, tokio::task::JoinError>| {
            r.unwrap_or_else(|e| ChannelEnd {
                was_up: false,
                result: Err(ConnectorError::ChannelTask(e.to_string())),
            })
        };
        if i == 0 {
            return (joined((&mut serving).await), None);
        }
        let preferred = &self.addrs[..i];
        if self.ctx.lane == 0 {
            info!(gateway = %self.ctx.key, fallback = %addr, "channel runs on a fallback address; the preferred one is probed every {:?}", self.ctx.timing.fallback_probe);
        }
        loop {
            tokio::select! {
                r = &mut serving => return (joined(r), None),
                _ = tokio::time::sleep(self.ctx.timing.fallback_probe) => {}
            }
            let probe = tokio::select! {
                r = self.dial_first(preferred) => r,
                r = &mut serving => return (joined(r), None),
            };
            if let Ok(found) = probe {
                info!(gateway = %self.ctx.key, from = %addr, to = %self.addrs[found.0], "preferred channel address answers again; moving the channel back");
                channel_token.cancel();
                draining.retain(|d| !d.is_finished());
                draining.push(serving);
                return (
                    ChannelEnd {
                        was_up: true,
                        result: Ok(()),
                    },
                    Some(found),
                );
            }
        }
    }
}
