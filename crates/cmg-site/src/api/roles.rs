//! `/api/v1/roles` and `/api/v1/connection-points`: the roles clients reach through the
//! gateways (with their generated URL mappings) and the connection points that relay
//! them.

use axum::extract::State;
use axum::{Extension, Json};
use http::StatusCode;
use serde_json::Value;

use super::doc::{Admin, BadBody, BadParam, Conflict, NotFound};
use super::params::{ApiPath, ConnectionPointPath, RolePath};
use super::{ok, ApiJson, ApiResult, AppState};
use crate::model::*;
use crate::store::Actor;

#[utoipa::path(get, path = "/api/v1/roles", operation_id = "get_roles", tag = "roles",
    responses((status = 200, description = "Every role", body = [RoleView]), Admin))]
pub(super) async fn roles(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    ok(s.store.roles().await?)
}

#[utoipa::path(post, path = "/api/v1/roles", operation_id = "create_role", tag = "roles",
    request_body = RoleCreate,
    responses(
        (status = 201, description = "Created", body = RoleView, links(
            ("GetRole" = (operation_id = "get_role", parameters(("id" = "$response.body#/role_id")))),
            ("ModifyRole" = (operation_id = "modify_role", parameters(("id" = "$response.body#/role_id")))),
            ("DeleteRole" = (operation_id = "delete_role", parameters(("id" = "$response.body#/role_id")))),
        )),
        BadBody, Conflict, Admin))]
pub(super) async fn create_role(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(req): ApiJson<RoleCreate>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    Ok((
        StatusCode::CREATED,
        ok(s.store.create_role(req, &actor).await?)?,
    ))
}

#[utoipa::path(get, path = "/api/v1/roles/{id}", operation_id = "get_role", tag = "roles",
    params(RolePath),
    responses((status = 200, description = "The role", body = RoleView), BadParam, NotFound, Admin))]
pub(super) async fn role(
    State(s): State<AppState>,
    ApiPath(p): ApiPath<RolePath>,
) -> ApiResult<Json<Value>> {
    ok(s.store.role(&p.id).await?)
}

#[utoipa::path(patch, path = "/api/v1/roles/{id}", operation_id = "modify_role", tag = "roles",
    params(RolePath), request_body = RoleModify,
    responses((status = 200, description = "The role as changed", body = RoleView), BadBody, NotFound, Admin))]
pub(super) async fn modify_role(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(p): ApiPath<RolePath>,
    ApiJson(req): ApiJson<RoleModify>,
) -> ApiResult<Json<Value>> {
    ok(s.store.modify_role(&p.id, req, &actor).await?)
}

#[utoipa::path(delete, path = "/api/v1/roles/{id}", operation_id = "delete_role", tag = "roles",
    params(RolePath),
    responses((status = 204, description = "Deleted"), BadParam, NotFound, Admin))]
pub(super) async fn delete_role(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(p): ApiPath<RolePath>,
) -> ApiResult<StatusCode> {
    s.store.delete_role(&p.id, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/connection-points", operation_id = "get_connection_points",
    tag = "connection points",
    responses((status = 200, description = "Every connection point", body = [ConnectionPointView]), Admin))]
pub(super) async fn connection_points(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    ok(s.store.connection_points().await?)
}

#[utoipa::path(post, path = "/api/v1/connection-points", operation_id = "add_connection_point",
    tag = "connection points", request_body = ConnectionPointAdd,
    responses(
        (status = 201, description = "Issued: the key is in this answer only", body = ConnectionPointIssued,
            links(
                ("RemoveConnectionPoint" = (operation_id = "remove_connection_point",
                    parameters(("id" = "$response.body#/id")))),
                ("GetGateway" = (operation_id = "get_gateway",
                    parameters(("name" = "$response.body#/gateway")))),
            )),
        BadBody,
        (status = 404, description = "The gateway is not on record (`not_found`)", body = crate::model::ApiErrorBody),
        Conflict, Admin))]
pub(super) async fn add_connection_point(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(req): ApiJson<ConnectionPointAdd>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    Ok((
        StatusCode::CREATED,
        ok(s.store.add_connection_point(req, &actor).await?)?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/connection-points/{id}", operation_id = "remove_connection_point",
    tag = "connection points", params(ConnectionPointPath),
    responses((status = 204, description = "Removed: its certificate is refused from now on"),
        BadParam, NotFound, Admin))]
pub(super) async fn remove_connection_point(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiPath(p): ApiPath<ConnectionPointPath>,
) -> ApiResult<StatusCode> {
    s.store.remove_connection_point(&p.id, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}
