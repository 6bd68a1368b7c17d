//! What the gateway serves on the shared admin listener (`[listen] admin`; plain HTTP,
//! bind it to loopback or a private address; [`cmg_core::admin`] does the HTTP, the
//! cap, the accept pause and the drain): its metrics, `/ready` (200 once at least one
//! channel is up; 503 before, and from the moment a stop is requested, so a load
//! balancer's health check sees the instance leave before its requests drain) and
//! `/channels` (one line per live channel).

use std::sync::Arc;

use cmg_core::admin::{AdminRoutes, Readiness, StatusCode};
use tokio_util::sync::CancellationToken;

use crate::state::Gateway;

/// The gateway's [`AdminRoutes`].
#[derive(Debug)]
pub(crate) struct GatewayAdmin {
    pub gw: Arc<Gateway>,
    /// Cancelled when the instance starts stopping.
    pub stopping: CancellationToken,
}

impl AdminRoutes for GatewayAdmin {
    const ROLE: &'static str = "gateway";

    async fn ready(&self) -> Readiness {
        if self.stopping.is_cancelled() {
            return Readiness::NotReady("stopping: draining client requests".into());
        }
        let n = self.gw.registry().snapshot().len();
        if n > 0 {
            Readiness::Ready(format!("{n} channel(s)"))
        } else {
            Readiness::NotReady("no channel from any connection point".into())
        }
    }

    async fn encode_metrics(&self, out: &mut String) {
        let metrics = self.gw.metrics();
        metrics
            .channels
            .set(self.gw.registry().snapshot().len() as i64);
        metrics.encode_into(out);
    }

    fn route(&self, path: &str) -> Option<(StatusCode, String)> {
        (path == "/channels").then(|| {
            let lines = self
                .gw
                .registry()
                .snapshot()
                .iter()
                .map(|c| {
                    format!(
                        "{} site={} connection_id={} peer={} thread={}\n",
                        c.connector, c.site, c.id, c.peer, c.shard
                    )
                })
                .collect();
            (StatusCode::OK, lines)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn not_ready_without_a_channel_nor_once_stopping() {
        let t = testing::gateway("");
        let admin = GatewayAdmin {
            gw: t.gw.clone(),
            stopping: CancellationToken::new(),
        };
        assert!(matches!(admin.ready().await, Readiness::NotReady(r) if r.contains("no channel")));
        admin.stopping.cancel();
        assert!(matches!(admin.ready().await, Readiness::NotReady(r) if r.starts_with("stopping")));
        let mut text = String::new();
        admin.encode_metrics(&mut text).await;
        assert!(
            text.contains("cmg_gateway_channels{gateway_instance=\"gw1\"} 0"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "the listener adds the one EOF");
        assert_eq!(
            admin.route("/channels"),
            Some((StatusCode::OK, String::new()))
        );
        assert_eq!(admin.route("/other"), None);
    }
}
