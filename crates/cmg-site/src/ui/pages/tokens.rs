//! Bulk registration tokens: list, create (the token is shown once, on the answer to
//! the create, and never stored), block and unblock.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Extension;
use http::StatusCode;
use maud::{html, Markup};
use serde::Deserialize;

use super::{ctx, outcome, respond};
use crate::api::error::ApiError;
use crate::model::TokenIssued;
use crate::names::is_tracking_id;
use crate::store::StoreError;
use crate::ui::form::{optional, UiForm};
use crate::ui::layout::{self, csrf_field, Nav, Notice};
use crate::ui::session::Session;
use crate::ui::UiState;

async fn render(
    ui: &UiState,
    session: &Session,
    notice: Option<Notice>,
    issued: Option<&TokenIssued>,
) -> Response {
    let c = ctx(ui, session);
    let tokens = match ui.app.store.tokens().await {
        Ok(t) => t,
        Err(e) => return layout::error_page(e.into()),
    };
    let shown: Markup = match issued {
        Some(t) => html! {
            div.secret #new-token {
                p { strong { "New bulk token " code { (t.tracking_id) } } ", valid until "
                    (layout::time(t.expires_at, c.now)) ". Copy it now: it is shown only this once." }
                textarea readonly aria-label="The new bulk token" { (t.token) }
            }
        },
        None => html! {},
    };
    let body = html! {
        h1 { "Bulk registration tokens" }
        (shown)
        table {
            thead { tr { th { "Tracking ID" } th { "State" } th { "Issued" } th { "Expires" } th { "Issued by" } th {} } }
            tbody {
                @for t in &tokens {
                    tr {
                        td { code { (t.tracking_id) } }
                        td { @if t.blocked { span.badge.blocked { "blocked" } } @else { span.badge.active { "active" } } }
                        td { (layout::time(t.issued_at, c.now)) }
                        td { (layout::time(t.expires_at, c.now)) }
                        td { (t.issued_by) }
                        td {
                            @if t.blocked {
                                form.inline method="post" action={"/ui/tokens/" (t.tracking_id) "/unblock"} {
                                    (csrf_field(c.session)) button.secondary type="submit" { "Unblock" } }
                            } @else {
                                form.inline method="post" action={"/ui/tokens/" (t.tracking_id) "/block"} {
                                    (csrf_field(c.session)) button.danger type="submit" { "Block" } }
                            }
                        }
                    }
                }
                @if tokens.is_empty() { tr { td.muted colspan="6" { "No bulk token issued." } } }
            }
        }
        h2 { "Create a bulk token" }
        form.card method="post" action="/ui/tokens" {
            (csrf_field(c.session))
            label { "Lifetime (minutes, at most 10080) "
                input type="number" name="lifetime_minutes" min="1" max="10080" placeholder="4320"; }
            button type="submit" { "Create token" }
        }
    };
    respond(
        notice.as_ref(),
        layout::page(c, Nav::Tokens, "Tokens", notice.as_ref(), body),
    )
}

/// `GET /ui/tokens`.
pub(super) async fn page(State(ui): State<UiState>, Extension(s): Extension<Session>) -> Response {
    render(&ui, &s, None, None).await
}

#[derive(Debug, Deserialize)]
pub(super) struct CreateForm {
    lifetime_minutes: Option<String>,
}

/// `POST /ui/tokens`: the API's `POST /tokens`; the answer shows the token once.
pub(super) async fn create(
    State(ui): State<UiState>,
    Extension(s): Extension<Session>,
    UiForm(f): UiForm<CreateForm>,
) -> Response {
    let lifetime = match optional(f.lifetime_minutes).map(|v| v.parse::<u64>()) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            let n = Notice::Err(
                StatusCode::BAD_REQUEST,
                "the lifetime is a whole number of minutes".into(),
            );
            return render(&ui, &s, Some(n), None).await;
        }
    };
    match ui.app.store.new_token(lifetime, &s.actor()).await {
        Ok(t) => {
            let n = Notice::Ok(format!("Token {} created.", t.tracking_id));
            render(&ui, &s, Some(n), Some(&t)).await
        }
        Err(e) => render(&ui, &s, Some(ApiError::from(e).into()), None).await,
    }
}

async fn set_blocked(ui: &UiState, s: &Session, id: &str, blocked: bool) -> Response {
    let r = if is_tracking_id(id) {
        ui.app
            .store
            .set_token_blocked(id, blocked, &s.actor())
            .await
            .map_err(ApiError::from)
    } else {
        Err(StoreError::not_found("token", id).into())
    };
    let notice = outcome(r, |()| {
        format!(
            "Token {id} {}.",
            if blocked { "blocked" } else { "unblocked" }
        )
    });
    render(ui, s, Some(notice), None).await
}

/// `POST /ui/tokens/{id}/block`: the API's `POST /tokens/{id}/block`.
pub(super) async fn block(
    State(ui): State<UiState>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    set_blocked(&ui, &s, &id, true).await
}

/// `POST /ui/tokens/{id}/unblock`: the API's `POST /tokens/{id}/unblock`.
pub(super) async fn unblock(
    State(ui): State<UiState>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    set_blocked(&ui, &s, &id, false).await
}
