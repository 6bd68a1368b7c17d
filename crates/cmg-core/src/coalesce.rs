//! One write to the socket for all the frames a connection task produces in one poll.
//!
//! The h2 crate writes every DATA frame of 256 bytes or more on its own: it chains the
//! payload behind the frame head and flushes before it accepts the next frame
//! (hyperium/h2#711, #903 proposes a fix upstream). On a channel carrying many small
//! responses that is one TLS record and one `writev` per response; the kernel's loopback
//! and TCP work per write is then the largest single cost of the connection point.
//!
//! [`Coalesced`] sits between h2 and the TLS stream. Writes go to its buffer; the first
//! flush of a poll does not write but wakes the task again, so every other task ready to
//! run (the streams queueing their frames) runs first; the next poll's first flush, or
//! its first read (a task that waits for its peer must not hold back what it owes it),
//! writes it all at once. The same idea as linkerd's `ChannelTransport` buffering (linkerd#2136)
//! and grpc-java's write queue; written here because no crate offers it for tokio IO
//! (tokio's `BufWriter` writes on every flush, which is the behaviour to avoid).
//!
//! A flush is deferred by one poll at most, and only when the future that writes (the
//! HTTP/2 connection) is polled through [`PollCount::drive`]: the count of polls is how
//! the writer knows a later poll has come. A writer whose task is not counted would
//! never write; wire both together. Backpressure is kept: the buffer holds at most
//! [`BUFFER_LIMIT`] bytes and a write that does not fit first waits for the socket.
//! Writes of [`COPY_LIMIT`] or more are not buffered but written at once, in one
//! vectored write behind what is buffered.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes buffered before a write must wait for the socket.
pub const BUFFER_LIMIT: usize = 64 * 1024;

/// Writes of this size or more are not copied: they go to the socket at once, behind
/// what is buffered (a 16 KiB DATA frame gains nothing from waiting, and copying it
/// costs more than the write it would save).
pub const COPY_LIMIT: usize = 4 * 1024;

/// Wraps `io` so that writes coalesce; drive the future that owns the result with the
/// returned [`PollCount`].
pub fn coalesce<T>(io: T) -> (Coalesced<T>, PollCount) {
    let polls = PollCount(Arc::new(AtomicU64::new(0)));
    let io = Coalesced {
        inner: io,
        buf: Vec::new(),
        written: 0,
        deferred_at: None,
        polls: polls.clone(),
    };
    (io, polls)
}

/// Counts the polls of the task that owns a [`Coalesced`].
#[derive(Debug, Clone)]
pub struct PollCount(Arc<AtomicU64>);

impl PollCount {
    /// `fut`, counting each poll. The [`Coalesced`] writer it owns (directly or through
    /// hyper) flushes for real on the first flush of a later poll.
    pub fn drive<F: Future>(&self, fut: F) -> Driven<F> {
        Driven {
            fut,
            polls: self.clone(),
        }
    }

    fn current(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

pin_project_lite::pin_project! {
    /// A future polled with its polls counted; see [`PollCount::drive`].
    #[derive(Debug)]
    pub struct Driven<F> {
        #[pin]
        fut: F,
        polls: PollCount,
    }
}

impl<F> Driven<F> {
    /// The future being driven.
    pub fn get_mut(&mut self) -> &mut F {
        &mut self.fut
    }
}

impl<F: Future> Future for Driven<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // Several tasks may share a count (hyper spawns its HTTP/2 client connection
        // and request body pipes with one executor): the count only has to move.
        this.polls.0.fetch_add(1, Ordering::Relaxed);
        this.fut.poll(cx)
    }
}

/// An IO object whose writes are buffered until the flush of a later poll.
#[derive(Debug)]
pub struct Coalesced<T> {
    inner: T,
    buf: Vec<u8>,
    /// Bytes of `buf` already written to `inner`.
    written: usize,
    /// The poll in which a flush was put off, while one is.
    deferred_at: Option<u64>,
    polls: PollCount,
}

impl<T: AsyncWrite + Unpin> Coalesced<T> {
    /// Writes the whole buffer to `inner`.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buf.len() {
            let n = std::task::ready!(
                Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.written..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.buf.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    fn is_deferred_from_earlier_poll(&self) -> bool {
        self.deferred_at
            .is_some_and(|at| at != self.polls.current())
    }

    /// The flush that was put off: the buffer, then whatever `inner` holds.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_drain(cx))?;
        std::task::ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        self.deferred_at = None;
        Poll::Ready(Ok(()))
    }

    /// A large write goes to `inner` as it is, behind what is buffered, in one vectored
    /// write: it is not copied here (a TLS stream copies it once, into its records).
    fn poll_write_through(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            let pending = self.buf.len() - self.written;
            if pending == 0 {
                self.buf.clear();
                self.written = 0;
                return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
            }
            let mut slices = [io::IoSlice::new(&[]); 8];
            slices[0] = io::IoSlice::new(&self.buf[self.written..]);
            let k = bufs.len().min(slices.len() - 1);
            slices[1..=k].copy_from_slice(&bufs[..k]);
            let n = std::task::ready!(
                Pin::new(&mut self.inner).poll_write_vectored(cx, &slices[..=k])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            if n <= pending {
                self.written += n;
                continue;
            }
            self.buf.clear();
            self.written = 0;
            return Poll::Ready(Ok(n - pending));
        }
    }

    /// Makes room for `len` more bytes: drains the buffer if they would not fit.
    fn poll_room(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<io::Result<()>> {
        if !self.buf.is_empty() && self.buf.len() + len > BUFFER_LIMIT {
            std::task::ready!(self.poll_drain(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Coalesced<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        // A task that put a flush off and now waits for the peer must not keep the
        // peer waiting for what is buffered (an HTTP/2 handshake flushes its SETTINGS,
        // then reads): a read in a later poll writes first. A full socket does not
        // hold the read up; its writability wakes the task as well.
        if this.is_deferred_from_earlier_poll() {
            if let Poll::Ready(r) = this.poll_write_out(cx) {
                r?;
            }
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalesced<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(data)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let len = bufs.iter().map(|b| b.len()).sum::<usize>();
        if len >= COPY_LIMIT {
            return this.poll_write_through(cx, bufs);
        }
        std::task::ready!(this.poll_room(cx, len))?;
        for b in bufs {
            this.buf.extend_from_slice(b);
        }
        Poll::Ready(Ok(len))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.buf.is_empty() {
            this.deferred_at = None;
            return Pin::new(&mut this.inner).poll_flush(cx);
        }
        match this.deferred_at {
            None => {
                // Let the tasks that are ready now add their frames; the task is polled
                // again after them and that poll writes.
                this.deferred_at = Some(this.polls.current());
                cx.waker().wake_by_ref();
                Poll::Ready(Ok(()))
            }
            Some(_) if !this.is_deferred_from_earlier_poll() => Poll::Ready(Ok(())),
            Some(_) => this.poll_write_out(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        std::task::ready!(this.poll_drain(cx))?;
        this.deferred_at = None;
        std::task::ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
