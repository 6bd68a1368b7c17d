//! A gateway's traffic over 24 hours, 14 days or 30 days (the hour buckets the connection
//! points' reports fill), for all its endpoints or one: four charts over time drawn as
//! server-side SVG (`ui::chart`): requests, the share of each status class, bytes in and
//! out, mean latency; their numbers step by step in a table (the charts' text
//! alternative), and the period's totals per endpoint, each endpoint a link to its own
//! charts.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};
use serde::Deserialize;

use super::{ctx, respond};
use crate::api::error::ApiError;
use crate::model::{EndpointTrafficView, TrafficPoint, TrafficQuery, TrafficSeriesQuery};
use crate::names::is_gateway_name;
use crate::store::StoreError;
use crate::ui::chart::{self, Chart, Layout, Series, Steps, Unit};
use crate::ui::layout::{self, Nav};
use crate::ui::session::Session;
use crate::ui::UiState;

/// A period offered: its query value, its label, how far back, the step of its charts.
struct Period {
    key: &'static str,
    label: &'static str,
    secs: i64,
    step: i64,
    per: &'static str,
}

const HOUR: i64 = 3600;
const PERIODS: [Period; 3] = [
    Period {
        key: "24h",
        label: "24 hours",
        secs: 24 * HOUR,
        step: HOUR,
        per: "per hour",
    },
    Period {
        key: "14d",
        label: "14 days",
        secs: 14 * 24 * HOUR,
        step: 6 * HOUR,
        per: "per 6 hours",
    },
    Period {
        key: "30d",
        label: "30 days",
        secs: 30 * 24 * HOUR,
        step: 12 * HOUR,
        per: "per 12 hours",
    },
];

/// The status classes in the order they are stacked: (index, CSS class, name).
const CLASSES: [(usize, &str, &str); 5] = [
    (1, "c2", "2xx"),
    (2, "c3", "3xx"),
    (3, "c4", "4xx"),
    (4, "c5", "5xx"),
    (0, "c1", "1xx"),
];

#[derive(Debug, Deserialize)]
pub(super) struct TrafficParams {
    period: Option<String>,
    /// Only this endpoint's charts (a prefix from the totals table).
    endpoint: Option<String>,
}

/// `GET /ui/gateways/{name}/traffic?period=24h|14d|30d[&endpoint=PREFIX]`.
pub(super) async fn page(
    State(ui): State<UiState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
    Query(q): Query<TrafficParams>,
) -> Response {
    let c = ctx(&ui, &session);
    let period = PERIODS
        .iter()
        .find(|p| Some(p.key) == q.period.as_deref())
        .unwrap_or(&PERIODS[0]);
    let endpoint = q.endpoint.filter(|e| !e.is_empty());
    let since = c.now - period.secs;
    let r = async {
        if !is_gateway_name(&name) {
            return Err(ApiError::from(StoreError::not_found("gateway", &name)));
        }
        // The API's check: the gateway must be on record.
        let store = &ui.app.store;
        store.gateway_row(&name).await?;
        let totals = store
            .traffic(&TrafficQuery {
                gateway: Some(name.clone()),
                since,
            })
            .await?;
        let points = store
            .traffic_series(&TrafficSeriesQuery {
                gateway: name.clone(),
                endpoint: endpoint.clone(),
                since,
                step: period.step,
            })
            .await?;
        Ok((totals, points))
    }
    .await;
    let (totals, points) = match r {
        Ok(v) => v,
        Err(e) => return layout::error_page(e),
    };
    // The same hour buckets the totals sum, in steps; a step without traffic is zero.
    let steps = Steps::covering(since - since.rem_euclid(HOUR), c.now, period.step);
    let any = !points.is_empty();
    let mut by_step = vec![TrafficPoint::default(); steps.starts.len()];
    for p in points {
        if let Ok(i) = steps.starts.binary_search(&p.start) {
            by_step[i] = p;
        }
    }
    let link = |key: &str, endpoint: Option<&str>| {
        let mut href = format!("/ui/gateways/{name}/traffic?period={key}");
        if let Some(e) = endpoint {
            href.push_str("&endpoint=");
            href.push_str(&query_value(e));
        }
        href
    };
    let body = html! {
        h1 { "Traffic of " a href={"/ui/gateways/" (name)} { (name) } ", last " (period.label) }
        p.tabs {
            @for p in &PERIODS {
                a href=(link(p.key, endpoint.as_deref()))
                    class=[(p.key == period.key).then_some("here")] { (p.label) }
            }
        }
        p #showing {
            "Showing "
            @if let Some(e) = &endpoint {
                "endpoint " code { (e) } " · " a href=(link(period.key, None)) { "all endpoints" }
            } @else {
                strong { "all endpoints" }
                @if !totals.is_empty() { " (choose one in the totals below)" }
            }
        }
        @if totals.is_empty() {
            p.muted { "No traffic in this period." }
        } @else if !any {
            p.muted { "No traffic to this endpoint in this period." }
        } @else {
            (charts(&by_step, &steps, period, endpoint.as_deref()))
            (numbers(&by_step, &steps, c.now))
        }
        @if !totals.is_empty() {
            h2 { "Totals per endpoint" }
            (totals_table(&totals, |e| link(period.key, Some(e))))
        }
    };
    respond(
        None,
        layout::page(c, Nav::Gateways, &format!("Traffic of {name}"), None, body),
    )
}

/// The four charts, each under its heading.
fn charts(
    points: &[TrafficPoint],
    steps: &Steps,
    period: &Period,
    endpoint: Option<&str>,
) -> Markup {
    let what = endpoint.map_or_else(|| "all endpoints".to_owned(), |e| format!("endpoint {e}"));
    let col = |f: &dyn Fn(&TrafficPoint) -> f64| points.iter().map(f).collect::<Vec<f64>>();
    let sum = |f: &dyn Fn(&TrafficPoint) -> u64| points.iter().map(f).sum::<u64>();
    let max = |f: &dyn Fn(&TrafficPoint) -> f64| points.iter().map(f).fold(0.0, f64::max);
    let requests = sum(&|p| p.requests);
    let latency_sum = sum(&|p| p.latency_us_sum);
    let mean = if requests > 0 {
        latency_sum as f64 / requests as f64 / 1000.0
    } else {
        0.0
    };
    let (per, label) = (period.per, period.label);
    let req = Chart {
        id: "chart-requests",
        title: format!("Requests {per} to {what}"),
        desc: format!(
            "{requests} request{} to {what} over the last {label}, at most {} in one step.",
            if requests == 1 { "" } else { "s" },
            max(&|p| p.requests as f64)
        ),
        unit: Unit::Count,
        layout: Layout::Stacked,
        series: vec![Series {
            name: "requests",
            class: "req",
            values: col(&|p| p.requests as f64),
        }],
    };
    let class_totals: Vec<String> = CLASSES
        .iter()
        .map(|(i, _, n)| format!("{} {n}", sum(&|p| p.status_classes[*i])))
        .collect();
    let status = Chart {
        id: "chart-status",
        title: format!("Responses by status class {per}, share of each step"),
        desc: format!(
            "Share of each status class among the responses of each step; over the last {label}: {}.",
            class_totals.join(", ")
        ),
        unit: Unit::Percent,
        layout: Layout::Stacked,
        series: CLASSES
            .iter()
            .map(|&(i, class, name)| Series {
                name,
                class,
                values: col(&|p| share(p.status_classes[i], p.requests)),
            })
            .collect(),
    };
    let bytes = Chart {
        id: "chart-bytes",
        title: format!("Bytes in and out {per}"),
        desc: format!(
            "Request bytes in and response bytes out {per}; over the last {label}: {} in, {} out.",
            layout::bytes(sum(&|p| p.bytes_in)),
            layout::bytes(sum(&|p| p.bytes_out))
        ),
        unit: Unit::Bytes,
        layout: Layout::Grouped,
        series: vec![
            Series {
                name: "in",
                class: "in",
                values: col(&|p| p.bytes_in as f64),
            },
            Series {
                name: "out",
                class: "out",
                values: col(&|p| p.bytes_out as f64),
            },
        ],
    };
    let latency = Chart {
        id: "chart-latency",
        title: format!("Mean latency {per}"),
        desc: format!(
            "Mean latency of the requests of each step; {mean:.1} ms over the last {label}, at most {:.1} ms in one step.",
            max(&|p| p.mean_latency_ms())
        ),
        unit: Unit::Millis,
        layout: Layout::Stacked,
        series: vec![Series {
            name: "mean latency",
            class: "lat",
            values: col(&|p| p.mean_latency_ms()),
        }],
    };
    html! {
        section.chart { h2 { (req.title) } (chart::render(&req, steps)) }
        section.chart {
            h2 { (status.title) }
            p.legend {
                @for (_, class, name) in CLASSES { span { i class=(class) {} (name) } }
            }
            (chart::render(&status, steps))
        }
        section.chart {
            h2 { (bytes.title) }
            p.legend { span { i.in {} "bytes in" } span { i.out {} "bytes out" } }
            (chart::render(&bytes, steps))
        }
        section.chart { h2 { (latency.title) } (chart::render(&latency, steps)) }
    }
}

/// `n` of `of` in percent, 0 when `of` is 0.
fn share(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 * 100.0 / of as f64
    }
}

/// The charts' numbers, one row per step: their text alternative.
fn numbers(points: &[TrafficPoint], steps: &Steps, now: i64) -> Markup {
    html! {
        details #traffic-steps {
            summary { "The charts' numbers, one row per step" }
            table {
                thead { tr { th { "Step from" } th.num { "Requests" } th.num { "1xx" } th.num { "2xx" }
                    th.num { "3xx" } th.num { "4xx" } th.num { "5xx" } th.num { "Bytes in" }
                    th.num { "Bytes out" } th.num { "Mean latency" } } }
                tbody {
                    @for (p, start) in points.iter().zip(&steps.starts) {
                        tr {
                            td { (layout::time(*start, now)) }
                            td.num { (p.requests) }
                            @for n in p.status_classes { td.num { (n) } }
                            td.num { (layout::bytes(p.bytes_in)) }
                            td.num { (layout::bytes(p.bytes_out)) }
                            td.num { (format!("{:.1} ms", p.mean_latency_ms())) }
                        }
                    }
                }
            }
        }
    }
}

/// The period's totals per endpoint; each endpoint links to its own charts.
fn totals_table(rows: &[EndpointTrafficView], link: impl Fn(&str) -> String) -> Markup {
    html! {
        table #traffic-totals {
            thead { tr { th { "Endpoint" } th.num { "Requests" } th.num { "1xx" } th.num { "2xx" }
                th.num { "3xx" } th.num { "4xx" } th.num { "5xx" } th.num { "Bytes in" }
                th.num { "Bytes out" } th.num { "Mean latency" } } }
            tbody {
                @for r in rows {
                    tr {
                        td { a href=(link(&r.endpoint)) { code { (r.endpoint) } } }
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
}

/// `s` percent-encoded for a query string (a path's `/` kept).
fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
