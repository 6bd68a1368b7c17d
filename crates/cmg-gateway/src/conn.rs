//! One client connection after the TLS handshake: who the client is (its verified
//! certificate, if any), HTTP/1.1 or HTTP/2 by ALPN, limits, idle timeout and graceful
//! shutdown.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::HeaderValue;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::client::{Activity, ConnInfo};
use crate::h1_guard::{GuardState, Scanner};
use crate::identity::ClientIdentity;
use crate::request;
use crate::shard::ServerTls;
use crate::state::Gateway;

/// Counts activity on every read and write, so an idle connection can be told apart
/// from one that is slowly moving a large body; on HTTP/1.1 it also feeds every byte
/// hyper reads through the head [`Scanner`].
struct Watched<T> {
    inner: T,
    info: Arc<ConnInfo>,
    scanner: Option<Scanner>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        let fresh = &buf.filled()[before..];
        if !fresh.is_empty() {
            this.info.activity.touch();
            if let Some(scanner) = &mut this.scanner {
                scanner.feed(fresh);
            }
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
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serves one client connection until it closes, idles out, or `stop` is cancelled
/// (then in-flight requests finish and the connection closes gracefully).
pub async fn serve(
    gw: Arc<Gateway>,
    tls: ServerTls,
    peer: SocketAddr,
    shard: usize,
    stop: CancellationToken,
) {
    let (_, session) = tls.get_ref();
    let is_h2 = session.alpn_protocol() == Some(b"h2");
    let identity = session
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(ClientIdentity::from_cert);
    let peer_ip = HeaderValue::from_str(&peer.ip().to_string())
        .expect("an IP address is a valid header value");
    let guard = (!is_h2).then(|| Arc::new(GuardState::new(gw.limits().max_header_bytes)));
    let info = Arc::new(ConnInfo {
        peer,
        peer_ip,
        identity,
        activity: Activity::new(),
        h1_guard: guard.clone(),
        token: Default::default(),
        shard,
    });
    gw.metrics().client_connections.inc();
    let io = Watched {
        inner: tls,
        info: info.clone(),
        scanner: guard.clone().map(Scanner::new),
    };
    let service = {
        let gw = gw.clone();
        let info = info.clone();
        service_fn(move |req| request::handle(gw.clone(), info.clone(), req))
    };
    let limits = &gw.limits();
    let result = if is_h2 {
        let conn = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits.max_concurrent_streams)
            .max_header_list_size(limits.max_header_bytes as u32)
            .max_pending_accept_reset_streams(64)
            .max_local_error_reset_streams(256)
            .initial_stream_window_size(1024 * 1024)
            .initial_connection_window_size(4 * 1024 * 1024)
            .serve_connection(TokioIo::new(io), service);
        let timers = Timers {
            idle: limits.idle_timeout,
            head: None,
        };
        drive(conn, &info, timers, &stop, |c| c.graceful_shutdown()).await
    } else {
        let guard = guard.expect("HTTP/1.1 connections have a guard");
        // hyper's header read timeout starts when it waits for a head, so on a
        // keep-alive connection it is the idle timeout; a head that has started
        // arriving is timed by the guard (`Timers`).
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.idle_timeout)
            .max_headers(limits.max_headers)
            .max_buf_size(limits.max_header_bytes.max(8192))
            .half_close(false)
            .keep_alive(true)
            .serve_connection(TokioIo::new(io), service);
        let timers = Timers {
            idle: limits.idle_timeout,
            head: Some((&guard, limits.header_read_timeout)),
        };
        drive(conn, &info, timers, &stop, |c| c.graceful_shutdown()).await
    };
    gw.metrics().client_connections.dec();
    if let Err(e) = result {
        debug!(%peer, error = %cmg_core::error_chain::chain(&e), "client connection ended with an error");
    }
}

/// The timers of a connection: idle, and for HTTP/1.1 the head read timeout.
struct Timers<'a> {
    idle: Duration,
    head: Option<(&'a GuardState, Duration)>,
}

impl Timers<'_> {
    fn head_deadline(&self) -> Option<Instant> {
        let (guard, limit) = self.head?;
        Some(guard.head_started()? + limit)
    }

    async fn head_begun(&self) {
        match self.head {
            Some((guard, _)) => guard.head_begun().await,
            None => std::future::pending().await,
        }
    }
}

/// Polls a hyper connection to its end, closing it gracefully when it has been idle
/// for `timers.idle` or when `stop` is cancelled, and at once when a request head
/// takes longer than the header read timeout.
async fn drive<C>(
    conn: C,
    info: &ConnInfo,
    timers: Timers<'_>,
    stop: &CancellationToken,
    graceful: impl Fn(Pin<&mut C>),
) -> Result<(), hyper::Error>
where
    C: std::future::Future<Output = Result<(), hyper::Error>>,
{
    let idle = timers.idle;
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    let mut first_by: Option<Instant> = None;
    let mut check = Instant::now() + idle;
    loop {
        tokio::select! {
            r = conn.as_mut() => return r,
            _ = stop.cancelled(), if !closing => {
                closing = true;
                match timers.head {
                    // HTTP/1.1 that has not had its first request (a stop right after
                    // its handshake): let that request come, within the header read
                    // timeout; its answer says `Connection: close`.
                    Some((_, limit)) if !info.activity.any_request() => {
                        first_by = Some(Instant::now() + limit);
                        // Look again soon: a request that starts is then closed
                        // after its answer.
                        check = check.min(Instant::now() + Duration::from_millis(100));
                    }
                    _ => graceful(conn.as_mut()),
                }
            }
            _ = timers.head_begun() => {
                if let Some(d) = timers.head_deadline() {
                    check = check.min(d);
                }
            }
            _ = tokio::time::sleep_until(check) => {
                let now = Instant::now();
                if timers.head_deadline().is_some_and(|d| d <= now) {
                    debug!(peer = %info.peer, "request head not complete within the header read timeout; closing");
                    return Ok(());
                }
                check = now + idle;
                if let Some(by) = first_by {
                    if info.activity.any_request() {
                        // Its first request came: close after it (hyper finishes the
                        // answer in progress).
                        first_by = None;
                        graceful(conn.as_mut());
                    } else if by <= now {
                        debug!(peer = %info.peer, "stopping: no request came; closing");
                        return Ok(());
                    } else {
                        check = check.min(by).min(now + Duration::from_millis(100));
                    }
                }
                if !closing {
                    match info.activity.idle_deadline(idle) {
                        Some(deadline) if deadline <= now => {
                            debug!(peer = %info.peer, "idle timeout; closing");
                            closing = true;
                            graceful(conn.as_mut());
                        }
                        Some(deadline) => check = deadline,
                        None => {}
                    }
                }
                if let Some(d) = timers.head_deadline() {
                    check = check.min(d);
                }
            }
        }
    }
}
