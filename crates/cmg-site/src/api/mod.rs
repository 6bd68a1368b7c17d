//! The site's HTTP API (JSON): the admin API under `/api/v1` (bearer admin token) and the
//! publishing API under `/api/v1/publish` (connection point client certificate). The
//! OpenAPI description is `openapi.json` at the crate root; a test checks it against
//! [`ROUTES`] and [`ROUTES`] against the router.

mod auth;
pub mod error;
mod publish;
mod reports;
mod sts;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

pub use auth::{digest as token_digest, ADMIN_NAME_HEADER};
use error::ApiError;
pub use publish::PeerCert;

use crate::alerts::Notifier;
use crate::metrics::Metrics;
use crate::model::*;
use crate::store::{Actor, ExportListen, Store};

/// Largest request body (a gateway with its chain, key and trusted certificates fits).
pub const MAX_BODY: usize = 1 << 20;

/// Every route the router serves: (method, path). Kept in step with `openapi.json` by a test.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/site"),
    ("GET", "/api/v1/gateways"),
    ("POST", "/api/v1/gateways"),
    ("GET", "/api/v1/gateways/{name}"),
    ("PATCH", "/api/v1/gateways/{name}"),
    ("DELETE", "/api/v1/gateways/{name}"),
    ("POST", "/api/v1/gateways/{name}/redeploy"),
    ("POST", "/api/v1/gateways/{name}/export"),
    ("GET", "/api/v1/gateways/{name}/bundle"),
    ("GET", "/api/v1/gateways/{name}/storage"),
    ("PUT", "/api/v1/gateways/{name}/storage"),
    ("POST", "/api/v1/gateways/{name}/storage/rotate"),
    ("GET", "/api/v1/roles"),
    ("POST", "/api/v1/roles"),
    ("GET", "/api/v1/roles/{id}"),
    ("PATCH", "/api/v1/roles/{id}"),
    ("DELETE", "/api/v1/roles/{id}"),
    ("GET", "/api/v1/connection-points"),
    ("POST", "/api/v1/connection-points"),
    ("DELETE", "/api/v1/connection-points/{id}"),
    ("GET", "/api/v1/boundary-groups"),
    ("PUT", "/api/v1/boundary-groups/{name}"),
    ("DELETE", "/api/v1/boundary-groups/{name}"),
    ("GET", "/api/v1/client-settings"),
    ("PUT", "/api/v1/client-settings"),
    ("GET", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens/{id}/block"),
    ("POST", "/api/v1/tokens/{id}/unblock"),
    ("GET", "/api/v1/keys"),
    ("POST", "/api/v1/keys/roll"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/status"),
    ("GET", "/api/v1/traffic"),
    ("GET", "/api/v1/alerts"),
    ("POST", "/api/v1/gateways/{name}/alert/clear"),
    ("GET", "/api/v1/alert-webhook"),
    ("PUT", "/api/v1/alert-webhook"),
    ("GET", "/api/v1/publish/gateways/{name}/bundle"),
    ("GET", "/api/v1/publish/gateways/{name}/mappings"),
    ("POST", "/api/v1/publish/gateways/{name}/report"),
    ("POST", "/api/v1/sts/token"),
];

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub(crate) admin_token_sha256: [u8; 32],
    /// Longest wait of a bundle long poll.
    pub long_poll: Duration,
    pub export_listen: Arc<ExportListen>,
    /// How often connection points report; twice this without a report is stale.
    pub report_interval: Duration,
    /// Evaluates alerts and posts them to the webhook.
    pub notifier: Notifier,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn new(
        store: Store,
        admin_token: &crate::Secret,
        long_poll: Duration,
        notifier: Notifier,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            admin_token_sha256: auth::digest(admin_token.expose()),
            long_poll,
            export_listen: Arc::new(ExportListen::default()),
            report_interval: Duration::from_secs(300),
            notifier,
            metrics,
        }
    }
}

/// A JSON body: unknown fields, bad JSON, a wrong content type or an oversized body are
/// refused with the API's error shape.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| Self(v))
            .map_err(ApiError::from)
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn ok(v: impl serde::Serialize) -> ApiResult<Json<Value>> {
    serde_json::to_value(v)
        .map(Json)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

/// The whole router.
pub fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/api/v1/site", get(site))
        .route("/api/v1/gateways", get(gateways).post(create_gateway))
        .route(
            "/api/v1/gateways/{name}",
            get(gateway).patch(modify_gateway).delete(delete_gateway),
        )
        .route("/api/v1/gateways/{name}/redeploy", post(redeploy_gateway))
        .route("/api/v1/gateways/{name}/export", post(export_gateway))
        .route("/api/v1/gateways/{name}/bundle", get(admin_bundle))
        .route(
            "/api/v1/gateways/{name}/storage",
            get(storage).put(set_storage),
        )
        .route(
            "/api/v1/gateways/{name}/storage/rotate",
            post(rotate_storage),
        )
        .route("/api/v1/roles", get(roles).post(create_role))
        .route(
            "/api/v1/roles/{id}",
            get(role).patch(modify_role).delete(delete_role),
        )
        .route(
            "/api/v1/connection-points",
            get(connection_points).post(add_connection_point),
        )
        .route(
            "/api/v1/connection-points/{id}",
            axum::routing::delete(remove_connection_point),
        )
        .route("/api/v1/boundary-groups", get(boundary_groups))
        .route(
            "/api/v1/boundary-groups/{name}",
            axum::routing::put(put_boundary_group).delete(delete_boundary_group),
        )
        .route(
            "/api/v1/client-settings",
            get(client_settings).put(set_client_settings),
        )
        .route("/api/v1/tokens", get(tokens).post(new_token))
        .route("/api/v1/tokens/{id}/block", post(block_token))
        .route("/api/v1/tokens/{id}/unblock", post(unblock_token))
        .route("/api/v1/keys", get(keys))
        .route("/api/v1/keys/roll", post(roll_key))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/status", get(reports::status))
        .route("/api/v1/traffic", get(reports::traffic))
        .route("/api/v1/alerts", get(reports::alerts))
        .route(
            "/api/v1/gateways/{name}/alert/clear",
            post(reports::clear_alert),
        )
        .route(
            "/api/v1/alert-webhook",
            get(reports::webhook).put(reports::set_webhook),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ));
    let publish = Router::new()
        .route(
            "/api/v1/publish/gateways/{name}/bundle",
            get(publish::bundle),
        )
        .route(
            "/api/v1/publish/gateways/{name}/mappings",
            get(publish::mappings),
        )
        .route(
            "/api/v1/publish/gateways/{name}/report",
            post(reports::report),
        );
    Router::new()
        .route("/api/v1/health", get(health))
        .merge(admin)
        .merge(publish)
        .merge(sts::routes())
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such API path")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this API path does not take that method",
    )
}

async fn health(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    let site = s.store.site().await?;
    ok(json!({"status": "ok", "site": site.code}))
}

async fn site(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    ok(s.store.site().await?)
}

async fn gateways(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    ok(s.store.gateways().await?)
}

async fn create_gateway(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(req): ApiJson<GatewayCreate>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    Ok((
        StatusCode::CREATED,
        ok(s.store.create_gateway(req, &actor).await?)?,
    ))
}

async fn gateway(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    ok(s.store.gateway(&name).await?)
}

async fn modify_gateway(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<GatewayModify>,
) -> ApiResult<Json<Value>> {
    let alert_changed = req.alert.is_some();
    let changed = s.store.modify_gateway(&name, req, &actor).await?;
    if alert_changed {
        // A new threshold may raise or clear the alert at once.
        s.notifier.evaluate(&s.store, Some(&name)).await;
    }
    ok(changed)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

async fn delete_gateway(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    q: Result<Query<DeleteQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<StatusCode> {
    let Query(q) = q?;
    s.store.delete_gateway(&name, q.force, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn redeploy_gateway(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<GatewayRedeploy>,
) -> ApiResult<Json<Value>> {
    ok(s.store.redeploy_gateway(&name, req, &actor).await?)
}

async fn export_gateway(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<ExportRequest>,
) -> ApiResult<Json<Value>> {
    let listen = ExportListen {
        client: req
            .client_listen
            .clone()
            .unwrap_or_else(|| s.export_listen.client.clone()),
        channel: req
            .channel_listen
            .clone()
            .unwrap_or_else(|| s.export_listen.channel.clone()),
        admin: req
            .admin_listen
            .clone()
            .or_else(|| s.export_listen.admin.clone()),
    };
    ok(s.store.export(&name, &req, &listen, &actor).await?)
}

async fn admin_bundle(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut bundle = s.store.bundle(&name).await?;
    // The storage key goes to the gateways in the signed bundle, never to an API client.
    if let Some(account) = bundle.content.storage.as_mut() {
        account.key = "<redacted>".into();
    }
    ok(bundle)
}

async fn storage(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    ok(s.store.storage(&name).await?)
}

async fn set_storage(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<StorageSet>,
) -> ApiResult<Json<Value>> {
    ok(s.store.set_storage(&name, req, &actor).await?)
}

async fn rotate_storage(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let (view, changed) = s.store.rotate_storage_key(&name, "manual", &actor).await?;
    ok(json!({"storage": view, "settings_version": changed.settings_version}))
}

async fn roles(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    ok(s.store.roles().await?)
}

async fn create_role(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(req): ApiJson<RoleCreate>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    Ok((
        StatusCode::CREATED,
        ok(s.store.create_role(req, &actor).await?)?,
    ))
}

async fn role(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    ok(s.store.role(&id).await?)
}

async fn modify_role(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RoleModify>,
) -> ApiResult<Json<Value>> {
    ok(s.store.modify_role(&id, req, &actor).await?)
}

async fn delete_role(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_role(&id, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn connection_points(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    ok(s.store.connection_points().await?)
}

async fn add_connection_point(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(req): ApiJson<ConnectionPointAdd>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    Ok((
        StatusCode::CREATED,
        ok(s.store.add_connection_point(req, &actor).await?)?,
    ))
}

async fn remove_connection_point(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.remove_connection_point(&id, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn boundary_groups(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    ok(s.store.boundary_groups().await?)
}

async fn put_boundary_group(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<BoundaryGroupSet>,
) -> ApiResult<Json<Value>> {
    let g = body.named(name);
    s.store.put_boundary_group(&g, &actor).await?;
    ok(g)
}

async fn delete_boundary_group(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.delete_boundary_group(&name, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn client_settings(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    ok(s.store.client_settings().await?)
}

async fn set_client_settings(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(req): ApiJson<ClientSettings>,
) -> ApiResult<Json<Value>> {
    s.store.set_client_settings(&req, &actor).await?;
    ok(req)
}

async fn tokens(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    ok(s.store.tokens().await?)
}

async fn new_token(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(req): ApiJson<TokenNew>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    Ok((
        StatusCode::CREATED,
        ok(s.store.new_token(req.lifetime_minutes, &actor).await?)?,
    ))
}

async fn block_token(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.set_token_blocked(&id, true, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unblock_token(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.store.set_token_blocked(&id, false, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn keys(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    ok(s.store.keys().await?)
}

async fn roll_key(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(req): ApiJson<KeyRoll>,
) -> ApiResult<Json<Value>> {
    let hours = req
        .overlap_hours
        .unwrap_or(crate::store::site::KEY_OVERLAP_DEFAULT_HOURS);
    if hours > 24 * 365 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_overlap",
            "overlap_hours is at most 8760 (a year)",
        ));
    }
    ok(s.store
        .roll_key(Duration::from_secs(hours * 3600), &actor)
        .await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    limit: Option<u32>,
    before: Option<i64>,
}

async fn audit(
    State(s): State<AppState>,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = q?;
    ok(s.store.audit(q.limit.unwrap_or(100), q.before).await?)
}
