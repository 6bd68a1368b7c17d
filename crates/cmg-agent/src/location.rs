//! Asking the site where to go: a [`LocationRequest`] (site code, this host's
//! addresses) to the site's location service, straight on the intranet or through a
//! gateway (`<gateway>/CCM_Location`) on the internet, and the signed answer checked
//! with the site's keys (cmg-token's `LocationVerifier`: size, JWS, type, key,
//! signature, format, site, times). A refused answer is an error here and changes
//! nothing in the state: the agent keeps its last good answer.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use cmg_proto::device::{
    LocationAnswer, LocationCandidate, LocationRequest, LOCATION_ENDPOINT, LOCATION_PATH,
    MAX_ADDRESSES, MAX_LOCATION_ANSWER_BYTES,
};
use cmg_proto::ids::SiteCode;
use cmg_proto::location::Candidate;
use cmg_token::location::{LocationError, LocationVerifier};
use http::Request;
use http_body_util::Full;

use crate::endpoint::BaseUrl;
use crate::transport::{Transport, TransportError};

/// Why no new location was learnt.
#[derive(Debug, thiserror::Error)]
pub enum LocationFailure {
    #[error("location request: {0}")]
    Transport(#[from] TransportError),
    #[error("location request to {server}: {status}: {body}")]
    Status {
        server: String,
        status: http::StatusCode,
        body: String,
    },
    /// The answer was refused (tampered with, oversized, malformed, another site's,
    /// expired); the last good location stays.
    #[error("location answer from {server} refused ({code}): {source}")]
    Refused {
        server: String,
        code: &'static str,
        source: LocationError,
    },
}

/// The verifier for `site` from the site key file's text.
pub fn verifier(pem: &str, site: &SiteCode) -> Result<LocationVerifier, cmg_token::TokenError> {
    LocationVerifier::from_pem_file_text(pem, site.clone())
}

/// Where the request goes.
#[derive(Debug, Clone)]
pub enum Route {
    /// The site's HTTPS API on the intranet.
    Site(BaseUrl),
    /// A gateway's management point base (`https://<service>/CCM_Proxy_.../<role>`).
    Gateway(BaseUrl),
}

impl Route {
    fn target(&self) -> (&BaseUrl, String) {
        match self {
            Route::Site(b) => (b, b.path(LOCATION_PATH)),
            Route::Gateway(b) => (b, b.path(&format!("/{LOCATION_ENDPOINT}"))),
        }
    }
}

/// This host's addresses, loopback last, at most [`MAX_ADDRESSES`].
pub fn host_addresses() -> Vec<IpAddr> {
    let mut all: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|v| v.into_iter().map(|i| i.ip()).collect())
        .unwrap_or_default();
    all.sort_by_key(|a| a.is_loopback());
    all.dedup();
    all.truncate(MAX_ADDRESSES);
    all
}

/// Sends the request and verifies the answer at `now`. `bearer`: the device token of
/// a token client.
#[allow(clippy::too_many_arguments)]
pub async fn fetch(
    transport: &Transport,
    route: &Route,
    site: &SiteCode,
    addresses: Vec<IpAddr>,
    want_content: Option<String>,
    bearer: Option<&str>,
    verifier: &LocationVerifier,
    now: SystemTime,
    deadline: Duration,
) -> Result<(String, LocationAnswer), LocationFailure> {
    let (base, path) = route.target();
    let body = serde_json::to_vec(&LocationRequest {
        site: site.clone(),
        addresses,
        want_content,
    })
    .map_err(|e| TransportError::BadRequest(e.to_string()))?;
    let mut req = Request::post(&path).header(http::header::CONTENT_TYPE, "application/json");
    if let Some(t) = bearer {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|_| TransportError::BadRequest(path.clone()))?;
    // One byte over the limit is read, so an oversized answer is refused as such.
    let answer = transport
        .fetch(base, req, MAX_LOCATION_ANSWER_BYTES + 1, deadline)
        .await;
    let answer = match answer {
        Err(TransportError::TooLarge { server, .. }) => {
            return Err(LocationFailure::Refused {
                server,
                code: "too_large",
                source: LocationError::TooLarge(MAX_LOCATION_ANSWER_BYTES + 1),
            })
        }
        other => other?,
    };
    if !answer.status.is_success() {
        return Err(LocationFailure::Status {
            server: base.to_string(),
            status: answer.status,
            body: String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)]).into(),
        });
    }
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    verify(verifier, &text, now, &base.to_string()).map(|a| (text, a))
}

/// Verifies a signed answer (also the one kept in the state, at load).
pub fn verify(
    verifier: &LocationVerifier,
    signed: &str,
    now: SystemTime,
    server: &str,
) -> Result<LocationAnswer, LocationFailure> {
    verifier
        .verify_at(signed, now)
        .map_err(|source| LocationFailure::Refused {
            server: server.to_owned(),
            code: source.code(),
            source,
        })
}

/// A candidate of the answer as the selection tracks it.
pub(crate) fn to_candidate(c: &LocationCandidate) -> Candidate {
    Candidate {
        kind: c.kind,
        name: c.name.clone(),
        url: c.url.clone(),
        token_url: None,
        locality: c.locality,
    }
}
