//! The client's request body behind the endpoint's byte limit, and what it did
//! ([`BodyStats`]): the only body the request path reads from a client. Generic over
//! the body type, so the request path runs on hyper's `Incoming` in production and on
//! an in-memory body in tests.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::BoxError;

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
pub struct LimitedBody<B> {
    inner: B,
    /// A frame read before forwarding (see [`LimitedBody::read_first`]).
    first: Option<Frame<Bytes>>,
    limit: u64,
    seen: u64,
    stats: Arc<BodyStats>,
}

impl<B> LimitedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    pub fn new(inner: B, limit: u64, stats: Arc<BodyStats>) -> Self {
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

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
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
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
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
