//! Traffic snapshots from the gateway instances: each instance posts its cumulative
//! per-endpoint counters to [`TRAFFIC_PATH`](cmg_proto::report::TRAFFIC_PATH) over every channel it has; the connection
//! point keeps the newest snapshot per instance (same boot: the highest `seq`; another
//! boot: the later `taken_at`) and hands them to the site in its reports.
//!
//! Hostile or broken input is refused and logged, and nothing is stored: a body above
//! [`MAX_REPORT_BYTES`] gets `413`, one that is not a snapshot (bad JSON, unknown
//! fields, an instance name other than the channel's hello) gets `400`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use tracing::{debug, warn};

use cmg_proto::report::{TrafficSnapshot, MAX_REPORT_BYTES};

use crate::respond::{self, ChannelBody, Refusal};

/// Instances whose snapshots are kept; one more than this is refused (a gateway has a
/// handful of instances; the bound keeps a misbehaving peer from growing the map).
const MAX_INSTANCES: usize = 256;

/// Why a snapshot was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SnapshotRefused {
    #[error("body above {MAX_REPORT_BYTES} bytes")]
    TooLarge,
    #[error("not a traffic snapshot: {0}")]
    Malformed(String),
    #[error("snapshot names instance {got:?}, the channel's hello said {hello:?}")]
    WrongInstance { got: String, hello: String },
    #[error("snapshots of more than {MAX_INSTANCES} instances")]
    TooManyInstances,
}

impl SnapshotRefused {
    fn refusal(&self) -> Refusal {
        match self {
            Self::TooLarge => Refusal::ReportTooLarge,
            _ => Refusal::BadReport,
        }
    }
}

/// A read-only handle on the snapshots held ([`crate::Bound::traffic`]), for health
/// endpoints and tests.
#[derive(Debug, Clone)]
pub struct HeldTraffic(pub(crate) std::sync::Arc<crate::relay::Relay>);

impl HeldTraffic {
    /// The newest snapshot of every instance, by instance name.
    pub fn newest(&self) -> Vec<TrafficSnapshot> {
        self.0.traffic.newest()
    }
}

/// The newest snapshot of each instance.
#[derive(Debug, Default)]
pub(crate) struct TrafficBook {
    by_instance: Mutex<BTreeMap<String, TrafficSnapshot>>,
}

impl TrafficBook {
    /// Keeps `snap` when it is newer than the one held for its instance; returns whether
    /// it was kept.
    pub fn offer(&self, snap: TrafficSnapshot) -> Result<bool, SnapshotRefused> {
        let mut map = self.by_instance.lock().unwrap_or_else(|p| p.into_inner());
        let newer = match map.get(&snap.instance) {
            None if map.len() >= MAX_INSTANCES => return Err(SnapshotRefused::TooManyInstances),
            None => true,
            Some(cur) if cur.boot_id == snap.boot_id => snap.seq > cur.seq,
            Some(cur) => snap.taken_at >= cur.taken_at,
        };
        if newer {
            map.insert(snap.instance.clone(), snap);
        }
        Ok(newer)
    }

    /// The newest snapshot of every instance, by instance name.
    pub fn newest(&self) -> Vec<TrafficSnapshot> {
        let map = self.by_instance.lock().unwrap_or_else(|p| p.into_inner());
        map.values().cloned().collect()
    }

    /// Reads, checks and stores the snapshot posted on a channel whose hello named
    /// `instance`.
    pub async fn receive(
        &self,
        req: Request<Incoming>,
        instance: Option<&str>,
    ) -> Result<bool, SnapshotRefused> {
        let announced = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|n| n > MAX_REPORT_BYTES as u64) {
            return Err(SnapshotRefused::TooLarge);
        }
        let body = Limited::new(req.into_body(), MAX_REPORT_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    SnapshotRefused::TooLarge
                } else {
                    SnapshotRefused::Malformed(format!("body not read: {e}"))
                }
            })?
            .to_bytes();
        let snap: TrafficSnapshot =
            serde_json::from_slice(&body).map_err(|e| SnapshotRefused::Malformed(e.to_string()))?;
        match instance {
            Some(hello) if hello != snap.instance => {
                return Err(SnapshotRefused::WrongInstance {
                    got: snap.instance,
                    hello: hello.to_owned(),
                })
            }
            None => {
                return Err(SnapshotRefused::Malformed(
                    "no hello on this channel yet".into(),
                ))
            }
            Some(_) => {}
        }
        self.offer(snap)
    }

    /// The channel's answer to a snapshot post: `204`, or the refusal (logged).
    pub async fn answer(
        &self,
        req: Request<Incoming>,
        instance: Option<&str>,
        cp: &http::HeaderValue,
    ) -> Response<ChannelBody> {
        match self.receive(req, instance).await {
            Ok(kept) => {
                debug!(instance, kept, "traffic snapshot received");
                let mut r = respond::ok(cp);
                *r.status_mut() = StatusCode::NO_CONTENT;
                r
            }
            Err(e) => {
                warn!(instance, reason = %e, "traffic snapshot refused");
                e.refusal().response(cp)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(instance: &str, boot: &str, seq: u64, taken_at: u64) -> TrafficSnapshot {
        TrafficSnapshot {
            instance: instance.into(),
            boot_id: boot.into(),
            seq,
            taken_at,
            endpoints: vec![],
        }
    }

    #[test]
    fn keeps_the_newest_per_instance() {
        let book = TrafficBook::default();
        assert_eq!(book.offer(snap("a", "b1", 2, 10)), Ok(true));
        assert_eq!(book.offer(snap("a", "b1", 1, 20)), Ok(false), "older seq");
        assert_eq!(book.offer(snap("a", "b1", 2, 20)), Ok(false), "same seq");
        assert_eq!(book.offer(snap("a", "b2", 1, 30)), Ok(true), "a restart");
        assert_eq!(
            book.offer(snap("a", "b1", 9, 25)),
            Ok(false),
            "the old boot"
        );
        assert_eq!(book.offer(snap("b", "x", 1, 1)), Ok(true));
        let newest = book.newest();
        assert_eq!(newest.len(), 2);
        assert_eq!((newest[0].boot_id.as_str(), newest[0].seq), ("b2", 1));
    }

    #[test]
    fn the_number_of_instances_is_bounded() {
        let book = TrafficBook::default();
        for i in 0..MAX_INSTANCES {
            assert_eq!(book.offer(snap(&format!("i{i}"), "b", 1, 1)), Ok(true));
        }
        assert_eq!(
            book.offer(snap("one-too-many", "b", 1, 1)),
            Err(SnapshotRefused::TooManyInstances)
        );
        assert_eq!(
            book.offer(snap("i0", "b", 2, 2)),
            Ok(true),
            "known ones go on"
        );
    }
}
