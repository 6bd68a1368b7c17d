//! Traffic put in the store at chosen times, as a connection point's reports would:
//! `Traffic::at` sends one instance's cumulative counters, so each call adds its given
//! amounts to the hour bucket of `now`. Shared by the store's series test and the
//! console's traffic page tests.

use cmg_proto::report::{ConnectionPointReport, EndpointTraffic, ReportReason, TrafficSnapshot};
use cmg_site::model::ConnectionPointAdd;
use cmg_site::Store;
use std::collections::BTreeMap;

/// What one call adds to one endpoint.
#[derive(Debug, Clone, Copy, Default)]
pub struct Add {
    pub status_classes: [u64; 5],
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub latency_us: u64,
}

/// A connection point of `gateway` reporting one instance's cumulative counters.
pub struct Traffic {
    store: Store,
    cp: String,
    gateway: String,
    seq: u64,
    counters: BTreeMap<String, EndpointTraffic>,
}

impl Traffic {
    /// Adds connection point `cp` to `gateway` (which must exist).
    pub async fn new(store: &Store, gateway: &str, cp: &str) -> Self {
        store
            .add_connection_point(
                ConnectionPointAdd {
                    gateway: gateway.into(),
                    id: Some(cp.into()),
                },
                &super::admin(),
            )
            .await
            .expect("connection point");
        Self {
            store: store.clone(),
            cp: cp.into(),
            gateway: gateway.into(),
            seq: 0,
            counters: BTreeMap::new(),
        }
    }

    /// Adds `add` to `endpoint`'s traffic, counted by the site at `now` (Unix seconds).
    pub async fn at(&mut self, now: i64, endpoint: &str, add: Add) {
        let e = self
            .counters
            .entry(endpoint.to_owned())
            .or_insert_with(|| EndpointTraffic {
                prefix: endpoint.into(),
                status_classes: [0; 5],
                bytes_in: 0,
                bytes_out: 0,
                latency_us_sum: 0,
            });
        for (c, a) in e.status_classes.iter_mut().zip(add.status_classes) {
            *c += a;
        }
        e.bytes_in += add.bytes_in;
        e.bytes_out += add.bytes_out;
        e.latency_us_sum += add.latency_us;
        self.seq += 1;
        let report = ConnectionPointReport {
            connection_point: self.cp.clone(),
            gateway: self.gateway.clone(),
            reason: ReportReason::Periodic,
            sent_at: now as u64,
            settings_version: 1,
            channels: vec![],
            traffic: vec![TrafficSnapshot {
                instance: format!("{}-1", self.gateway),
                boot_id: "boot-1".into(),
                seq: self.seq,
                taken_at: now as u64,
                endpoints: self.counters.values().cloned().collect(),
            }],
        };
        let got = self
            .store
            .ingest_report(&self.cp, &report, now)
            .await
            .expect("report stored");
        assert_eq!(got.counted, 1, "the snapshot was counted");
    }
}
