//! Roles (management points, software update points) and the URL mappings the site
//! generates for those that allow gateway traffic: list, add, allow or stop gateway
//! traffic, delete.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Extension;
use http::StatusCode;
use maud::html;
use serde::Deserialize;

use super::{ctx, outcome, respond};
use crate::api::error::ApiError;
use crate::mappings::{RoleKind, RoleMode};
use crate::model::{RoleCreate, RoleModify};
use crate::names::is_role_id;
use crate::store::StoreError;
use crate::ui::form::{checked, UiForm};
use crate::ui::layout::{self, csrf_field, Nav, Notice};
use crate::ui::session::Session;
use crate::ui::UiState;

async fn render(ui: &UiState, session: &Session, notice: Option<Notice>) -> Response {
    let c = ctx(ui, session);
    let roles = match ui.app.store.roles().await {
        Ok(r) => r,
        Err(e) => return layout::error_page(e.into()),
    };
    let body = html! {
        h1 { "Roles and URL mappings" }
        @for r in &roles {
            section.card {
                h2 { (r.kind.as_str()) " " code { (r.role_id) } }
                p { "Internal URL " code { (r.internal_url) } " · mode " (r.mode.as_str())
                    " · gateway traffic " strong { @if r.allow_gateway_traffic { "allowed" } @else { "not allowed" } } }
                form.inline method="post" action={"/ui/roles/" (r.role_id) "/traffic"} {
                    (csrf_field(c.session))
                    @if r.allow_gateway_traffic {
                        input type="hidden" name="allow" value="false";
                        button.secondary type="submit" { "Stop gateway traffic" }
                    } @else {
                        input type="hidden" name="allow" value="true";
                        button.secondary type="submit" { "Allow gateway traffic" }
                    }
                }
                " "
                form.inline method="post" action={"/ui/roles/" (r.role_id) "/delete"}
                    data-confirm="Delete this role? Its URLs stop answering through every gateway." {
                    (csrf_field(c.session))
                    button.danger type="submit" { "Delete" }
                }
                @if !r.mappings.is_empty() {
                    table {
                        thead { tr { th { "External URL" } th { "Internal URL" } th { "Authentication" } th.num { "Largest body" } } }
                        tbody { @for m in &r.mappings { tr {
                            td { code { (m.external) } } td { code { (m.internal) } }
                            td { (format!("{:?}", m.auth)) } td.num { (layout::bytes(m.max_body)) }
                        } } }
                    }
                }
            }
        }
        @if roles.is_empty() { p.muted { "No role yet." } }
        h2 { "Add a role" }
        form.card method="post" action="/ui/roles" {
            (csrf_field(c.session))
            label { "Role ID " input type="text" name="role_id" required pattern="[0-9]{1,19}" placeholder="72057594037927939"; }
            label { "Kind " select name="kind" {
                option value="management_point" { "Management point" }
                option value="software_update_point" { "Software update point" } } }
            label { "Internal URL " input type="text" name="internal_url" required placeholder="https://mp1.corp.example"; }
            label { "Mode " select name="mode" {
                option value="https" { "HTTPS" } option value="enhanced_http" { "Enhanced HTTP" }
                option value="http" { "HTTP" } } }
            label { input type="checkbox" name="allow_gateway_traffic" checked; " Allow gateway traffic" }
            button type="submit" { "Add role" }
        }
    };
    respond(
        notice.as_ref(),
        layout::page(
            c,
            Nav::Roles,
            "Roles and URL mappings",
            notice.as_ref(),
            body,
        ),
    )
}

/// `GET /ui/roles`.
pub(super) async fn page(State(ui): State<UiState>, Extension(s): Extension<Session>) -> Response {
    render(&ui, &s, None).await
}

#[derive(Debug, Deserialize)]
pub(super) struct CreateForm {
    role_id: String,
    kind: String,
    internal_url: String,
    mode: String,
    allow_gateway_traffic: Option<String>,
}

/// `POST /ui/roles`: the API's `POST /roles`.
pub(super) async fn create(
    State(ui): State<UiState>,
    Extension(s): Extension<Session>,
    UiForm(f): UiForm<CreateForm>,
) -> Response {
    let bad = |m: &str| Notice::Err(StatusCode::BAD_REQUEST, m.to_owned());
    let notice = match (RoleKind::parse(&f.kind), RoleMode::parse(&f.mode)) {
        (None, _) => bad("the kind is management_point or software_update_point"),
        (_, None) => bad("the mode is http, enhanced_http or https"),
        (Some(kind), Some(mode)) => {
            let req = RoleCreate {
                role_id: f.role_id.trim().to_owned(),
                kind,
                internal_url: f.internal_url.trim().to_owned(),
                mode,
                allow_gateway_traffic: checked(&f.allow_gateway_traffic),
            };
            let r = ui.app.store.create_role(req, &s.actor()).await;
            outcome(r.map_err(ApiError::from), |v| {
                format!(
                    "Role {} added with {} URL mappings.",
                    v.role_id,
                    v.mappings.len()
                )
            })
        }
    };
    render(&ui, &s, Some(notice)).await
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if is_role_id(id) {
        Ok(())
    } else {
        Err(StoreError::not_found("role", id).into())
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct TrafficForm {
    allow: bool,
}

/// `POST /ui/roles/{id}/traffic`: the API's `PATCH /roles/{id}`.
pub(super) async fn traffic(
    State(ui): State<UiState>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
    UiForm(f): UiForm<TrafficForm>,
) -> Response {
    let r = match check_id(&id) {
        Ok(()) => ui
            .app
            .store
            .modify_role(
                &id,
                RoleModify {
                    allow_gateway_traffic: Some(f.allow),
                    ..RoleModify::default()
                },
                &s.actor(),
            )
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let notice = outcome(r, |v| {
        format!(
            "Role {}: gateway traffic {}.",
            v.role_id,
            if v.allow_gateway_traffic {
                "allowed"
            } else {
                "stopped"
            }
        )
    });
    render(&ui, &s, Some(notice)).await
}

/// `POST /ui/roles/{id}/delete`: the API's `DELETE /roles/{id}`.
pub(super) async fn delete(
    State(ui): State<UiState>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    let r = match check_id(&id) {
        Ok(()) => ui
            .app
            .store
            .delete_role(&id, &s.actor())
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let notice = outcome(r, |()| format!("Role {id} deleted."));
    render(&ui, &s, Some(notice)).await
}
