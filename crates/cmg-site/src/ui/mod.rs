//! The web console: server-rendered HTML pages under `/ui` on the site's own HTTPS
//! listener, for an administrator who signs in with the admin token.
//!
//! Templates are [maud](https://maud.lambda.xyz/) macros rather than askama files: they
//! are Rust expressions, so the compiler checks every field a page uses, every value is
//! HTML-escaped unless a page says `PreEscaped` (none does), and no template directory
//! has to be kept beside the code. htmx 2.0.11 (`static/htmx.min.js`, from the npm
//! package `htmx.org`, with its licence `static/htmx.LICENSE`, Zero-Clause BSD) is
//! vendored and served from `/ui/static/` with the console's stylesheet and the script
//! that shows times in the viewer's time zone: nothing comes from elsewhere, and no
//! page has inline script or style (the Content-Security-Policy forbids both).
//!
//! Security (`session`, `csrf`): a session cookie `__Host-cmg-session` (HttpOnly,
//! Secure, SameSite=Strict) whose SHA-256 is the key of a row in the site's database
//! (idle and absolute expiry), every POST checked for its Origin and a CSRF token
//! derived from the cookie, strict headers on every answer (`security_headers`).
//! Every action calls what the REST API's handler calls (the store, or the API's shared
//! function where the handler does more), so validation and the audit log are the same;
//! the actor is `web:<name>`, the name given at sign-in.
//!
//! It offers nothing the REST API does not, except the connection analyzer page
//! (`pages::analyze`), which runs the analyzer `cmg site analyze` runs, on the site. The
//! traffic page's charts (`chart`) draw what `GET /api/v1/traffic/series` answers
//! (`Store::traffic_series`).

mod assets;
mod chart;
mod csrf;
mod form;
mod layout;
mod pages;
mod session;
mod tar;

use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use http::{header, HeaderValue, StatusCode};

use crate::api::AppState;
pub use assets::Assets;
pub use session::key as session_key;

/// What the console's handlers share.
#[derive(Clone, Debug)]
pub(crate) struct UiState {
    pub app: AppState,
    pub assets: Arc<Assets>,
}

/// The `Content-Security-Policy` of every console answer: nothing inline, nothing from
/// elsewhere, never framed.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; \
    base-uri 'none'";

/// The console's routes, to be nested under `/ui`.
pub fn router(app: AppState) -> Router {
    let state = UiState {
        app,
        assets: Arc::new(Assets::new()),
    };
    let private = Router::new()
        .route("/", get(|| async { Redirect::to("/ui/gateways") }))
        .route("/sign-out", post(session::sign_out))
        .merge(pages::routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            session::require_session,
        ));
    Router::new()
        .route(
            "/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/static/{hash}/{file}", get(assets::serve))
        .merge(private)
        .fallback(not_found)
        .layer(middleware::from_fn(csrf::guard_post))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        layout::bare("Not found", "There is no such page in the console."),
    )
        .into_response()
}

/// Headers on every console answer: the CSP, no sniffing, no framing, no caching of
/// pages (static files set their own), and a referrer policy that keeps the `Origin`
/// header on same-origin POSTs (with `no-referrer` browsers send `Origin: null`).
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut http::HeaderMap, name: header::HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "same-origin");
    h.insert(
        http::HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        http::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    res
}
