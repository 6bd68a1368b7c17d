//! The gateway's errors: [`SetupError`] (an instance could not start) and
//! [`GatewayError`] (a request the gateway answers itself with an error). How each
//! request error becomes a response (status, code, origin) is `request::respond`.

use std::path::PathBuf;

/// The gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("certificate material: {0}")]
    Pki(#[from] cmg_pki::PkiError),
    #[error("TLS configuration: {0}")]
    Tls(#[source] rustls::Error),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("cannot start the data-path threads: {0}")]
    Threads(#[source] std::io::Error),
}

/// Where an error came from (pingora's split): the client's request, the channel to
/// the connection point (or what is behind it), or the gateway itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Client,
    Channel,
    /// The storage account content is served from.
    Storage,
    Internal,
}

/// A request the gateway answers itself with an error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GatewayError {
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error("URL is not published")]
    NotPublished,
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// No usable bearer token (`CMGService_Invalid_Token/<code>`); the code is also in
    /// `WWW-Authenticate`.
    #[error("CMGService_Invalid_Token/{0}")]
    Unauthorized(&'static str),
    /// The token's issuer could not be reached to check it.
    #[error("token issuer unavailable: {0}")]
    TokenUndecided(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body larger than the endpoint's limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("no connection point has a channel to this instance for site {site}")]
    NoChannel { site: String },
    #[error("channel failed: {0}")]
    Channel(String),
    #[error("no response from the connection point in time")]
    Timeout,
    /// The site stopped the service (critical traffic alert with "stop the service").
    #[error("service stopped by the site: {0}")]
    Stopped(std::sync::Arc<String>),
    /// Content serving is off for this gateway (or no storage account is known).
    #[error("content serving is not enabled on this gateway")]
    ContentDisabled,
    #[error("no such blob")]
    ContentNotFound,
    /// Storage answered with an error, or could not be reached.
    #[error("storage failed: {0}")]
    Storage(String),
    #[error("storage did not answer in time")]
    StorageTimeout,
}
