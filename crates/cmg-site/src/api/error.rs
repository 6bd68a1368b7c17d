//! Every refusal of the API as one JSON shape, [`ApiErrorBody`], mapped
//! from store errors in one place. Internal faults get a short message; the detail goes
//! to the log.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;

use crate::model::ApiErrorBody;
use crate::secret::SecretError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ApiErrorBody {
                error: self.code.to_owned(),
                message: self.message,
            }),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid { code, message } => {
                Self::new(StatusCode::BAD_REQUEST, code, message)
            }
            StoreError::NotFound { .. } => {
                Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            StoreError::Conflict { .. } => {
                Self::new(StatusCode::CONFLICT, "already_exists", e.to_string())
            }
            StoreError::Refused { code, message } => Self::new(StatusCode::CONFLICT, code, message),
            StoreError::NotInitialised => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_initialised",
                e.to_string(),
            ),
            // The ring cannot be read, or a value names a key it lacks: the administrator's
            // to fix, and the message carries key ids and paths, never key material.
            StoreError::Secret(
                e @ (SecretError::MasterKey(_)
                | SecretError::NotInRing { .. }
                | SecretError::MissingKey { .. }),
            ) => {
                tracing::error!(error = %e, "master key ring");
                Self::new(StatusCode::CONFLICT, "master_key", e.to_string())
            }
            other => {
                tracing::error!(error = %other, "site API internal error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the site could not complete the request; see CloudMgr.log",
                )
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let (status, code) = match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            StatusCode::UNPROCESSABLE_ENTITY => (StatusCode::BAD_REQUEST, "invalid_body"),
            _ => (StatusCode::BAD_REQUEST, "bad_json"),
        };
        Self::new(status, code, r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_query", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_path", r.body_text())
    }
}
