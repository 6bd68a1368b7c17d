//! Errors of starting a gateway instance. Request-time errors live in `request::respond`.

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
