//! Admin authentication: `Authorization: Bearer <admin token>`, compared in constant
//! time (of SHA-256 digests, so the length leaks nothing either).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{header, StatusCode};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::AppState;
use crate::store::Actor;

/// The header an admin tool may set to name the person acting (recorded in the audit
/// log next to the token; self-declared).
pub const ADMIN_NAME_HEADER: &str = "cmg-admin-name";

pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether `presented` is the admin token (constant time, of the digests). The web
/// console's sign-in asks the same question.
pub(crate) fn is_admin_token(state: &AppState, presented: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(&digest(presented), &state.admin_token_sha256)
        .is_ok()
}

/// The self-declared name of the person acting, as the audit log records it: control
/// characters dropped, at most 64 characters.
pub(crate) fn admin_name(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).take(64).collect()
}

pub async fn require_admin(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(presented) = presented else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "admin_token_required",
            "this API needs the admin token: Authorization: Bearer <token>",
        )
        .into_response();
    };
    if !is_admin_token(&state, presented) {
        tracing::warn!("site API: wrong admin token");
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_admin_token",
            "the admin token is wrong",
        )
        .into_response();
    }
    let name = admin_name(
        req.headers()
            .get(ADMIN_NAME_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    );
    let actor = if name.is_empty() {
        Actor::new("admin")
    } else {
        Actor::new(format!("admin:{name}"))
    };
    req.extensions_mut().insert(actor);
    next.run(req).await
}
