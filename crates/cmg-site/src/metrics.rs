//! Prometheus metrics of the site, served on its admin listener (`admin.rs`).
//!
//! Counters are recorded where things happen (reports, alerts, webhook calls); the
//! per-gateway status gauge is computed from the database at each scrape.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::model::HealthState;
use crate::Store;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabels {
    event: String,
    level: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    gateway: String,
    status: String,
}

/// The site's series.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub reports_stored: Counter,
    reports_refused: Family<CodeLabel, Counter>,
    pub snapshots_counted: Counter,
    pub snapshots_ignored: Counter,
    pub egress_bytes: Counter,
    alerts: Family<AlertLabels, Counter>,
    pub webhook_delivered: Counter,
    pub webhook_failed: Counter,
    gateway_status: Family<StatusLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cmg_site");
        let m = Self {
            reports_stored: Counter::default(),
            reports_refused: Family::default(),
            snapshots_counted: Counter::default(),
            snapshots_ignored: Counter::default(),
            egress_bytes: Counter::default(),
            alerts: Family::default(),
            webhook_delivered: Counter::default(),
            webhook_failed: Counter::default(),
            gateway_status: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "reports_stored",
            "Connection point reports stored",
            m.reports_stored.clone(),
        );
        registry.register(
            "reports_refused",
            "Connection point reports refused, by error code",
            m.reports_refused.clone(),
        );
        registry.register(
            "snapshots_counted",
            "Traffic snapshots newer than their mark (counted)",
            m.snapshots_counted.clone(),
        );
        registry.register(
            "snapshots_ignored",
            "Traffic snapshots at or below their mark (already counted)",
            m.snapshots_ignored.clone(),
        );
        registry.register(
            "egress_bytes",
            "Egress (response bytes to clients) counted from reports",
            m.egress_bytes.clone(),
        );
        registry.register(
            "alert_transitions",
            "Traffic alerts raised and cleared",
            m.alerts.clone(),
        );
        registry.register(
            "webhook_delivered",
            "Alert webhook calls answered 2xx",
            m.webhook_delivered.clone(),
        );
        registry.register(
            "webhook_failed",
            "Alert webhook calls failed or timed out",
            m.webhook_failed.clone(),
        );
        registry.register(
            "gateway_status",
            "1 for each gateway's current status",
            m.gateway_status.clone(),
        );
        Self { registry, ..m }
    }

    pub fn report_refused(&self, code: &str) {
        self.reports_refused
            .get_or_create(&CodeLabel { code: code.into() })
            .inc();
    }

    pub fn alert(&self, event: &str, level: &str) {
        self.alerts
            .get_or_create(&AlertLabels {
                event: event.into(),
                level: level.into(),
            })
            .inc();
    }

    /// Appends the families (OpenMetrics text, no `# EOF`: the admin listener ends the
    /// scrape), with the status gauge refreshed from `store`.
    pub async fn encode_into(&self, out: &mut String, store: &Store, report_interval: Duration) {
        self.gateway_status.clear();
        match store.gateway_statuses(report_interval, crate::now()).await {
            Ok(list) => {
                for g in list {
                    let status = match g.status {
                        HealthState::Ready => "Ready",
                        HealthState::Warning => "Warning",
                        HealthState::Error => "Error",
                        HealthState::Disconnected => "Disconnected",
                        HealthState::Stopped => "Stopped",
                    };
                    self.gateway_status
                        .get_or_create(&StatusLabels {
                            gateway: g.gateway,
                            status: status.into(),
                        })
                        .set(1);
                }
            }
            Err(e) => tracing::warn!(error = %e, "metrics: reading gateway statuses failed"),
        }
        cmg_core::admin::encode_registry(out, &self.registry);
    }
}
