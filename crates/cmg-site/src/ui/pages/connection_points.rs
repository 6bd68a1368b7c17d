//! Connection points: list, add (the answer is the download of its files, the private
//! key among them: the site keeps no copy), remove (its certificate is refused from then
//! on).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use http::{header, HeaderMap};
use maud::html;
use serde::Deserialize;

use super::{ctx, outcome, respond};
use crate::api::error::ApiError;
use crate::files::{connector_files, ConnectorOptions};
use crate::model::ConnectionPointAdd;
use crate::names::is_connection_point_id;
use crate::store::StoreError;
use crate::ui::form::{optional, UiForm};
use crate::ui::layout::{self, csrf_field, Nav, Notice};
use crate::ui::session::Session;
use crate::ui::{tar, UiState};

/// The site URL as the browser reached it: what a connection point will use too, unless
/// the form says otherwise.
fn own_url(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(|h| format!("https://{h}"))
        .unwrap_or_default()
}

async fn render(
    ui: &UiState,
    session: &Session,
    headers: &HeaderMap,
    notice: Option<Notice>,
) -> Response {
    let c = ctx(ui, session);
    let r = async {
        Ok::<_, ApiError>((
            ui.app.store.connection_points().await?,
            ui.app.store.gateways().await?,
        ))
    }
    .await;
    let (cps, gateways) = match r {
        Ok(x) => x,
        Err(e) => return layout::error_page(e),
    };
    let body = html! {
        h1 { "Connection points" }
        table {
            thead { tr { th { "ID" } th { "Gateway" } th { "Certificate" } th { "Expires" } th { "Added" } th {} } }
            tbody {
                @for cp in &cps {
                    tr {
                        td { code { (cp.id) } }
                        td { a href={"/ui/gateways/" (cp.gateway)} { (cp.gateway) } }
                        td { (cp.certificate.subject) }
                        td { (layout::time(cp.certificate.not_after, c.now)) }
                        td { (layout::time(cp.created_at, c.now)) }
                        td { form.inline method="post" action={"/ui/connection-points/" (cp.id) "/remove"}
                            data-confirm="Remove this connection point? Its certificate is refused from now on." {
                            (csrf_field(c.session))
                            button.danger type="submit" { "Remove" } } }
                    }
                }
                @if cps.is_empty() { tr { td.muted colspan="6" { "No connection point yet." } } }
            }
        }
        h2 { "Add a connection point" }
        @if gateways.is_empty() {
            p.muted { "Create a gateway first." }
        } @else {
            form.card method="post" action="/ui/connection-points" {
                (csrf_field(c.session))
                label { "Gateway " select name="gateway" {
                    @for g in &gateways { option value=(g.name) { (g.name) } } } }
                label { "ID " input type="text" name="id" pattern="[A-Za-z0-9._-]{1,64}" placeholder="generated"; }
                label { "Gateway channel addresses " input type="text" name="gateways" placeholder="gw1.example:10140 gw2.example:10140"; }
                label { "Site URL " input type="text" name="site_url" value=(own_url(headers)); }
                button type="submit" { "Add and download its files (.tar)" }
                p.muted { "The download holds the connection point's private key, issued now and kept nowhere else: "
                    "store it safely. Reload this page to see the new connection point in the list." }
            }
        }
    };
    respond(
        notice.as_ref(),
        layout::page(
            c,
            Nav::ConnectionPoints,
            "Connection points",
            notice.as_ref(),
            body,
        ),
    )
}

/// `GET /ui/connection-points`.
pub(super) async fn page(
    State(ui): State<UiState>,
    Extension(s): Extension<Session>,
    headers: HeaderMap,
) -> Response {
    render(&ui, &s, &headers, None).await
}

#[derive(Debug, Deserialize)]
pub(super) struct AddForm {
    gateway: String,
    id: Option<String>,
    gateways: Option<String>,
    site_url: Option<String>,
}

/// `POST /ui/connection-points`: the API's `POST /connection-points`, then the files
/// `cmg site connection-point add` writes, as a tar download.
pub(super) async fn add(
    State(ui): State<UiState>,
    Extension(s): Extension<Session>,
    headers: HeaderMap,
    UiForm(f): UiForm<AddForm>,
) -> Response {
    let req = ConnectionPointAdd {
        gateway: f.gateway.trim().to_owned(),
        id: optional(f.id),
    };
    match ui.app.store.add_connection_point(req, &s.actor()).await {
        Ok(issued) => {
            let opts = ConnectorOptions {
                gateways: f
                    .gateways
                    .unwrap_or_default()
                    .split([',', ' '])
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect(),
                gateway_ca_pem: None,
                site_url: optional(f.site_url).unwrap_or_else(|| own_url(&headers)),
            };
            let files = connector_files(&issued, &opts);
            let body = tar::archive(&issued.id, &files, crate::now());
            (
                [
                    (header::CONTENT_TYPE, "application/x-tar".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{}.tar\"", issued.id),
                    ),
                ],
                body,
            )
                .into_response()
        }
        Err(e) => render(&ui, &s, &headers, Some(ApiError::from(e).into())).await,
    }
}

/// `POST /ui/connection-points/{id}/remove`: the API's `DELETE /connection-points/{id}`.
pub(super) async fn remove(
    State(ui): State<UiState>,
    Extension(s): Extension<Session>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let r = if is_connection_point_id(&id) {
        ui.app
            .store
            .remove_connection_point(&id, &s.actor())
            .await
            .map_err(ApiError::from)
    } else {
        Err(StoreError::not_found("connection point", &id).into())
    };
    let notice = outcome(r, |()| format!("Connection point {id} removed."));
    render(&ui, &s, &headers, Some(notice)).await
}
