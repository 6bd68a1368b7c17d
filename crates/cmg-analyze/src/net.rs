//! The network half: resolve, connect, TLS handshake and one HTTP/1.1 request, each
//! under a deadline. Every request opens its own connection, so one failure never
//! hides behind another's pooled connection.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Longest wait for one step (a lookup, a connect, a handshake, a request).
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body read.
const MAX_BODY: usize = 1 << 20;

/// Why a network step failed, for the step's detail.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("HTTP: {0}")]
    Http(String),
}

async fn timed<T, E: Into<NetError>>(
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, NetError> {
    match tokio::time::timeout(STEP_TIMEOUT, f).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(NetError::Timeout(STEP_TIMEOUT)),
    }
}

/// Resolves `host:port`.
pub async fn resolve(target: &str) -> Result<Vec<SocketAddr>, NetError> {
    let addrs: Vec<SocketAddr> = timed(tokio::net::lookup_host(target.to_owned()))
        .await?
        .collect();
    Ok(addrs)
}

/// Opens a TCP connection.
pub async fn connect(addr: SocketAddr) -> Result<TcpStream, NetError> {
    timed(TcpStream::connect(addr)).await
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts any server certificate and keeps the chain, for the server certificate step,
/// which judges it with `cmg_pki`. Nothing is sent on a connection made with it.
#[derive(Debug)]
struct Recorder {
    chain: Mutex<Vec<CertificateDer<'static>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = vec![end_entity.clone().into_owned()];
        chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        if let Ok(mut held) = self.chain.lock() {
            *held = chain;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Handshakes with `addr` as `server_name` and returns the chain the server sent
/// (leaf first), whatever it is.
pub async fn server_chain(
    stream: TcpStream,
    server_name: &str,
) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let provider = provider();
    let recorder = Arc::new(Recorder {
        chain: Mutex::new(Vec::new()),
        provider: provider.clone(),
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| NetError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| NetError::Tls(format!("server name {server_name:?}: {e}")))?;
    timed(TlsConnector::from(Arc::new(config)).connect(name, stream)).await?;
    let chain = recorder
        .chain
        .lock()
        .map(|c| c.clone())
        .map_err(|_| NetError::Tls("lost the server chain".into()))?;
    Ok(chain)
}

/// A TLS client config that trusts `roots` for the server and presents `identity`.
pub fn client_config(
    roots: &[CertificateDer<'static>],
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>, NetError> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store
            .add(r.clone())
            .map_err(|e| NetError::Tls(e.to_string()))?;
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| NetError::Tls(e.to_string()))?
        .with_root_certificates(store);
    let mut config = match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| NetError::Tls(format!("the client certificate and key: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// An answer: status, headers and (at most 1 MiB of) body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// `GET path` on a new connection to `addr` as `server_name`, with `bearer` when given.
pub async fn get(
    addr: SocketAddr,
    server_name: &str,
    config: Arc<ClientConfig>,
    path: &str,
    bearer: Option<&str>,
) -> Result<Answer, NetError> {
    request(addr, server_name, config, Call::get(path), bearer).await
}

/// `POST path` with a JSON `body`, otherwise as [`get`].
pub async fn post_json(
    addr: SocketAddr,
    server_name: &str,
    config: Arc<ClientConfig>,
    path: &str,
    bearer: Option<&str>,
    body: Bytes,
) -> Result<Answer, NetError> {
    let call = Call {
        method: http::Method::POST,
        path,
        json: Some(body),
    };
    request(addr, server_name, config, call, bearer).await
}

/// One request: method, path and an optional JSON body.
struct Call<'a> {
    method: http::Method,
    path: &'a str,
    json: Option<Bytes>,
}

impl<'a> Call<'a> {
    fn get(path: &'a str) -> Self {
        Self {
            method: http::Method::GET,
            path,
            json: None,
        }
    }
}

async fn request(
    addr: SocketAddr,
    server_name: &str,
    config: Arc<ClientConfig>,
    call: Call<'_>,
    bearer: Option<&str>,
) -> Result<Answer, NetError> {
    let stream = connect(addr).await?;
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| NetError::Tls(format!("server name {server_name:?}: {e}")))?;
    let tls = timed(TlsConnector::from(config).connect(name, stream)).await?;
    let (mut sender, conn) =
        timed(hyper::client::conn::http1::handshake(TokioIo::new(tls))).await?;
    let driver = tokio::spawn(conn);
    let mut req = Request::builder()
        .method(call.method)
        .uri(call.path)
        .header(http::header::HOST, server_name);
    if let Some(token) = bearer {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if call.json.is_some() {
        req = req.header(http::header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(Full::new(call.json.unwrap_or_default()))
        .map_err(|e| NetError::Http(e.to_string()))?;
    let result = async {
        let resp = timed(sender.send_request(req)).await?;
        let (parts, body) = resp.into_parts();
        let body = timed(Limited::new(body, MAX_BODY).collect())
            .await?
            .to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
    .await;
    driver.abort();
    result
}

impl From<hyper::Error> for NetError {
    fn from(e: hyper::Error) -> Self {
        Self::Http(cmg_core::error_chain::chain(&e))
    }
}

impl From<Box<dyn std::error::Error + Send + Sync>> for NetError {
    fn from(e: Box<dyn std::error::Error + Send + Sync>) -> Self {
        Self::Http(e.to_string())
    }
}
