//! Every request that is not `GET` or `HEAD` must come from the console's own origin
//! and carry the CSRF token of its cookie, or it is refused with 403 before any
//! handler runs.
//!
//! - **Origin**: the `Origin` header must be present and equal `https://<host>`, the host
//!   the request was sent to (`Host`, or the HTTP/2 authority).
//! - **Token**: the form field `csrf` (or the header `x-csrf-token`) must equal the token
//!   derived from the secret of the session cookie (for `/ui/sign-in`, of the sign-in
//!   cookie): a SHA-256 under a purpose label, so it is fixed for the session, needs no
//!   storage, and only a page served to the cookie's holder can contain it.

use axum::body::Body;
use axum::extract::{FromRequest as _, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Form;
use http::{header, Method, StatusCode};
use sha2::{Digest as _, Sha256};

use super::{layout, session};

/// Largest console form body.
pub const MAX_FORM: usize = 1 << 20;

/// The CSRF token of a cookie secret.
pub fn token(secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"cmg console csrf\0");
    h.update(secret.as_bytes());
    hex::encode(h.finalize())
}

fn refuse(message: &str) -> Response {
    tracing::warn!(reason = message, "console: request refused");
    (StatusCode::FORBIDDEN, layout::bare("Refused", message)).into_response()
}

/// Whether the request's `Origin` is its own.
fn same_origin(req: &Request) -> bool {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    match (host, origin) {
        (Some(host), Some(origin)) => origin.eq_ignore_ascii_case(&format!("https://{host}")),
        _ => false,
    }
}

pub(super) async fn guard_post(req: Request, next: Next) -> Response {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return next.run(req).await;
    }
    if !same_origin(&req) {
        return refuse("This request did not come from the console's own page (Origin).");
    }
    let cookie = if req.uri().path().ends_with("/sign-in") {
        session::SIGN_IN_COOKIE
    } else {
        session::SESSION_COOKIE
    };
    let Some(secret) = session::cookie(req.headers(), cookie) else {
        return refuse("The form is missing its token; load the page again.");
    };
    let expected = token(&secret);
    let from_header = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (req, presented) = match from_header {
        Some(t) => (req, Some(t)),
        None => {
            let (parts, body) = req.into_parts();
            let bytes = match axum::body::to_bytes(body, MAX_FORM).await {
                Ok(b) => b,
                Err(_) => {
                    return (
                        StatusCode::PAYLOAD_TOO_LARGE,
                        layout::bare("Too large", "The form is larger than 1 MiB."),
                    )
                        .into_response()
                }
            };
            let probe = Request::from_parts(parts.clone(), Body::from(bytes.clone()));
            let presented = Form::<Vec<(String, String)>>::from_request(probe, &())
                .await
                .ok()
                .and_then(|Form(fields)| {
                    fields
                        .into_iter()
                        .find(|(k, _)| k == "csrf")
                        .map(|(_, v)| v)
                });
            (Request::from_parts(parts, Body::from(bytes)), presented)
        }
    };
    match presented {
        Some(t)
            if aws_lc_rs::constant_time::verify_slices_are_equal(
                t.as_bytes(),
                expected.as_bytes(),
            )
            .is_ok() =>
        {
            next.run(req).await
        }
        Some(_) => refuse("The form's token is wrong; load the page again."),
        None => refuse("The form is missing its token; load the page again."),
    }
}
