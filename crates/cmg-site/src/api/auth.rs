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
    if aws_lc_rs::constant_time::verify_slices_are_equal(
        &digest(presented),
        &state.admin_token_sha256,
    )
    .is_err()
    {
        tracing::warn!("site API: wrong admin token");
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_admin_token",
            "the admin token is wrong",
        )
        .into_response();
    }
    let name: String = req
        .headers()
        .get(ADMIN_NAME_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    let actor = if name.is_empty() {
        Actor::new("admin")
    } else {
        Actor::new(format!("admin:{name}"))
    };
    req.extensions_mut().insert(actor);
    next.run(req).await
}
