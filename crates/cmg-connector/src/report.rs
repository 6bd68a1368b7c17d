//! Reports to the site (`[site_api]`): the state of every channel, the settings version
//! relayed and the newest traffic snapshot of every gateway instance, posted as a
//! [`ConnectionPointReport`] to the site's `SITE_REPORT_PATH` with the connection
//! point's certificate.
//!
//! Sent at startup, every `report_interval`, at once (after `report_debounce`, so a burst
//! of changes makes one report) when a channel changes state, and once more at shutdown.
//! A report that fails is logged and not queued: the next one carries the same
//! cumulative counters. The reporter is its own task, so a slow site never holds up a
//! channel.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use cmg_proto::report::{self as wire, ConnectionPointReport, ReportReason};

use crate::relay::Relay;
use crate::site::SiteClient;
use crate::status::{ChannelState, ConnectorStatus};

/// Limit on one report post.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the reporter remembers of one channel between reports.
#[derive(Debug, Clone, Default)]
struct Seen {
    key: Option<(wire::ChannelState, Option<String>)>,
    since: u64,
    instance: Option<String>,
    last_error: Option<String>,
}

/// Builds and sends the reports of one connection point.
#[derive(Debug)]
pub(crate) struct Reporter {
    pub site: SiteClient,
    pub connection_point: String,
    pub relay: Arc<Relay>,
    pub status: watch::Receiver<ConnectorStatus>,
    pub interval: Duration,
    pub debounce: Duration,
    /// Per instance key (its first address).
    seen: std::collections::HashMap<String, Seen>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Reporter {
    pub fn new(
        site: SiteClient,
        connection_point: String,
        relay: Arc<Relay>,
        status: watch::Receiver<ConnectorStatus>,
        timing: (Duration, Duration),
    ) -> Self {
        Self {
            site,
            connection_point,
            relay,
            status,
            interval: timing.0,
            debounce: timing.1,
            seen: std::collections::HashMap::new(),
        }
    }

    /// Reports until `stop`, then sends the shutdown report.
    pub async fn run(mut self, stop: CancellationToken) {
        self.send(ReportReason::Startup).await;
        let start = tokio::time::Instant::now() + self.interval;
        let mut tick = tokio::time::interval_at(start, self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => self.send(ReportReason::Periodic).await,
                r = self.status.changed() => {
                    if r.is_err() {
                        break;
                    }
                    self.observe();
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(self.debounce) => {}
                    }
                    self.send(ReportReason::StateChange).await;
                }
            }
        }
        self.send(ReportReason::Shutdown).await;
    }

    /// Notes the state of every channel now (for `since`, the instance name and the
    /// last error, which the status alone does not keep).
    fn observe(&mut self) {
        let now = unix_now();
        let status = self.status.borrow_and_update().clone();
        // Instances no longer followed are no longer reported.
        self.seen
            .retain(|k, _| status.channels.iter().any(|c| c.gateway == *k));
        for ch in &status.channels {
            let seen = self.seen.entry(ch.gateway.clone()).or_default();
            let key = match &ch.state {
                ChannelState::Up {
                    connection_id,
                    instance,
                } => {
                    seen.instance = Some(instance.clone());
                    seen.last_error = None;
                    (wire::ChannelState::Connected, Some(connection_id.clone()))
                }
                ChannelState::Connecting => (wire::ChannelState::Connecting, None),
                ChannelState::Down { last_error } => {
                    seen.last_error = Some(last_error.clone());
                    (wire::ChannelState::Disconnected, None)
                }
            };
            if seen.key.as_ref() != Some(&key) {
                seen.key = Some(key);
                seen.since = now;
            }
        }
    }

    /// The report as of now.
    pub fn build(&mut self, reason: ReportReason) -> ConnectionPointReport {
        self.observe();
        let listed: Vec<String> = self
            .status
            .borrow()
            .channels
            .iter()
            .map(|c| c.gateway.clone())
            .collect();
        let channels = listed
            .iter()
            .filter_map(|addr| self.seen.get(addr).map(|seen| (addr, seen)))
            .map(|(addr, seen)| {
                let (state, connection_id) = seen
                    .key
                    .clone()
                    .unwrap_or((wire::ChannelState::Connecting, None));
                wire::ChannelStatus {
                    address: addr.to_string(),
                    instance: seen.instance.clone(),
                    state,
                    since: seen.since,
                    connection_id,
                    last_error: seen.last_error.clone(),
                }
            })
            .collect();
        ConnectionPointReport {
            connection_point: self.connection_point.clone(),
            gateway: self.site.gateway().to_owned(),
            reason,
            sent_at: unix_now(),
            settings_version: self.relay.settings.version(),
            channels,
            traffic: self.relay.traffic.newest(),
        }
    }

    async fn send(&mut self, reason: ReportReason) {
        let report = self.build(reason);
        let up = report
            .channels
            .iter()
            .filter(|c| c.state == wire::ChannelState::Connected)
            .count();
        let result = self.site.post_report(&report, POST_TIMEOUT).await;
        self.relay.metrics.report(result.is_ok());
        match result {
            Ok(()) if reason == ReportReason::Periodic => {
                debug!(
                    ?reason,
                    up,
                    total = report.channels.len(),
                    "report sent to the site"
                )
            }
            Ok(()) => info!(
                ?reason,
                up,
                total = report.channels.len(),
                "report sent to the site"
            ),
            Err(e) => {
                warn!(?reason, error = %e, "report to the site failed; the next one carries the same counters")
            }
        }
    }
}
