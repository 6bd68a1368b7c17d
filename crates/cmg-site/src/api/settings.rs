//! The site-wide resources: health, the site itself, boundary groups, client settings,
//! bulk registration tokens, signing keys, the master key ring and the audit log.

use std::time::Duration;

use axum::extract::State;
use axum::{Extension, Json};
use http::StatusCode;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::doc::{Admin, BadBody, BadParam, Conflict, Internal, NotFound};
use super::error::ApiError;
use super::params::{ApiPath, ApiQuery, AuditQuery, BoundaryGroupPath, TokenPath};
use super::{ok, ApiJson, ApiResult, AppState};
use crate::model::*;
use crate::store::Actor;

/// `GET /api/v1/health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    /// The site code.
    pub site: String,
}

#[utoipa::path(get, path = "/api/v1/health", operation_id = "get_health", tag = "site",
    security(()),
    responses((status = 200, description = "The site is up and initialised", body = Health), Internal))]
pub(super) async fn health(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    let site = s.store.site().await?;
    ok(Health {
        status: "ok".into(),
        site: site.code,
    })
}

#[utoipa::path(get, path = "/api/v1/site", operation_id = "get_site", tag = "site",
    responses((status = 200, description = "The site: code, GUID, CA certificate", body = SiteView), Admin))]
pub(super) async fn site(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    ok(s.store.site().await?)
}

#[utoipa::path(get, path = "/api/v1/boundary-groups", operation_id = "get_boundary_groups",
    tag = "site",
    responses((status = 200, description = "Every boundary group", body = [BoundaryGroup]), Admin))]
pub(super) async fn boundary_groups(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    ok(s.store.boundary_groups().await?)
}

#[utoipa::path(put, path = "/api/v1/boundary-groups/{name}", operation_id = "put_boundary_group",
    tag = "site", params(BoundaryGroupPath), request_body = BoundaryGroupSet,
    responses(
        (status = 200, description = "Created or replaced", body = BoundaryGroup, links(
            ("DeleteBoundaryGroup" = (operation_id = "delete_boundary_group",
                parameters(("name" = "$response.body#/name")))),
        )),
        BadBody,
        (status = 404, description = "A gateway it names is not on record (`not_found`)",
            body = crate::model::ApiErrorBody),
        Admin))]
pub(super) async fn put_boundary_group(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(p): ApiPath<BoundaryGroupPath>,
    ApiJson(body): ApiJson<BoundaryGroupSet>,
) -> ApiResult<Json<Value>> {
    let g = body.named(p.name);
    s.store.put_boundary_group(&g, &actor).await?;
    ok(g)
}

#[utoipa::path(delete, path = "/api/v1/boundary-groups/{name}", operation_id = "delete_boundary_group",
    tag = "site", params(BoundaryGroupPath),
    responses((status = 204, description = "Deleted"), BadParam, NotFound, Admin))]
pub(super) async fn delete_boundary_group(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(p): ApiPath<BoundaryGroupPath>,
) -> ApiResult<StatusCode> {
    s.store.delete_boundary_group(&p.name, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/client-settings", operation_id = "get_client_settings",
    tag = "site",
    responses((status = 200, description = "The client settings", body = ClientSettings), Admin))]
pub(super) async fn client_settings(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    ok(s.store.client_settings().await?)
}

#[utoipa::path(put, path = "/api/v1/client-settings", operation_id = "set_client_settings",
    tag = "site", request_body = ClientSettings,
    responses((status = 200, description = "Set", body = ClientSettings), BadBody, Admin))]
pub(super) async fn set_client_settings(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(req): ApiJson<ClientSettings>,
) -> ApiResult<Json<Value>> {
    s.store.set_client_settings(&req, &actor).await?;
    ok(req)
}

#[utoipa::path(get, path = "/api/v1/tokens", operation_id = "get_tokens", tag = "tokens",
    responses((status = 200, description = "Every bulk registration token issued (never the token)",
        body = [TokenView]), Admin))]
pub(super) async fn tokens(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    ok(s.store.tokens().await?)
}

#[utoipa::path(post, path = "/api/v1/tokens", operation_id = "new_token", tag = "tokens",
    request_body = TokenNew,
    responses(
        (status = 201, description = "Issued: the token is in this answer only", body = TokenIssued, links(
            ("BlockToken" = (operation_id = "block_token", parameters(("id" = "$response.body#/tracking_id")))),
            ("UnblockToken" = (operation_id = "unblock_token", parameters(("id" = "$response.body#/tracking_id")))),
        )),
        BadBody, Admin))]
pub(super) async fn new_token(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(req): ApiJson<TokenNew>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    Ok((
        StatusCode::CREATED,
        ok(s.store.new_token(req.lifetime_minutes, &actor).await?)?,
    ))
}

#[utoipa::path(post, path = "/api/v1/tokens/{id}/block", operation_id = "block_token", tag = "tokens",
    params(TokenPath),
    responses((status = 204, description = "Blocked: the token is refused from now on"),
        BadParam, NotFound, Admin))]
pub(super) async fn block_token(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(p): ApiPath<TokenPath>,
) -> ApiResult<StatusCode> {
    s.store.set_token_blocked(&p.id, true, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/tokens/{id}/unblock", operation_id = "unblock_token",
    tag = "tokens", params(TokenPath),
    responses((status = 204, description = "Unblocked"), BadParam, NotFound, Admin))]
pub(super) async fn unblock_token(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(p): ApiPath<TokenPath>,
) -> ApiResult<StatusCode> {
    s.store.set_token_blocked(&p.id, false, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/keys", operation_id = "get_keys", tag = "site",
    responses((status = 200, description = "The site's token signing keys", body = [KeyView]), Admin))]
pub(super) async fn keys(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    ok(s.store.keys().await?)
}

#[utoipa::path(post, path = "/api/v1/keys/roll", operation_id = "roll_key", tag = "site",
    request_body = KeyRoll,
    responses((status = 200, description = "The new signing key", body = KeyView), BadBody, Admin))]
pub(super) async fn roll_key(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(req): ApiJson<KeyRoll>,
) -> ApiResult<Json<Value>> {
    ok(roll(&s, &req, &actor).await?)
}

/// Rolls the signing key (the API's and the web console's way): the overlap checked,
/// then the store's change.
pub(crate) async fn roll(s: &AppState, req: &KeyRoll, actor: &Actor) -> ApiResult<KeyView> {
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
    Ok(s.store
        .roll_key(Duration::from_secs(hours * 3600), actor)
        .await?)
}

#[utoipa::path(get, path = "/api/v1/keys/master", operation_id = "get_master_key", tag = "site",
    responses((status = 200, description = "The master key ring (key ids) and how many sealed \
        values name each key", body = MasterKeyStatus), Admin))]
pub(super) async fn master_key(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    ok(s.store.master_key_status().await?)
}

#[utoipa::path(post, path = "/api/v1/keys/master/rewrap", operation_id = "rewrap_master_key",
    tag = "site",
    responses((status = 200, description = "The ring was read again and every sealed value \
        sealed with its newest key", body = MasterKeyRewrap), Conflict, Admin))]
pub(super) async fn rewrap_master_key(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> ApiResult<Json<Value>> {
    ok(s.store.rewrap_secrets(&actor).await?)
}

#[utoipa::path(get, path = "/api/v1/audit", operation_id = "get_audit", tag = "site",
    params(AuditQuery),
    responses((status = 200, description = "Audit entries, newest first", body = [AuditEntry]),
        BadParam, Admin))]
pub(super) async fn audit(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Value>> {
    ok(s.store.audit(q.limit.unwrap_or(100), q.before).await?)
}
