//! What the site serves on the shared admin listener (`Config::admin_listen`;
//! [`cmg_core::admin`] does the HTTP, the cap and the drain): its metrics and `/ready`
//! (200 while the database answers, 503 otherwise).

use std::sync::Arc;
use std::time::Duration;

use cmg_core::admin::{AdminRoutes, Readiness};

use crate::metrics::Metrics;
use crate::Store;

/// The site's [`AdminRoutes`].
#[derive(Debug)]
pub(crate) struct SiteAdmin {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub report_interval: Duration,
}

impl AdminRoutes for SiteAdmin {
    const ROLE: &'static str = "site";

    async fn ready(&self) -> Readiness {
        match self.store.site().await {
            Ok(site) => Readiness::Ready(format!("site {}", site.code)),
            Err(e) => Readiness::NotReady(e.to_string()),
        }
    }

    async fn encode_metrics(&self, out: &mut String) {
        self.metrics
            .encode_into(out, &self.store, self.report_interval)
            .await;
    }
}
