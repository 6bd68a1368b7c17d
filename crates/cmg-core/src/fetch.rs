//! A bounded HTTP(S) client for documents a role fetches from elsewhere: CRLs and OCSP
//! answers (cmg-pki), OIDC discovery and key sets (cmg-token).
//!
//! Every fetch is bounded: a connect timeout, a total deadline covering connect, the
//! response head and the whole body, and a maximum body size checked against
//! `Content-Length` and again while the body streams in. A server that trickles bytes
//! hits the deadline; one that sends an endless body hits the size cap; neither holds
//! more than `max_bytes` of memory. Only `200 OK` is an answer, and redirects are not
//! followed (a 3xx is [`FetchError::Status`]).
//!
//! [`HttpFetcher::http`] speaks plain `http://` only (CRL distribution points and OCSP
//! responders are `http://` by design, RFC 5280 §4.2.1.13, RFC 6960 appendix A: the
//! data is signed). [`HttpFetcher::https`] also speaks `https://` with the rustls config
//! it is given. URL policy beyond the scheme (https only, loopback exceptions, which
//! hosts may be named) belongs to the caller, as do parsing and trust in what comes back.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::error_chain::chain;

/// Bounds for fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLimits {
    /// Time to establish the TCP connection. Read when the fetcher is built (it is the
    /// connector's setting); a request's limits do not change it.
    pub connect_timeout: Duration,
    /// Total time for connect, response head and the whole body.
    pub timeout: Duration,
    /// Largest accepted body, checked against `Content-Length` and while streaming.
    pub max_bytes: usize,
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(10),
            max_bytes: 10 * 1024 * 1024,
        }
    }
}

/// Why a fetch failed; callers put the text into their own errors and logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("not a usable URL: {0}")]
    Url(String),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("body larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("reading the body: {0}")]
    Body(String),
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
}

#[derive(Clone)]
enum Transport {
    Http(Client<HttpConnector, Full<Bytes>>),
    Https(Client<HttpsConnector<HttpConnector>, Full<Bytes>>),
}

/// A pooled HTTP/1.1 client with bounded fetches. Cheap to clone; must be used on a
/// Tokio runtime.
#[derive(Clone)]
pub struct HttpFetcher {
    transport: Transport,
    user_agent: &'static str,
    accept: Option<&'static str>,
}

impl std::fmt::Debug for HttpFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpFetcher")
            .field("https", &matches!(self.transport, Transport::Https(_)))
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

fn connector(limits: &FetchLimits, enforce_http: bool) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(enforce_http);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(limits.connect_timeout));
    http
}

impl HttpFetcher {
    /// A fetcher for `http://` URLs only (anything else is [`FetchError::Url`]).
    pub fn http(limits: &FetchLimits) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(1)
            .build(connector(limits, true));
        Self {
            transport: Transport::Http(client),
            user_agent: "cmg",
            accept: None,
        }
    }

    /// A fetcher for `https://` and `http://` URLs whose TLS trusts what `tls` trusts
    /// (the caller picks the roots: system store, a bundled set, or a test CA). Refuse
    /// `http://` before calling where it is not allowed.
    pub fn https(tls: Arc<rustls::ClientConfig>, limits: &FetchLimits) -> Self {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector(limits, false));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(2)
            .build(connector);
        Self {
            transport: Transport::Https(client),
            user_agent: "cmg",
            accept: None,
        }
    }

    /// An [`https`](Self::https) fetcher whose TLS trusts exactly `roots` (ring
    /// provider, TLS 1.2 and 1.3).
    pub fn with_roots(
        roots: rustls::RootCertStore,
        limits: &FetchLimits,
    ) -> Result<Self, FetchError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| FetchError::Connect(format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self::https(Arc::new(tls), limits))
    }

    /// The `User-Agent` of every request (default `cmg`).
    pub fn with_user_agent(mut self, user_agent: &'static str) -> Self {
        self.user_agent = user_agent;
        self
    }

    /// An `Accept` header on every request (default none).
    pub fn with_accept(mut self, media_type: &'static str) -> Self {
        self.accept = Some(media_type);
        self
    }

    /// GET `url`; the body of a `200 OK`, within `limits`.
    pub async fn get(&self, url: &str, limits: &FetchLimits) -> Result<Bytes, FetchError> {
        self.send(http::Method::GET, url, None, limits).await
    }

    /// POST `body` as `content_type` to `url`; the body of a `200 OK`, within `limits`.
    pub async fn post(
        &self,
        url: &str,
        content_type: &'static str,
        body: Bytes,
        limits: &FetchLimits,
    ) -> Result<Bytes, FetchError> {
        self.send(http::Method::POST, url, Some((content_type, body)), limits)
            .await
    }

    async fn send(
        &self,
        method: http::Method,
        url: &str,
        body: Option<(&'static str, Bytes)>,
        limits: &FetchLimits,
    ) -> Result<Bytes, FetchError> {
        let uri = match self.transport {
            Transport::Http(_) => parse_http_url(url)?,
            Transport::Https(_) => parse_url(url, &["http", "https"])?,
        };
        let mut req = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::USER_AGENT, self.user_agent);
        if let Some(accept) = self.accept {
            req = req.header(http::header::ACCEPT, accept);
        }
        let body = match body {
            Some((content_type, bytes)) => {
                req = req.header(http::header::CONTENT_TYPE, content_type);
                Full::new(bytes)
            }
            None => Full::new(Bytes::new()),
        };
        let req = req.body(body).map_err(|e| FetchError::Url(e.to_string()))?;
        match tokio::time::timeout(limits.timeout, self.exchange(req, limits.max_bytes)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(limits.timeout)),
        }
    }

    async fn exchange(
        &self,
        req: http::Request<Full<Bytes>>,
        max: usize,
    ) -> Result<Bytes, FetchError> {
        let resp = match &self.transport {
            Transport::Http(client) => client.request(req).await,
            Transport::Https(client) => client.request(req).await,
        }
        .map_err(|e| FetchError::Connect(chain(&e)))?;
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
        let mut buf = BytesMut::with_capacity(declared.map_or(16 * 1024, |len| len as usize));
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| FetchError::Body(chain(&e)))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if buf.len() + data.len() > max {
                return Err(FetchError::TooLarge { limit: max });
            }
            buf.extend_from_slice(&data);
        }
        Ok(buf.freeze())
    }
}

/// Accepts only absolute `http://` URLs with a host.
pub fn parse_http_url(url: &str) -> Result<http::Uri, FetchError> {
    parse_url(url, &["http"])
}

fn parse_url(url: &str, schemes: &[&str]) -> Result<http::Uri, FetchError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| FetchError::Url(format!("{url}: {e}")))?;
    let scheme_ok = uri.scheme_str().is_some_and(|s| schemes.contains(&s));
    if !scheme_ok || uri.host().is_none() {
        return Err(FetchError::Url(url.to_owned()));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls() {
        assert!(parse_http_url("http://127.0.0.1:8080/a.crl").is_ok());
        for bad in [
            "https://x/a.crl",
            "ldap://x/cn=a",
            "/a.crl",
            "http://",
            "x y",
        ] {
            assert!(parse_http_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn https_fetcher_takes_both_schemes_and_nothing_else() {
        let both = ["http", "https"];
        assert!(parse_url("https://login.example/.well-known/x", &both).is_ok());
        assert!(parse_url("http://127.0.0.1:1/jwks", &both).is_ok());
        for bad in ["ftp://x/", "https:///nohost", "relative/path"] {
            assert!(parse_url(bad, &both).is_err(), "{bad}");
        }
    }
}
