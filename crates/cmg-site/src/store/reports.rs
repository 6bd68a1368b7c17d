//! Connection point reports: channel statuses and traffic counted exactly once.
//!
//! Every connection point relays the same cumulative snapshots of every instance (see
//! `cmg_proto::report`). Per (gateway, instance, boot) the store keeps a mark: the highest
//! `seq` counted and the counters at that `seq`. A snapshot at or below the mark is
//! ignored; a newer one adds its difference to the mark to the hour bucket of the time
//! the site counted it; a new `boot_id` starts from zero. One report is one transaction
//! whose first statement locks the gateway's row, so two connection points relaying the
//! same snapshot at the same moment are serialised and the second finds it counted.

use std::collections::BTreeMap;

use cmg_proto::report::{ChannelState, ConnectionPointReport, EndpointTraffic, ReportReason};
use sqlx::{Any, Row as _, Transaction};

use super::{Result, Store, StoreError};
use crate::model::{EndpointTrafficView, TrafficPoint, TrafficQuery, TrafficSeriesQuery};

/// Bounds on one report (a gateway has at most 16 instances).
const MAX_CHANNELS: usize = 64;
const MAX_SNAPSHOTS: usize = 64;
const MAX_ENDPOINTS: usize = 512;
const MAX_TEXT: usize = 1024;
/// How long a boot's mark is kept after its last snapshot.
pub const MARK_RETENTION_SECS: i64 = 15 * 86_400;
/// How long hour buckets are kept.
pub const BUCKET_RETENTION_SECS: i64 = 90 * 86_400;

/// What one report counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Snapshots newer than their mark (their difference was counted).
    pub counted: usize,
    /// Snapshots at or below their mark (already counted, or out of order).
    pub ignored: usize,
    /// Egress added by this report, bytes.
    pub bytes_out: u64,
}

fn text_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_TEXT && !s.chars().any(char::is_control)
}

fn bad(message: impl Into<String>) -> StoreError {
    StoreError::invalid("invalid_report", message)
}

/// Refuses a report that is out of bounds or malformed (before anything is stored).
pub fn check_report(r: &ConnectionPointReport) -> Result<()> {
    if r.channels.len() > MAX_CHANNELS {
        return Err(bad(format!("at most {MAX_CHANNELS} channels")));
    }
    if r.traffic.len() > MAX_SNAPSHOTS {
        return Err(bad(format!("at most {MAX_SNAPSHOTS} traffic snapshots")));
    }
    let mut addresses = std::collections::BTreeSet::new();
    for c in &r.channels {
        if !text_ok(&c.address) || !addresses.insert(c.address.as_str()) {
            return Err(bad(format!(
                "channel address {:?} is empty, too long or repeated",
                c.address
            )));
        }
        for t in [&c.instance, &c.connection_id].into_iter().flatten() {
            if !text_ok(t) {
                return Err(bad("a channel's instance or connection id is malformed"));
            }
        }
        if c.last_error.as_ref().is_some_and(|e| e.len() > MAX_TEXT) {
            return Err(bad("a channel's last error is too long"));
        }
    }
    let mut boots = std::collections::BTreeSet::new();
    for s in &r.traffic {
        if !text_ok(&s.instance) || !text_ok(&s.boot_id) {
            return Err(bad("a snapshot's instance or boot id is malformed"));
        }
        if !boots.insert((s.instance.as_str(), s.boot_id.as_str())) {
            return Err(bad(format!(
                "instance {:?} boot {:?} appears twice",
                s.instance, s.boot_id
            )));
        }
        if s.seq > i64::MAX as u64 || s.endpoints.len() > MAX_ENDPOINTS {
            return Err(bad("a snapshot's seq or endpoint count is out of range"));
        }
        let mut prefixes = std::collections::BTreeSet::new();
        for e in &s.endpoints {
            if !text_ok(&e.prefix) || !e.prefix.starts_with('/') || !prefixes.insert(&e.prefix) {
                return Err(bad(format!(
                    "endpoint prefix {:?} is malformed or repeated",
                    e.prefix
                )));
            }
            let big = e.status_classes.iter().any(|&v| v > i64::MAX as u64)
                || [e.bytes_in, e.bytes_out, e.latency_us_sum]
                    .iter()
                    .any(|&v| v > i64::MAX as u64);
            if big {
                return Err(bad("a counter is out of range"));
            }
        }
    }
    Ok(())
}

pub(crate) fn state_str(s: ChannelState) -> &'static str {
    match s {
        ChannelState::Connected => "connected",
        ChannelState::Connecting => "connecting",
        ChannelState::Disconnected => "disconnected",
    }
}

pub(crate) fn reason_str(r: ReportReason) -> &'static str {
    match r {
        ReportReason::Startup => "startup",
        ReportReason::Periodic => "periodic",
        ReportReason::StateChange => "state_change",
        ReportReason::Shutdown => "shutdown",
    }
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `cur - prev`, field by field; counters that went backwards count as zero.
fn delta(cur: &EndpointTraffic, prev: Option<&EndpointTraffic>) -> (EndpointTraffic, bool) {
    let Some(p) = prev else {
        return (cur.clone(), false);
    };
    let mut backwards = false;
    let mut sub = |a: u64, b: u64| {
        backwards |= a < b;
        a.saturating_sub(b)
    };
    let mut classes = [0u64; 5];
    for (k, c) in classes.iter_mut().enumerate() {
        *c = sub(cur.status_classes[k], p.status_classes[k]);
    }
    let d = EndpointTraffic {
        prefix: cur.prefix.clone(),
        status_classes: classes,
        bytes_in: sub(cur.bytes_in, p.bytes_in),
        bytes_out: sub(cur.bytes_out, p.bytes_out),
        latency_us_sum: sub(cur.latency_us_sum, p.latency_us_sum),
    };
    (d, backwards)
}

fn is_zero(e: &EndpointTraffic) -> bool {
    e.requests() == 0 && e.bytes_in == 0 && e.bytes_out == 0 && e.latency_us_sum == 0
}

impl Store {
    /// Stores a connection point's report (already authenticated as `cp`, serving
    /// `report.gateway`) at time `now`: its channels replace the ones it reported before,
    /// and each traffic snapshot is counted once (module docs).
    pub async fn ingest_report(
        &self,
        cp: &str,
        report: &ConnectionPointReport,
        now: i64,
    ) -> Result<Ingested> {
        check_report(report)?;
        let gateway = report.gateway.as_str();
        let mut tx = self.pool().begin().await?;
        let locked = sqlx::query("UPDATE gateways SET updated_at = updated_at WHERE name = $1")
            .bind(gateway)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if locked == 0 {
            return Err(StoreError::not_found("gateway", gateway));
        }
        sqlx::query(
            "INSERT INTO cp_reports (connection_point, gateway, reason, sent_at, received_at, settings_version) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (connection_point) DO UPDATE SET \
             gateway = excluded.gateway, reason = excluded.reason, sent_at = excluded.sent_at, \
             received_at = excluded.received_at, settings_version = excluded.settings_version",
        )
        .bind(cp)
        .bind(gateway)
        .bind(reason_str(report.reason))
        .bind(i(report.sent_at))
        .bind(now)
        .bind(i(report.settings_version))
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM channel_status WHERE connection_point = $1")
            .bind(cp)
            .execute(&mut *tx)
            .await?;
        for c in &report.channels {
            sqlx::query(
                "INSERT INTO channel_status (connection_point, address, gateway, instance, state, since, \
                 connection_id, last_error, reported_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(cp)
            .bind(c.address.as_str())
            .bind(gateway)
            .bind(c.instance.as_deref())
            .bind(state_str(c.state))
            .bind(i(c.since))
            .bind(c.connection_id.as_deref())
            .bind(c.last_error.as_deref())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let mut out = Ingested::default();
        let hour = now - now.rem_euclid(3600);
        for snap in &report.traffic {
            let mark = sqlx::query(
                "SELECT seq, counters FROM traffic_marks WHERE gateway = $1 AND instance = $2 AND boot_id = $3",
            )
            .bind(gateway)
            .bind(snap.instance.as_str())
            .bind(snap.boot_id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let (mut counters, last_seq) = match mark {
                Some(row) => {
                    let text: String = row.try_get("counters")?;
                    let list: Vec<EndpointTraffic> =
                        serde_json::from_str(&text).map_err(StoreError::internal)?;
                    let map: BTreeMap<String, EndpointTraffic> =
                        list.into_iter().map(|e| (e.prefix.clone(), e)).collect();
                    (map, Some(row.try_get::<i64, _>("seq")?))
                }
                None => (BTreeMap::new(), None),
            };
            if last_seq.is_some_and(|s| i(snap.seq) <= s) {
                out.ignored += 1;
                continue;
            }
            out.counted += 1;
            for e in &snap.endpoints {
                let (d, backwards) = delta(e, counters.get(&e.prefix));
                if backwards {
                    tracing::warn!(gateway, instance = %snap.instance, endpoint = %e.prefix,
                        "traffic counters went backwards within one boot; counted as zero");
                }
                if !is_zero(&d) {
                    add_bucket(&mut tx, gateway, &snap.instance, hour, &d).await?;
                    out.bytes_out = out.bytes_out.saturating_add(d.bytes_out);
                }
                counters.insert(e.prefix.clone(), e.clone());
            }
            let list: Vec<&EndpointTraffic> = counters.values().collect();
            sqlx::query(
                "INSERT INTO traffic_marks (gateway, instance, boot_id, seq, counters, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (gateway, instance, boot_id) DO UPDATE SET \
                 seq = excluded.seq, counters = excluded.counters, updated_at = excluded.updated_at",
            )
            .bind(gateway)
            .bind(snap.instance.as_str())
            .bind(snap.boot_id.as_str())
            .bind(i(snap.seq))
            .bind(serde_json::to_string(&list).map_err(StoreError::internal)?)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        tracing::debug!(
            gateway,
            connection_point = cp,
            counted = out.counted,
            ignored = out.ignored,
            bytes_out = out.bytes_out,
            "report stored"
        );
        Ok(out)
    }

    /// Traffic per gateway and endpoint over hour buckets starting at or after the hour
    /// holding `q.since`.
    pub async fn traffic(&self, q: &TrafficQuery) -> Result<Vec<EndpointTrafficView>> {
        let from = q.since - q.since.rem_euclid(3600);
        let rows = sqlx::query(
            "SELECT gateway, endpoint, \
             CAST(SUM(requests) AS BIGINT) AS requests, CAST(SUM(bytes_in) AS BIGINT) AS bytes_in, \
             CAST(SUM(bytes_out) AS BIGINT) AS bytes_out, CAST(SUM(status_1xx) AS BIGINT) AS s1, \
             CAST(SUM(status_2xx) AS BIGINT) AS s2, CAST(SUM(status_3xx) AS BIGINT) AS s3, \
             CAST(SUM(status_4xx) AS BIGINT) AS s4, CAST(SUM(status_5xx) AS BIGINT) AS s5, \
             CAST(SUM(latency_us_sum) AS BIGINT) AS lat \
             FROM traffic_buckets WHERE hour >= $1 AND ($2 = '' OR gateway = $2) \
             GROUP BY gateway, endpoint ORDER BY gateway, endpoint",
        )
        .bind(from)
        .bind(q.gateway.as_deref().unwrap_or(""))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let requests: i64 = r.try_get("requests")?;
                let lat: i64 = r.try_get("lat")?;
                Ok(EndpointTrafficView {
                    gateway: r.try_get("gateway")?,
                    endpoint: r.try_get("endpoint")?,
                    requests: requests as u64,
                    bytes_in: r.try_get::<i64, _>("bytes_in")? as u64,
                    bytes_out: r.try_get::<i64, _>("bytes_out")? as u64,
                    status_classes: [
                        r.try_get::<i64, _>("s1")? as u64,
                        r.try_get::<i64, _>("s2")? as u64,
                        r.try_get::<i64, _>("s3")? as u64,
                        r.try_get::<i64, _>("s4")? as u64,
                        r.try_get::<i64, _>("s5")? as u64,
                    ],
                    mean_latency_ms: if requests > 0 {
                        lat as f64 / requests as f64 / 1000.0
                    } else {
                        0.0
                    },
                })
            })
            .collect()
    }

    /// One gateway's traffic (one endpoint's, or all of them summed) per step of
    /// `q.step` seconds over the same hour buckets [`Store::traffic`] sums, oldest step
    /// first; a step without buckets is left out. The steps' sums add up to the totals.
    pub async fn traffic_series(&self, q: &TrafficSeriesQuery) -> Result<Vec<TrafficPoint>> {
        if q.step < 3600 || q.step % 3600 != 0 {
            return Err(StoreError::invalid(
                "bad_step",
                "a traffic step is a positive number of hours",
            ));
        }
        // A prefix the store would refuse has no traffic (and PostgreSQL refuses a NUL).
        if q.endpoint.as_deref().is_some_and(|e| !text_ok(e)) {
            return Ok(Vec::new());
        }
        let from = q.since - q.since.rem_euclid(3600);
        let rows = sqlx::query(
            "SELECT slot, CAST(SUM(requests) AS BIGINT) AS requests, \
             CAST(SUM(bytes_in) AS BIGINT) AS bytes_in, CAST(SUM(bytes_out) AS BIGINT) AS bytes_out, \
             CAST(SUM(status_1xx) AS BIGINT) AS s1, CAST(SUM(status_2xx) AS BIGINT) AS s2, \
             CAST(SUM(status_3xx) AS BIGINT) AS s3, CAST(SUM(status_4xx) AS BIGINT) AS s4, \
             CAST(SUM(status_5xx) AS BIGINT) AS s5, CAST(SUM(latency_us_sum) AS BIGINT) AS lat \
             FROM (SELECT hour - (hour % $3) AS slot, requests, bytes_in, bytes_out, status_1xx, \
             status_2xx, status_3xx, status_4xx, status_5xx, latency_us_sum FROM traffic_buckets \
             WHERE gateway = $1 AND hour >= $2 AND ($4 = '' OR endpoint = $4)) AS b \
             GROUP BY slot ORDER BY slot",
        )
        .bind(q.gateway.as_str())
        .bind(from)
        .bind(q.step)
        .bind(q.endpoint.as_deref().unwrap_or(""))
        .fetch_all(self.pool())
        .await?;
        let u = |r: &sqlx::any::AnyRow, c: &str| -> Result<u64> {
            Ok(r.try_get::<i64, _>(c)?.max(0) as u64)
        };
        rows.iter()
            .map(|r| {
                Ok(TrafficPoint {
                    start: r.try_get("slot")?,
                    requests: u(r, "requests")?,
                    bytes_in: u(r, "bytes_in")?,
                    bytes_out: u(r, "bytes_out")?,
                    status_classes: [
                        u(r, "s1")?,
                        u(r, "s2")?,
                        u(r, "s3")?,
                        u(r, "s4")?,
                        u(r, "s5")?,
                    ],
                    latency_us_sum: u(r, "lat")?,
                })
            })
            .collect()
    }

    /// Egress (bytes out) of one gateway counted at or after `since` (hour granularity).
    pub async fn egress_since(&self, gateway: &str, since: i64) -> Result<u64> {
        let from = since - since.rem_euclid(3600);
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(SUM(bytes_out) AS BIGINT) FROM traffic_buckets WHERE gateway = $1 AND hour >= $2",
        )
        .bind(gateway)
        .bind(from)
        .fetch_one(self.pool())
        .await?;
        Ok(v.unwrap_or(0).max(0) as u64)
    }

    /// Drops marks of boots not heard of for [`MARK_RETENTION_SECS`] and buckets older
    /// than [`BUCKET_RETENTION_SECS`].
    pub async fn prune_reports(&self, now: i64) -> Result<()> {
        sqlx::query("DELETE FROM traffic_marks WHERE updated_at < $1")
            .bind(now - MARK_RETENTION_SECS)
            .execute(self.pool())
            .await?;
        sqlx::query("DELETE FROM traffic_buckets WHERE hour < $1")
            .bind(now - BUCKET_RETENTION_SECS)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

async fn add_bucket(
    tx: &mut Transaction<'static, Any>,
    gateway: &str,
    instance: &str,
    hour: i64,
    d: &EndpointTraffic,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO traffic_buckets (gateway, instance, endpoint, hour, requests, bytes_in, bytes_out, \
         status_1xx, status_2xx, status_3xx, status_4xx, status_5xx, latency_us_sum) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (gateway, instance, endpoint, hour) DO UPDATE SET \
         requests = traffic_buckets.requests + excluded.requests, \
         bytes_in = traffic_buckets.bytes_in + excluded.bytes_in, \
         bytes_out = traffic_buckets.bytes_out + excluded.bytes_out, \
         status_1xx = traffic_buckets.status_1xx + excluded.status_1xx, \
         status_2xx = traffic_buckets.status_2xx + excluded.status_2xx, \
         status_3xx = traffic_buckets.status_3xx + excluded.status_3xx, \
         status_4xx = traffic_buckets.status_4xx + excluded.status_4xx, \
         status_5xx = traffic_buckets.status_5xx + excluded.status_5xx, \
         latency_us_sum = traffic_buckets.latency_us_sum + excluded.latency_us_sum",
    )
    .bind(gateway)
    .bind(instance)
    .bind(d.prefix.as_str())
    .bind(hour)
    .bind(i(d.requests()))
    .bind(i(d.bytes_in))
    .bind(i(d.bytes_out))
    .bind(i(d.status_classes[0]))
    .bind(i(d.status_classes[1]))
    .bind(i(d.status_classes[2]))
    .bind(i(d.status_classes[3]))
    .bind(i(d.status_classes[4]))
    .bind(i(d.latency_us_sum))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
