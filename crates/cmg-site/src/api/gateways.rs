//! `/api/v1/gateways`: create, show, change, redeploy, export and delete gateways, their
//! (redacted) bundle and their content storage account.

use axum::extract::State;
use axum::{Extension, Json};
use http::StatusCode;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::doc::{Admin, BadBody, BadParam, Conflict, NotFound};
use super::params::{ApiPath, ApiQuery, DeleteQuery, GatewayPath};
use super::{ok, ApiJson, ApiResult, AppState};
use crate::model::*;
use crate::store::{Actor, ExportListen};

/// `POST /api/v1/gateways/{name}/storage/rotate`: the account after the rotation.
#[derive(Debug, Serialize, ToSchema)]
pub struct StorageRotated {
    pub storage: StorageView,
    pub settings_version: u64,
}

#[utoipa::path(get, path = "/api/v1/gateways", operation_id = "get_gateways", tag = "gateways",
    responses((status = 200, description = "Every gateway", body = [GatewayView]), Admin))]
pub(super) async fn gateways(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    ok(s.store.gateways().await?)
}

#[utoipa::path(post, path = "/api/v1/gateways", operation_id = "create_gateway", tag = "gateways",
    request_body = GatewayCreate,
    responses(
        (status = 201, description = "Created", body = GatewayView, links(
            ("GetGateway" = (operation_id = "get_gateway", parameters(("name" = "$response.body#/name")))),
            ("ModifyGateway" = (operation_id = "modify_gateway", parameters(("name" = "$response.body#/name")))),
            ("DeleteGateway" = (operation_id = "delete_gateway", parameters(("name" = "$response.body#/name")))),
            ("RedeployGateway" = (operation_id = "redeploy_gateway", parameters(("name" = "$response.body#/name")))),
            ("ExportGateway" = (operation_id = "export_gateway", parameters(("name" = "$response.body#/name")))),
            ("GetGatewayBundle" = (operation_id = "get_gateway_bundle", parameters(("name" = "$response.body#/name")))),
            ("GetStorage" = (operation_id = "get_storage", parameters(("name" = "$response.body#/name")))),
            ("SetStorage" = (operation_id = "set_storage", parameters(("name" = "$response.body#/name")))),
            ("ClearAlert" = (operation_id = "clear_alert", parameters(("name" = "$response.body#/name")))),
        )),
        BadBody, Conflict, Admin))]
pub(super) async fn create_gateway(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(req): ApiJson<GatewayCreate>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    Ok((
        StatusCode::CREATED,
        ok(s.store.create_gateway(req, &actor).await?)?,
    ))
}

#[utoipa::path(get, path = "/api/v1/gateways/{name}", operation_id = "get_gateway", tag = "gateways",
    params(GatewayPath),
    responses((status = 200, description = "The gateway", body = GatewayView), BadParam, NotFound, Admin))]
pub(super) async fn gateway(
    State(s): State<AppState>,
    ApiPath(p): ApiPath<GatewayPath>,
) -> ApiResult<Json<Value>> {
    ok(s.store.gateway(&p.name).await?)
}

#[utoipa::path(patch, path = "/api/v1/gateways/{name}", operation_id = "modify_gateway", tag = "gateways",
    params(GatewayPath), request_body = GatewayModify,
    responses((status = 200, description = "Changed", body = Changed), BadBody, NotFound, Conflict, Admin))]
pub(super) async fn modify_gateway(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(p): ApiPath<GatewayPath>,
    ApiJson(req): ApiJson<GatewayModify>,
) -> ApiResult<Json<Value>> {
    ok(modify(&s, &p.name, req, &actor).await?)
}

/// Changes a gateway's settings (the API's and the web console's way): the store's
/// change, then the alert evaluated again when its settings changed.
pub(crate) async fn modify(
    s: &AppState,
    name: &str,
    req: GatewayModify,
    actor: &Actor,
) -> ApiResult<Changed> {
    let alert_changed = req.alert.is_some();
    let changed = s.store.modify_gateway(name, req, actor).await?;
    if alert_changed {
        // A new threshold may raise or clear the alert at once.
        s.notifier.evaluate(&s.store, Some(name)).await;
    }
    Ok(changed)
}

#[utoipa::path(delete, path = "/api/v1/gateways/{name}", operation_id = "delete_gateway", tag = "gateways",
    params(GatewayPath, DeleteQuery),
    responses((status = 204, description = "Deleted"), BadParam, NotFound,
        (status = 409, description = "Connection points are on record and `force` is not set",
            body = crate::model::ApiErrorBody),
        Admin))]
pub(super) async fn delete_gateway(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(p): ApiPath<GatewayPath>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> ApiResult<StatusCode> {
    s.store.delete_gateway(&p.name, q.force, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/gateways/{name}/redeploy", operation_id = "redeploy_gateway",
    tag = "gateways", params(GatewayPath), request_body = GatewayRedeploy,
    responses((status = 200, description = "Changed", body = Changed), BadBody, NotFound, Admin))]
pub(super) async fn redeploy_gateway(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(p): ApiPath<GatewayPath>,
    ApiJson(req): ApiJson<GatewayRedeploy>,
) -> ApiResult<Json<Value>> {
    ok(s.store.redeploy_gateway(&p.name, req, &actor).await?)
}

#[utoipa::path(post, path = "/api/v1/gateways/{name}/export", operation_id = "export_gateway",
    tag = "gateways", params(GatewayPath), request_body = ExportRequest,
    responses((status = 200, description = "The instance's deployment package", body = ExportPackage),
        BadBody, NotFound, Admin))]
pub(super) async fn export_gateway(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(p): ApiPath<GatewayPath>,
    ApiJson(req): ApiJson<ExportRequest>,
) -> ApiResult<Json<Value>> {
    ok(export(&s, &p.name, &req, &actor).await?)
}

/// An instance's deployment package (the API's and the web console's way): the
/// request's listen addresses, else the server's defaults.
pub(crate) async fn export(
    s: &AppState,
    name: &str,
    req: &ExportRequest,
    actor: &Actor,
) -> ApiResult<ExportPackage> {
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
    Ok(s.store.export(name, req, &listen, actor).await?)
}

#[utoipa::path(get, path = "/api/v1/gateways/{name}/bundle", operation_id = "get_gateway_bundle",
    tag = "gateways", params(GatewayPath),
    responses((status = 200, description = "The settings bundle the gateway gets, its storage key \
        sealed to each instance (`cmg_proto::settings::SettingsBundle`)", body = Object),
        BadParam, NotFound, Admin))]
pub(super) async fn admin_bundle(
    State(s): State<AppState>,
    ApiPath(p): ApiPath<GatewayPath>,
) -> ApiResult<Json<Value>> {
    // The storage key is in it only sealed to the instances, which alone open it.
    ok(s.store.bundle(&p.name).await?)
}

#[utoipa::path(get, path = "/api/v1/gateways/{name}/storage", operation_id = "get_storage",
    tag = "gateways", params(GatewayPath),
    responses((status = 200, description = "The content storage account (never a key)", body = StorageView),
        BadParam, NotFound, Admin))]
pub(super) async fn storage(
    State(s): State<AppState>,
    ApiPath(p): ApiPath<GatewayPath>,
) -> ApiResult<Json<Value>> {
    ok(s.store.storage(&p.name).await?)
}

#[utoipa::path(put, path = "/api/v1/gateways/{name}/storage", operation_id = "set_storage",
    tag = "gateways", params(GatewayPath), request_body = StorageSet,
    responses((status = 200, description = "The account set", body = StorageView,
        links(("RotateStorage" = (operation_id = "rotate_storage", parameters(("name" = "$response.body#/gateway")))))),
        BadBody, NotFound, Admin))]
pub(super) async fn set_storage(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(p): ApiPath<GatewayPath>,
    ApiJson(req): ApiJson<StorageSet>,
) -> ApiResult<Json<Value>> {
    ok(s.store.set_storage(&p.name, req, &actor).await?)
}

#[utoipa::path(post, path = "/api/v1/gateways/{name}/storage/rotate", operation_id = "rotate_storage",
    tag = "gateways", params(GatewayPath),
    responses((status = 200, description = "Rotated to the other key", body = StorageRotated),
        BadParam, NotFound, Admin))]
pub(super) async fn rotate_storage(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(p): ApiPath<GatewayPath>,
) -> ApiResult<Json<Value>> {
    let (view, changed) = s
        .store
        .rotate_storage_key(&p.name, "manual", &actor)
        .await?;
    ok(StorageRotated {
        storage: view,
        settings_version: changed.settings_version,
    })
}
