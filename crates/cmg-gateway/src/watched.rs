//! The IO under hyper on a client connection: counts activity on every read and write
//! (for the idle timeout), feeds every byte hyper reads on HTTP/1.1 through the head
//! [`Scanner`], hands hyper bytes read before its turn, and ends an HTTP/1.1 hyper
//! connection when the connection may park ([`Watched::may_park`]). It does not wait
//! while parked (`park`) nor decide anything about requests.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::ConnInfo;
use crate::h1_guard::Scanner;

/// How long an HTTP/1.1 connection stays quiet between requests before it parks: long
/// enough that a client sending its next request at once keeps its hyper connection,
/// short against the minutes an idle client stays connected.
pub(crate) const PARK_AFTER: Duration = Duration::from_secs(1);

/// Counts activity on every read and write, so an idle connection can be told apart
/// from one that is slowly moving a large body; on HTTP/1.1 it also feeds every byte
/// hyper reads through the head [`Scanner`], and ends hyper's connection when the
/// connection parks ([`Watched::may_park`]).
pub(crate) struct Watched<T> {
    inner: T,
    info: Arc<ConnInfo>,
    scanner: Option<Scanner>,
    /// Bytes already read (and scanned), handed out before anything from `inner`: the
    /// byte a parked connection woke to, or what a hyper connection left unread.
    pub(crate) replay: Bytes,
    /// While a hyper connection serves HTTP/1.1: the stop that turns parking off.
    pub(crate) park: Option<CancellationToken>,
    /// The read that parked the connection has been answered.
    pub(crate) parked: bool,
    /// No write since the last completed flush: nothing waits in hyper's write buffer
    /// (hyper flushes its own buffer before it flushes the IO) nor in the TLS session's.
    flushed: bool,
}

impl<T> Watched<T> {
    pub(crate) fn new(inner: T, info: Arc<ConnInfo>, scanner: Option<Scanner>) -> Self {
        Self {
            inner,
            info,
            scanner,
            replay: Bytes::new(),
            park: None,
            parked: false,
            flushed: true,
        }
    }

    /// Whether a read that found nothing to read may end hyper's connection so that
    /// this one parks: HTTP/1.1, not stopping, every request read has been answered and
    /// flushed, no message partly read, and nothing moved for [`PARK_AFTER`]. hyper
    /// then sees the end of stream of an idle connection (a client closing it), which
    /// it ends without error and without a shutdown (`poll_without_shutdown`).
    fn may_park(&self) -> bool {
        let (Some(stop), Some(scanner)) = (&self.park, &self.scanner) else {
            return false;
        };
        let activity = &self.info.activity;
        // The stop token last: its check takes a lock that every client connection
        // shares, where the others read this connection's own state.
        self.flushed
            && scanner.between_messages()
            && activity.finished() == scanner.heads()
            && activity
                .idle_deadline(PARK_AFTER)
                .is_some_and(|at| at <= Instant::now())
            && !stop.is_cancelled()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if !this.replay.is_empty() {
            let n = this.replay.len().min(buf.remaining());
            buf.put_slice(&this.replay.split_to(n));
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        let fresh = &buf.filled()[before..];
        if !fresh.is_empty() {
            this.info.activity.touch();
            if let Some(scanner) = &mut this.scanner {
                scanner.feed(fresh);
            }
        }
        if r.is_pending() && this.may_park() {
            this.parked = true;
            return Poll::Ready(Ok(()));
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.flushed = false;
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.info.activity.touch();
        }
        r
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.flushed = false;
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.info.activity.touch();
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        if matches!(r, Poll::Ready(Ok(()))) {
            self.flushed = true;
        }
        r
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
