//! The gateways list: Status (text and colour) and its reasons, instances up, connection
//! points reporting, settings version, the 14-day egress against the alert's marks, the
//! alert badge. The table refreshes itself (htmx polls `/ui/gateways/table`).

use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};

use super::{ctx, respond};
use crate::api::error::ApiError;
use crate::model::{AlertSettings, GatewayStatus, GatewayView};
use crate::ui::layout::{self, Ctx, Nav};
use crate::ui::session::Session;
use crate::ui::UiState;

/// How often the list refreshes itself.
const POLL: &str = "every 5s";

async fn table_markup(ui: &UiState, c: Ctx<'_>) -> Result<Markup, ApiError> {
    let gateways = ui.app.store.gateways().await?;
    let statuses = ui
        .app
        .store
        .gateway_statuses(ui.app.report_interval, c.now)
        .await?;
    Ok(html! {
        div id="gateways" hx-get="/ui/gateways/table" hx-trigger=(POLL) hx-swap="outerHTML" {
            table {
                thead { tr {
                    th { "Name" } th { "Status" } th { "Reason" }
                    th.num { "Instances up" } th.num { "Connection points reporting" }
                    th.num { "Settings version" } th { "Egress, 14 days" } th { "Alert" }
                } }
                tbody {
                    @for g in &gateways {
                        @let s = statuses.iter().find(|s| s.gateway == g.name);
                        (row(g, s))
                    }
                    @if gateways.is_empty() {
                        tr { td.muted colspan="8" { "No gateway yet: create one with "
                            code { "cmg site gateway create" } "." } }
                    }
                }
            }
            p.muted { "Refreshed " (layout::time(c.now, c.now)) }
        }
    })
}

fn row(g: &GatewayView, s: Option<&GatewayStatus>) -> Markup {
    html! {
        tr {
            td { a href={"/ui/gateways/" (g.name)} { (g.name) } }
            @if let Some(s) = s {
                td { (layout::status(s.status)) }
                td { @if s.reasons.is_empty() { span.muted { "—" } } @else {
                    @for r in &s.reasons { div { (r) } } } }
                td.num { (s.instances.iter().filter(|i| !i.connected_from.is_empty()).count())
                    " / " (s.instances_expected) }
                td.num { (s.connection_points.iter().filter(|c| c.reporting).count())
                    " / " (s.connection_points.len()) }
                td.num { (g.settings_version) }
                td { (egress_bar(s.egress_14d_bytes, &g.alert)) }
                td { @match s.alert {
                    Some(level) => span class={"badge " (level.as_str())} { (level.as_str()) },
                    None => span.badge.none { "none" },
                } }
            } @else {
                td.muted colspan="7" { "no status" }
            }
        }
    }
}

/// Egress against the alert threshold: a bar with the warning and critical marks, and
/// the numbers as text.
pub(super) fn egress_bar(egress: u64, a: &AlertSettings) -> Markup {
    const W: f64 = 160.0;
    let threshold = a.threshold_gb.saturating_mul(1_000_000_000).max(1);
    let pct = egress as f64 * 100.0 / threshold as f64;
    let fill = (pct / 100.0).clamp(0.0, 1.0) * W;
    let class = if pct >= f64::from(a.critical_pct) {
        "bar-err"
    } else if pct >= f64::from(a.warning_pct) {
        "bar-warn"
    } else {
        "bar-ok"
    };
    let warn_x = f64::from(a.warning_pct) / 100.0 * W;
    let crit_x = f64::from(a.critical_pct) / 100.0 * W;
    let label = format!(
        "{} of {} ({pct:.1} %); warning at {} %, critical at {} %",
        layout::bytes(egress),
        layout::bytes(threshold),
        a.warning_pct,
        a.critical_pct
    );
    html! {
        svg width="160" height="14" viewBox="0 0 160 14" role="img" aria-label=(label) {
            title { (label) }
            rect.bar-bg x="0" y="2" width="160" height="10" {}
            rect class=(class) x="0" y="2" width=(format!("{fill:.1}")) height="10" {}
            line.mark x1=(format!("{warn_x:.1}")) x2=(format!("{warn_x:.1}")) y1="0" y2="14" {}
            line.mark-crit x1=(format!("{crit_x:.1}")) x2=(format!("{crit_x:.1}")) y1="0" y2="14" {}
        }
        div.muted { (layout::bytes(egress)) " of " (layout::bytes(threshold))
            @if !a.enabled { " · alert off" } }
    }
}

/// `GET /ui/gateways`.
pub(super) async fn page(
    State(ui): State<UiState>,
    Extension(session): Extension<Session>,
) -> Response {
    let c = ctx(&ui, &session);
    match table_markup(&ui, c).await {
        Ok(table) => respond(
            None,
            layout::page(
                c,
                Nav::Gateways,
                "Gateways",
                None,
                html! {
                    h1 { "Gateways" }
                    (table)
                    p.muted { "Status rules: Stopped (service stopped), Disconnected (no connection point \
                        reporting), Error (none has a connected channel, or a critical alert), Warning \
                        (a warning alert, or a connection point not reporting or short of channels), Ready." }
                },
            ),
        ),
        Err(e) => layout::error_page(e),
    }
}

/// `GET /ui/gateways/table`: the table alone, for the poll.
pub(super) async fn table(
    State(ui): State<UiState>,
    Extension(session): Extension<Session>,
) -> Response {
    match table_markup(&ui, ctx(&ui, &session)).await {
        Ok(t) => respond(None, t),
        Err(e) => layout::error_page(e),
    }
}
