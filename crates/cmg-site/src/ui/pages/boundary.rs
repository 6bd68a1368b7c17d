//! Boundary groups (which gateway their clients use, and which when it fails) and the
//! site's client settings.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Extension;
use maud::html;
use serde::Deserialize;

use super::{ctx, outcome, respond};
use crate::api::error::ApiError;
use crate::model::{BoundaryGroupSet, ClientSettings};
use crate::names::is_boundary_group_name;
use crate::store::StoreError;
use crate::ui::form::{checked, optional, UiForm};
use crate::ui::layout::{self, csrf_field, Nav, Notice};
use crate::ui::session::Session;
use crate::ui::UiState;

async fn render(ui: &UiState, session: &Session, notice: Option<Notice>) -> Response {
    let c = ctx(ui, session);
    let r = async {
        Ok::<_, ApiError>((
            ui.app.store.boundary_groups().await?,
            ui.app.store.gateways().await?,
            ui.app.store.client_settings().await?,
        ))
    }
    .await;
    let (groups, gateways, client) = match r {
        Ok(x) => x,
        Err(e) => return layout::error_page(e),
    };
    let gateway_select = |name: &str| {
        html! {
            select name=(name) {
                option value="" { "none" }
                @for g in &gateways { option value=(g.name) { (g.name) } }
            }
        }
    };
    let body = html! {
        h1 { "Boundary groups" }
        table {
            thead { tr { th { "Name" } th { "Gateway" } th { "Fallback gateway" } th {} } }
            tbody {
                @for g in &groups { tr {
                    td { (g.name) }
                    td { (g.gateway.as_deref().unwrap_or("—")) }
                    td { (g.fallback_gateway.as_deref().unwrap_or("—")) }
                    td { form.inline method="post" action={"/ui/boundary-groups/" (g.name) "/delete"}
                        data-confirm="Delete this boundary group?" {
                        (csrf_field(c.session)) button.danger type="submit" { "Delete" } } }
                } }
                @if groups.is_empty() { tr { td.muted colspan="4" { "No boundary group." } } }
            }
        }
        h2 { "Add or replace a boundary group" }
        form.card method="post" action="/ui/boundary-groups" {
            (csrf_field(c.session))
            label { "Name " input type="text" name="name" required maxlength="128"; }
            label { "Gateway " (gateway_select("gateway")) }
            label { "Fallback gateway " (gateway_select("fallback_gateway")) }
            button type="submit" { "Save group" }
        }
        h1 { "Client settings" }
        form.card method="post" action="/ui/client-settings" {
            (csrf_field(c.session))
            label { input type="checkbox" name="enable_clients_to_use_cmg" checked[client.enable_clients_to_use_cmg];
                " Enable clients to use a cloud management gateway" }
            button type="submit" { "Save client settings" }
        }
    };
    respond(
        notice.as_ref(),
        layout::page(
            c,
            Nav::Boundary,
            "Boundary groups and client settings",
            notice.as_ref(),
            body,
        ),
    )
}

/// `GET /ui/boundary-groups`.
pub(super) async fn page(State(ui): State<UiState>, Extension(s): Extension<Session>) -> Response {
    render(&ui, &s, None).await
}

#[derive(Debug, Deserialize)]
pub(super) struct GroupForm {
    name: String,
    gateway: Option<String>,
    fallback_gateway: Option<String>,
}

/// `POST /ui/boundary-groups`: the API's `PUT /boundary-groups/{name}`.
pub(super) async fn put(
    State(ui): State<UiState>,
    Extension(s): Extension<Session>,
    UiForm(f): UiForm<GroupForm>,
) -> Response {
    let group = BoundaryGroupSet {
        gateway: optional(f.gateway),
        fallback_gateway: optional(f.fallback_gateway),
    }
    .named(f.name.trim().to_owned());
    let r = ui
        .app
        .store
        .put_boundary_group(&group, &s.actor())
        .await
        .map_err(ApiError::from);
    let notice = outcome(r, |()| format!("Boundary group {} saved.", group.name));
    render(&ui, &s, Some(notice)).await
}

/// `POST /ui/boundary-groups/{name}/delete`: the API's `DELETE /boundary-groups/{name}`.
pub(super) async fn delete(
    State(ui): State<UiState>,
    Extension(s): Extension<Session>,
    Path(name): Path<String>,
) -> Response {
    let r = if is_boundary_group_name(&name) {
        ui.app
            .store
            .delete_boundary_group(&name, &s.actor())
            .await
            .map_err(ApiError::from)
    } else {
        Err(StoreError::not_found("boundary group", &name).into())
    };
    let notice = outcome(r, |()| format!("Boundary group {name} deleted."));
    render(&ui, &s, Some(notice)).await
}

#[derive(Debug, Deserialize)]
pub(super) struct ClientForm {
    enable_clients_to_use_cmg: Option<String>,
}

/// `POST /ui/client-settings`: the API's `PUT /client-settings`.
pub(super) async fn client_settings(
    State(ui): State<UiState>,
    Extension(s): Extension<Session>,
    UiForm(f): UiForm<ClientForm>,
) -> Response {
    let settings = ClientSettings {
        enable_clients_to_use_cmg: checked(&f.enable_clients_to_use_cmg),
    };
    let r = ui
        .app
        .store
        .set_client_settings(&settings, &s.actor())
        .await
        .map_err(ApiError::from);
    let notice = outcome(r, |()| {
        format!(
            "Client settings saved: clients {} the gateways.",
            if settings.enable_clients_to_use_cmg {
                "use"
            } else {
                "do not use"
            }
        )
    });
    render(&ui, &s, Some(notice)).await
}
