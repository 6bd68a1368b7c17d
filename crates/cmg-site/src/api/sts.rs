//! `POST /api/v1/sts/token`: the token service (see `store::sts`). Authenticated by the
//! site token in `Authorization: Bearer`, not by the admin token; a refused token is a
//! 401 with `WWW-Authenticate` and a reason code, never echoed or logged.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use cmg_proto::device::Via;
use http::StatusCode;

use super::doc::Internal;
use super::error::ApiError;
use super::publish::PeerCert;
use super::{ok, AppState};
use crate::model::{ApiErrorBody, StsTokenRequest};
use crate::store::sts::{DeviceTokenIssued, StsError};

#[utoipa::path(post, path = "/api/v1/sts/token", operation_id = "sts_token", tag = "token service",
    security(("siteToken" = [])),
    request_body(content = Option<StsTokenRequest>, content_type = "application/json",
        description = "Empty (or `null`) for a renewal with the device token alone"),
    responses(
        (status = 200, description = "A device token", body = DeviceTokenIssued),
        (status = 400, description = "The body or the device ID is refused", body = ApiErrorBody),
        (status = 403, description = "Through a gateway while clients may not use one (`cmg_disabled`), or forwarded by a non-connection point", body = ApiErrorBody),
        (status = 401, description = "No, or a refused, site token (the reason code in `WWW-Authenticate`)",
            body = ApiErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"cmg-site\", error=\"invalid_token\", ...`"))),
        Internal))]
pub(super) async fn token(
    State(s): State<AppState>,
    Extension(peer): Extension<PeerCert>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    // "Enable clients to use a CMG = No" blocks token clients too (seed 004): the token
    // service refuses what comes through a gateway.
    if super::location::via(&s, &peer, &headers).await? == Via::Gateway
        && !s.store.client_settings().await?.enable_clients_to_use_cmg
    {
        tracing::info!("token request through a gateway refused: clients may not use a CMG");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cmg_disabled",
            "clients may not use a cloud management gateway (client settings)",
        ));
    }
    // An empty body (or `null`) is a renewal with the device token alone.
    let req: StsTokenRequest = if body.iter().all(u8::is_ascii_whitespace) {
        StsTokenRequest::default()
    } else {
        match serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_json", e.to_string()))?
        {
            serde_json::Value::Null => StsTokenRequest::default(),
            // The token service calls every body refusal `bad_json`.
            v => super::json::from_object(v)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_json", e.message))?,
        }
    };
    let bearer = bearer(&headers);
    let result = match bearer {
        Some(t) => s.store.exchange_token(t, req.device_id.as_deref()).await,
        None => Err(StsError::MissingToken),
    };
    match result {
        Ok(issued) => Ok(ok(issued)?.into_response()),
        Err(StsError::Store(e)) => Err(e.into()),
        Err(StsError::BadRequest { code, message }) => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, code, message))
        }
        Err(e @ (StsError::InvalidToken(_) | StsError::MissingToken)) => {
            let code = match &e {
                StsError::InvalidToken(t) => t.code(),
                _ => "token_missing",
            };
            tracing::warn!(code, "STS refused a token");
            let mut resp =
                ApiError::new(StatusCode::UNAUTHORIZED, code, e.to_string()).into_response();
            let challenge = format!(
                "Bearer realm=\"cmg-site\", error=\"invalid_token\", error_description=\"{code}\""
            );
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            Ok(resp)
        }
    }
}

/// The bearer token, when there is exactly one `Authorization: Bearer` header.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let mut all = headers.get_all(header::AUTHORIZATION).iter();
    let first = all.next()?;
    if all.next().is_some() {
        return None;
    }
    let v = first.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
