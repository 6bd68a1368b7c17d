//! The site's HTTP API (JSON): the admin API under `/api/v1` (bearer admin token) and the
//! publishing API under `/api/v1/publish` (connection point client certificate). Each
//! handler carries its `#[utoipa::path]`; [`router`] registers it once, for the axum
//! router and the API document together ([`openapi`], served at
//! `GET /api/v1/openapi.json`), so the document describes what is served.

pub(crate) mod auth;
mod doc;
pub mod error;
pub(crate) mod gateways;
mod json;
mod location;
pub mod params;
mod publish;
mod reports;
mod roles;
pub(crate) mod settings;
mod sts;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::{Extension, Json, Router};
use http::StatusCode;
use serde_json::Value;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{digest as token_digest, ADMIN_NAME_HEADER};
use error::ApiError;
pub use json::ApiJson;
pub use publish::PeerCert;

use crate::alerts::Notifier;
use crate::metrics::Metrics;
use crate::store::{ExportListen, Store};

/// Largest request body (a gateway with its chain, key and trusted certificates fits).
pub const MAX_BODY: usize = 1 << 20;

/// The web console's default session lifetime: 30 minutes idle, 12 hours at most.
pub const CONSOLE_SESSION: crate::store::SessionLifetime = crate::store::SessionLifetime {
    idle: 30 * 60,
    absolute: 12 * 3600,
};

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
    /// How long a web console session lives.
    pub console_session: crate::store::SessionLifetime,
    /// The server's shutdown: a parked bundle long poll answers 204 as soon as it is
    /// cancelled, so that a stopping site drains at once rather than at its grace end.
    pub(crate) stopping: cmg_core::Shutdown,
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
            console_session: CONSOLE_SESSION,
            stopping: cmg_core::Shutdown::default(),
        }
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

fn ok(v: impl serde::Serialize) -> ApiResult<Json<Value>> {
    serde_json::to_value(v)
        .map(Json)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

/// The admin routes (bearer admin token), without the token check.
fn admin_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(doc::ApiDoc::openapi())
        .routes(routes!(settings::site))
        .routes(routes!(gateways::gateways, gateways::create_gateway))
        .routes(routes!(
            gateways::gateway,
            gateways::modify_gateway,
            gateways::delete_gateway
        ))
        .routes(routes!(gateways::redeploy_gateway))
        .routes(routes!(gateways::export_gateway))
        .routes(routes!(gateways::admin_bundle))
        .routes(routes!(gateways::storage, gateways::set_storage))
        .routes(routes!(gateways::rotate_storage))
        .routes(routes!(roles::roles, roles::create_role))
        .routes(routes!(roles::role, roles::modify_role, roles::delete_role))
        .routes(routes!(
            roles::connection_points,
            roles::add_connection_point
        ))
        .routes(routes!(roles::remove_connection_point))
        .routes(routes!(settings::boundary_groups))
        .routes(routes!(
            settings::put_boundary_group,
            settings::delete_boundary_group
        ))
        .routes(routes!(
            settings::client_settings,
            settings::set_client_settings
        ))
        .routes(routes!(settings::tokens, settings::new_token))
        .routes(routes!(settings::block_token))
        .routes(routes!(settings::unblock_token))
        .routes(routes!(settings::keys))
        .routes(routes!(settings::roll_key))
        .routes(routes!(settings::master_key))
        .routes(routes!(settings::rewrap_master_key))
        .routes(routes!(settings::audit))
        .routes(routes!(reports::status))
        .routes(routes!(reports::traffic))
        .routes(routes!(reports::traffic_series))
        .routes(routes!(reports::alerts))
        .routes(routes!(reports::clear_alert))
        .routes(routes!(reports::webhook, reports::set_webhook))
        .routes(routes!(location::clients))
}

/// The routes without the admin token: health, this document, the publishing API
/// (connection point certificate), the token service (site token) and the location
/// service (client certificate or device token).
fn other_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(settings::health))
        .routes(routes!(doc::openapi_json))
        .routes(routes!(publish::bundle))
        .routes(routes!(publish::mappings))
        .routes(routes!(reports::report))
        .routes(routes!(sts::token))
        .routes(routes!(location::register))
        .routes(routes!(location::locate))
        .routes(routes!(location::management_points))
}

/// The API document of what [`router`] serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    admin_routes().merge(other_routes()).into_openapi()
}

/// The whole router.
pub fn router(state: AppState) -> Router {
    let admin = admin_routes().route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_admin,
    ));
    let (router, doc) = admin.merge(other_routes()).split_for_parts();
    router
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(Arc::new(doc)))
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
