//! Body types on the request path, all streaming:
//! - [`ForwardBody`]: what goes up the channel: nothing (control requests) or the
//!   client's body behind a byte limit that cuts the stream when it passes the limit;
//! - [`ResponseBody`]: what goes back to the client: a local answer or the role's
//!   streamed response, carrying the request's access record, written when it ends.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::access::AccessRecord;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the request body did, read after forwarding to choose the status.
#[derive(Debug, Default)]
pub struct BodyStats {
    pub bytes: AtomicU64,
    /// The body passed the endpoint's limit and was cut off.
    pub over_limit: AtomicBool,
    /// Reading the client's body failed (bad chunk framing, reset, disconnect).
    pub client_error: AtomicBool,
}

/// The body passed the endpoint's maximum.
#[derive(Debug, thiserror::Error)]
#[error("request body exceeds the endpoint's limit of {0} bytes")]
pub struct TooLarge(pub u64);

/// The client's body, cut off with an error once it passes `limit` bytes, so the
/// connection point (and the role) see an aborted request, never a truncated one
/// passed off as complete.
#[derive(Debug)]
pub struct LimitedBody {
    inner: Incoming,
    /// A frame read before forwarding (see [`LimitedBody::read_first`]).
    first: Option<Frame<Bytes>>,
    limit: u64,
    seen: u64,
    stats: Arc<BodyStats>,
}

impl LimitedBody {
    pub fn new(inner: Incoming, limit: u64, stats: Arc<BodyStats>) -> Self {
        Self {
            inner,
            first: None,
            limit,
            seen: 0,
            stats,
        }
    }

    /// The whole body, when it was complete in its first frame (most requests): such a
    /// request can be sent again on another channel if one refuses it unprocessed.
    pub fn replayable(&self) -> Option<Bytes> {
        if !self.inner.is_end_stream() {
            return None;
        }
        match &self.first {
            None => Some(Bytes::new()),
            Some(f) => f.data_ref().cloned(),
        }
    }

    /// Reads the first frame before anything is forwarded, so that a body that is
    /// broken from its first byte (a bad first chunk size, a body over the limit in its
    /// first frame) is refused without the request head ever reaching a channel.
    /// Bodies that break later are cut off mid-stream: the role sees an aborted request.
    pub async fn read_first(&mut self) -> Result<(), BoxError> {
        if self.inner.is_end_stream() {
            return Ok(());
        }
        let polled = std::future::poll_fn(|cx| Pin::new(&mut *self).poll_frame(cx)).await;
        match polled {
            Some(Ok(frame)) => {
                self.first = Some(frame);
                Ok(())
            }
            Some(Err(e)) => Err(e),
            None => Ok(()),
        }
    }
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Some(frame) = this.first.take() {
            return Poll::Ready(Some(Ok(frame)));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    this.seen += n;
                    this.stats.bytes.fetch_add(n, Ordering::Relaxed);
                    if this.seen > this.limit {
                        this.stats.over_limit.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(Box::new(TooLarge(this.limit)))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.stats.client_error.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(Box::new(e))))
            }
            other => other.map_err(|e| -> BoxError { Box::new(e) }),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.first {
            None => self.inner.size_hint(),
            // `inner`'s hint no longer counts the frame held here.
            Some(f) => {
                let held = f.data_ref().map_or(0, |d| d.len() as u64);
                let inner = self.inner.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(inner.lower() + held);
                if let Some(upper) = inner.upper() {
                    hint.set_upper(upper + held);
                }
                hint
            }
        }
    }
}

/// The body of a request sent up a channel.
#[derive(Debug)]
pub struct ForwardBody(Option<LimitedBody>, Option<Bytes>);

impl ForwardBody {
    pub fn empty() -> Self {
        Self(None, None)
    }
    pub fn client(body: LimitedBody) -> Self {
        Self(Some(body), None)
    }
    /// A body replayed from memory (see [`LimitedBody::replayable`]).
    pub fn bytes(b: Bytes) -> Self {
        Self(None, Some(b))
    }
}

impl Body for ForwardBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.0 {
            None => Poll::Ready(self.1.take().map(|b| Ok(Frame::data(b)))),
            Some(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Some(b) => b.is_end_stream(),
            None => self.1.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Some(b) => b.size_hint(),
            None => SizeHint::with_exact(self.1.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}

#[derive(Debug)]
enum Inner {
    Local(Option<Bytes>),
    Upstream(Incoming),
    /// A blob from storage (`crate::content`), `remaining` bytes still to come.
    Content {
        body: crate::content::serve::ContentBody,
        remaining: u64,
    },
}

impl Inner {
    fn ended(&self) -> bool {
        match self {
            Self::Local(b) => b.is_none(),
            Self::Upstream(b) => b.is_end_stream(),
            Self::Content { remaining, .. } => *remaining == 0,
        }
    }
}

/// The body of a response to a client; writes the access record when dropped (after
/// the last byte was sent, or when the client went away).
#[derive(Debug)]
pub struct ResponseBody {
    inner: Inner,
    record: AccessRecord,
}

impl ResponseBody {
    pub fn local(bytes: Bytes, record: AccessRecord) -> Self {
        Self {
            inner: Inner::Local(Some(bytes)),
            record,
        }
    }
    pub fn upstream(body: Incoming, mut record: AccessRecord) -> Self {
        // hyper never polls a body that is already at its end (an empty response).
        record.complete = body.is_end_stream();
        Self {
            inner: Inner::Upstream(body),
            record,
        }
    }
}

impl ResponseBody {
    /// A blob streamed from storage.
    pub fn content(body: crate::content::serve::ContentBody, mut record: AccessRecord) -> Self {
        let remaining = body.len;
        record.complete = remaining == 0;
        Self {
            inner: Inner::Content { body, remaining },
            record,
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = match &mut this.inner {
            Inner::Local(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Inner::Upstream(b) => Pin::new(b)
                .poll_frame(cx)
                .map_err(|e| -> BoxError { Box::new(e) }),
            Inner::Content { body, remaining } => match body.stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(b))) => {
                    if b.len() as u64 > *remaining {
                        // More than the declared length: storage changed under us.
                        *remaining = 0;
                        Poll::Ready(Some(Err("storage sent more than the blob's length".into())))
                    } else {
                        *remaining -= b.len() as u64;
                        Poll::Ready(Some(Ok(Frame::data(b))))
                    }
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                Poll::Ready(None) if *remaining > 0 => {
                    Poll::Ready(Some(Err("storage ended the blob before its length".into())))
                }
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        };
        match &polled {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    this.record.bytes_out += d.len() as u64;
                }
                // hyper stops polling once the body says it is at its end, so the
                // last frame, not a trailing `None`, may be all we see.
                if this.inner.ended() {
                    this.record.complete = true;
                }
            }
            Poll::Ready(Some(Err(e))) => {
                this.record.note_upstream_error(e.to_string());
            }
            Poll::Ready(None) => this.record.complete = true,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.ended()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Local(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Inner::Local(None) => SizeHint::with_exact(0),
            Inner::Upstream(b) => b.size_hint(),
            Inner::Content { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}
