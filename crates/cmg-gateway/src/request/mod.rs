//! The client request path, one phase per module, in order:
//! [`filter`] (authority, path normalisation, published URL) → [`authn`] (by URL kind)
//! → content length (here) → [`forward`] (choose a channel, send) → response.
//! [`respond`] maps every refusal to a status; [`access`] writes the access line.

pub mod access;
pub mod authn;
pub mod body;
pub mod filter;
pub mod forward;
pub mod respond;

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use cmg_proto::headers;
use http::{header, HeaderValue, Request, Response};
use hyper::body::Incoming;
use tracing::warn;

use self::access::AccessRecord;
use self::body::{BodyStats, ForwardBody, LimitedBody, ResponseBody};
use self::filter::Route;
use self::respond::{error_response, local_ok, GatewayError};
use crate::conn::ConnInfo;
use crate::Gateway;

/// Serves one client request. Never fails: every refusal is a response.
pub async fn handle(
    gw: Arc<Gateway>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let mut record = AccessRecord::new(req.method().clone(), req.uri().clone(), conn.clone());
    let result = process(&gw, &conn, req, &mut record).await;
    if let Err(LocalOrError::Error(e)) = &result {
        if e.status().is_server_error() {
            warn!(target: access::TARGET, error = %e, "request failed");
        }
    }
    Ok(finish(&gw, result, record))
}

async fn process(
    gw: &Gateway,
    conn: &ConnInfo,
    req: Request<Incoming>,
    record: &mut AccessRecord,
) -> Result<Response<Incoming>, LocalOrError> {
    // Called for every HTTP/1.1 request, in order, before anything else can refuse it.
    if let Some(code) = conn.next_h1_violation() {
        return Err(GatewayError::BadRequest(code).into());
    }
    if let Some(reason) = gw.stopped.load_full() {
        return Err(GatewayError::Stopped(reason).into());
    }
    let (mut parts, body) = req.into_parts();
    let (_path, route) = filter::route(gw, &parts)?;
    let endpoint = match route {
        Route::Metadata(kind) => return Err(LocalOrError::Metadata(kind)),
        Route::Content(kind, blob) => {
            return Err(content(gw, conn, &parts, kind, &blob, record).await);
        }
        Route::Endpoint(ep) => ep,
    };
    record.endpoint = Some(endpoint.stats.clone());
    let identity = authn::authenticate(gw, endpoint.url.auth, conn, &parts.headers)
        .await
        .inspect_err(|_| record.auth = "rejected")?;
    record.auth = identity.method.as_str();
    if let authn::Identity::Token(t) = &identity {
        record.token_identity = Some(t.clone());
    }

    // "Checks content length for each publishing endpoint" (seed 000): a declared
    // length over the limit is refused before anything is forwarded; a streamed body
    // is cut off by `LimitedBody` when it passes the limit.
    let limit = endpoint.url.max_body;
    if let Some(len) = declared_length(&parts)? {
        if len > limit {
            return Err(GatewayError::TooLarge { limit }.into());
        }
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
    let upstream = Request::from_parts(parts, ForwardBody::client(body));
    let replay = replay_body.map(|b| forward::Replay::new(&upstream, b));

    match forward::send(gw, &endpoint.url.site, conn.shard, upstream, replay).await {
        Ok((resp, ch)) => {
            record.connection_point = Some(ch.connector.clone());
            Ok(resp)
        }
        Err(_) if stats.over_limit.load(Ordering::Relaxed) => {
            Err(GatewayError::TooLarge { limit }.into())
        }
        Err(_) if stats.client_error.load(Ordering::Relaxed) => {
            Err(GatewayError::BadRequest("bad_request_body").into())
        }
        Err(e) => Err(e.into()),
    }
}

/// A content request (`crate::content`): the same authentication as a published URL of
/// the same kind, then the blob from storage. Nothing is read from storage before the
/// client is authenticated and content serving is on.
async fn content(
    gw: &Gateway,
    conn: &ConnInfo,
    parts: &http::request::Parts,
    kind: cmg_proto::mapping::AuthKind,
    blob: &str,
    record: &mut AccessRecord,
) -> LocalOrError {
    record.endpoint = Some(gw.content_stats.clone());
    let identity = match authn::authenticate(gw, kind, conn, &parts.headers).await {
        Ok(i) => i,
        Err(e) => {
            record.auth = "rejected";
            return e.into();
        }
    };
    record.auth = identity.method.as_str();
    if let authn::Identity::Token(t) = &identity {
        record.token_identity = Some(t.clone());
    }
    let Some(source) = gw.content.load_full() else {
        return GatewayError::ContentDisabled.into();
    };
    match crate::content::serve::serve(&source, &parts.method, &parts.headers, blob).await {
        Ok(reply) => LocalOrError::Content(reply),
        Err(e) => e.into(),
    }
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

/// A request answered without forwarding, or refused.
enum LocalOrError {
    Metadata(cmg_proto::mapping::AuthKind),
    Content(crate::content::serve::ContentReply),
    Error(GatewayError),
}

impl From<GatewayError> for LocalOrError {
    fn from(e: GatewayError) -> Self {
        Self::Error(e)
    }
}

fn finish(
    gw: &Gateway,
    resp: Result<Response<Incoming>, LocalOrError>,
    mut record: AccessRecord,
) -> Response<ResponseBody> {
    match resp {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            headers::strip_hop_by_hop(&mut parts.headers);
            if gw.route_headers {
                parts
                    .headers
                    .insert(headers::GATEWAY_INSTANCE, gw.instance_header.clone());
            } else {
                parts.headers.remove(headers::CONNECTION_POINT);
            }
            record.status = parts.status.as_u16();
            Response::from_parts(parts, ResponseBody::upstream(body, record))
        }
        Err(LocalOrError::Metadata(kind)) => {
            let body = format!(
                "<ServiceMetadata><ServiceName>{}</ServiceName><Instance>{}</Instance><Auth>{}</Auth><Version>{}</Version></ServiceMetadata>",
                gw.service_name,
                gw.instance,
                match kind {
                    cmg_proto::mapping::AuthKind::MutualAuth => "MutualAuth",
                    cmg_proto::mapping::AuthKind::ServerAuth => "ServerAuth",
                },
                env!("CARGO_PKG_VERSION"),
            );
            let mut resp = local_ok(Bytes::from(body), "application/xml", record);
            if gw.route_headers {
                resp.headers_mut()
                    .insert(headers::GATEWAY_INSTANCE, gw.instance_header.clone());
            }
            resp
        }
        Err(LocalOrError::Content(reply)) => {
            record.status = reply.status.as_u16();
            let body = match reply.body {
                Some(b) => ResponseBody::content(b, record),
                None => ResponseBody::local(Bytes::new(), record),
            };
            let mut resp = Response::new(body);
            *resp.status_mut() = reply.status;
            *resp.headers_mut() = reply.headers;
            if gw.route_headers {
                resp.headers_mut()
                    .insert(headers::GATEWAY_INSTANCE, gw.instance_header.clone());
            }
            resp
        }
        Err(LocalOrError::Error(e)) => error_response(&e, record),
    }
}
