//! One client connection after the TLS handshake: who the client is (its verified
//! certificate, if any), HTTP/1.1 or HTTP/2 by ALPN, limits, idle timeout and graceful
//! shutdown.
//!
//! An HTTP/1.1 connection is served by a series of hyper connections over the same TLS
//! session: it starts parked (`park`: the TLS session and the socket, nothing else),
//! gets a hyper connection when bytes arrive, and parks again when it has been quiet
//! between requests for `watched::PARK_AFTER`. HTTP/2 connections are served by one hyper
//! connection for their whole life and never park.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use hyper::server::conn::http1::{self, Connection};
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::client::{Activity, ConnInfo};
use crate::config::Limits;
use crate::h1_guard::{GuardState, Scanner};
use crate::identity::ClientIdentity;
use crate::park::{self, Woken};
use crate::request;
use crate::shard::ServerTls;
use crate::state::Gateway;
use crate::watched::{Watched, PARK_AFTER};

/// Serves one client connection until it closes, idles out, or `stop` is cancelled
/// (then in-flight requests finish and the connection closes gracefully).
pub async fn serve(
    gw: Arc<Gateway>,
    tls: Box<ServerTls>,
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
    let io = Watched::new(tls, info.clone(), guard.clone().map(Scanner::new));
    let result = match guard {
        None => serve_h2(&gw, io, &info, &stop).await,
        Some(guard) => serve_h1(&gw, io, &info, &guard, &stop).await,
    };
    gw.metrics().client_connections.dec();
    if let Err(e) = result {
        debug!(%peer, error = %cmg_core::error_chain::chain(&e), "client connection ended with an error");
    }
}

type ClientIo = Watched<Box<ServerTls>>;
type Answer = Result<http::Response<request::ResponseBody>, std::convert::Infallible>;
type Handling<'a> = Pin<Box<dyn Future<Output = Answer> + Send + 'a>>;

/// HTTP/2: one hyper connection (boxed, so that a parked HTTP/1.1 connection's task is
/// not the size of an HTTP/2 one) for the whole connection.
async fn serve_h2(
    gw: &Arc<Gateway>,
    io: ClientIo,
    info: &Arc<ConnInfo>,
    stop: &CancellationToken,
) -> Result<(), hyper::Error> {
    let service = {
        let gw = gw.clone();
        let info = info.clone();
        // hyper runs each stream as a task of its own: the request owns its references.
        service_fn(move |req| {
            let (gw, info) = (gw.clone(), info.clone());
            async move { request::handle(&gw, &info, req).await }
        })
    };
    let limits = gw.limits();
    let mut conn = Box::pin(
        http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits.max_concurrent_streams)
            .max_header_list_size(limits.max_header_bytes as u32)
            .max_pending_accept_reset_streams(64)
            .max_local_error_reset_streams(256)
            .initial_stream_window_size(1024 * 1024)
            .initial_connection_window_size(4 * 1024 * 1024)
            .serve_connection(TokioIo::new(io), service),
    );
    let timers = Timers {
        idle: limits.idle_timeout,
        head: None,
        park: false,
    };
    let poll = |c: Pin<&mut _>, cx: &mut Context<'_>| Future::poll(c, cx);
    drive(conn.as_mut(), poll, info, timers, stop, |c| {
        c.graceful_shutdown()
    })
    .await
    .unwrap_or(Ok(()))
}

/// HTTP/1.1: parked until bytes come, then a hyper connection until the connection is
/// quiet between requests (it parks again), ends, or is cut off.
async fn serve_h1(
    gw: &Arc<Gateway>,
    mut io: ClientIo,
    info: &Arc<ConnInfo>,
    guard: &GuardState,
    stop: &CancellationToken,
) -> Result<(), hyper::Error> {
    // Boxed per request: hyper can hand the connection back (`into_parts`) only when
    // the service's future is `Unpin`. It borrows the gateway and the connection from
    // this task, where a clone of the gateway's `Arc` per request was a write to a
    // counter every thread shares.
    let service =
        service_fn(move |req| -> Handling<'_> { Box::pin(request::handle(gw, info, req)) });
    let limits = gw.limits();
    loop {
        match park::wait(&mut io, info, limits.idle_timeout, stop, gw.metrics()).await {
            Woken::Bytes | Woken::Stopping => {}
            Woken::Close => {
                close(&mut io, info, limits).await;
                return Ok(());
            }
            Woken::Gone => return Ok(()),
        }
        io.park = Some(stop.clone());
        let mut conn = Box::new(h1_builder(limits).serve_connection(TokioIo::new(io), service));
        // The idle timeout, and a head that has started arriving timed by the guard.
        let timers = Timers {
            idle: limits.idle_timeout,
            head: Some((guard, limits.header_read_timeout)),
            park: true,
        };
        // Without hyper's shutdown at the end: the IO goes on when the connection parks.
        let poll = |c: Pin<&mut Connection<_, _>>, cx: &mut Context<'_>| {
            c.get_mut().poll_without_shutdown(cx)
        };
        let graceful = |c: Pin<&mut Connection<_, _>>| c.graceful_shutdown();
        match drive(Pin::new(&mut *conn), poll, info, timers, stop, graceful).await {
            // Cut off by the head or stop timer: closed at once.
            None => return Ok(()),
            Some(Err(e)) => {
                // hyper shuts the IO down before it reports an error it answered
                // (a 400 for a malformed head); so does this.
                close(&mut conn.into_parts().io.into_inner(), info, limits).await;
                return Err(e);
            }
            Some(Ok(())) => {}
        }
        let parts = conn.into_parts();
        io = parts.io.into_inner();
        io.park = None;
        if !io.parked {
            // hyper ended the connection (the client closed, keep-alive off, a stop):
            // the shutdown hyper would have done.
            close(&mut io, info, limits).await;
            return Ok(());
        }
        // What hyper read ahead (a pipelined request's first bytes), copied: the frozen
        // buffer, even empty, keeps hyper's whole read buffer (8 KiB or more) alive for
        // as long as the connection stays parked.
        io.replay = if parts.read_buf.is_empty() {
            Bytes::new()
        } else {
            Bytes::copy_from_slice(&parts.read_buf)
        };
    }
}

/// Shuts the TLS session down (`close_notify`, then the socket's write side), within the
/// header read timeout.
async fn close(io: &mut ClientIo, info: &ConnInfo, limits: &Limits) {
    match tokio::time::timeout(limits.header_read_timeout, io.shutdown()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => debug!(peer = %info.peer, error = %e, "closing the connection failed"),
        Err(_) => debug!(peer = %info.peer, "closing the connection timed out"),
    }
}

fn h1_builder(limits: &Limits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    // No hyper timer: `drive` keeps the idle timeout and the guard times a head that has
    // begun, each with one timer per connection, where hyper's header read timeout
    // (30 s unless disabled) armed and removed one for every request.
    builder
        .header_read_timeout(None)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .half_close(false)
        .keep_alive(true);
    builder
}

/// The timers of a connection: idle, and for HTTP/1.1 the head read timeout and when
/// to look whether it may park.
struct Timers<'a> {
    idle: Duration,
    head: Option<(&'a GuardState, Duration)>,
    park: bool,
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

/// Polls a hyper connection to its end (with `poll`), closing it gracefully when it has been idle
/// for `timers.idle` or when `stop` is cancelled; `None` when it was cut off at once
/// (a request head took longer than the header read timeout, or no first request came
/// after a stop). With `timers.park`, it also polls the connection when it will have
/// been quiet for [`PARK_AFTER`], so that hyper's read finds out ([`Watched::may_park`]).
async fn drive<C>(
    mut conn: Pin<&mut C>,
    poll: impl Fn(Pin<&mut C>, &mut Context<'_>) -> Poll<Result<(), hyper::Error>>,
    info: &ConnInfo,
    timers: Timers<'_>,
    stop: &CancellationToken,
    graceful: impl Fn(Pin<&mut C>),
) -> Option<Result<(), hyper::Error>> {
    let idle = timers.idle;
    let mut closing = false;
    let mut first_by: Option<Instant> = None;
    let mut check = Instant::now()
        + if timers.park {
            PARK_AFTER.min(idle)
        } else {
            idle
        };
    // One timer for the connection's life, moved with `reset` when `check` changes: a
    // new `Sleep` per turn of the loop (which turns at every request, `head_begun`)
    // registered and removed a timer each time.
    let timer = tokio::time::sleep_until(check);
    tokio::pin!(timer);
    // Likewise one wait on the stop token: a new one per turn took the lock of the token
    // every client connection shares, twice per request, from every thread.
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    loop {
        if timer.deadline() != check {
            timer.as_mut().reset(check);
        }
        tokio::select! {
            r = std::future::poll_fn(|cx| poll(conn.as_mut(), cx)) => return Some(r),
            _ = &mut stopped, if !closing => {
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
            _ = &mut timer => {
                let now = Instant::now();
                if timers.head_deadline().is_some_and(|d| d <= now) {
                    debug!(peer = %info.peer, "request head not complete within the header read timeout; closing");
                    return None;
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
                        return None;
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
                if timers.park && !closing {
                    // When it will have been quiet long enough, or, while a request
                    // runs or the connection is not between messages, a while later.
                    check = check.min(match info.activity.idle_deadline(PARK_AFTER) {
                        Some(at) if at > now => at,
                        _ => now + PARK_AFTER,
                    });
                }
            }
        }
    }
}
