//! The audit log: newest first, 50 a page, filtered by actor, action and target.

use axum::extract::{Query, State};
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};
use serde::Deserialize;

use super::{ctx, respond};
use crate::store::AuditFilter;
use crate::ui::layout::{self, Nav};
use crate::ui::session::Session;
use crate::ui::UiState;

const PAGE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
pub(super) struct AuditParams {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    before: Option<i64>,
}

/// A query string (escaped) for these filters and `before`.
fn query(p: &AuditParams, before: Option<i64>) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    let mut q = format!(
        "?actor={}&action={}&target={}",
        enc(&p.actor),
        enc(&p.action),
        enc(&p.target)
    );
    if let Some(b) = before {
        q.push_str(&format!("&before={b}"));
    }
    q
}

/// An entry's detail: one `key: value` line per field, times (`*_at`) as times.
fn detail(v: &serde_json::Value, now: i64) -> Markup {
    let Some(fields) = v.as_object() else {
        return html! { code { (v.to_string()) } };
    };
    html! {
        @for (k, v) in fields {
            div {
                span.muted { (k) ": " }
                @match (k.ends_with("_at"), v.as_i64()) {
                    (true, Some(t)) => (layout::time(t, now)),
                    _ => code { (match v.as_str() { Some(s) => s.to_owned(), None => v.to_string() }) },
                }
            }
        }
    }
}

/// `GET /ui/audit?actor=&action=&target=&before=`.
pub(super) async fn page(
    State(ui): State<UiState>,
    Extension(s): Extension<Session>,
    Query(p): Query<AuditParams>,
) -> Response {
    let c = ctx(&ui, &s);
    let filter = AuditFilter {
        before: p.before,
        limit: PAGE,
        actor: p.actor.trim().to_owned(),
        action: p.action.trim().to_owned(),
        target: p.target.trim().to_owned(),
    };
    let entries = match ui.app.store.audit_filtered(&filter).await {
        Ok(e) => e,
        Err(e) => return layout::error_page(e.into()),
    };
    let older = (entries.len() == PAGE as usize)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    let body = html! {
        h1 { "Audit log" }
        form.card method="get" action="/ui/audit" {
            label { "Actor contains " input type="text" name="actor" value=(p.actor); }
            label { "Action starts with " input type="text" name="action" value=(p.action) placeholder="token."; }
            label { "Target contains " input type="text" name="target" value=(p.target); }
            button type="submit" { "Filter" }
        }
        table {
            thead { tr { th.num { "#" } th { "When" } th { "Actor" } th { "Action" } th { "Target" } th { "Detail" } } }
            tbody {
                @for e in &entries { tr {
                    td.num { (e.id) }
                    td { (layout::time(e.at, c.now)) }
                    td { (e.actor) }
                    td { code { (e.action) } }
                    td { (e.target) }
                    td { (detail(&e.detail, c.now)) }
                } }
                @if entries.is_empty() { tr { td.muted colspan="6" { "No entry matches." } } }
            }
        }
        p.pager {
            @if p.before.is_some() { a href={"/ui/audit" (query(&p, None))} { "← Newest" } }
            @if let Some(id) = older { a href={"/ui/audit" (query(&p, Some(id)))} { "Older →" } }
        }
    };
    respond(None, layout::page(c, Nav::Audit, "Audit log", None, body))
}
