//! Forwarding on a channel: build the upstream request (hop-by-hop and client-supplied
//! `cmg-*` headers removed; identity, request ID and `X-Forwarded-For` added), pick a
//! channel round robin, and retry on the next one when a channel closed before the
//! request was sent.

use std::sync::Arc;

use cmg_proto::headers;
use http::{header, request::Parts, uri, HeaderValue, Request, Response, Uri};
use tracing::debug;

use super::outcome::Forward;
use crate::body::ForwardBody;
use crate::error::GatewayError;
use crate::identity::ClientIdentity;
use crate::registry::Channel;
use crate::state::Gateway;
use crate::upstream::{SendError, UpstreamBody};

/// Removes what must not travel upstream and adds what the role may trust.
pub fn upstream_headers(
    parts: &mut Parts,
    identity: &ClientIdentity,
    request_id: u64,
    peer_ip: &HeaderValue,
) -> usize {
    let h = &mut parts.headers;
    headers::strip_hop_by_hop(h);
    let forged = headers::strip_internal(h);
    h.remove(header::HOST);
    // The gateway is the edge: nothing in front of it (an L4 balancer) adds this header,
    // so a client-supplied value is dropped rather than trusted.
    h.remove(headers::X_FORWARDED_FOR);
    // Room for the four below at once (the map hyper parsed is sized for the client's
    // headers, and would grow for them one at a time).
    h.reserve(4);
    h.insert(headers::CLIENT_IDENTITY, identity.header.clone());
    h.insert(
        headers::CLIENT_AUTH,
        HeaderValue::from_static(identity.method.header_value()),
    );
    h.insert(headers::REQUEST_ID, request_id_value(request_id));
    h.insert(headers::X_FORWARDED_FOR, peer_ip.clone());
    forged
}

/// The request ID as 16 hex digits, marked never-indexed for HPACK: a value sent once
/// would only push the headers that repeat (identity, forwarded-for) out of the
/// channel's header table, which then has to carry them in full again.
fn request_id_value(id: u64) -> HeaderValue {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0u8; 16];
    for (i, d) in hex.iter_mut().enumerate() {
        *d = DIGITS[((id >> (60 - 4 * i)) & 0xf) as usize];
    }
    let mut v = HeaderValue::from_bytes(&hex).unwrap_or(HeaderValue::from_static("0"));
    v.set_sensitive(true);
    v
}

/// The absolute URI the HTTP/2 client needs: `https://<service><path?query>`.
pub fn upstream_uri(gw: &Gateway, original: &Uri) -> Result<Uri, GatewayError> {
    let mut p = uri::Parts::default();
    p.scheme = Some(uri::Scheme::HTTPS);
    p.authority = Some(gw.authority().clone());
    p.path_and_query = original.path_and_query().cloned();
    Uri::from_parts(p).map_err(|_| GatewayError::BadRequest("bad_target"))
}

/// A copy of a request small enough to send again: head and whole body.
#[derive(Debug)]
pub struct Replay {
    method: http::Method,
    uri: Uri,
    headers: http::HeaderMap,
    body: bytes::Bytes,
}

impl Replay {
    pub fn new(req: &Request<ForwardBody>, body: bytes::Bytes) -> Self {
        Self {
            method: req.method().clone(),
            uri: req.uri().clone(),
            headers: req.headers().clone(),
            body,
        }
    }

    fn request(&self) -> Request<ForwardBody> {
        let mut req = Request::new(ForwardBody::bytes(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        *req.version_mut() = http::Version::HTTP_2;
        req
    }
}

/// Whether the connection point provably did not process the request: it refused the
/// stream, or is going away and the stream was past its last accepted one.
fn refused_unprocessed(e: &h2::Error) -> bool {
    e.reason() == Some(h2::Reason::REFUSED_STREAM)
        || (e.is_go_away() && e.is_remote() && e.reason() == Some(h2::Reason::NO_ERROR))
}

/// The header naming a BITS upload session: the affinity key of its requests.
const BITS_SESSION_ID: &str = "bits-session-id";

/// Sends `req` on a channel of `site`; returns the response head and the channel used.
/// A request that a channel did not take, or refused unprocessed (a connection point
/// shutting down gracefully), goes to the next channel: as is when the channel hands it back,
/// from `replay` when only a copy is left.
pub async fn send(
    gw: &Gateway,
    shard: usize,
    f: Box<Forward>,
) -> Result<(Response<UpstreamBody>, Arc<Channel>), GatewayError> {
    let Forward {
        request: mut req,
        replay,
        site,
        ..
    } = *f;
    let site = &site;
    // Fragments of one BITS upload session go through one connection point.
    let affinity = req
        .headers()
        .get(BITS_SESSION_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    // Bounded by the number of channels an instance can plausibly have.
    for _ in 0..16 {
        let ch = gw
            .registry()
            .pick_with(site, shard, affinity.as_deref())
            .ok_or_else(|| GatewayError::NoChannel {
                site: site.to_string(),
            })?;
        let sent =
            tokio::time::timeout(gw.channel_settings().response_timeout, ch.sender.send(req));
        match sent.await {
            Err(_) => return Err(GatewayError::Timeout),
            Ok(Ok(resp)) => return Ok((resp, ch)),
            Ok(Err(SendError::NotSent(back, e))) => {
                debug!(connection_id = %ch.id, error = %e, "channel refused request; trying another");
                gw.registry().remove(ch.id);
                req = *back;
            }
            Ok(Err(SendError::Failed(e))) => match &replay {
                Some(r) if refused_unprocessed(&e) => {
                    debug!(connection_id = %ch.id, error = %e, "channel refused request unprocessed; replaying on another");
                    gw.registry().remove(ch.id);
                    req = r.request();
                }
                _ => return Err(GatewayError::Channel(cmg_core::error_chain::chain(&e))),
            },
        }
    }
    Err(GatewayError::NoChannel {
        site: site.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::request_id_value;

    #[test]
    fn request_id_is_sixteen_hex_digits_never_indexed() {
        for id in [0, 1, 0xdead_beef, 0x1f21_0e59_42bf_0382, u64::MAX] {
            let v = request_id_value(id);
            assert_eq!(v.to_str().ok(), Some(format!("{id:016x}").as_str()));
            assert!(v.is_sensitive());
        }
    }
}
