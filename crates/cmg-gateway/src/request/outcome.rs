//! [`Outcome`]: what admission decided for one request, before any I/O to a channel or
//! to storage. Admission (`admit`) makes every decision; `handle` only carries it out,
//! so the decisions are tested in memory.

use std::sync::Arc;

use cmg_proto::mapping::AuthKind;
use cmg_proto::SiteCode;
use http::Request;

use super::forward::Replay;
use crate::body::{BodyStats, ForwardBody};
use crate::content::ContentSource;
use crate::error::GatewayError;

/// What becomes of a request.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Authenticated and within limits: send it up a channel of `site`. Boxed: the
    /// futures that carry it out each hold their arguments twice (as moved in and as
    /// locals), and are moved whole when awaited, so 550 bytes inline are copied several
    /// times per request where the box costs one allocation.
    Forward(Box<Forward>),
    /// The `ServiceMetadata` probe, answered by the gateway.
    Metadata(AuthKind),
    /// An authenticated content request, answered from `source`.
    Content(ContentRequest),
    /// Refused: answered with the error, nothing forwarded.
    Refuse(GatewayError),
}

impl From<GatewayError> for Outcome {
    fn from(e: GatewayError) -> Self {
        Self::Refuse(e)
    }
}

/// A request ready to go up a channel.
#[derive(Debug)]
pub(crate) struct Forward {
    /// Upstream head (absolute URI, cleaned and identity headers) and streamed body.
    pub request: Request<ForwardBody>,
    /// A copy to send again when a channel refuses the request unprocessed; only for a
    /// body that was whole in its first frame.
    pub replay: Option<Replay>,
    pub site: SiteCode,
    /// The endpoint's body limit, to tell a cut-off body from a failed channel.
    pub limit: u64,
    pub body: Arc<BodyStats>,
}

/// A content request to answer from storage.
#[derive(Debug)]
pub(crate) struct ContentRequest {
    pub source: Arc<ContentSource>,
    pub method: http::Method,
    pub headers: http::HeaderMap,
    /// The decoded blob path below the content segment.
    pub blob: String,
}
