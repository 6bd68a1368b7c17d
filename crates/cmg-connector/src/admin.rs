//! What the connection point serves on the shared admin listener (`[admin] listen`;
//! [`cmg_core::admin`] does the HTTP, the cap and the drain): its metrics, `/ready`
//! (200 while at least one channel is up, 503 otherwise: a probe for the service
//! health) and `/channels` (one line per configured gateway instance).

use std::sync::Arc;

use cmg_core::admin::{AdminRoutes, Readiness, StatusCode};
use tokio::sync::watch;

use crate::relay::Relay;
use crate::status::{ChannelState, ConnectorStatus};

/// The connection point's [`AdminRoutes`]: reads the channel status at each request.
#[derive(Debug)]
pub(crate) struct ConnectorAdmin {
    pub relay: Arc<Relay>,
    pub status: watch::Receiver<ConnectorStatus>,
}

impl ConnectorAdmin {
    fn current(&self) -> ConnectorStatus {
        self.status.borrow().clone()
    }
}

impl AdminRoutes for ConnectorAdmin {
    const ROLE: &'static str = "connector";

    async fn ready(&self) -> Readiness {
        let status = self.current();
        let up = status.up();
        if up > 0 {
            Readiness::Ready(format!("{up} of {} channel(s) up", status.channels.len()))
        } else {
            Readiness::NotReady("no channel to any gateway instance".into())
        }
    }

    async fn encode_metrics(&self, out: &mut String) {
        let status = self.current();
        self.relay
            .metrics
            .encode_into(out, &status, self.relay.settings.version());
    }

    fn route(&self, path: &str) -> Option<(StatusCode, String)> {
        (path == "/channels").then(|| (StatusCode::OK, channels(&self.current())))
    }
}

fn channels(status: &ConnectorStatus) -> String {
    status
        .channels
        .iter()
        .map(|c| match &c.state {
            ChannelState::Up {
                connection_id,
                instance,
            } => format!(
                "{} up instance={instance} connection_id={connection_id}{}\n",
                c.gateway,
                c.via
                    .as_ref()
                    .map(|v| format!(" via={v}"))
                    .unwrap_or_default()
            ),
            ChannelState::Connecting => format!("{} connecting\n", c.gateway),
            ChannelState::Down { last_error } => {
                format!("{} down error={last_error:?}\n", c.gateway)
            }
        })
        .collect()
}
