//! A gateway's traffic per endpoint over 24 hours, 14 days or 30 days (the hour buckets
//! the connection points' reports fill): requests by status class and bytes out per
//! endpoint drawn as server-side SVG, and the numbers (with bytes in and mean latency)
//! in a table.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};
use serde::Deserialize;

use super::{ctx, respond};
use crate::api::error::ApiError;
use crate::model::{EndpointTrafficView, TrafficQuery};
use crate::names::is_gateway_name;
use crate::store::StoreError;
use crate::ui::layout::{self, Nav};
use crate::ui::session::Session;
use crate::ui::UiState;

/// The periods offered: query value, label, seconds.
const PERIODS: [(&str, &str, i64); 3] = [
    ("24h", "24 hours", 86_400),
    ("14d", "14 days", 14 * 86_400),
    ("30d", "30 days", 30 * 86_400),
];

#[derive(Debug, Deserialize)]
pub(super) struct TrafficParams {
    period: Option<String>,
}

/// `GET /ui/gateways/{name}/traffic?period=24h|14d|30d`.
pub(super) async fn page(
    State(ui): State<UiState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
    Query(q): Query<TrafficParams>,
) -> Response {
    let c = ctx(&ui, &session);
    let period = PERIODS
        .iter()
        .find(|p| Some(p.0) == q.period.as_deref())
        .unwrap_or(&PERIODS[0]);
    let r = async {
        if !is_gateway_name(&name) {
            return Err(ApiError::from(StoreError::not_found("gateway", &name)));
        }
        // The API's check: the gateway must be on record.
        ui.app.store.gateway_row(&name).await?;
        Ok(ui
            .app
            .store
            .traffic(&TrafficQuery {
                gateway: Some(name.clone()),
                since: c.now - period.2,
            })
            .await?)
    }
    .await;
    let rows = match r {
        Ok(rows) => rows,
        Err(e) => return layout::error_page(e),
    };
    let body = html! {
        h1 { "Traffic of " a href={"/ui/gateways/" (name)} { (name) } ", last " (period.1) }
        p.tabs {
            @for (key, label, _) in PERIODS {
                a href={"/ui/gateways/" (name) "/traffic?period=" (key)}
                    class=[(key == period.0).then_some("here")] { (label) }
            }
        }
        @if rows.is_empty() {
            p.muted { "No traffic in this period." }
        } @else {
            p.legend {
                span { i.c2 {} "2xx" } span { i.c3 {} "3xx" } span { i.c4 {} "4xx" }
                span { i.c5 {} "5xx" } span { i.c1 {} "1xx" } span { i.out {} "bytes out" }
            }
            (chart(&rows))
            table {
                thead { tr { th { "Endpoint" } th.num { "Requests" } th.num { "1xx" } th.num { "2xx" }
                    th.num { "3xx" } th.num { "4xx" } th.num { "5xx" } th.num { "Bytes in" }
                    th.num { "Bytes out" } th.num { "Mean latency" } } }
                tbody {
                    @for r in &rows {
                        tr {
                            td { code { (r.endpoint) } }
                            td.num { (r.requests) }
                            @for n in r.status_classes { td.num { (n) } }
                            td.num { (layout::bytes(r.bytes_in)) }
                            td.num { (layout::bytes(r.bytes_out)) }
                            td.num { (format!("{:.1} ms", r.mean_latency_ms)) }
                        }
                    }
                }
            }
        }
    };
    respond(
        None,
        layout::page(c, Nav::Gateways, &format!("Traffic of {name}"), None, body),
    )
}

/// One block per endpoint: its name, a bar of requests split by status class, and a
/// bar of bytes out under it, each scaled to the largest endpoint.
fn chart(rows: &[EndpointTrafficView]) -> Markup {
    const BAR: f64 = 640.0;
    const ROW: f64 = 48.0;
    let max_req = rows.iter().map(|r| r.requests).max().unwrap_or(0).max(1) as f64;
    let max_out = rows.iter().map(|r| r.bytes_out).max().unwrap_or(0).max(1) as f64;
    let height = ROW * rows.len() as f64 + 4.0;
    let width = BAR + 150.0;
    let f = |v: f64| format!("{v:.1}");
    html! {
        svg width=(width) height=(height) viewBox={"0 0 " (width) " " (height)} role="img"
            aria-label="Requests by status class and bytes out per endpoint" {
            title { "Requests by status class and bytes out per endpoint" }
            @for (i, r) in rows.iter().enumerate() {
                @let y = i as f64 * ROW;
                text x="0" y=(f(y + 12.0)) { (r.endpoint) }
                @for (x, w, class, class_index) in segments(r, max_req, 0.0, BAR) {
                    rect class=(class) x=(f(x)) y=(f(y + 16.0)) width=(f(w)) height="14" {
                        title { (r.status_classes[class_index]) " responses " (class_name(class_index)) }
                    }
                }
                text x=(f(BAR + 8.0)) y=(f(y + 27.0)) { (r.requests) " requests" }
                @let w = r.bytes_out as f64 / max_out * BAR;
                rect.out x="0" y=(f(y + 32.0)) width=(f(w)) height="8" {
                    title { (layout::bytes(r.bytes_out)) " out" }
                }
                text x=(f(BAR + 8.0)) y=(f(y + 40.0)) { (layout::bytes(r.bytes_out)) " out" }
            }
        }
    }
}

/// The stacked segments of one endpoint's requests bar: (x, width, CSS class, status
/// class index), 2xx first, empty classes left out.
fn segments(
    r: &EndpointTrafficView,
    max_req: f64,
    left: f64,
    bar: f64,
) -> Vec<(f64, f64, &'static str, usize)> {
    const ORDER: [(usize, &str); 5] = [(1, "c2"), (2, "c3"), (3, "c4"), (4, "c5"), (0, "c1")];
    let mut x = left;
    let mut out = Vec::new();
    for (i, class) in ORDER {
        let w = r.status_classes[i] as f64 / max_req * bar;
        if w > 0.0 {
            out.push((x, w, class, i));
            x += w;
        }
    }
    out
}

fn class_name(i: usize) -> &'static str {
    ["1xx", "2xx", "3xx", "4xx", "5xx"][i]
}
