//! The site's token signing keys: list, and roll to a new key (the old one stays valid
//! for the overlap).

use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use http::StatusCode;
use maud::html;
use serde::Deserialize;

use super::{ctx, outcome, respond};
use crate::model::KeyRoll;
use crate::ui::form::{optional, UiForm};
use crate::ui::layout::{self, csrf_field, Nav, Notice};
use crate::ui::session::Session;
use crate::ui::UiState;

async fn render(ui: &UiState, session: &Session, notice: Option<Notice>) -> Response {
    let c = ctx(ui, session);
    let keys = match ui.app.store.keys().await {
        Ok(k) => k,
        Err(e) => return layout::error_page(e.into()),
    };
    let body = html! {
        h1 { "Signing keys" }
        p.muted { "The site signs bulk and device tokens and the gateways' settings bundles with these keys." }
        table {
            thead { tr { th { "Key ID" } th { "State" } th { "Created" } th { "Retires" } } }
            tbody { @for k in &keys { tr {
                td { code { (k.kid) } }
                td { (k.state) }
                td { (layout::time(k.created_at, c.now)) }
                td { @match k.retire_at { Some(t) => (layout::time(t, c.now)), None => span.muted { "—" } } }
            } } }
        }
        h2 { "Roll the signing key" }
        form.card method="post" action="/ui/keys/roll" data-confirm="Make a new signing key now?" {
            (csrf_field(c.session))
            label { "Overlap (hours the old key stays valid, at most 8760) "
                input type="number" name="overlap_hours" min="0" max="8760" placeholder="168"; }
            button type="submit" { "Roll key" }
        }
    };
    respond(
        notice.as_ref(),
        layout::page(c, Nav::Keys, "Keys", notice.as_ref(), body),
    )
}

/// `GET /ui/keys`.
pub(super) async fn page(State(ui): State<UiState>, Extension(s): Extension<Session>) -> Response {
    render(&ui, &s, None).await
}

#[derive(Debug, Deserialize)]
pub(super) struct RollForm {
    overlap_hours: Option<String>,
}

/// `POST /ui/keys/roll`: the API's `POST /keys/roll`.
pub(super) async fn roll(
    State(ui): State<UiState>,
    Extension(s): Extension<Session>,
    UiForm(f): UiForm<RollForm>,
) -> Response {
    let overlap_hours = match optional(f.overlap_hours).map(|v| v.parse::<u64>()) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            let n = Notice::Err(
                StatusCode::BAD_REQUEST,
                "the overlap is a whole number of hours".into(),
            );
            return render(&ui, &s, Some(n)).await;
        }
    };
    let r = crate::api::settings::roll(&ui.app, &KeyRoll { overlap_hours }, &s.actor()).await;
    let notice = outcome(r, |k| format!("New signing key {} is active.", k.kid));
    render(&ui, &s, Some(notice)).await
}
