//! Admission: every decision about a request, in order, before anything leaves the
//! gateway: the HTTP/1.1 guard's verdict, the service stop, [`filter`] (authority,
//! path, published URL), [`authn`] (by URL kind), the body limit, the upstream head,
//! and the first body frame. The result is an [`Outcome`]; nothing here talks to a
//! channel or to storage.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Request};
use http_body::Body;
use tracing::warn;

use super::access::{self, AccessRecord};
use super::authn;
use super::filter::{self, Route};
use super::forward::{self, Replay};
use super::outcome::{ContentRequest, Forward, Outcome};
use crate::body::{BodyStats, BoxError, ForwardBody, LimitedBody};
use crate::client::ConnInfo;
use crate::error::GatewayError;
use crate::state::Gateway;

/// Decides what becomes of `req`, noting what it learns in `record`.
pub(crate) async fn admit<B>(
    gw: &Gateway,
    conn: &ConnInfo,
    req: Request<B>,
    record: &mut AccessRecord,
) -> Outcome
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<BoxError>,
{
    match decide(gw, conn, req, record).await {
        Ok(outcome) | Err(outcome) => outcome,
    }
}

/// `Err` short-circuits with the outcome reached so far (a refusal, a local answer).
async fn decide<B>(
    gw: &Gateway,
    conn: &ConnInfo,
    req: Request<B>,
    record: &mut AccessRecord,
) -> Result<Outcome, Outcome>
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<BoxError>,
{
    // Called for every HTTP/1.1 request, in order, before anything else can refuse it.
    if let Some(code) = conn.next_h1_violation() {
        return Err(GatewayError::BadRequest(code).into());
    }
    if let Some(reason) = gw.stopped() {
        return Err(GatewayError::Stopped(reason).into());
    }
    let (mut parts, body) = req.into_parts();
    let endpoint = match filter::route(gw, &parts)? {
        Route::Metadata(kind) => return Ok(Outcome::Metadata(kind)),
        Route::Content(kind, blob) => {
            record.endpoint = Some(gw.content_stats().clone());
            authenticated(gw, kind, conn, &parts.headers, record).await?;
            let source = gw.content_source().ok_or(GatewayError::ContentDisabled)?;
            return Ok(Outcome::Content(ContentRequest {
                source,
                method: parts.method,
                headers: parts.headers,
                blob,
            }));
        }
        Route::Endpoint(ep) => ep,
    };
    record.endpoint = Some(endpoint.stats.clone());
    let identity = authenticated(gw, endpoint.url.auth, conn, &parts.headers, record).await?;

    // "Checks content length for each publishing endpoint" (seed 000): a declared
    // length over the limit is refused before anything is forwarded; a streamed body
    // is cut off by `LimitedBody` when it passes the limit.
    let limit = endpoint.url.max_body;
    if declared_length(&parts)?.is_some_and(|len| len > limit) {
        return Err(GatewayError::TooLarge { limit }.into());
    }
    let stats = Arc::new(BodyStats::default());
    record.body = Some(stats.clone());

    let forged = forward::upstream_headers(&mut parts, &identity, record.request_id, &conn.peer_ip);
    if forged > 0 {
        warn!(target: access::TARGET, peer = %conn.peer, forged, "client sent cmg-* headers; stripped");
    }
    parts.uri = forward::upstream_uri(gw, &parts.uri)?;
    parts.version = http::Version::HTTP_2;
    let mut body = LimitedBody::new(body, limit, stats.clone());
    if body.read_first().await.is_err() {
        return Err(if stats.over_limit.load(Ordering::Relaxed) {
            GatewayError::TooLarge { limit }
        } else {
            GatewayError::BadRequest("bad_request_body")
        }
        .into());
    }
    let replay_body = body.replayable();
    let request = Request::from_parts(parts, ForwardBody::client(body));
    let replay = replay_body.map(|b| Replay::new(&request, b));
    Ok(Outcome::Forward(Box::new(Forward {
        request,
        replay,
        site: endpoint.url.site.clone(),
        limit,
        body: stats,
    })))
}

/// The client of a URL of `kind`, noted in the access record either way.
async fn authenticated<'c>(
    gw: &Gateway,
    kind: cmg_proto::mapping::AuthKind,
    conn: &'c ConnInfo,
    headers: &http::HeaderMap,
    record: &mut AccessRecord,
) -> Result<authn::Identity<'c>, GatewayError> {
    let identity = authn::authenticate(gw, kind, conn, headers)
        .await
        .inspect_err(|_| record.auth = "rejected")?;
    record.auth = identity.method.as_str();
    if let authn::Identity::Token(t) = &identity {
        record.token_identity = Some(t.clone());
    }
    Ok(identity)
}

fn declared_length(parts: &http::request::Parts) -> Result<Option<u64>, GatewayError> {
    let mut values = parts.headers.get_all(header::CONTENT_LENGTH).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    let parse = |v: &HeaderValue| {
        v.to_str()
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(GatewayError::BadRequest("bad_content_length"))
    };
    let len = parse(first)?;
    for v in values {
        if parse(v)? != len {
            return Err(GatewayError::BadRequest("conflicting_content_length"));
        }
    }
    Ok(Some(len))
}
