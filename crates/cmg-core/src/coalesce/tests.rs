use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{coalesce, Coalesced, BUFFER_LIMIT, COPY_LIMIT};

/// Records every write that reaches it, as the socket would see them; `full` makes it
/// refuse writes like a socket whose send buffer is full, `limit` takes at most that
/// many bytes per write.
#[derive(Debug, Default)]
struct Socket {
    writes: Vec<Vec<u8>>,
    flushes: usize,
    full: bool,
    limit: Option<usize>,
    shut: bool,
}

impl AsyncWrite for Socket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(b)])
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.full {
            return Poll::Pending;
        }
        let mut write: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        write.truncate(self.limit.unwrap_or(usize::MAX));
        let n = write.len();
        self.writes.push(write);
        Poll::Ready(Ok(n))
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.flushes += 1;
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.shut = true;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // The peer has sent nothing yet.
        Poll::Pending
    }
}

#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn write(io: &mut Coalesced<Socket>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
    Pin::new(io).poll_write(cx, data)
}

fn flush(io: &mut Coalesced<Socket>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    Pin::new(io).poll_flush(cx)
}

fn ready<T>(p: Poll<io::Result<T>>) -> T {
    match p {
        Poll::Ready(Ok(v)) => v,
        Poll::Ready(Err(e)) => panic!("io error: {e}"),
        Poll::Pending => panic!("pending"),
    }
}

#[test]
fn frames_flushed_in_one_poll_reach_the_socket_in_one_write_on_the_next() {
    let (mut io, polls) = coalesce(Socket::default());
    let woken = Arc::new(CountingWaker::default());
    let waker = Waker::from(woken.clone());
    let mut cx = Context::from_waker(&waker);
    let mut step = 0;
    let mut writes_after_first_poll = usize::MAX;
    {
        let mut task = polls.drive(poll_fn(|cx| {
            step += 1;
            if step == 1 {
                // What h2 does for two chained DATA frames: write, flush, write, flush.
                assert_eq!(ready(write(&mut io, cx, b"frame one ")), 10);
                ready(flush(&mut io, cx));
                assert_eq!(ready(write(&mut io, cx, b"frame two")), 9);
                ready(flush(&mut io, cx));
                writes_after_first_poll = io.inner.writes.len();
                return Poll::Pending;
            }
            ready(flush(&mut io, cx));
            Poll::Ready(())
        }));
        assert!(Pin::new(&mut task).poll(&mut cx).is_pending());
        assert_eq!(
            woken.0.load(Ordering::Relaxed),
            1,
            "the task asks to be polled again"
        );
        assert!(Pin::new(&mut task).poll(&mut cx).is_ready());
    }
    assert_eq!(
        writes_after_first_poll, 0,
        "nothing written during the first poll"
    );
    assert_eq!(io.inner.writes, vec![b"frame one frame two".to_vec()]);
    assert_eq!(io.inner.flushes, 1);
}

#[test]
fn a_flush_with_nothing_buffered_passes_through_at_once() {
    let (mut io, _polls) = coalesce(Socket::default());
    let woken = Arc::new(CountingWaker::default());
    let waker = Waker::from(woken.clone());
    let mut cx = Context::from_waker(&waker);
    ready(flush(&mut io, &mut cx));
    assert_eq!(io.inner.flushes, 1);
    assert_eq!(woken.0.load(Ordering::Relaxed), 0);
}

#[test]
fn shutdown_writes_what_is_buffered_first() {
    let (mut io, _polls) = coalesce(Socket::default());
    let mut cx = Context::from_waker(Waker::noop());
    ready(write(&mut io, &mut cx, b"goaway"));
    ready(flush(&mut io, &mut cx));
    ready(Pin::new(&mut io).poll_shutdown(&mut cx));
    assert_eq!(io.inner.writes, vec![b"goaway".to_vec()]);
    assert!(io.inner.shut);
}

#[test]
fn a_write_that_does_not_fit_waits_for_the_socket() {
    let (mut io, _polls) = coalesce(Socket::default());
    let mut cx = Context::from_waker(Waker::noop());
    let frame = vec![1u8; COPY_LIMIT - 1];
    let mut buffered = 0;
    while buffered + frame.len() <= BUFFER_LIMIT {
        assert_eq!(ready(write(&mut io, &mut cx, &frame)), frame.len());
        buffered += frame.len();
    }
    assert!(io.inner.writes.is_empty());

    io.inner.full = true;
    assert!(
        write(&mut io, &mut cx, &frame).is_pending(),
        "backpressure, not growth"
    );
    assert_eq!(io.buf.len(), buffered);

    io.inner.full = false;
    assert_eq!(ready(write(&mut io, &mut cx, &frame)), frame.len());
    assert_eq!(
        io.inner.writes.len(),
        1,
        "the full buffer went out in one write"
    );
    assert_eq!(io.inner.writes[0].len(), buffered);
    assert_eq!(io.buf.len(), frame.len());
}

#[test]
fn a_large_write_is_not_copied_but_follows_the_buffer_in_one_write() {
    let (mut io, _polls) = coalesce(Socket::default());
    let mut cx = Context::from_waker(Waker::noop());
    ready(write(&mut io, &mut cx, b"head"));

    io.inner.full = true;
    let large = vec![7u8; COPY_LIMIT];
    assert!(write(&mut io, &mut cx, &large).is_pending());

    io.inner.full = false;
    assert_eq!(ready(write(&mut io, &mut cx, &large)), large.len());
    let mut expected = b"head".to_vec();
    expected.extend_from_slice(&large);
    assert_eq!(io.inner.writes, vec![expected]);
    assert!(io.buf.is_empty());
}

#[test]
fn a_large_write_after_a_short_write_reports_only_its_own_bytes() {
    let (mut io, _polls) = coalesce(Socket::default());
    let mut cx = Context::from_waker(Waker::noop());
    ready(write(&mut io, &mut cx, b"small"));
    io.inner.limit = Some(3);
    let large = vec![7u8; COPY_LIMIT];
    // "sma", then "ll" and one byte of the large write.
    assert_eq!(ready(write(&mut io, &mut cx, &large)), 1);
    assert_eq!(io.inner.writes, vec![b"sma".to_vec(), b"ll\x07".to_vec()]);
    assert!(io.buf.is_empty());
}

#[test]
fn a_read_in_a_later_poll_writes_what_a_put_off_flush_left() {
    let (mut io, polls) = coalesce(Socket::default());
    let mut cx = Context::from_waker(Waker::noop());
    let mut step = 0;
    {
        // An HTTP/2 handshake: flush SETTINGS, then wait for the peer's preface.
        let mut task = polls.drive(poll_fn(|cx| {
            step += 1;
            if step == 1 {
                ready(write(&mut io, cx, b"settings"));
                ready(flush(&mut io, cx));
            }
            let mut space = [0u8; 16];
            let mut buf = ReadBuf::new(&mut space);
            assert!(Pin::new(&mut io).poll_read(cx, &mut buf).is_pending());
            if step == 1 {
                assert!(io.inner.writes.is_empty(), "same poll: still put off");
            }
            Poll::<()>::Pending
        }));
        assert!(Pin::new(&mut task).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut task).poll(&mut cx).is_pending());
    }
    assert_eq!(io.inner.writes, vec![b"settings".to_vec()]);
    assert_eq!(io.inner.flushes, 1);
}
