//! The console's form extractor: an `application/x-www-form-urlencoded` body read into
//! `T`, with a refusal rendered as a page (400) instead of axum's plain text. The `csrf`
//! field every form carries is ignored here (checked before, in `csrf`).

use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use axum::Form;
use http::StatusCode;
use serde::de::DeserializeOwned;

use super::layout;

#[derive(Debug)]
pub struct UiForm<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for UiForm<T> {
    type Rejection = Response;
    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        match Form::<T>::from_request(req, state).await {
            Ok(Form(v)) => Ok(Self(v)),
            Err(e) => Err((
                StatusCode::BAD_REQUEST,
                layout::bare("Bad form", &e.body_text()),
            )
                .into_response()),
        }
    }
}

/// A checkbox: present (any value) is on.
pub fn checked(v: &Option<String>) -> bool {
    v.is_some()
}

/// A text field that may be left empty: empty is none.
pub fn optional(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}
