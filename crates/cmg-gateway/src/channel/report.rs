//! Posting traffic snapshots ([`TrafficSnapshot`]) to [`TRAFFIC_PATH`] on every live
//! channel every `reports.interval`, and once more while draining at shutdown. Each
//! connection point keeps the newest one and hands it to the site. The counters
//! themselves are `metrics::Traffic`'s.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cmg_proto::headers;
use cmg_proto::report::TRAFFIC_PATH;
use http::{header, Method, Request, StatusCode};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::body::ForwardBody;
use crate::registry::Channel;
use crate::state::Gateway;

/// Limit on one snapshot post (a connection point answers at once).
const POST_TIMEOUT: Duration = Duration::from_secs(5);

/// Posts a snapshot every `interval` until `stop`.
pub async fn run(gw: Arc<Gateway>, interval: Duration, stop: CancellationToken) {
    let start = tokio::time::Instant::now() + interval;
    let mut tick = tokio::time::interval_at(start, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        post_all(&gw).await;
    }
}

/// Posts one snapshot on every open channel, concurrently; returns how many connection
/// points took it.
pub async fn post_all(gw: &Gateway) -> usize {
    let channels = gw.registry().open_channels();
    if channels.is_empty() {
        debug!("no channel: traffic snapshot not sent");
        return 0;
    }
    let snap = gw.metrics().traffic.snapshot();
    let body = match serde_json::to_vec(&snap) {
        Ok(b) => Bytes::from(b),
        Err(e) => {
            warn!(error = %e, "traffic snapshot not encodable");
            return 0;
        }
    };
    let posts = channels.iter().map(|ch| {
        let body = body.clone();
        async move {
            let r = tokio::time::timeout(POST_TIMEOUT, post(gw, ch, body)).await;
            match r {
                Ok(Ok(())) => true,
                Ok(Err(e)) => {
                    warn!(connector = %ch.connector, error = %e, "traffic snapshot refused");
                    false
                }
                Err(_) => {
                    warn!(connector = %ch.connector, after = ?POST_TIMEOUT, "traffic snapshot not answered");
                    false
                }
            }
        }
    });
    let taken = futures_util::future::join_all(posts)
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count();
    debug!(
        seq = snap.seq,
        taken,
        channels = channels.len(),
        "traffic snapshot posted"
    );
    taken
}

async fn post(gw: &Gateway, ch: &Channel, body: Bytes) -> Result<(), String> {
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("https://{}{TRAFFIC_PATH}", gw.service_name()))
        .header(header::CONTENT_TYPE, "application/json")
        .header(headers::GATEWAY_INSTANCE, gw.instance_header().clone())
        .body(ForwardBody::bytes(body))
        .map_err(|e| e.to_string())?;
    let resp = ch.sender.send(req).await.map_err(|e| e.to_string())?;
    match resp.status() {
        StatusCode::NO_CONTENT | StatusCode::OK => Ok(()),
        other => Err(format!("status {other}")),
    }
}
