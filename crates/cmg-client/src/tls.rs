//! rustls client configuration: trusted roots, optional client certificate, ALPN.

use std::path::PathBuf;
use std::sync::Arc;

use crate::ClientError;

/// ALPN identifier of HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN identifier of HTTP/1.1.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Where the client's TLS material lives.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// PEM files of the roots to trust for the server certificate (each may hold several).
    pub ca: Vec<PathBuf>,
    /// Client certificate chain PEM and private key PEM, presented when the server asks.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// Builds a rustls client config (ring provider, TLS 1.2 and 1.3) from `tls`, offering
/// `alpn` in that order. Tests use it directly to open raw TLS streams.
pub fn tls_config(
    tls: &ClientTls,
    alpn: Vec<Vec<u8>>,
) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    for path in &tls.ca {
        for cert in load_certs(path)? {
            roots.add(cert).map_err(|source| ClientError::BadRoot {
                path: path.clone(),
                source,
            })?;
        }
    }
    if roots.is_empty() {
        return Err(ClientError::NoRoots);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots);
    let mut config = match &tls.identity {
        Some((chain, key)) => builder.with_client_auth_cert(load_certs(chain)?, load_key(key)?)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn;
    Ok(Arc::new(config))
}

fn load_certs(
    path: &std::path::Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, ClientError> {
    cmg_pki::pem::load_certs(path).map_err(|source| ClientError::Pem {
        what: "certificates",
        source,
    })
}

fn load_key(
    path: &std::path::Path,
) -> Result<rustls::pki_types::PrivateKeyDer<'static>, ClientError> {
    cmg_pki::pem::load_key(path).map_err(|source| ClientError::Pem {
        what: "private key",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = ClientTls {
            ca: vec![dir.path().join("nope.pem")],
            identity: None,
        };
        let err = tls_config(&missing, vec![]).expect_err("missing file");
        assert!(err.to_string().contains("nope.pem"), "{err}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").expect("write");
        let err = tls_config(
            &ClientTls {
                ca: vec![empty],
                identity: None,
            },
            vec![],
        )
        .expect_err("empty file");
        assert!(matches!(err, ClientError::Pem { .. }), "{err}");

        let err = tls_config(&ClientTls::default(), vec![]).expect_err("no roots");
        assert!(matches!(err, ClientError::NoRoots), "{err}");
    }
}
