//! Signing in and out, and the session every other console page needs.
//!
//! Sign-in takes the admin token (checked as the REST API checks it) and a name for the
//! audit log. The session's secret (32 random bytes) goes to the browser only, in the
//! cookie `__Host-cmg-session` (`Secure`, `HttpOnly`, `SameSite=Strict`, `Path=/`, no
//! `Domain`: the `__Host-` prefix makes the browser insist on all of that); the site's
//! database keeps its SHA-256 with the name and the times, so a restart or another site
//! server on the same database honours it, and a copy of the database signs nobody in.
//! A session ends after the idle time without a request, after
//! the absolute time whatever its use, or when signed out.
//!
//! The sign-in form has a CSRF token too: the sign-in page sets a short-lived cookie
//! `__Host-cmg-sign-in` whose derived token the form carries.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use base64::Engine as _;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use maud::html;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::form::UiForm;
use super::{csrf, layout, UiState};
use crate::api::auth::{admin_name, is_admin_token};
use crate::store::Actor;

pub const SESSION_COOKIE: &str = "__Host-cmg-session";
pub const SIGN_IN_COOKIE: &str = "__Host-cmg-sign-in";
/// How long the sign-in form stays usable, seconds.
const SIGN_IN_FORM_SECS: u32 = 1800;

/// The signed-in administrator, for the handlers behind [`require_session`].
#[derive(Debug, Clone)]
pub struct Session {
    pub name: String,
    /// The CSRF token every form of the page carries.
    pub csrf: String,
    /// The SHA-256 (hex) of the cookie's secret: the session's key in the database.
    key: String,
}

impl Session {
    /// The audit log's actor: `web:<name>`.
    pub fn actor(&self) -> Actor {
        Actor::new(format!("web:{}", self.name))
    }
}

/// The value of cookie `name`, if the request has it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// The database key of a cookie secret.
pub fn key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// 32 random bytes, base64url; none when the system has no randomness to give.
fn new_secret() -> Option<String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn no_randomness() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        layout::bare("Error", "no randomness for a session"),
    )
        .into_response()
}

fn set_cookie(name: &str, value: &str, max_age: i64) -> (header::HeaderName, HeaderValue) {
    let v = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}");
    (
        header::SET_COOKIE,
        HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("")),
    )
}

fn clear_cookie(name: &str) -> (header::HeaderName, HeaderValue) {
    set_cookie(name, "", 0)
}

fn sign_in_form(ui: &UiState, csrf: &str, error: Option<&str>) -> maud::Markup {
    layout::standalone(
        &ui.assets,
        "Sign in",
        html! {
            form.signin method="post" action="/ui/sign-in" {
                h1 { "cmg console" }
                @if let Some(e) = error { p.notice.err { (e) } }
                input type="hidden" name="csrf" value=(csrf);
                label { "Your name (for the audit log)"
                    input type="text" name="name" required maxlength="64" autocomplete="username"; }
                label { "Admin token"
                    input type="password" name="token" required autocomplete="current-password"; }
                button type="submit" { "Sign in" }
                p.muted { "The admin token is the site's (" code { "admin.token" } "); a session ends after "
                    (ui.app.console_session.idle / 60) " minutes without use." }
            }
        },
    )
}

/// `GET /ui/sign-in`: the form, with a fresh sign-in cookie for its CSRF token.
pub(super) async fn sign_in_page(State(ui): State<UiState>) -> Response {
    let Some(secret) = new_secret() else {
        return no_randomness();
    };
    (
        [set_cookie(
            SIGN_IN_COOKIE,
            &secret,
            i64::from(SIGN_IN_FORM_SECS),
        )],
        sign_in_form(&ui, &csrf::token(&secret), None),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct SignIn {
    name: String,
    token: String,
}

/// `POST /ui/sign-in`.
pub(super) async fn sign_in(
    State(ui): State<UiState>,
    headers: HeaderMap,
    UiForm(form): UiForm<SignIn>,
) -> Response {
    // The CSRF guard has seen this cookie.
    let form_csrf = cookie(&headers, SIGN_IN_COOKIE)
        .map(|s| csrf::token(&s))
        .unwrap_or_default();
    let name = admin_name(&form.name).trim().to_owned();
    if name.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            sign_in_form(
                &ui,
                &form_csrf,
                Some("Give your name: the audit log records it."),
            ),
        )
            .into_response();
    }
    if !is_admin_token(&ui.app, form.token.trim()) {
        tracing::warn!("console: sign-in with a wrong admin token");
        return (
            StatusCode::UNAUTHORIZED,
            sign_in_form(&ui, &form_csrf, Some("The admin token is wrong.")),
        )
            .into_response();
    }
    let Some(secret) = new_secret() else {
        return no_randomness();
    };
    let life = ui.app.console_session;
    let actor = Actor::new(format!("web:{name}"));
    if let Err(e) = ui
        .app
        .store
        .create_ui_session(&key(&secret), &name, life, &actor)
        .await
    {
        return layout::error_page(e.into());
    }
    tracing::info!(name = %name, "console: signed in");
    let mut res = Redirect::to("/ui/gateways").into_response();
    let h = res.headers_mut();
    let (k, v) = set_cookie(SESSION_COOKIE, &secret, life.absolute);
    h.append(k, v);
    let (k, v) = clear_cookie(SIGN_IN_COOKIE);
    h.append(k, v);
    res
}

/// `POST /ui/sign-out`.
pub(super) async fn sign_out(
    State(ui): State<UiState>,
    Extension(session): Extension<Session>,
) -> Response {
    if let Err(e) = ui
        .app
        .store
        .end_ui_session(&session.key, &session.actor())
        .await
    {
        return layout::error_page(e.into());
    }
    ([clear_cookie(SESSION_COOKIE)], Redirect::to("/ui/sign-in")).into_response()
}

/// Lets a request through only with a live session, which it adds to the request.
/// Without one: a page load goes to the sign-in page, an htmx request is told to go
/// there (`HX-Redirect`), anything else is refused (401).
pub(super) async fn require_session(
    State(ui): State<UiState>,
    mut req: Request,
    next: Next,
) -> Response {
    let secret = cookie(req.headers(), SESSION_COOKIE);
    let found = match &secret {
        Some(secret) => {
            let key = key(secret);
            match ui
                .app
                .store
                .ui_session(&key, ui.app.console_session, crate::now())
                .await
            {
                Ok(s) => s.map(|s| Session {
                    name: s.name,
                    csrf: csrf::token(secret),
                    key,
                }),
                Err(e) => return layout::error_page(e.into()),
            }
        }
        None => None,
    };
    let Some(session) = found else {
        let clear = clear_cookie(SESSION_COOKIE);
        if req.headers().contains_key("hx-request") {
            return (
                StatusCode::UNAUTHORIZED,
                [
                    clear,
                    (
                        http::HeaderName::from_static("hx-redirect"),
                        HeaderValue::from_static("/ui/sign-in"),
                    ),
                ],
            )
                .into_response();
        }
        if req.method() == Method::GET || req.method() == Method::HEAD {
            return ([clear], Redirect::to("/ui/sign-in")).into_response();
        }
        return (
            StatusCode::UNAUTHORIZED,
            [clear],
            layout::bare(
                "Signed out",
                "Your session has ended; sign in again. Nothing was changed.",
            ),
        )
            .into_response();
    };
    req.extensions_mut().insert(session);
    next.run(req).await
}
