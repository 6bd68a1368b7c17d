//! One gateway: its status and channel matrix (instances × connection points), alerts
//! with "clear stop", settings (with the ones that apply without a redeploy editable),
//! the content storage account with "rotate", and each instance's deployment package.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use http::{header, StatusCode};
use maud::{html, Markup};
use serde::Deserialize;

use super::gateways::egress_bar;
use super::{ctx, outcome, respond};
use crate::api::error::ApiError;
use crate::model::{
    AlertSettings, CertView, ExportRequest, GatewayModify, GatewayStatus, GatewayView, MinTls,
};
use crate::names::is_gateway_name;
use crate::store::StoreError;
use crate::ui::form::{checked, optional, UiForm};
use crate::ui::layout::{self, csrf_field, Ctx, Nav, Notice};
use crate::ui::session::Session;
use crate::ui::{tar, UiState};

fn name_ok(name: &str) -> Result<(), ApiError> {
    if is_gateway_name(name) {
        Ok(())
    } else {
        Err(StoreError::not_found("gateway", name).into())
    }
}

async fn render(ui: &UiState, c: Ctx<'_>, name: &str, notice: Option<Notice>) -> Response {
    let r = async {
        name_ok(name)?;
        let g = ui.app.store.gateway(name).await?;
        let status = ui
            .app
            .store
            .gateway_status(name, ui.app.report_interval, c.now)
            .await?;
        let alerts: Vec<_> = ui
            .app
            .store
            .alerts(false, 1000)
            .await?
            .into_iter()
            .filter(|a| a.gateway == name)
            .take(20)
            .collect();
        let storage = match ui.app.store.storage(name).await {
            Ok(s) => Some(s),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(ApiError::from(e)),
        };
        Ok::<_, ApiError>(html! {
            h1 { "Gateway " (g.name) " " (layout::status(status.status)) }
            (summary(c, &g, &status))
            p.tabs { "Traffic per endpoint: "
                a href={"/ui/gateways/" (g.name) "/traffic?period=24h"} { "24 hours" }
                a href={"/ui/gateways/" (g.name) "/traffic?period=14d"} { "14 days" }
                a href={"/ui/gateways/" (g.name) "/traffic?period=30d"} { "30 days" } }
            p.tabs { a href={"/ui/gateways/" (g.name) "/analyze"} { "Connection analyzer" } }
            h2 { "Channels" }
            (matrix(c, &status))
            h2 { "Alerts" }
            @if g.service_stopped.is_some() {
                form.card method="post" action={"/ui/gateways/" (g.name) "/alert/clear"}
                    data-confirm="Start the service again? Clients are served at once." {
                    (csrf_field(c.session))
                    "The service is stopped. "
                    button.danger type="submit" { "Clear stop" }
                }
            }
            table {
                thead { tr { th { "Level" } th { "Raised" } th { "Cleared" } th.num { "Egress" }
                    th.num { "Threshold" } th { "Stopped" } th { "Message" } } }
                tbody {
                    @for a in &alerts {
                        tr {
                            td { span class={"badge " (a.level.as_str())} { (a.level.as_str()) } }
                            td { (layout::time(a.raised_at, c.now)) }
                            td { @match a.cleared_at { Some(t) => (layout::time(t, c.now)), None => strong { "active" } } }
                            td.num { (layout::bytes(a.egress_bytes)) }
                            td.num { (layout::bytes(a.threshold_bytes)) }
                            td { @if a.stopped { "yes" } @else { "no" } }
                            td { (a.message) }
                        }
                    }
                    @if alerts.is_empty() { tr { td.muted colspan="7" { "No alert raised." } } }
                }
            }
            h2 { "Settings" }
            (settings_markup(c, &g))
            h2 { "Content storage" }
            @match &storage {
                Some(s) => {
                    dl.kv {
                        dt { "Account" } dd { (s.account) }
                        dt { "Endpoint" } dd { (s.endpoint.as_deref().unwrap_or("default (Azure)")) }
                        dt { "Container" } dd { (s.container) }
                        dt { "Key in force" } dd { (s.active_key) }
                        dt { "Rotated" } dd { (layout::time(s.rotated_at, c.now)) }
                        dt { "Next rotation" } dd { (layout::time(s.next_rotation_at, c.now))
                            " (every " (s.rotation_days) " days)" }
                    }
                    form.card method="post" action={"/ui/gateways/" (g.name) "/storage/rotate"}
                        data-confirm="Switch to the other storage key now?" {
                        (csrf_field(c.session))
                        button type="submit" { "Rotate key now" }
                    }
                },
                None => p.muted { "No storage account: content is not served from storage. Set one with "
                    code { "cmg site gateway storage set" } "." },
            }
            h2 { "Deployment packages" }
            form.card method="post" action={"/ui/gateways/" (g.name) "/export"} {
                (csrf_field(c.session))
                label { "Instance "
                    select name="instance" {
                        @for i in 1..=g.instances { option value=(i) { (g.name) "-" (i) } }
                    } }
                label { "Client listen " input type="text" name="client_listen" placeholder="0.0.0.0:443"; }
                label { "Channel listen " input type="text" name="channel_listen" placeholder="0.0.0.0:10140"; }
                label { "Admin listen " input type="text" name="admin_listen" placeholder="none"; }
                button type="submit" { "Download package (.tar)" }
                p.muted { "The package holds the instance's private key: keep it safe." }
            }
        })
    }
    .await;
    match r {
        Ok(body) => respond(
            notice.as_ref(),
            layout::page(
                c,
                Nav::Gateways,
                &format!("Gateway {name}"),
                notice.as_ref(),
                body,
            ),
        ),
        Err(e) => layout::error_page(e),
    }
}

fn summary(c: Ctx<'_>, g: &GatewayView, s: &GatewayStatus) -> Markup {
    html! {
        dl.kv {
            dt { "Status" } dd { (layout::status(s.status))
                @for r in &s.reasons { div { (r) } } }
            dt { "Service name" } dd { (g.service_name) }
            dt { "Region" } dd { (g.region) }
            dt { "Instances up" } dd { (s.instances.iter().filter(|i| !i.connected_from.is_empty()).count())
                " of " (g.instances) }
            dt { "Settings version" } dd { (g.settings_version)
                @if g.redeploy_required { " · redeploy required" } }
            dt { "Egress, 14 days" } dd { (egress_bar(s.egress_14d_bytes, &g.alert)) }
            dt { "Server certificate" } dd { (cert(c, &g.certificate)) }
            dt { "Internet management points" } dd { @for m in &g.internet_mps { div { code { (m) } } } }
        }
    }
}

fn cert(c: Ctx<'_>, v: &CertView) -> Markup {
    html! { span { (v.subject) } span.muted { " · issued by " (v.issuer) " · expires " (layout::time(v.not_after, c.now)) } }
}

fn matrix(c: Ctx<'_>, s: &GatewayStatus) -> Markup {
    html! {
        table {
            thead { tr {
                th { "Instance" }
                @for cp in &s.connection_points {
                    th { (cp.id) br;
                        span.muted { @if cp.reporting { "reporting" } @else { "not reporting" }
                            @if let Some(at) = cp.last_report_at { " · last report " (layout::time(at, c.now)) } } }
                }
            } }
            tbody {
                @for i in &s.instances {
                    tr {
                        th { (i.instance) }
                        @for cp in &s.connection_points {
                            td {
                                @match i.channels.iter().find(|ch| ch.connection_point == cp.id) {
                                    Some(ch) => {
                                        @let class = if ch.state == "connected" { "status st-connected" } else { "status st-other" };
                                        span class=(class) { (ch.state) }
                                        div.muted { "since " (layout::time(ch.since, c.now)) }
                                        div.muted.mono { (ch.address) }
                                        @if let Some(e) = &ch.last_error { div { "last error: " (e) } }
                                    },
                                    None => span.muted { "no channel" },
                                }
                            }
                        }
                    }
                }
                @if s.instances.is_empty() {
                    tr { td.muted colspan=(s.connection_points.len() + 1) { "No channel reported yet." } }
                }
            }
        }
    }
}

fn settings_markup(c: Ctx<'_>, g: &GatewayView) -> Markup {
    let a = &g.alert;
    html! {
        dl.kv {
            dt { "Trusted roots" } dd { @for r in &g.trusted_roots { div { (cert(c, r)) } }
                @if g.trusted_roots.is_empty() { span.muted { "none" } } }
            dt { "Intermediates" } dd { @for r in &g.intermediates { div { (cert(c, r)) } }
                @if g.intermediates.is_empty() { span.muted { "none" } } }
            dt { "Certificate trust list" } dd { @match &g.trust_list_sha256 {
                Some(l) => { @for h in l { div.mono { (h) } } },
                None => span.muted { "off (any trusted root)" },
            } }
        }
        form.card method="post" action={"/ui/gateways/" (g.name) "/settings"} {
            (csrf_field(c.session))
            label { "Instances " input type="number" name="instances" min="1" max="16" value=(g.instances); }
            label { input type="checkbox" name="verify_revocation" checked[g.verify_revocation]; " Verify client certificate revocation" }
            label { "Minimum TLS "
                select name="min_tls" {
                    option value="1.2" selected[g.min_tls == MinTls::Tls12] { "1.2" }
                    option value="1.3" selected[g.min_tls == MinTls::Tls13] { "1.3" }
                } }
            label { input type="checkbox" name="content_enabled" checked[g.content_enabled]; " Serve content" }
            br;
            label { input type="checkbox" name="alert_enabled" checked[a.enabled]; " 14-day traffic alert" }
            label { "Threshold (GB) " input type="number" name="threshold_gb" min="1" value=(a.threshold_gb); }
            label { "Warning at % " input type="number" name="warning_pct" min="1" max="99" value=(a.warning_pct); }
            label { "Critical at % " input type="number" name="critical_pct" min="2" max="100" value=(a.critical_pct); }
            label { input type="checkbox" name="stop_at_critical" checked[a.stop_at_critical]; " Stop the service at critical" }
            br;
            button type="submit" { "Save settings" }
            p.muted { "Certificates, trusted roots and intermediates change with "
                code { "cmg site gateway modify" } "." }
        }
    }
}

/// `GET /ui/gateways/{name}`.
pub(super) async fn page(
    State(ui): State<UiState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
) -> Response {
    render(&ui, ctx(&ui, &session), &name, None).await
}

#[derive(Debug, Deserialize)]
pub(super) struct SettingsForm {
    instances: u32,
    verify_revocation: Option<String>,
    min_tls: String,
    content_enabled: Option<String>,
    alert_enabled: Option<String>,
    threshold_gb: u64,
    warning_pct: u8,
    critical_pct: u8,
    stop_at_critical: Option<String>,
}

/// `POST /ui/gateways/{name}/settings`: the API's `PATCH /gateways/{name}`.
async fn settings_action(ui: &UiState, session: &Session, name: &str, f: SettingsForm) -> Notice {
    let min_tls = match f.min_tls.parse::<MinTls>() {
        Ok(v) => v,
        Err(e) => return Notice::Err(StatusCode::BAD_REQUEST, e),
    };
    let req = GatewayModify {
        instances: Some(f.instances),
        verify_revocation: Some(checked(&f.verify_revocation)),
        min_tls: Some(min_tls),
        content_enabled: Some(checked(&f.content_enabled)),
        alert: Some(AlertSettings {
            enabled: checked(&f.alert_enabled),
            threshold_gb: f.threshold_gb,
            warning_pct: f.warning_pct,
            critical_pct: f.critical_pct,
            stop_at_critical: checked(&f.stop_at_critical),
        }),
        ..GatewayModify::default()
    };
    let r = match name_ok(name) {
        Ok(()) => crate::api::gateways::modify(&ui.app, name, req, &session.actor()).await,
        Err(e) => Err(e),
    };
    outcome(r, |c| {
        format!("Settings saved: settings version {}.", c.settings_version)
    })
}

pub(super) async fn settings(
    State(ui): State<UiState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
    UiForm(f): UiForm<SettingsForm>,
) -> Response {
    let notice = settings_action(&ui, &session, &name, f).await;
    render(&ui, ctx(&ui, &session), &name, Some(notice)).await
}

/// `POST /ui/gateways/{name}/alert/clear`: the API's `POST .../alert/clear`.
pub(super) async fn clear_stop(
    State(ui): State<UiState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
) -> Response {
    let r = match name_ok(&name) {
        Ok(()) => ui
            .app
            .store
            .clear_alert_stop(&name, &session.actor())
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let notice = outcome(r, |c| {
        format!(
            "The service stop is cleared: settings version {}.",
            c.settings_version
        )
    });
    render(&ui, ctx(&ui, &session), &name, Some(notice)).await
}

/// `POST /ui/gateways/{name}/storage/rotate`: the API's `POST .../storage/rotate`.
pub(super) async fn rotate(
    State(ui): State<UiState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
) -> Response {
    let r = match name_ok(&name) {
        Ok(()) => ui
            .app
            .store
            .rotate_storage_key(&name, "manual", &session.actor())
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let notice = outcome(r, |(view, c)| {
        format!(
            "Rotated: {} is in force from settings version {}.",
            view.active_key, c.settings_version
        )
    });
    render(&ui, ctx(&ui, &session), &name, Some(notice)).await
}

#[derive(Debug, Deserialize)]
pub(super) struct ExportForm {
    instance: u32,
    client_listen: Option<String>,
    channel_listen: Option<String>,
    admin_listen: Option<String>,
}

/// `POST /ui/gateways/{name}/export`: the API's `POST .../export`, as a tar download.
pub(super) async fn export(
    State(ui): State<UiState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
    UiForm(f): UiForm<ExportForm>,
) -> Response {
    let req = ExportRequest {
        instance: f.instance,
        client_listen: optional(f.client_listen),
        channel_listen: optional(f.channel_listen),
        admin_listen: optional(f.admin_listen),
    };
    let r = match name_ok(&name) {
        Ok(()) => crate::api::gateways::export(&ui.app, &name, &req, &session.actor()).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(pkg) => {
            let dir = format!("{}-{}", pkg.gateway, pkg.instance);
            let body = tar::archive(&dir, &pkg.files, crate::now());
            (
                [
                    (header::CONTENT_TYPE, "application/x-tar".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{dir}.tar\""),
                    ),
                ],
                body,
            )
                .into_response()
        }
        Err(e) => render(&ui, ctx(&ui, &session), &name, Some(e.into())).await,
    }
}
