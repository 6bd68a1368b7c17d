//! [`MpError`]: why the management point could not start or serve.

use std::net::SocketAddr;
use std::path::PathBuf;

/// A start-up or serving failure of the management point.
#[derive(Debug, thiserror::Error)]
pub enum MpError {
    /// The listen address could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// A file or directory under `data_dir` could not be created or opened.
    #[error("{what} {path}: {source}")]
    DataDir {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The HTTPS certificate or key could not be loaded.
    #[error("tls: {0}")]
    TlsFile(#[from] cmg_pki::PkiError),
    /// rustls rejected the certificate/key pair.
    #[error("tls config: {0}")]
    Tls(#[from] rustls::Error),
    /// The site link (`[site]`) could not be set up.
    #[error("site: {0}")]
    Site(String),
    /// The policy directory (`[policy] dir`) could not be used.
    #[error("policy {path}: {source}")]
    Policy {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The listener's own address could not be read.
    #[error("local address: {0}")]
    LocalAddr(std::io::Error),
}
