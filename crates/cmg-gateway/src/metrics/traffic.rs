//! Traffic counters for the site: cumulative per-endpoint counters of this instance
//! (responses by status class, body bytes in and out, latency sum), tagged with a random
//! `boot_id` per process start and a `seq` per snapshot. Posting the snapshots on the
//! channels is `channel::report`'s job (see `cmg_proto::report` for how the site counts
//! relayed, cumulative snapshots once).
//!
//! Recording a request is four relaxed atomic adds on counters created when the
//! endpoint is published; nothing is allocated on the request path. Counters are kept by
//! prefix for the life of the process, so a settings bundle that republishes an endpoint
//! keeps counting where it was.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cmg_proto::report::{EndpointTraffic, TrafficSnapshot};

/// One endpoint's counters since this process started.
#[derive(Debug, Default)]
pub struct EndpointCounters {
    by_class: [AtomicU64; 5],
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    latency_us_sum: AtomicU64,
}

impl EndpointCounters {
    /// Counts one answered request.
    pub fn record(&self, status: u16, bytes_in: u64, bytes_out: u64, elapsed: Duration) {
        let i = usize::from((status / 100).clamp(1, 5)) - 1;
        self.by_class[i].fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes_in, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes_out, Ordering::Relaxed);
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency_us_sum.fetch_add(us, Ordering::Relaxed);
    }

    fn load(&self, prefix: &str) -> EndpointTraffic {
        EndpointTraffic {
            prefix: prefix.to_owned(),
            status_classes: std::array::from_fn(|i| self.by_class[i].load(Ordering::Relaxed)),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            latency_us_sum: self.latency_us_sum.load(Ordering::Relaxed),
        }
    }
}

/// Every endpoint's counters, and the identity of this boot.
#[derive(Debug)]
pub struct Traffic {
    instance: String,
    boot_id: String,
    seq: AtomicU64,
    endpoints: Mutex<BTreeMap<String, Arc<EndpointCounters>>>,
}

impl Traffic {
    pub fn new(instance: &str) -> Self {
        Self {
            instance: instance.to_owned(),
            boot_id: format!("{:032x}", rand::random::<u128>()),
            seq: AtomicU64::new(0),
            endpoints: Mutex::default(),
        }
    }

    /// The random ID of this process start.
    #[cfg(test)]
    pub fn boot_id(&self) -> &str {
        &self.boot_id
    }

    /// The counters of `prefix`, created on first use (at startup or when a bundle
    /// publishes it), the same ones afterwards.
    pub fn endpoint(&self, prefix: &str) -> Arc<EndpointCounters> {
        let mut map = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(prefix.to_owned()).or_default().clone()
    }

    /// The counters now, as the next snapshot of this boot: endpoints that have answered
    /// at least one request.
    pub fn snapshot(&self) -> TrafficSnapshot {
        let endpoints = {
            let map = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
            map.iter()
                .map(|(prefix, c)| c.load(prefix))
                .filter(|e| e.requests() > 0)
                .collect()
        };
        TrafficSnapshot {
            instance: self.instance.clone(),
            boot_id: self.boot_id.clone(),
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            taken_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            endpoints,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_cumulative_and_kept_by_prefix() {
        let t = Traffic::new("gw1");
        let a = t.endpoint("/CCM_Proxy_MutualAuth/1/CCM_System");
        a.record(200, 10, 100, Duration::from_micros(250));
        a.record(404, 0, 5, Duration::from_micros(50));
        a.record(999, 0, 0, Duration::ZERO);
        let _quiet = t.endpoint("/CCM_Proxy_MutualAuth/1/SMS_MP");
        // Republished by a bundle: the same counters.
        t.endpoint("/CCM_Proxy_MutualAuth/1/CCM_System").record(
            503,
            1,
            1,
            Duration::from_micros(1),
        );
        let s1 = t.snapshot();
        assert_eq!(s1.seq, 1);
        assert_eq!(s1.instance, "gw1");
        assert_eq!(s1.boot_id.len(), 32);
        assert_eq!(
            s1.endpoints.len(),
            1,
            "endpoints without traffic are left out"
        );
        let e = &s1.endpoints[0];
        assert_eq!(e.status_classes, [0, 1, 0, 1, 2]);
        assert_eq!((e.bytes_in, e.bytes_out, e.latency_us_sum), (11, 106, 301));
        let s2 = t.snapshot();
        assert_eq!(s2.seq, 2);
        assert_eq!(s2.boot_id, s1.boot_id);
        assert_ne!(Traffic::new("gw1").boot_id(), t.boot_id());
    }
}
