//! Device tokens of a token client (seed 001, token-based authentication): the bulk
//! registration token is traded once for a device token at the site's token service
//! (through a gateway, `<gateway>/CCM_STS/token`, or straight at the site on the
//! intranet), and the device token, valid 90 days, is renewed with itself once a month
//! ([`RENEW_AFTER`]) or when less than a month is left, through whichever route the
//! client has. A bulk token is never renewed (it cannot be). A refused token (blocked,
//! expired) is reported with the site's reason code; the client keeps no token it
//! cannot use.

use std::time::Duration;

use bytes::Bytes;
use cmg_proto::device::{STS_REGISTER_PATH, STS_TOKEN_PATH};
use http::Request;
use http_body_util::Full;
use serde::Deserialize;

use crate::endpoint::BaseUrl;
use crate::state::DeviceToken;
use crate::transport::{Transport, TransportError};

/// A device token older than this is renewed ("renewed monthly").
pub const RENEW_AFTER: Duration = Duration::from_secs(30 * 24 * 3600);
/// Largest token service answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// Why no device token was obtained.
#[derive(Debug, thiserror::Error)]
pub enum TokenFailure {
    #[error("token service: {0}")]
    Transport(#[from] TransportError),
    /// The site (or the gateway) refused the token: `code` is its reason
    /// (`token_blocked`, `token_expired`, ...).
    #[error("token refused by {server}: {status} {code}")]
    Refused {
        server: String,
        status: http::StatusCode,
        code: String,
    },
    #[error("token service {server} answered {status}: {body}")]
    Status {
        server: String,
        status: http::StatusCode,
        body: String,
    },
    #[error("cannot read the bulk token file {path}: {message}")]
    BulkFile { path: String, message: String },
}

impl TokenFailure {
    /// True when the token itself was refused (asking again will not help).
    pub fn is_refusal(&self) -> bool {
        matches!(self, TokenFailure::Refused { .. })
    }
}

/// Where the token service is.
#[derive(Debug, Clone)]
pub enum StsRoute {
    /// The site on the intranet.
    Site(BaseUrl),
    /// A gateway's token-client base (`https://<service>/CCM_Proxy_ServerAuth/<role>`).
    Gateway(BaseUrl),
}

impl StsRoute {
    fn target(&self, path_at_site: &str) -> (&BaseUrl, String) {
        match self {
            StsRoute::Site(b) => (b, b.path(path_at_site)),
            StsRoute::Gateway(b) => (b, b.path("/CCM_STS/token")),
        }
    }
}

/// Whether `token` should be renewed at `now` (Unix seconds).
pub fn needs_renewal(token: &DeviceToken, now: i64) -> bool {
    let month = RENEW_AFTER.as_secs() as i64;
    now - token.issued_at >= month || token.expires_at - now <= month
}

#[derive(Deserialize)]
struct Issued {
    token: String,
    tracking_id: String,
    expires_at: i64,
}

/// Trades `bearer` (a bulk token with `device_id`, or a device token renewing itself
/// with `device_id: None`) for a device token.
pub async fn exchange(
    transport: &Transport,
    route: &StsRoute,
    bearer: &str,
    device_id: Option<&str>,
    now: i64,
    deadline: Duration,
) -> Result<DeviceToken, TokenFailure> {
    let body = match device_id {
        Some(d) => serde_json::json!({ "device_id": d }).to_string(),
        None => String::new(),
    };
    send(
        transport,
        route,
        STS_TOKEN_PATH,
        Some(bearer),
        body,
        now,
        deadline,
    )
    .await
}

/// A certificate client registering on the intranet gets a device token for its
/// device (the site takes its identity from the client certificate).
pub async fn register_with_certificate(
    transport: &Transport,
    site: &BaseUrl,
    device_id: &str,
    now: i64,
    deadline: Duration,
) -> Result<DeviceToken, TokenFailure> {
    let body = serde_json::json!({ "device_id": device_id }).to_string();
    let route = StsRoute::Site(site.clone());
    send(
        transport,
        &route,
        STS_REGISTER_PATH,
        None,
        body,
        now,
        deadline,
    )
    .await
}

async fn send(
    transport: &Transport,
    route: &StsRoute,
    path_at_site: &str,
    bearer: Option<&str>,
    body: String,
    now: i64,
    deadline: Duration,
) -> Result<DeviceToken, TokenFailure> {
    let (base, path) = route.target(path_at_site);
    let mut req = Request::post(&path).header(http::header::CONTENT_TYPE, "application/json");
    if let Some(t) = bearer {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|_| TransportError::BadRequest(path.clone()))?;
    let answer = transport.fetch(base, req, MAX_ANSWER, deadline).await?;
    let server = base.to_string();
    if answer.status == http::StatusCode::UNAUTHORIZED {
        return Err(TokenFailure::Refused {
            server,
            status: answer.status,
            code: refusal_code(&answer.headers, &answer.body),
        });
    }
    if !answer.status.is_success() {
        return Err(TokenFailure::Status {
            server,
            status: answer.status,
            body: String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)]).into(),
        });
    }
    let issued: Issued =
        serde_json::from_slice(&answer.body).map_err(|e| TokenFailure::Status {
            server,
            status: answer.status,
            body: format!("not a device token answer: {e}"),
        })?;
    Ok(DeviceToken {
        token: issued.token,
        tracking_id: issued.tracking_id,
        issued_at: now,
        expires_at: issued.expires_at,
    })
}

/// The reason code of a 401: `error_description` of `WWW-Authenticate` (the site's and
/// the gateway's challenge), else the JSON error body's `code`.
fn refusal_code(headers: &http::HeaderMap, body: &[u8]) -> String {
    let from_header = headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let (_, rest) = v.split_once("error_description=\"")?;
            rest.split('"').next().map(str::to_owned)
        });
    from_header
        .or_else(|| {
            serde_json::from_slice::<serde_json::Value>(body)
                .ok()?
                .get("code")?
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unauthorized".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(issued_at: i64) -> DeviceToken {
        DeviceToken {
            token: "t".into(),
            tracking_id: "id".into(),
            issued_at,
            expires_at: issued_at + 90 * 24 * 3600,
        }
    }

    #[test]
    fn renewed_monthly() {
        let day = 24 * 3600;
        let t = token(1_000_000);
        assert!(!needs_renewal(&t, 1_000_000 + 29 * day));
        assert!(needs_renewal(&t, 1_000_000 + 30 * day));
        // A token with less than a month left is renewed whatever its age.
        let mut short = token(1_000_000);
        short.expires_at = 1_000_000 + 20 * day;
        assert!(needs_renewal(&short, 1_000_000 + day));
    }

    #[test]
    fn refusal_codes_come_from_the_challenge_or_the_body() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static(
                "Bearer realm=\"cmg-site\", error=\"invalid_token\", error_description=\"token_blocked\"",
            ),
        );
        assert_eq!(refusal_code(&h, b""), "token_blocked");
        assert_eq!(
            refusal_code(&http::HeaderMap::new(), br#"{"code":"token_expired"}"#),
            "token_expired"
        );
        assert_eq!(refusal_code(&http::HeaderMap::new(), b"x"), "unauthorized");
    }
}
