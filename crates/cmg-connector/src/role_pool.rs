//! Keep-alive HTTP/1.1 connections from one channel to the roles.
//!
//! Every channel has its own pool, created and used on the channel's shard, so a
//! connection is only ever driven by the thread that opened it. A request takes an idle
//! connection to its role (scheme and authority) or opens one, and the response body
//! gives the connection back when it has been read to its end; a body dropped early
//! takes its connection with it (hyper closes a connection whose response was not read).
//!
//! Written here rather than using `hyper_util`'s pooled client, which it replaced on the
//! request path: that client spawns a task per request to wait for the connection to be
//! idle again, keys its pool through a shared map and a hasher, and runs a checkout
//! future per request; with one pool per thread none of that is needed, and it was a
//! visible share of the connection point's CPU per request (bench/README.md, issue 19).
//! The connections themselves are hyper's (`hyper::client::conn::http1`).

use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;
use tracing::debug;

/// How a request to a role failed (before its response head).
#[derive(Debug, thiserror::Error)]
pub(crate) enum RoleError {
    #[error("connect: {0}")]
    Connect(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("HTTP/1.1 handshake: {0}")]
    Handshake(#[source] hyper::Error),
    #[error("request: {0}")]
    Request(#[source] hyper::Error),
    #[error("the internal URL has no scheme or authority: {0}")]
    NotAbsolute(Uri),
}

/// What a pool keeps and for how long.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolLimits {
    /// An idle connection is closed after this long (to half as long again: the sweep
    /// that closes it runs every half of it).
    pub idle_timeout: Duration,
    /// Idle connections kept per role; more are closed when they become idle.
    pub max_idle_per_role: usize,
    /// Largest read buffer of a connection.
    pub max_read_buffer: usize,
}

/// The keep-alive pool of one channel (cheap to clone: a handle).
#[derive(Clone)]
pub(crate) struct RolePool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RolePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RolePool")
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

struct Inner {
    connector: HttpsConnector<HttpConnector>,
    limits: PoolLimits,
    /// Idle connections by role (`scheme://authority`); a handful of roles, so a list.
    idle: Mutex<Vec<(RoleKey, Vec<Idle>)>>,
    /// Whether the task that closes expired idle connections runs.
    sweeping: std::sync::atomic::AtomicBool,
    /// Sweeps so far: an idle connection is stamped with it rather than with the clock
    /// (which costs a clock read per request), and closed three sweeps later.
    sweeps: std::sync::atomic::AtomicU64,
}

/// A role: the scheme and authority of its internal URLs. Clones share the request URI's
/// bytes, where a `scheme://authority` string cost a formatting and an allocation per
/// request.
#[derive(Clone, PartialEq, Eq)]
struct RoleKey {
    scheme: Scheme,
    authority: Authority,
}

impl std::fmt::Display for RoleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

struct Idle {
    sender: http1::SendRequest<Incoming>,
    /// [`Inner::sweeps`] when it became idle.
    stamp: u64,
}

/// Tries of one request: reused connections that closed before taking it, then a new one.
const MAX_ATTEMPTS: usize = 3;

impl RolePool {
    pub fn new(connector: HttpsConnector<HttpConnector>, limits: PoolLimits) -> Self {
        Self {
            inner: Arc::new(Inner {
                connector,
                limits,
                idle: Mutex::new(Vec::new()),
                sweeping: std::sync::atomic::AtomicBool::new(false),
                sweeps: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// Sends `req` (absolute URI: the role's scheme and authority) on an idle connection
    /// to its role or a new one, in origin form. A request that a reused connection
    /// closed before taking goes to the next one (or a new one): it was never sent.
    pub async fn request(
        &self,
        mut req: Request<Incoming>,
    ) -> Result<Response<RoleBody>, RoleError> {
        let uri = req.uri().clone();
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            return Err(RoleError::NotAbsolute(uri));
        };
        let key = RoleKey {
            scheme: scheme.clone(),
            authority: authority.clone(),
        };
        *req.uri_mut() = Uri::from(
            uri.path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        );
        let mut attempt = 1;
        loop {
            // The last try always opens a new connection.
            let idle = (attempt < MAX_ATTEMPTS)
                .then(|| self.take_idle(&key))
                .flatten();
            let (mut sender, reused) = match idle {
                Some(s) => (s, true),
                // Boxed: opening a connection is rare, and its future (TCP, TLS,
                // handshake) would otherwise make every request's future, moved into each
                // stream task, several times larger.
                None => (Box::pin(self.connect(&uri)).await?, false),
            };
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let lease = Lease {
                        pool: Arc::downgrade(&self.inner),
                        key,
                        sender,
                    };
                    return Ok(resp.map(|body| RoleBody::new(body, lease)));
                }
                Err(mut e) => match e.take_message() {
                    Some(back) if reused => {
                        debug!(role = %key, error = %e.error(), "idle role connection closed; request sent on another");
                        req = back;
                        attempt += 1;
                    }
                    _ => return Err(RoleError::Request(e.into_error())),
                },
            }
        }
    }

    /// The most recently idle connection to `key` that can take a request; closed ones
    /// met on the way are dropped (expired ones are the sweep's).
    fn take_idle(&self, key: &RoleKey) -> Option<http1::SendRequest<Incoming>> {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = &mut idle.iter_mut().find(|(k, _)| k == key)?.1;
        let mut i = list.len();
        while i > 0 {
            i -= 1;
            let entry = &list[i];
            if entry.sender.is_closed() {
                list.remove(i);
            } else if entry.sender.is_ready() {
                return Some(list.remove(i).sender);
            }
            // Open but not yet idle (its last response just ended): left for later.
        }
        None
    }

    /// Opens a connection to the role of `uri` (TCP, and TLS for `https`) and starts
    /// driving it on this shard.
    async fn connect(&self, uri: &Uri) -> Result<http1::SendRequest<Incoming>, RoleError> {
        let io = self
            .inner
            .connector
            .clone()
            .call(uri.clone())
            .await
            .map_err(RoleError::Connect)?;
        let (sender, conn) = http1::Builder::new()
            .max_buf_size(self.inner.limits.max_read_buffer)
            .handshake(io)
            .await
            .map_err(RoleError::Handshake)?;
        let role = uri.authority().map(|a| a.to_string()).unwrap_or_default();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(%role, error = %e, "role connection ended");
            }
        });
        self.start_sweeping();
        Ok(sender)
    }

    /// Starts (once) the task that closes idle connections past their timeout, so an
    /// idle pool does not hold connections to a role forever. It ends with the pool.
    fn start_sweeping(&self) {
        use std::sync::atomic::Ordering;
        if self.inner.sweeping.swap(true, Ordering::Relaxed) {
            return;
        }
        let pool = Arc::downgrade(&self.inner);
        let every = (self.inner.limits.idle_timeout / 2).max(Duration::from_millis(10));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = pool.upgrade() else { return };
                inner.sweep();
            }
        });
    }

    /// Idle connections held now, over every role (for tests and the log).
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        let idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.iter().map(|(_, l)| l.len()).sum()
    }
}

impl Inner {
    fn put_back(&self, key: RoleKey, sender: http1::SendRequest<Incoming>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let pos = match idle.iter().position(|(k, _)| *k == key) {
            Some(pos) => pos,
            None => {
                idle.push((key, Vec::new()));
                idle.len() - 1
            }
        };
        let list = &mut idle[pos].1;
        if list.len() < self.limits.max_idle_per_role {
            list.push(Idle {
                sender,
                stamp: self.sweeps.load(std::sync::atomic::Ordering::Relaxed),
            });
        }
    }

    /// Closes the connections idle for three sweeps (between one and one and a half
    /// idle timeouts) and the closed ones.
    fn sweep(&self) {
        let now = self
            .sweeps
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        for (_, list) in idle.iter_mut() {
            list.retain(|e| !e.sender.is_closed() && e.stamp + 3 > now);
        }
        idle.retain(|(_, list)| !list.is_empty());
    }
}

/// A connection on loan to one response: back to the pool when its body has ended.
struct Lease {
    pool: Weak<Inner>,
    key: RoleKey,
    sender: http1::SendRequest<Incoming>,
}

/// A role's response body; gives its connection back once read to the end.
pub struct RoleBody {
    body: Incoming,
    lease: Option<Lease>,
    ended: bool,
}

impl std::fmt::Debug for RoleBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleBody")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl RoleBody {
    fn new(body: Incoming, lease: Lease) -> Self {
        let ended = body.is_end_stream();
        Self {
            body,
            lease: Some(lease),
            ended,
        }
    }
}

impl Body for RoleBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.ended = true,
            Poll::Ready(Some(Ok(_))) if this.body.is_end_stream() => this.ended = true,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for RoleBody {
    fn drop(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        // A body not read to its end leaves the connection mid-response: hyper closes
        // it, and it must not be lent again.
        if !(self.ended || self.body.is_end_stream()) {
            return;
        }
        if let Some(pool) = lease.pool.upgrade() {
            pool.put_back(lease.key, lease.sender);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::{BodyExt, Empty, Full};
    use hyper::server::conn::http1 as server;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::*;

    /// A role on loopback: answers `?size=N` with N bytes, counts the connections it
    /// accepted and reports each one's end.
    struct Role {
        url: String,
        accepted: Arc<AtomicUsize>,
        ended: mpsc::UnboundedReceiver<()>,
    }

    async fn role(keep_alive: bool) -> Role {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (ended_tx, ended) = mpsc::unbounded_channel();
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let ended_tx = ended_tx.clone();
                tokio::spawn(async move {
                    let service = service_fn(|req: Request<Incoming>| async move {
                        let size = req
                            .uri()
                            .query()
                            .and_then(|q| q.strip_prefix("size="))
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0usize);
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(vec![7u8; size]))))
                    });
                    let _ = server::Builder::new()
                        .keep_alive(keep_alive)
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                    let _ = ended_tx.send(());
                });
            }
        });
        Role {
            url,
            accepted,
            ended,
        }
    }

    fn pool(idle_timeout: Duration) -> RolePool {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        RolePool::new(
            https,
            PoolLimits {
                idle_timeout,
                max_idle_per_role: 8,
                max_read_buffer: 64 * 1024,
            },
        )
    }

    /// A request with an empty `Incoming` body, as the channel hands them over: the
    /// body of a request to a throwaway HTTP/1.1 server that reads none.
    async fn get(pool: &RolePool, url: &str) -> Result<Response<RoleBody>, RoleError> {
        let req = Request::get(url)
            .body(empty_incoming().await)
            .expect("request");
        pool.request(req).await
    }

    /// An `Incoming` that is empty: hyper makes them only for its own connections, so
    /// one request goes through a local HTTP/1.1 server whose handler keeps its body.
    async fn empty_incoming() -> Incoming {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            let service = service_fn(move |req: Request<Incoming>| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(req.into_body());
                    Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
                }
            });
            let _ = server::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut send, conn) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let resp = send
            .send_request(Request::get("/").body(Empty::new()).expect("request"))
            .await
            .expect("response");
        drop(resp);
        rx.recv().await.expect("the server's request body")
    }

    /// Moves tokio's (paused) clock on by one sweep period of a 30 s timeout and lets
    /// the sweeper run.
    async fn sweep_once() {
        tokio::time::advance(Duration::from_secs(16)).await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    /// Waits for the role to see one of its connections end (bounded, so a connection
    /// the pool failed to close fails the test instead of hanging it).
    async fn ended(role: &mut Role) {
        tokio::time::timeout(Duration::from_secs(10), role.ended.recv())
            .await
            .expect("the role saw no connection end within 10 s")
            .expect("role task alive");
    }

    async fn read_all(resp: Response<RoleBody>) -> usize {
        resp.into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .len()
    }

    #[tokio::test]
    async fn requests_read_to_the_end_share_one_connection() {
        let role = role(true).await;
        let pool = pool(Duration::from_secs(60));
        for size in [0usize, 10, 100_000] {
            let resp = get(&pool, &format!("{}/x?size={size}", role.url))
                .await
                .expect("response");
            assert_eq!(read_all(resp).await, size);
        }
        assert_eq!(role.accepted.load(Ordering::SeqCst), 1);
        assert_eq!(pool.idle_count(), 1);
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_takes_its_connection_with_it() {
        let mut role = role(true).await;
        let pool = pool(Duration::from_secs(60));
        let resp = get(&pool, &format!("{}/x?size=1000000", role.url))
            .await
            .expect("response");
        drop(resp);
        ended(&mut role).await;
        assert_eq!(pool.idle_count(), 0);
        let resp = get(&pool, &format!("{}/x?size=5", role.url))
            .await
            .expect("response");
        assert_eq!(read_all(resp).await, 5);
        assert_eq!(role.accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_role_that_closes_after_each_answer_gets_a_new_connection_each_time() {
        let role = role(false).await;
        let pool = pool(Duration::from_secs(60));
        for _ in 0..3 {
            let resp = get(&pool, &format!("{}/x?size=3", role.url))
                .await
                .expect("response");
            assert_eq!(read_all(resp).await, 3);
        }
        assert_eq!(role.accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn idle_connections_are_closed_after_the_idle_timeout() {
        let mut role = role(true).await;
        let pool = pool(Duration::from_secs(30));
        let resp = get(&pool, &format!("{}/x?size=3", role.url))
            .await
            .expect("response");
        assert_eq!(read_all(resp).await, 3);
        assert_eq!(pool.idle_count(), 1);
        // The sweeper runs on tokio's clock: step it a sweep (half a timeout) at a time.
        // Kept one sweep later; closed once three sweeps have passed since.
        tokio::time::pause();
        sweep_once().await;
        assert_eq!(pool.idle_count(), 1, "closed before its idle timeout");
        for _ in 0..3 {
            sweep_once().await;
        }
        tokio::time::resume();
        ended(&mut role).await;
        assert_eq!(pool.idle_count(), 0);
    }

    #[tokio::test]
    async fn a_relative_uri_is_refused() {
        let pool = pool(Duration::from_secs(60));
        let req = Request::get("/x")
            .body(empty_incoming().await)
            .expect("request");
        assert!(matches!(
            pool.request(req).await,
            Err(RoleError::NotAbsolute(_))
        ));
    }
}
