//! The error type of every fallible `cmg-pki` operation except chain validation,
//! which has its own [`VerifyError`](crate::verify::VerifyError).

use std::io;
use std::path::PathBuf;

/// Loading, parsing or generating certificate material failed.
///
/// Errors about files name the file, so a role that fails at start-up says which of
/// its configured paths is wrong.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A file is not well-formed PEM, or holds no item of the wanted kind.
    #[error("{}: {msg}", path.display())]
    Pem { path: PathBuf, msg: String },
    /// A PEM file holds no `CERTIFICATE` section.
    #[error("{}: no certificate found", path.display())]
    NoCertificate { path: PathBuf },
    /// In-memory PEM text is malformed or lacks the wanted item.
    #[error("PEM data: {0}")]
    PemData(String),
    /// A trust store needs at least one root.
    #[error("no trusted root certificate given")]
    NoTrustedRoot,
    /// A certificate given as a trusted root cannot be used as a trust anchor.
    #[error("trusted root #{index}: {reason}")]
    BadRoot { index: usize, reason: String },
    /// A certificate given as an intermediate cannot be parsed.
    #[error("intermediate certificate #{index}: {reason}")]
    BadIntermediate { index: usize, reason: String },
    /// A CRL cannot be parsed (or uses a feature that is not supported).
    #[error("CRL #{index}: {reason}")]
    BadCrl { index: usize, reason: String },
    /// A certificate cannot be parsed.
    #[error("cannot parse certificate: {0}")]
    Parse(String),
    /// The certificate does not name exactly one connection point.
    #[error("connection point identity: {0}")]
    ConnectorIdentity(String),
    /// Generating keys, certificates or CRLs failed.
    #[error("generating demo PKI: {0}")]
    Generate(String),
}
