//! The families every role's scrape ends with: `cmg_build_info` and the process metrics.
//! One small unprefixed registry per listener (not the role's: its prefix and constant
//! labels would rename them, and `process_*` is the name dashboards expect).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use super::process::ProcessCollector;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    role: &'static str,
}

/// `cmg_build_info{version,role} 1` and the process collector.
#[derive(Debug)]
pub(crate) struct CommonMetrics {
    registry: Registry,
}

impl CommonMetrics {
    pub(crate) fn new(role: &'static str) -> Self {
        let mut registry = Registry::default();
        registry.register(
            "cmg_build",
            "The cmg build this process runs, as labels",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                role,
            }),
        );
        registry.register_collector(Box::new(ProcessCollector));
        Self { registry }
    }

    /// Appends the families (no `# EOF`).
    pub(crate) fn encode(&self, out: &mut String) {
        super::encode_registry(out, &self.registry);
    }
}
