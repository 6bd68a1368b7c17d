//! Errors of the connection point: at startup (key material, mappings) and on a
//! channel (dial, handshake, serve). Channel errors never end [`crate::Bound::run`];
//! they are logged, shown in the status as the channel's `last_error`, and retried.

use std::time::Duration;

use cmg_proto::addr::HostPort;

/// What went wrong, named for the condition.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The data-path threads could not be started.
    #[error("starting the data-path threads: {0}")]
    Shards(#[source] std::io::Error),
    /// The admin listener could not be bound.
    #[error("admin listener {addr}: {source}")]
    AdminBind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// A certificate, key or CA file could not be read or used.
    #[error("{what}: {source}")]
    TlsMaterial {
        what: &'static str,
        #[source]
        source: cmg_pki::PkiError,
    },
    /// rustls refused the TLS configuration (e.g. a key that does not match).
    #[error("TLS configuration: {0}")]
    TlsConfig(#[from] rustls::Error),
    /// The service name is not a valid DNS name or IP address.
    #[error("invalid service name {0:?}")]
    ServiceName(String),
    #[error("no gateway instance configured")]
    NoGateways,
    /// The proxy named by the environment cannot be used.
    #[error("proxy from the environment: {0}")]
    Proxy(#[from] cmg_core::proxy::ProxyError),
    /// The connection point ID cannot be sent as a header value.
    #[error("connection point id {0:?} is not a valid header value")]
    InvalidId(String),
    /// An internal URL that cannot be forwarded to.
    #[error("mapping {prefix}: internal URL {url:?}: {source}")]
    InvalidMapping {
        prefix: String,
        url: String,
        #[source]
        source: crate::route::InvalidInternalUrl,
    },
    /// TCP connect to a gateway instance failed.
    #[error("connect to {gateway}: {source}")]
    ChannelConnect {
        gateway: HostPort,
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake with a gateway instance failed.
    #[error("TLS handshake with {gateway}: {source}")]
    ChannelHandshake {
        gateway: HostPort,
        #[source]
        source: std::io::Error,
    },
    /// Connect and handshake took longer than the handshake timeout.
    #[error("handshake with {gateway} timed out after {after:?}")]
    HandshakeTimeout { gateway: HostPort, after: Duration },
    /// The gateway did not select the channel protocol.
    #[error("{gateway} did not negotiate ALPN cmg-channel/1 (selected {selected})")]
    AlpnRefused { gateway: HostPort, selected: String },
    /// The gateway did not send its hello in time.
    #[error("no hello from {gateway} within {after:?}")]
    NoHello { gateway: HostPort, after: Duration },
    /// The HTTP/2 connection failed (including an unanswered PING).
    #[error("channel to {gateway} failed: {source}")]
    ChannelBroken {
        gateway: HostPort,
        #[source]
        source: hyper::Error,
    },
    /// None of an instance's channel addresses answered (each one's error).
    #[error("{0}")]
    NoAddressAnswered(String),
    /// The task serving a channel ended abnormally (a panic).
    #[error("channel task: {0}")]
    ChannelTask(String),
    /// The gateway closed the channel.
    #[error("channel closed by {gateway}")]
    ChannelClosed { gateway: HostPort },
}

impl ConnectorError {
    pub(crate) fn tls_material(what: &'static str, source: cmg_pki::PkiError) -> Self {
        Self::TlsMaterial { what, source }
    }
}
