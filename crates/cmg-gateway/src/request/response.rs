//! The body of a response to a client, all streaming: a local answer, the role's
//! response from the channel, or a blob from storage; it carries the request's access
//! record, written when the body ends or is dropped.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::upstream::UpstreamBody;

use super::access::AccessRecord;
use crate::body::BoxError;

#[derive(Debug)]
enum Inner {
    Local(Option<Bytes>),
    Upstream(UpstreamBody),
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
    pub fn upstream(body: UpstreamBody, mut record: AccessRecord) -> Self {
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
