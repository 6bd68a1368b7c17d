//! A parked HTTP/1.1 client connection: between requests (and before its first one) it
//! holds only its TLS session and socket, and waits for bytes, its idle timeout or a
//! stop. When bytes come, `conn` gives it a new hyper connection. Parking is what keeps
//! an idle client small: hyper's read and write buffers, its connection state and
//! timers exist only while a request is on its way.
//!
//! The wait reads one byte through the TLS session (never the socket directly), so
//! data rustls already holds, decrypted or not, wakes the connection at once. It does
//! not decide when a connection parks (`conn::Watched::may_park` does) and does not
//! serve HTTP/2 connections, which keep their hyper connection.

use std::time::Duration;

use bytes::Bytes;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::client::ConnInfo;
use crate::metrics::Metrics;
use crate::watched::Watched;

/// Why a parked connection stopped waiting.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Woken {
    /// Bytes came (kept in the IO's replay for hyper).
    Bytes,
    /// A stop before the connection's first request: that request is still given the
    /// header read timeout to come (`conn::drive`), so hyper takes the connection over.
    Stopping,
    /// Close it gracefully (TLS `close_notify`): idle timeout, a stop, or the client's
    /// end of stream.
    Close,
    /// The connection failed: drop it.
    Gone,
}

/// Waits, parked, until the connection has something to do. Bytes hyper left unread
/// (`io.replay`) wake it at once.
pub(crate) async fn wait<T>(
    io: &mut Watched<T>,
    info: &ConnInfo,
    idle: Duration,
    stop: &CancellationToken,
    metrics: &Metrics,
) -> Woken
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    io.parked = false;
    if !io.replay.is_empty() {
        return Woken::Bytes;
    }
    let _parked = Counted::new(&metrics.client_connections_parked);
    let mut byte = [0u8; 1];
    loop {
        let deadline = info
            .activity
            .idle_deadline(idle)
            .unwrap_or_else(|| Instant::now() + idle);
        tokio::select! {
            r = io.read(&mut byte) => return match r {
                Ok(0) => Woken::Close,
                Ok(_) => {
                    io.replay = Bytes::copy_from_slice(&byte);
                    Woken::Bytes
                }
                Err(e) => {
                    debug!(peer = %info.peer, error = %e, "parked connection failed");
                    Woken::Gone
                }
            },
            _ = stop.cancelled() => {
                return if info.activity.any_request() {
                    Woken::Close
                } else {
                    Woken::Stopping
                };
            }
            _ = tokio::time::sleep_until(deadline) => {
                if info.activity.idle_deadline(idle).is_some_and(|d| d <= Instant::now()) {
                    debug!(peer = %info.peer, "idle timeout; closing");
                    return Woken::Close;
                }
            }
        }
    }
}

/// One in a gauge for as long as it lives.
struct Counted<'a>(&'a Gauge);

impl<'a> Counted<'a> {
    fn new(gauge: &'a Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
