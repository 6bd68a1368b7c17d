//! [`ForwardBody`]: the body of every request the gateway sends up a channel: nothing
//! (control requests), bytes held in memory (a snapshot, a replayed request), or the
//! client's body streamed behind its limit.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::{BoxError, LimitedBody};

/// A client body of any type, boxed.
struct ClientBody(Pin<Box<dyn Body<Data = Bytes, Error = BoxError> + Send>>);

impl std::fmt::Debug for ClientBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBody")
            .field("size_hint", &self.0.size_hint())
            .finish()
    }
}

/// The body of a request sent up a channel.
#[derive(Debug)]
pub struct ForwardBody(Option<ClientBody>, Option<Bytes>);

impl ForwardBody {
    pub fn empty() -> Self {
        Self(None, None)
    }
    /// The client's body, streamed. Boxed: the channel carries one body type whatever
    /// the client body is (hyper's `Incoming`, or an in-memory body in tests); one
    /// allocation per forwarded request.
    pub fn client<B>(body: LimitedBody<B>) -> Self
    where
        B: Body<Data = Bytes> + Unpin + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Self(Some(ClientBody(Box::pin(body))), None)
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
            Some(b) => b.0.as_mut().poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Some(b) => b.0.is_end_stream(),
            None => self.1.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Some(b) => b.0.size_hint(),
            None => SizeHint::with_exact(self.1.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}
