//! rustls clients for tests that speak TLS to a server under test themselves (a
//! TLS 1.2-only handshake, a chosen client certificate, raw bytes after the handshake).
//!
//! Built on the ring provider, as the product is. Roots and identities come from PEM
//! files or from DER values; nothing is read from the system's trust store. It sets up
//! the client side only: whether the server should accept is the test's assertion.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Every certificate in a PEM file. Panics when the file cannot be read or parsed.
pub fn pem_certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| panic!("certificates in {}: {e}", path.display()))
}

/// The private key in a PEM file. Panics when the file cannot be read or parsed.
pub fn pem_key(path: &Path) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_file(path)
        .unwrap_or_else(|e| panic!("private key in {}: {e}", path.display()))
}

/// What a test client trusts and presents; [`Self::config`] or [`Self::connect`] use it.
#[derive(Debug)]
pub struct TestClient {
    roots: RootCertStore,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    versions: Vec<&'static SupportedProtocolVersion>,
    alpn: Vec<Vec<u8>>,
}

impl TestClient {
    /// A client that trusts `roots` only: TLS 1.3 and 1.2, no client certificate, no ALPN.
    pub fn trusting(roots: impl IntoIterator<Item = CertificateDer<'static>>) -> Self {
        let mut store = RootCertStore::empty();
        for root in roots {
            store.add(root).expect("a usable trust anchor");
        }
        Self {
            roots: store,
            identity: None,
            versions: vec![&rustls::version::TLS13, &rustls::version::TLS12],
            alpn: Vec::new(),
        }
    }

    /// [`Self::trusting`] every certificate in the PEM files `paths`.
    pub fn trusting_pem<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Self {
        Self::trusting(paths.into_iter().flat_map(pem_certs))
    }

    /// Presents `chain` (leaf first) with `key`.
    pub fn identity(
        mut self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Self {
        self.identity = Some((chain, key));
        self
    }

    /// Presents the certificate chain and key in PEM files.
    pub fn identity_pem(self, cert: &Path, key: &Path) -> Self {
        self.identity(pem_certs(cert), pem_key(key))
    }

    /// Offers only `version` (`&rustls::version::TLS12` for a TLS 1.2-only client).
    pub fn only(mut self, version: &'static SupportedProtocolVersion) -> Self {
        self.versions = vec![version];
        self
    }

    /// Offers these ALPN protocols (`b"http/1.1"`, `b"h2"`), in this order.
    pub fn alpn(mut self, protocols: &[&[u8]]) -> Self {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// The rustls configuration. Panics when the identity is unusable.
    pub fn config(&self) -> Arc<ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&self.versions)
            .expect("versions the ring provider supports")
            .with_root_certificates(self.roots.clone());
        let mut config = match &self.identity {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .expect("a usable client certificate and key"),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn.clone();
        Arc::new(config)
    }

    /// Connects to `addr` and completes the handshake for `server_name`. The error is
    /// the handshake's (a refused client certificate under TLS 1.3 shows up only at
    /// the first read, after this returns).
    pub async fn connect(
        &self,
        addr: SocketAddr,
        server_name: &str,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let tcp = TcpStream::connect(addr).await?;
        TlsConnector::from(self.config()).connect(name, tcp).await
    }
}
