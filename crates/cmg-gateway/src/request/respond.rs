//! The one place a gateway error becomes an HTTP response: status, stable reason code,
//! origin and retry safety of each [`GatewayError`], and the response itself: the client
//! gets the status and a short reason code; the access log gets the detail.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use super::access::AccessRecord;
use super::response::ResponseBody;
use crate::error::{GatewayError, Origin};

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotPublished => StatusCode::NOT_FOUND,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::TokenUndecided(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NoChannel { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Channel(_) => StatusCode::BAD_GATEWAY,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Stopped(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::ContentDisabled => StatusCode::FORBIDDEN,
            Self::ContentNotFound => StatusCode::NOT_FOUND,
            Self::Storage(_) => StatusCode::BAD_GATEWAY,
            Self::StorageTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// Stable reason code, shown to the client and logged.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(code)
            | Self::Forbidden(code)
            | Self::Unauthorized(code)
            | Self::TokenUndecided(code) => code,
            Self::NotPublished => "url_not_published",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::TooLarge { .. } => "body_too_large",
            Self::NoChannel { .. } => "no_connection_point",
            Self::Channel(_) => "channel_failed",
            Self::Timeout => "channel_timeout",
            Self::Stopped(_) => "service_stopped",
            Self::ContentDisabled => "content_serving_disabled",
            Self::ContentNotFound => "content_not_found",
            Self::Storage(_) => "storage_failed",
            Self::StorageTimeout => "storage_timeout",
        }
    }

    pub fn origin(&self) -> Origin {
        match self {
            Self::NoChannel { .. } | Self::Channel(_) | Self::Timeout => Origin::Channel,
            Self::Storage(_) | Self::StorageTimeout => Origin::Storage,
            Self::Stopped(_) => Origin::Internal,
            _ => Origin::Client,
        }
    }

    /// Whether the client may safely retry the same request (nothing reached a role).
    pub fn retry_safe(&self) -> bool {
        matches!(self, Self::NoChannel { .. } | Self::TokenUndecided(_))
    }
}

/// A short plain-text response for `err`, with the access record attached.
pub fn error_response(err: &GatewayError, mut record: AccessRecord) -> Response<ResponseBody> {
    let status = err.status();
    record.status = status.as_u16();
    record.reason = Some(format!("{}: {err}", err.code()));
    let body = Bytes::from(format!(
        "{} {}: {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        err.code()
    ));
    let mut resp = Response::new(ResponseBody::local(body, record));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if err.retry_safe() {
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    if let GatewayError::Unauthorized(code) = err {
        // RFC 6750: no error attribute when no token was sent at all.
        let value = if *code == "token_required" {
            HeaderValue::from_static("Bearer realm=\"cmg\"")
        } else {
            HeaderValue::from_str(&format!(
                "Bearer realm=\"cmg\", error=\"invalid_token\", error_description=\"{code}\""
            ))
            .unwrap_or(HeaderValue::from_static(
                "Bearer realm=\"cmg\", error=\"invalid_token\"",
            ))
        };
        h.insert(header::WWW_AUTHENTICATE, value);
    }
    if err.origin() == Origin::Client && status == StatusCode::BAD_REQUEST {
        // After a malformed request the stream state is suspect: do not reuse it.
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// A local 200 answer (the `ServiceMetadata` probe).
pub fn local_ok(
    body: Bytes,
    content_type: &'static str,
    mut record: AccessRecord,
) -> Response<ResponseBody> {
    record.status = 200;
    let mut resp = Response::new(ResponseBody::local(body, record));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
