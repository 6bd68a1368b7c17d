//! `[limits]`: client connection limits and timeouts, with their defaults.

use std::path::Path;
use std::time::Duration;

use cmg_core::config::ConfigError;

use super::raw::RawLimits;

/// Limits on client connections.
#[derive(Clone, Debug)]
pub struct Limits {
    pub handshake_timeout: Duration,
    /// Whole request head (request line + headers), HTTP/1.1; header list, HTTP/2.
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub header_read_timeout: Duration,
    /// A connection with no request in flight and no bytes moving for this long is closed.
    pub idle_timeout: Duration,
    pub max_concurrent_streams: u32,
    /// Accepted client connections at once; past it new ones are closed at accept.
    pub max_connections: usize,
    /// Open connections one source address may hold (`None`: no cap). Behind a load
    /// balancer, only with PROXY protocol (else every client is the balancer).
    pub max_connections_per_source: Option<usize>,
    /// TLS handshakes in progress one source address may hold (`None`: no cap).
    pub max_handshakes_per_source: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            max_concurrent_streams: 128,
            max_connections: 50_000,
            max_connections_per_source: None,
            max_handshakes_per_source: None,
        }
    }
}

/// The section's values over the defaults, checked.
pub(super) fn limits(path: &Path, l: RawLimits) -> Result<Limits, ConfigError> {
    let inv = |field: &str, msg: &dyn ToString| ConfigError::invalid(path, field, msg.to_string());
    let d = Limits::default();
    let limits = Limits {
        handshake_timeout: l.handshake_timeout.unwrap_or(d.handshake_timeout),
        max_header_bytes: l.max_header_bytes.unwrap_or(d.max_header_bytes),
        max_headers: l.max_headers.unwrap_or(d.max_headers),
        header_read_timeout: l.header_read_timeout.unwrap_or(d.header_read_timeout),
        idle_timeout: l.idle_timeout.unwrap_or(d.idle_timeout),
        max_concurrent_streams: l.max_concurrent_streams.unwrap_or(d.max_concurrent_streams),
        max_connections: l.max_connections.unwrap_or(d.max_connections),
        max_connections_per_source: l.max_connections_per_source,
        max_handshakes_per_source: l.max_handshakes_per_source,
    };
    if limits.max_connections_per_source == Some(0) || limits.max_handshakes_per_source == Some(0) {
        return Err(inv(
            "limits",
            &"max_connections_per_source and max_handshakes_per_source must be positive (leave them out for no cap)",
        ));
    }
    if limits.max_header_bytes < 8192 {
        return Err(inv("limits.max_header_bytes", &"must be at least 8192"));
    }
    if limits.max_headers == 0 || limits.max_concurrent_streams == 0 {
        return Err(inv(
            "limits",
            &"max_headers and max_concurrent_streams must be positive",
        ));
    }
    Ok(limits)
}
