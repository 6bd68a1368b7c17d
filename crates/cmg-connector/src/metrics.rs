//! Prometheus metrics of a connection point, served on the admin listener
//! (`admin.rs`): channel state, the settings version relayed, and how the talk
//! with the site and the instances' traffic snapshots went. Created once per connection
//! point and passed around in an `Arc`; no statics.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::status::ConnectorStatus;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// The registry and its series.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    channels: Gauge,
    channels_up: Gauge,
    settings_version: Gauge,
    site_reports: Family<OutcomeLabel, Counter>,
    site_polls: Family<OutcomeLabel, Counter>,
    snapshots: Family<OutcomeLabel, Counter>,
}

impl Metrics {
    pub fn new(connection_point: &str) -> Self {
        let mut registry = Registry::with_prefix_and_labels(
            "cmg_connector",
            [(
                std::borrow::Cow::Borrowed("connection_point"),
                std::borrow::Cow::Owned(connection_point.to_owned()),
            )]
            .into_iter(),
        );
        let m = Self {
            channels: Gauge::default(),
            channels_up: Gauge::default(),
            settings_version: Gauge::default(),
            site_reports: Family::default(),
            site_polls: Family::default(),
            snapshots: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "channels",
            "Configured gateway instances",
            m.channels.clone(),
        );
        registry.register(
            "channels_up",
            "Channels with a hello",
            m.channels_up.clone(),
        );
        registry.register(
            "settings_version",
            "Version of the settings bundle relayed (0: none)",
            m.settings_version.clone(),
        );
        registry.register(
            "site_reports",
            "Reports posted to the site, by outcome",
            m.site_reports.clone(),
        );
        registry.register(
            "site_polls",
            "Settings long polls at the site, by outcome",
            m.site_polls.clone(),
        );
        registry.register(
            "traffic_snapshots",
            "Traffic snapshots posted by gateway instances, by outcome",
            m.snapshots.clone(),
        );
        Self { registry, ..m }
    }

    pub(crate) fn report(&self, ok: bool) {
        self.site_reports.get_or_create(&outcome(ok)).inc();
    }

    pub(crate) fn poll(&self, ok: bool) {
        self.site_polls.get_or_create(&outcome(ok)).inc();
    }

    pub(crate) fn snapshot(&self, ok: bool) {
        self.snapshots.get_or_create(&outcome(ok)).inc();
    }

    /// Appends the families (OpenMetrics text, no `# EOF`: the admin listener ends the
    /// scrape) with the gauges set from `status` and `version`.
    pub fn encode_into(&self, out: &mut String, status: &ConnectorStatus, version: u64) {
        self.channels.set(status.channels.len() as i64);
        self.channels_up.set(status.up() as i64);
        self.settings_version
            .set(i64::try_from(version).unwrap_or(i64::MAX));
        cmg_core::admin::encode_registry(out, &self.registry);
    }
}

fn outcome(ok: bool) -> OutcomeLabel {
    OutcomeLabel {
        outcome: if ok { "ok" } else { "failed" },
    }
}
