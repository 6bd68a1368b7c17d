//! Errors of the HTTPS client, named for what went wrong.

use std::path::PathBuf;

/// Anything that can fail while building a client or making a request.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A PEM file could not be read or parsed.
    #[error("cannot load {what}: {source}")]
    Pem {
        what: &'static str,
        source: cmg_pki::PkiError,
    },
    /// A root certificate was rejected by the trust store.
    #[error("{path}: unusable root certificate: {source}")]
    BadRoot {
        path: PathBuf,
        source: rustls::Error,
    },
    /// No root certificates were given: nothing could ever be trusted.
    #[error("no root certificates to trust the server with")]
    NoRoots,
    /// The TLS configuration was rejected (for example a key that does not match its certificate).
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The server name is neither a DNS name nor an IP address.
    #[error("invalid server name `{0}`")]
    InvalidServerName(String),
    /// The request URI could not be turned into `https://<server name>/<path>`.
    #[error("invalid request URI `{0}`")]
    InvalidUri(String),
    /// Connecting, the TLS handshake, or the HTTP exchange failed.
    #[error("request failed: {0}")]
    Request(#[from] hyper_util::client::legacy::Error),
    /// Reading a response body failed.
    #[error("reading the response body: {0}")]
    Body(#[from] hyper::Error),
}
