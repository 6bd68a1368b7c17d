//! A small, bounded HTTP(S) GET for key documents (OIDC discovery, JWKS, later CRLs).
//!
//! Every fetch has a total deadline (connect, headers and body together) and a maximum
//! body size enforced while the body streams in, so an endpoint that trickles bytes or
//! sends an endless body is cut off without stalling the caller or filling memory.
//! Redirects are not followed. URL policy (https only, loopback exceptions) belongs to
//! the caller.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::error::FetchError;

/// Bounds for one fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLimits {
    /// Total time for connect, response head and the whole body.
    pub timeout: Duration,
    /// Largest accepted body, checked against `Content-Length` and while streaming.
    pub max_body_bytes: usize,
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            max_body_bytes: 256 * 1024,
        }
    }
}

/// A pooled HTTP/1.1 client over rustls. Cheap to clone.
#[derive(Clone)]
pub struct HttpFetcher {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl std::fmt::Debug for HttpFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpFetcher").finish_non_exhaustive()
    }
}

impl HttpFetcher {
    /// A fetcher that trusts what `tls` trusts (the caller picks the roots: system store,
    /// a bundled set, or a test CA). Plain `http://` URLs are fetched too; refuse them
    /// before calling [`get`](Self::get) where they are not allowed.
    pub fn new(tls: Arc<rustls::ClientConfig>) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(2)
            .build(connector);
        Self { client }
    }

    /// A fetcher whose TLS trusts exactly `roots` (ring provider, TLS 1.2 and 1.3).
    pub fn with_roots(roots: rustls::RootCertStore) -> Result<Self, FetchError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| FetchError::Connect(format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self::new(Arc::new(tls)))
    }

    /// GET `url`; the body on `200 OK`, within `limits`.
    pub async fn get(&self, url: &str, limits: FetchLimits) -> Result<Bytes, FetchError> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| FetchError::Url(e.to_string()))?;
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => return Err(FetchError::Url("scheme must be http or https".into())),
        }
        let req = http::Request::get(uri)
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, "cmg-token")
            .body(Empty::new())
            .map_err(|e| FetchError::Url(e.to_string()))?;
        match tokio::time::timeout(limits.timeout, self.fetch(req, limits.max_body_bytes)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(limits.timeout)),
        }
    }

    async fn fetch(
        &self,
        req: http::Request<Empty<Bytes>>,
        max: usize,
    ) -> Result<Bytes, FetchError> {
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| FetchError::Connect(error_chain(&e)))?;
        if resp.status() != http::StatusCode::OK {
            return Err(FetchError::Status(resp.status().as_u16()));
        }
        let declared = resp
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > max as u64) {
            return Err(FetchError::TooLarge { limit: max });
        }
        let mut body = resp.into_body();
        let mut buf = BytesMut::with_capacity(declared.map_or(8 * 1024, |l| l as usize));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| FetchError::Body(error_chain(&e)))?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > max {
                    return Err(FetchError::TooLarge { limit: max });
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf.freeze())
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
