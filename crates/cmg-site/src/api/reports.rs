//! Reports in, health and traffic out: the connection points' report endpoint
//! (publishing API) and the admin views of status, traffic and alerts.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use cmg_proto::report::{ConnectionPointReport, MAX_REPORT_BYTES};
use http::{header, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;
use super::publish::{authorize, PeerCert};
use super::{ok, ApiJson, ApiResult, AppState};
use crate::alerts::parse_period;
use crate::model::{AlertWebhook, TrafficQuery};
use crate::store::Actor;

/// Longest traffic period one query sums.
const MAX_TRAFFIC_PERIOD_SECS: u64 = 90 * 86_400;

/// `POST /api/v1/publish/gateways/{name}/report`: the certificate is checked before the
/// body is read; the body must name the same connection point and gateway.
pub async fn report(
    State(state): State<AppState>,
    Extension(peer): Extension<PeerCert>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    let r = take_report(&state, &peer, &name, &headers, body).await;
    match &r {
        Ok(_) => {
            state.metrics.reports_stored.inc();
        }
        Err(e) => state.metrics.report_refused(e.code),
    }
    r
}

async fn take_report(
    state: &AppState,
    peer: &PeerCert,
    name: &str,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    let cp = authorize(state, peer, name).await?;
    let body = axum::body::to_bytes(body, MAX_REPORT_BYTES)
        .await
        .map_err(|e| {
            if too_large(&e) {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("a report is at most {MAX_REPORT_BYTES} bytes"),
                )
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.to_string())
            }
        })?;
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim() == "application/json");
    if !json_type {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "a report is application/json",
        ));
    }
    let report: ConnectionPointReport = serde_json::from_slice(&body).map_err(|e| {
        let code = if e.is_data() {
            "invalid_body"
        } else {
            "bad_json"
        };
        ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string())
    })?;
    if report.connection_point != cp {
        tracing::warn!(gateway = %name, certificate = %cp, claimed = %report.connection_point,
            "report refused: connection point differs from the certificate");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "identity_mismatch",
            format!(
                "the report names connection point {:?}, the certificate is {cp}",
                report.connection_point
            ),
        ));
    }
    if report.gateway != name {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_gateway",
            format!(
                "the report is for gateway {:?}, posted to {name}",
                report.gateway
            ),
        ));
    }
    let got = state
        .store
        .ingest_report(&cp, &report, crate::now())
        .await?;
    tracing::info!(gateway = %name, connection_point = %cp, counted = got.counted,
        ignored = got.ignored, bytes_out = got.bytes_out, "report received");
    state.metrics.snapshots_counted.inc_by(got.counted as u64);
    state.metrics.snapshots_ignored.inc_by(got.ignored as u64);
    state.metrics.egress_bytes.inc_by(got.bytes_out);
    state.notifier.evaluate(&state.store, Some(name)).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether reading a body failed on its length limit (the axum error wraps the
/// `LengthLimitError`).
fn too_large(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

pub async fn status(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    ok(s.store
        .gateway_statuses(s.report_interval, crate::now())
        .await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficParams {
    gateway: Option<String>,
    /// A period back from now: `90m`, `24h`, `14d` (default 24h, at most 90d).
    since: Option<String>,
}

pub async fn traffic(
    State(s): State<AppState>,
    q: Result<Query<TrafficParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = q?;
    let period = match q.since.as_deref() {
        None => 86_400,
        Some(p) => parse_period(p)
            .map(|d| d.as_secs())
            .filter(|&d| d <= MAX_TRAFFIC_PERIOD_SECS)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_period",
                    "since is a period like 90m, 24h or 14d, at most 90d",
                )
            })?,
    };
    if let Some(g) = &q.gateway {
        s.store.gateway_row(g).await?;
    }
    ok(s.store
        .traffic(&TrafficQuery {
            gateway: q.gateway,
            since: crate::now() - period as i64,
        })
        .await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertParams {
    #[serde(default)]
    all: bool,
    limit: Option<u32>,
}

/// `GET /api/v1/alerts`: the active alerts, or with `all=true` the history.
pub async fn alerts(
    State(s): State<AppState>,
    q: Result<Query<AlertParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = q?;
    ok(s.store.alerts(!q.all, q.limit.unwrap_or(100)).await?)
}

pub async fn clear_alert(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    ok(s.store.clear_alert_stop(&name, &actor).await?)
}

pub async fn webhook(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    ok(AlertWebhook {
        url: s.store.alert_webhook().await?,
    })
}

pub async fn set_webhook(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(req): ApiJson<AlertWebhook>,
) -> ApiResult<Json<Value>> {
    s.store
        .set_alert_webhook(req.url.as_deref(), &actor)
        .await?;
    ok(req)
}
