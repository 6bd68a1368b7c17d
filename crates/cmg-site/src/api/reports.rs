//! Reports in, health and traffic out: the connection points' report endpoint
//! (publishing API) and the admin views of status, traffic and alerts.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::{Extension, Json};
use cmg_proto::report::{ConnectionPointReport, MAX_REPORT_BYTES};
use http::{header, StatusCode};
use serde_json::Value;

use super::doc::{Admin, BadBody, BadParam, NotFound, Publish};
use super::error::ApiError;
use super::params::{
    AlertParams, ApiPath, ApiQuery, GatewayPath, TrafficParams, TrafficSeriesParams,
};
use super::publish::{authorize, PeerCert};
use super::{ok, ApiJson, ApiResult, AppState};
use crate::model::{
    AlertView, AlertWebhook, Changed, EndpointTrafficView, GatewayStatus, TrafficPoint,
    TrafficQuery, TrafficSeriesQuery,
};
use crate::store::Actor;

/// `POST /api/v1/publish/gateways/{name}/report`: the certificate is checked before the
/// body is read; the body must name the same connection point and gateway.
#[utoipa::path(post, path = "/api/v1/publish/gateways/{name}/report", operation_id = "post_report",
    tag = "publishing", params(GatewayPath), security(("connectionPointCertificate" = [])),
    request_body(content = Object, content_type = "application/json",
        description = "A `cmg_proto::report::ConnectionPointReport`, at most 1 MiB"),
    responses((status = 204, description = "Stored"), BadBody, NotFound, Publish))]
pub async fn report(
    State(state): State<AppState>,
    Extension(peer): Extension<PeerCert>,
    ApiPath(p): ApiPath<GatewayPath>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    let name = p.name;
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

#[utoipa::path(get, path = "/api/v1/status", operation_id = "get_status", tag = "reports",
    responses((status = 200, description = "Each gateway's status", body = [GatewayStatus]), Admin))]
pub async fn status(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    ok(s.store
        .gateway_statuses(s.report_interval, crate::now())
        .await?)
}

#[utoipa::path(get, path = "/api/v1/traffic", operation_id = "get_traffic", tag = "reports",
    params(TrafficParams),
    responses((status = 200, description = "Traffic per endpoint over the period", body = [EndpointTrafficView]),
        BadParam,
        (status = 404, description = "The gateway is not on record (`not_found`)", body = crate::model::ApiErrorBody),
        Admin))]
pub async fn traffic(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<TrafficParams>,
) -> ApiResult<Json<Value>> {
    let period = q.period_secs();
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

/// `GET /api/v1/traffic/series`: one gateway's traffic per step, what the console's
/// traffic charts draw.
#[utoipa::path(get, path = "/api/v1/traffic/series", operation_id = "get_traffic_series", tag = "reports",
    params(TrafficSeriesParams),
    responses((status = 200, description = "The gateway's traffic per step over the period, oldest first; \
        a step without traffic is left out, and the steps add up to `GET /api/v1/traffic`'s totals", body = [TrafficPoint]),
        BadParam,
        (status = 404, description = "The gateway is not on record (`not_found`)", body = crate::model::ApiErrorBody),
        Admin))]
pub async fn traffic_series(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<TrafficSeriesParams>,
) -> ApiResult<Json<Value>> {
    s.store.gateway_row(&q.gateway).await?;
    let (since, step) = (crate::now() - q.period_secs() as i64, q.step_secs());
    ok(s.store
        .traffic_series(&TrafficSeriesQuery {
            gateway: q.gateway,
            endpoint: q.endpoint,
            since,
            step,
        })
        .await?)
}

/// `GET /api/v1/alerts`: the active alerts, or with `all=true` the history.
#[utoipa::path(get, path = "/api/v1/alerts", operation_id = "get_alerts", tag = "reports",
    params(AlertParams),
    responses((status = 200, description = "Alerts, newest first", body = [AlertView]), BadParam, Admin))]
pub async fn alerts(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<AlertParams>,
) -> ApiResult<Json<Value>> {
    ok(s.store.alerts(!q.all, q.limit.unwrap_or(100)).await?)
}

#[utoipa::path(post, path = "/api/v1/gateways/{name}/alert/clear", operation_id = "clear_alert",
    tag = "reports", params(GatewayPath),
    responses((status = 200, description = "The service stop is cleared", body = Changed),
        BadParam, NotFound,
        (status = 409, description = "The service is not stopped by an alert", body = crate::model::ApiErrorBody),
        Admin))]
pub async fn clear_alert(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(p): ApiPath<GatewayPath>,
) -> ApiResult<Json<Value>> {
    ok(s.store.clear_alert_stop(&p.name, &actor).await?)
}

#[utoipa::path(get, path = "/api/v1/alert-webhook", operation_id = "get_alert_webhook", tag = "reports",
    responses((status = 200, description = "The alert webhook", body = AlertWebhook), Admin))]
pub async fn webhook(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    ok(AlertWebhook {
        url: s.store.alert_webhook().await?,
    })
}

#[utoipa::path(put, path = "/api/v1/alert-webhook", operation_id = "set_alert_webhook", tag = "reports",
    request_body = AlertWebhook,
    responses((status = 200, description = "Set", body = AlertWebhook), BadBody, Admin))]
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
