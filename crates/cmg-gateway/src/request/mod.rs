//! The client request path: [`admit`] decides (guard, stop, [`filter`], [`authn`],
//! body limit, upstream head) and returns an [`Outcome`]; [`handle`] carries it out:
//! [`forward`] on a channel, a local answer, content from storage, or a refusal.
//! [`respond`] maps every refusal to a status; [`access`] writes the access line;
//! [`response`] is the streamed body sent back.

mod access;
mod admit;
mod authn;
mod filter;
mod forward;
mod outcome;
mod respond;
mod response;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use cmg_proto::headers;
use cmg_proto::mapping::AuthKind;
use http::{Request, Response};
use http_body::Body;
use tracing::{warn, Instrument};

use self::access::AccessRecord;
pub(crate) use self::admit::admit;
use self::outcome::{ContentRequest, Forward, Outcome};
use self::respond::{error_response, local_ok};
pub(crate) use self::response::ResponseBody;
use crate::body::BoxError;
use crate::client::ConnInfo;
use crate::error::GatewayError;
use crate::state::Gateway;
use crate::upstream::UpstreamBody;

/// Serves one client request. Never fails: every refusal is a response.
pub(crate) async fn handle<B>(
    gw: &Gateway,
    conn: &Arc<ConnInfo>,
    req: Request<B>,
) -> Result<Response<ResponseBody>, Infallible>
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<BoxError>,
{
    let h1 = req.version() == http::Version::HTTP_11;
    let mut record = AccessRecord::new(req.method().clone(), req.uri().clone(), conn.clone());
    // Under the access log's target: on where access lines are (`CMGHttpHandler.log`),
    // off on the terminal by default, so a request pays for a span only where its
    // events are kept.
    let span = tracing::info_span!(
        target: access::TARGET,
        "request",
        request_id = %format_args!("{:016x}", record.request_id)
    );
    async move {
        let outcome = admit(gw, conn, req, &mut record).await;
        let mut resp = carry_out(gw, outcome, record).await;
        if h1 && gw.is_draining() {
            // Stopping: this answer is the connection's last (hyper closes after it).
            resp.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        Ok(resp)
    }
    .instrument(span)
    .await
}

/// Does what admission decided: the only I/O of the request path.
async fn carry_out(
    gw: &Gateway,
    outcome: Outcome,
    mut record: AccessRecord,
) -> Response<ResponseBody> {
    match outcome {
        Outcome::Forward(f) => match forward_request(gw, f, &mut record).await {
            Ok(resp) => upstream_response(gw, resp, record),
            Err(e) => refusal(e, record),
        },
        Outcome::Metadata(kind) => metadata(gw, kind, record),
        Outcome::Content(c) => match content(c).await {
            Ok(reply) => content_response(gw, reply, record),
            Err(e) => refusal(e, record),
        },
        Outcome::Refuse(e) => refusal(e, record),
    }
}

fn refusal(e: GatewayError, record: AccessRecord) -> Response<ResponseBody> {
    if e.status().is_server_error() {
        warn!(target: access::TARGET, error = %e, "request failed");
    }
    error_response(&e, record)
}

async fn forward_request(
    gw: &Gateway,
    f: Box<Forward>,
    record: &mut AccessRecord,
) -> Result<Response<UpstreamBody>, GatewayError> {
    let shard = record.shard();
    let (body, limit) = (f.body.clone(), f.limit);
    match forward::send(gw, shard, f).await {
        Ok((resp, ch)) => {
            record.connection_point = Some(ch.connector.clone());
            Ok(resp)
        }
        // A body cut off at its limit or broken by the client fails the channel
        // request: the client's fault, not the channel's.
        Err(_) if body.over_limit.load(Ordering::Relaxed) => Err(GatewayError::TooLarge { limit }),
        Err(_) if body.client_error.load(Ordering::Relaxed) => {
            Err(GatewayError::BadRequest("bad_request_body"))
        }
        Err(e) => Err(e),
    }
}

async fn content(c: ContentRequest) -> Result<crate::content::serve::ContentReply, GatewayError> {
    crate::content::serve::serve(&c.source, &c.method, &c.headers, &c.blob).await
}

fn upstream_response(
    gw: &Gateway,
    resp: Response<UpstreamBody>,
    mut record: AccessRecord,
) -> Response<ResponseBody> {
    let (mut parts, body) = resp.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    if gw.route_headers() {
        parts
            .headers
            .insert(headers::GATEWAY_INSTANCE, gw.instance_header().clone());
    } else {
        parts.headers.remove(headers::CONNECTION_POINT);
    }
    record.status = parts.status.as_u16();
    Response::from_parts(parts, ResponseBody::upstream(body, record))
}

fn metadata(gw: &Gateway, kind: AuthKind, record: AccessRecord) -> Response<ResponseBody> {
    let body = format!(
        "<ServiceMetadata><ServiceName>{}</ServiceName><Instance>{}</Instance><Auth>{}</Auth><Version>{}</Version></ServiceMetadata>",
        gw.service_name(),
        gw.instance(),
        match kind {
            AuthKind::MutualAuth => "MutualAuth",
            AuthKind::ServerAuth => "ServerAuth",
        },
        env!("CARGO_PKG_VERSION"),
    );
    let mut resp = local_ok(Bytes::from(body), "application/xml", record);
    name_instance(gw, &mut resp);
    resp
}

fn content_response(
    gw: &Gateway,
    reply: crate::content::serve::ContentReply,
    mut record: AccessRecord,
) -> Response<ResponseBody> {
    record.status = reply.status.as_u16();
    let body = match reply.body {
        Some(b) => ResponseBody::content(b, record),
        None => ResponseBody::local(Bytes::new(), record),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = reply.status;
    *resp.headers_mut() = reply.headers;
    name_instance(gw, &mut resp);
    resp
}

/// With route headers on, a local answer names the instance as forwarded ones do.
fn name_instance(gw: &Gateway, resp: &mut Response<ResponseBody>) {
    if gw.route_headers() {
        resp.headers_mut()
            .insert(headers::GATEWAY_INSTANCE, gw.instance_header().clone());
    }
}
