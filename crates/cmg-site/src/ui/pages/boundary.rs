//! Boundary groups (their boundaries, the management points and gateways they
//! reference, "prefer cloud-based sources") and the site's client settings. Neighbour
//! relationships are set with the API or `cmg site boundary-group set --neighbour` and
//! shown here.

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
    let list = |v: &[String]| {
        if v.is_empty() {
            "—".to_owned()
        } else {
            v.join(", ")
        }
    };
    let body = html! {
        h1 { "Boundary groups" }
        table {
            thead { tr { th { "Name" } th { "Boundaries" } th { "Management points" } th { "Gateways" }
                th { "Neighbours" } th { "Prefer cloud" } th {} } }
            tbody {
                @for g in &groups { tr {
                    td { (g.name) }
                    td { (list(&g.boundaries)) }
                    td { (list(&g.management_points)) }
                    td { (list(&g.gateways)) }
                    td { (list(&g.neighbours.iter().map(|n| n.group.clone()).collect::<Vec<_>>())) }
                    td { (if g.prefer_cloud { "yes" } else { "no" }) }
                    td { form.inline method="post" action={"/ui/boundary-groups/" (g.name) "/delete"}
                        data-confirm="Delete this boundary group?" {
                        (csrf_field(c.session)) button.danger type="submit" { "Delete" } } }
                } }
                @if groups.is_empty() { tr { td.muted colspan="7" { "No boundary group." } } }
            }
        }
        h2 { "Add or replace a boundary group" }
        form.card method="post" action="/ui/boundary-groups" {
            (csrf_field(c.session))
            label { "Name " input type="text" name="name" required maxlength="128"; }
            label { "Boundaries (subnets, IPv6 prefixes, ranges; space-separated) "
                input type="text" name="boundaries" placeholder="10.1.0.0/16 10.2.0.10-10.2.0.99"; }
            label { "Management points (role IDs, space-separated) "
                input type="text" name="management_points"; }
            label { "Gateway " (gateway_select("gateway")) }
            label { input type="checkbox" name="prefer_cloud"; " Prefer cloud-based sources" }
            button type="submit" { "Save group" }
        }
        h1 { "Client settings" }
        form.card method="post" action="/ui/client-settings" {
            (csrf_field(c.session))
            label { input type="checkbox" name="enable_clients_to_use_cmg" checked[client.enable_clients_to_use_cmg];
                " Enable clients to use a cloud management gateway" }
            label { input type="checkbox" name="allow_cloud_distribution_point" checked[client.allow_cloud_distribution_point];
                " Allow access to cloud distribution point" }
            label { "Policy polling interval (minutes) "
                input type="number" name="policy_interval_minutes" min="1" max="1440"
                    value=(client.policy_interval_minutes); }
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
    #[serde(default)]
    boundaries: Option<String>,
    #[serde(default)]
    management_points: Option<String>,
    gateway: Option<String>,
    #[serde(default)]
    prefer_cloud: Option<String>,
}

/// Space- or comma-separated words.
fn words(v: Option<String>) -> Vec<String> {
    v.unwrap_or_default()
        .split([' ', ',', '\n', '\t'])
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `POST /ui/boundary-groups`: the API's `PUT /boundary-groups/{name}`.
pub(super) async fn put(
    State(ui): State<UiState>,
    Extension(s): Extension<Session>,
    UiForm(f): UiForm<GroupForm>,
) -> Response {
    let group = BoundaryGroupSet {
        boundaries: words(f.boundaries),
        management_points: words(f.management_points),
        gateways: optional(f.gateway).into_iter().collect(),
        neighbours: Vec::new(),
        prefer_cloud: checked(&f.prefer_cloud),
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
    #[serde(default)]
    allow_cloud_distribution_point: Option<String>,
    #[serde(default)]
    policy_interval_minutes: Option<String>,
}

/// `POST /ui/client-settings`: the API's `PUT /client-settings`.
pub(super) async fn client_settings(
    State(ui): State<UiState>,
    Extension(s): Extension<Session>,
    UiForm(f): UiForm<ClientForm>,
) -> Response {
    let interval = match optional(f.policy_interval_minutes) {
        None => Ok(None),
        Some(v) => v.parse::<u32>().map(Some).map_err(|_| {
            ApiError::from(StoreError::invalid(
                "bad_interval",
                "policy_interval_minutes is 1 to 1440",
            ))
        }),
    };
    let current = match ui.app.store.client_settings().await {
        Ok(c) => c,
        Err(e) => return layout::error_page(e.into()),
    };
    let settings = ClientSettings {
        enable_clients_to_use_cmg: checked(&f.enable_clients_to_use_cmg),
        allow_cloud_distribution_point: checked(&f.allow_cloud_distribution_point),
        policy_interval_minutes: match &interval {
            Ok(Some(v)) => *v,
            _ => current.policy_interval_minutes,
        },
    };
    let r = async {
        interval?;
        ui.app
            .store
            .set_client_settings(&settings, &s.actor())
            .await
            .map_err(ApiError::from)
    }
    .await;
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
