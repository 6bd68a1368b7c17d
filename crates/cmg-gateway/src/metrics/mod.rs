//! Prometheus metrics of a gateway instance, served on the admin listener.
//! Per-endpoint counters are created once at startup, so recording a request is a few
//! atomic adds, no lock and no label lookup.

mod traffic;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub(crate) use traffic::{EndpointCounters, Traffic};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: String,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: String,
}

/// The metrics registry and the instance-wide series.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    bytes_in: Family<EndpointLabel, Counter>,
    bytes_out: Family<EndpointLabel, Counter>,
    duration: Family<EndpointLabel, Histogram>,
    pub client_connections: Gauge,
    /// HTTP/1.1 client connections parked between requests (`conn`, `park`).
    pub client_connections_parked: Gauge,
    pub connections_refused: Counter,
    pub handshake_failures: Counter,
    proxy_refused: Family<ReasonLabel, Counter>,
    source_refused: Family<ReasonLabel, Counter>,
    pub channels: Gauge,
    /// Version of the settings bundle in force.
    pub settings_version: Gauge,
    /// Settings bundles refused (bad signature, other gateway, older version...).
    pub settings_rejected: Counter,
    /// The same per-endpoint counts as plain cumulative atomics, for the traffic
    /// snapshots sent to the site.
    pub traffic: Traffic,
}

impl Metrics {
    pub fn new(instance: &str) -> Self {
        // The label is `gateway_instance`, not `instance`: Prometheus sets `instance` to
        // the scrape target and renames a conflicting label to `exported_instance`.
        let mut registry = Registry::with_prefix_and_labels(
            "cmg_gateway",
            [(
                std::borrow::Cow::Borrowed("gateway_instance"),
                std::borrow::Cow::Owned(instance.to_string()),
            )]
            .into_iter(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        let bytes_in = Family::<EndpointLabel, Counter>::default();
        let bytes_out = Family::<EndpointLabel, Counter>::default();
        let duration = Family::<EndpointLabel, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))) as fn() -> Histogram,
        );
        let client_connections = Gauge::default();
        let client_connections_parked = Gauge::default();
        let connections_refused = Counter::default();
        let handshake_failures = Counter::default();
        let proxy_refused = Family::<ReasonLabel, Counter>::default();
        let source_refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "connections_refused_per_source",
            "Connections closed at accept: their source's cap on connections or handshakes",
            source_refused.clone(),
        );
        registry.register(
            "proxy_header_refused",
            "Connections closed for their PROXY protocol header (or its absence), by reason",
            proxy_refused.clone(),
        );
        let channels = Gauge::default();
        let settings_version = Gauge::default();
        let settings_rejected = Counter::default();
        registry.register(
            "settings_version",
            "Version of the site settings bundle in force (0: config file only)",
            settings_version.clone(),
        );
        registry.register(
            "settings_rejected",
            "Settings bundles refused",
            settings_rejected.clone(),
        );
        registry.register(
            "requests",
            "Client requests by endpoint and status class",
            requests.clone(),
        );
        registry.register(
            "request_bytes",
            "Request body bytes received",
            bytes_in.clone(),
        );
        registry.register(
            "response_bytes",
            "Response body bytes sent",
            bytes_out.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from request head to end of response",
            duration.clone(),
        );
        registry.register(
            "client_connections",
            "Open client connections",
            client_connections.clone(),
        );
        registry.register(
            "client_connections_parked",
            "Open HTTP/1.1 client connections parked between requests (TLS session and socket only)",
            client_connections_parked.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed at accept: limit reached",
            connections_refused.clone(),
        );
        registry.register(
            "tls_handshake_failures",
            "Failed or timed-out TLS handshakes",
            handshake_failures.clone(),
        );
        registry.register(
            "channels",
            "Live channels from connection points",
            channels.clone(),
        );
        Self {
            registry,
            requests: requests.clone(),
            bytes_in,
            bytes_out,
            duration: duration.clone(),
            client_connections,
            client_connections_parked,
            connections_refused,
            handshake_failures,
            proxy_refused,
            source_refused,
            channels,
            settings_version,
            settings_rejected,
            traffic: Traffic::new(instance),
        }
    }

    /// Counts a connection closed for its PROXY protocol header.
    pub fn proxy_refused(&self, reason: &'static str) {
        self.proxy_refused
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Counts a connection closed for its source's cap.
    pub fn source_refused(&self, reason: &'static str) {
        self.source_refused
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Pre-created series for one published URL.
    pub fn endpoint(&self, prefix: &str) -> EndpointStats {
        let l = EndpointLabel {
            endpoint: prefix.to_string(),
        };
        let class = |c: &'static str| {
            self.requests
                .get_or_create(&RequestLabels {
                    endpoint: prefix.to_string(),
                    class: c,
                })
                .clone()
        };
        EndpointStats {
            by_class: [
                class("1xx"),
                class("2xx"),
                class("3xx"),
                class("4xx"),
                class("5xx"),
            ],
            bytes_in: self.bytes_in.get_or_create(&l).clone(),
            bytes_out: self.bytes_out.get_or_create(&l).clone(),
            duration: self.duration.get_or_create(&l).clone(),
            traffic: self.traffic.endpoint(prefix),
        }
    }

    /// Appends the instance's families in OpenMetrics text, without `# EOF` (the admin
    /// listener adds the common families and the one EOF).
    pub fn encode_into(&self, out: &mut String) {
        cmg_core::admin::encode_registry(out, &self.registry);
    }
}

/// One published URL's series.
#[derive(Debug)]
pub struct EndpointStats {
    by_class: [Counter; 5],
    bytes_in: Counter,
    bytes_out: Counter,
    duration: Histogram,
    traffic: Arc<EndpointCounters>,
}

impl EndpointStats {
    pub fn record(&self, status: u16, bytes_in: u64, bytes_out: u64, elapsed: Duration) {
        let i = (status / 100).clamp(1, 5) as usize - 1;
        self.by_class[i].inc();
        self.bytes_in.inc_by(bytes_in);
        self.bytes_out.inc_by(bytes_out);
        self.duration.observe(elapsed.as_secs_f64());
        self.traffic.record(status, bytes_in, bytes_out, elapsed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_name_the_gateway_instance_without_the_reserved_label() {
        let m = Metrics::new("gw1");
        m.endpoint("/CCM_Proxy_MutualAuth/1/CCM_System").record(
            200,
            1,
            2,
            Duration::from_millis(1),
        );
        let mut text = String::new();
        m.encode_into(&mut text);
        let line = text
            .lines()
            .find(|l| l.starts_with("cmg_gateway_requests_total{") && l.contains("2xx"))
            .unwrap_or_else(|| panic!("no request series:\n{text}"));
        assert!(line.contains("gateway_instance=\"gw1\""), "{line}");
        assert!(
            !text.contains("{instance=") && !text.contains(",instance="),
            "{text}"
        );
    }
}
