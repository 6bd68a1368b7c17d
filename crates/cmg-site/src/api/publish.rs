//! The publishing API for connection points, authenticated by their client certificate
//! (issued by the site CA, verified in the TLS handshake; here its identity must be a
//! connection point on record, with this very certificate, serving the gateway asked for).
//!
//! `GET /api/v1/publish/gateways/{name}/bundle?after=V` is a long poll: the signed bundle
//! at once when the gateway's version is above `V`, else when a change makes it so, else
//! 204 after the wait (default 30 s) or as soon as the site starts stopping.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use cmg_pki::describe::{connector_identity, describe};
use http::StatusCode;
use rustls_pki_types::CertificateDer;

use super::doc::{BadParam, NotFound, Publish};
use super::error::ApiError;
use super::params::{ApiPath, ApiQuery, BundleQuery, GatewayPath};
use super::AppState;
use crate::model::PublishedMappings;

/// The verified client certificate of the connection, if one was presented.
#[derive(Debug, Clone, Default)]
pub struct PeerCert(pub Option<CertificateDer<'static>>);

/// The header carrying the bundle's version on a 200.
pub const VERSION_HEADER: &str = "cmg-settings-version";

pub(super) async fn authorize(
    state: &AppState,
    peer: &PeerCert,
    gateway: &str,
) -> Result<String, ApiError> {
    let Some(cert) = &peer.0 else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "client_certificate_required",
            "the publishing API needs a connection point certificate issued by the site CA",
        ));
    };
    let forbidden = |m: String| ApiError::new(StatusCode::FORBIDDEN, "not_a_connection_point", m);
    let (site, id) = connector_identity(cert).map_err(|e| forbidden(e.to_string()))?;
    let ours = state.store.site().await?;
    if site.as_str() != ours.code {
        return Err(forbidden(format!(
            "certificate is for site {site}, this is {}",
            ours.code
        )));
    }
    let sha = describe(cert)
        .map_err(|e| forbidden(e.to_string()))?
        .sha256_hex;
    match state
        .store
        .connection_point_gateway(id.as_str(), &sha)
        .await?
    {
        Some(g) if g == gateway => Ok(id.to_string()),
        Some(g) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_gateway",
            format!("connection point {id} serves gateway {g}, not {gateway}"),
        )),
        None => Err(forbidden(format!(
            "connection point {id} with this certificate is not on record (removed or re-issued)"
        ))),
    }
}

#[utoipa::path(get, path = "/api/v1/publish/gateways/{name}/bundle", operation_id = "get_published_bundle",
    tag = "publishing", params(GatewayPath, BundleQuery), security(("connectionPointCertificate" = [])),
    responses(
        (status = 200, description = "The signed settings bundle (JWS compact)", content_type = "application/jose",
            body = String, headers(("cmg-settings-version" = u64, description = "The bundle's version"))),
        (status = 204, description = "No newer version within the wait"),
        BadParam, NotFound, Publish))]
pub async fn bundle(
    State(state): State<AppState>,
    Extension(peer): Extension<PeerCert>,
    ApiPath(p): ApiPath<GatewayPath>,
    ApiQuery(q): ApiQuery<BundleQuery>,
) -> Result<Response, ApiError> {
    let name = p.name;
    let cp = authorize(&state, &peer, &name).await?;
    let wait = q
        .wait
        .map(Duration::from_secs)
        .unwrap_or(state.long_poll)
        .min(state.long_poll);
    let deadline = tokio::time::Instant::now() + wait;
    let mut changes = state.store.subscribe();
    loop {
        changes.borrow_and_update();
        let version = state.store.settings_version(&name).await?;
        if version > q.after {
            let signed = state.store.signed_bundle(&name).await?;
            tracing::info!(gateway = %name, connection_point = %cp, version = signed.version, "bundle published");
            let mut resp = signed.jws.into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/jose"),
            );
            resp.headers_mut()
                .insert(VERSION_HEADER, HeaderValue::from(signed.version));
            return Ok(resp);
        }
        // Woken by a change in this process; changes made by another process (the CLI on
        // the same database) are seen by the periodic re-read.
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = tokio::time::sleep_until(deadline) => return Ok(StatusCode::NO_CONTENT.into_response()),
            // A stopping site answers "no newer version" at once: its drain must not wait
            // out the long polls.
            _ = state.stopping.token.cancelled() => return Ok(StatusCode::NO_CONTENT.into_response()),
        }
    }
}

#[utoipa::path(get, path = "/api/v1/publish/gateways/{name}/mappings", operation_id = "get_published_mappings",
    tag = "publishing", params(GatewayPath), security(("connectionPointCertificate" = [])),
    responses((status = 200, description = "The URL mappings the gateway publishes", body = PublishedMappings),
        BadParam, NotFound, Publish))]
pub async fn mappings(
    State(state): State<AppState>,
    Extension(peer): Extension<PeerCert>,
    ApiPath(p): ApiPath<GatewayPath>,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&state, &peer, &p.name).await?;
    let m = state.store.published_mappings(&p.name).await?;
    serde_json::to_value(m)
        .map(Json)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}
