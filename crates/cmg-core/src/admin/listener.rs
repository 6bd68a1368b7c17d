//! [`AdminListener`]: bind, then [`serve`](AdminListener::serve) until shutdown: the
//! accept loop (connection cap, pause on accept errors) and one tracked task per
//! connection (HTTP/1.1 with a header read timeout, graceful close on shutdown).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument as _};

use super::answer::Answerer;
use super::AdminRoutes;
use crate::shutdown::{Drain, Shutdown};

/// Slack over `drain_grace` for the connection tasks to notice their own deadline.
const DRAIN_MARGIN: Duration = Duration::from_secs(1);

/// The listener's bounds. [`Limits::default`] suits every role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; more wait in the accept queue.
    pub max_connections: usize,
    /// How long a request head may take to arrive (also how long an idle keep-alive
    /// connection is kept).
    pub header_read_timeout: Duration,
    /// First pause after a failed `accept` (out of file descriptors); it doubles on each
    /// failure in a row, up to `accept_pause_max`, and resets on success.
    pub accept_pause: Duration,
    pub accept_pause_max: Duration,
    /// On shutdown, how long a connection may take to finish its answer.
    pub drain_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 32,
            header_read_timeout: Duration::from_secs(5),
            accept_pause: Duration::from_millis(50),
            accept_pause_max: Duration::from_secs(1),
            drain_grace: Duration::from_secs(5),
        }
    }
}

/// A bound admin listener; nothing is served before [`serve`](Self::serve).
#[derive(Debug)]
pub struct AdminListener {
    listener: TcpListener,
    local_addr: SocketAddr,
    limits: Limits,
}

impl AdminListener {
    /// Binds `addr` (port 0 picks one: read it with [`local_addr`](Self::local_addr)).
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        let listener = crate::net::bind(addr)?;
        let local_addr = listener.local_addr()?;
        Ok(Self {
            listener,
            local_addr,
            limits: Limits::default(),
        })
    }

    pub fn with_limits(self, limits: Limits) -> Self {
        Self { limits, ..self }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `routes` until `shutdown` is cancelled, then stops accepting, lets each
    /// connection finish its answer (idle keep-alive connections close at once; at most
    /// `drain_grace`) and returns when every connection task has ended. Spawn it on the
    /// role's `shutdown.tracker` so that the role's drain waits for it.
    pub async fn serve<R: AdminRoutes>(self, routes: Arc<R>, shutdown: Shutdown) {
        let Self {
            listener,
            local_addr,
            limits,
        } = self;
        info!(%local_addr, role = R::ROLE, "admin listener serving");
        let answerer = Arc::new(Answerer::new(routes));
        let conns = shutdown.child();
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        let mut pause = limits.accept_pause;
        loop {
            let permit = tokio::select! {
                biased;
                () = conns.cancelled() => break,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break, // never closed
                },
            };
            let accepted = tokio::select! {
                biased;
                () = conns.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                // The peer gave up before we took it: nothing to wait for.
                Err(e) if is_connection_error(&e) => {
                    debug!(error = %e, "admin accept: connection gone");
                    continue;
                }
                Err(e) => {
                    warn!(error = %e, ?pause, "admin accept failed; pausing");
                    tokio::select! {
                        () = conns.cancelled() => break,
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(limits.accept_pause_max);
                    continue;
                }
            };
            pause = limits.accept_pause;
            crate::net::tune(&stream);
            let conn = serve_connection(
                TokioIo::new(stream),
                answerer.clone(),
                conns.token.clone(),
                limits,
            );
            conns.tracker.spawn(
                async move {
                    let _permit = permit;
                    conn.await
                }
                .instrument(tracing::info_span!("admin_conn", %peer)),
            );
        }
        drop(listener);
        // Each connection ends within `drain_grace` of the cancellation by itself.
        match conns.drain(limits.drain_grace + DRAIN_MARGIN).await {
            Drain::Clean => info!(%local_addr, "admin listener stopped"),
            Drain::TimedOut { remaining } => {
                warn!(%local_addr, remaining, "admin listener stopped with connections open")
            }
        }
    }
}

/// Errors of one pending connection (the peer reset it), not of the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves one connection until the client closes it, the header read timeout passes, or
/// `stop` is cancelled (then the answer in progress has `drain_grace` to finish).
pub(crate) async fn serve_connection<I, R>(
    io: TokioIo<I>,
    answerer: Arc<Answerer<R>>,
    stop: CancellationToken,
    limits: Limits,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    R: AdminRoutes,
{
    let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let answerer = answerer.clone();
        async move {
            let resp = answerer.answer(req.method(), req.uri().path()).await;
            Ok::<_, Infallible>(resp)
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(io, svc);
    tokio::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(limits.drain_grace, conn).await {
                Ok(ended) => ended,
                Err(_) => {
                    debug!("admin connection cut at the end of the drain grace");
                    return;
                }
            }
        }
    };
    if let Err(e) = ended {
        debug!(error = %e, "admin connection ended with an error");
    }
}
