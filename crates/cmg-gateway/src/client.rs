//! What the request path knows about the client connection a request came on: the
//! peer, the verified certificate (if any), activity for the idle timeout, the HTTP/1.1
//! guard's verdicts, the last verified token and the shard it runs on. Serving the
//! connection is `conn`'s job; this is only its shared state.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use tokio::time::Instant;

use crate::h1_guard::GuardState;
use crate::identity::ClientIdentity;

/// In-flight requests and the time of the last byte moved, for the idle timeout.
#[derive(Debug)]
pub struct Activity {
    epoch: Instant,
    in_flight: AtomicUsize,
    /// Requests finished so far (their response ended or was dropped).
    finished: AtomicU64,
    last_ms: AtomicU64,
    /// A request has started (a connection that has served none is given its first
    /// one when a stop comes right after its handshake).
    any: AtomicBool,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Self {
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            finished: AtomicU64::new(0),
            last_ms: AtomicU64::new(0),
            any: AtomicBool::new(false),
        }
    }
    pub(crate) fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }
    pub fn request_started(&self) {
        self.any.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
    }
    pub fn request_finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.finished.fetch_add(1, Ordering::Relaxed);
        self.touch();
    }
    /// How many requests have finished on this connection.
    pub(crate) fn finished(&self) -> u64 {
        self.finished.load(Ordering::Relaxed)
    }
    /// Whether a request has started on this connection yet.
    pub(crate) fn any_request(&self) -> bool {
        self.any.load(Ordering::Relaxed)
    }
    /// When the connection will have been idle for `idle`, or `None` while requests are
    /// in flight.
    pub(crate) fn idle_deadline(&self, idle: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        Some(self.epoch + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + idle)
    }
}

/// What the request path knows about the connection a request came on.
#[derive(Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// The peer's IP as a header value (`X-Forwarded-For`), built once.
    pub peer_ip: HeaderValue,
    pub identity: Option<ClientIdentity>,
    pub activity: Activity,
    /// HTTP/1.1 only: the head scanner that spots shapes hyper accepts silently.
    pub(crate) h1_guard: Option<Arc<GuardState>>,
    /// The last bearer token verified on this connection.
    pub token: crate::tokens::ConnToken,
    /// The shard (thread) this connection is served on; its requests prefer the
    /// channels on the same shard.
    pub shard: usize,
}

impl ConnInfo {
    /// For HTTP/1.1: the smuggling shape of the next request, if the guard saw one.
    /// Must be called once per request, in order (HTTP/1.1 requests are sequential).
    pub fn next_h1_violation(&self) -> Option<&'static str> {
        self.h1_guard.as_ref().and_then(|g| g.next_request())
    }
}
