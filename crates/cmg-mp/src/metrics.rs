//! Prometheus metrics of the management point, served on its admin listener
//! (`admin.rs`): requests journaled, by status class, and the body bytes they carried.
//! Created once per management point and owned by its state; no statics.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: &'static str,
}

/// The registry and its series.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<ClassLabel, Counter>,
    body_bytes: Counter,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("cmg_mp");
        let requests = Family::<ClassLabel, Counter>::default();
        let body_bytes = Counter::default();
        registry.register(
            "requests",
            "Requests answered and journaled, by status class",
            requests.clone(),
        );
        registry.register(
            "request_body_bytes",
            "Request body bytes received",
            body_bytes.clone(),
        );
        Self {
            registry,
            requests,
            body_bytes,
        }
    }

    /// Counts one journaled request.
    pub(crate) fn request(&self, status: u16, body_bytes: u64) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.requests.get_or_create(&ClassLabel { class }).inc();
        self.body_bytes.inc_by(body_bytes);
    }

    /// Appends the families (no `# EOF`: the admin listener ends the scrape).
    pub(crate) fn encode_into(&self, out: &mut String) {
        cmg_core::admin::encode_registry(out, &self.registry);
    }
}
