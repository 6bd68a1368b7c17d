//! The state of every channel, published on a `watch` channel for health endpoints and
//! tests ("reports connection status to show service health status in the console").

use std::fmt::Display;
use std::time::Duration;

use tokio::sync::watch;

/// One entry per gateway instance followed (the config's list, or the bundle's), in
/// list order; entries come and go as the list changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorStatus {
    pub channels: Vec<ChannelStatus>,
}

/// The channel to one gateway instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelStatus {
    /// The instance's first (preferred) channel address, `host:port`.
    pub gateway: String,
    /// The fallback address the channel runs on, when not the preferred one.
    pub via: Option<String>,
    pub state: ChannelState,
}

/// Where a channel is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelState {
    /// Dialling, or waiting for the gateway's hello.
    Connecting,
    /// The gateway said hello: `connection_id` is the ID it gave the channel,
    /// `instance` its instance name.
    Up {
        connection_id: String,
        instance: String,
    },
    /// The last attempt failed or the channel ended; a reconnect is pending.
    Down { last_error: String },
}

impl ConnectorStatus {
    /// The config's instances, connecting: what the first report lists before the
    /// follower ([`crate::instances`]) has run.
    pub(crate) fn new(instances: &[crate::config::Instance]) -> Self {
        Self {
            channels: instances
                .iter()
                .map(|i| ChannelStatus {
                    gateway: i.key(),
                    via: None,
                    state: ChannelState::Connecting,
                })
                .collect(),
        }
    }

    /// How many channels are up.
    pub fn up(&self) -> usize {
        self.channels.iter().filter(|c| c.state.is_up()).count()
    }

    /// True when there is a channel to every instance followed (and there is one).
    pub fn all_up(&self) -> bool {
        !self.channels.is_empty() && self.up() == self.channels.len()
    }

    /// The state of the channel to the instance whose first address is `gateway`.
    pub fn channel(&self, gateway: impl Display) -> Option<&ChannelState> {
        let gateway = gateway.to_string();
        self.channels
            .iter()
            .find(|c| c.gateway == gateway)
            .map(|c| &c.state)
    }
}

impl ChannelState {
    pub fn is_up(&self) -> bool {
        matches!(self, Self::Up { .. })
    }

    /// The connection ID while up.
    pub fn connection_id(&self) -> Option<&str> {
        match self {
            Self::Up { connection_id, .. } => Some(connection_id),
            _ => None,
        }
    }
}

/// The wait ended before the status matched; carries the last status seen.
#[derive(Debug, Clone, thiserror::Error)]
#[error("status did not match within {after:?}: {last:?}")]
pub struct WaitTimedOut {
    pub after: Duration,
    pub last: ConnectorStatus,
}

/// Waits until `pred` holds for the current status, at most `timeout`.
///
/// Once the connector is gone (its sender dropped) the status can no longer change, so
/// the wait fails at once unless the last status matches.
pub async fn wait_until(
    rx: &mut watch::Receiver<ConnectorStatus>,
    timeout: Duration,
    mut pred: impl FnMut(&ConnectorStatus) -> bool,
) -> Result<ConnectorStatus, WaitTimedOut> {
    let wait = async {
        loop {
            {
                let current = rx.borrow_and_update();
                if pred(&current) {
                    return Some(current.clone());
                }
            }
            if rx.changed().await.is_err() {
                return None;
            }
        }
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(Some(status)) => Ok(status),
        _ => Err(WaitTimedOut {
            after: timeout,
            last: rx.borrow().clone(),
        }),
    }
}

/// Waits until every channel is up, at most `timeout`.
pub async fn wait_all_up(
    rx: &mut watch::Receiver<ConnectorStatus>,
    timeout: Duration,
) -> Result<ConnectorStatus, WaitTimedOut> {
    wait_until(rx, timeout, ConnectorStatus::all_up).await
}
