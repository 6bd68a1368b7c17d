//! A bounded plain-HTTP client for revocation data (CRLs, OCSP).
//!
//! CRL distribution points and OCSP responders are `http://` by design (RFC 5280
//! §4.2.1.13, RFC 6960 appendix A): the data is signed, so TLS adds nothing and would
//! need revocation checking itself. Every fetch is bounded: a connect timeout, a total
//! deadline covering the response head and the whole body, and a maximum body size
//! checked against `Content-Length` and again while the body streams in. A server that
//! trickles bytes hits the deadline; one that sends an endless body hits the size cap;
//! neither holds more than `max_bytes` of memory. Redirects are not followed.
//!
//! cmg-token has a similar fetcher for HTTPS key documents; this one is HTTP only and
//! adds the connect timeout and POST (OCSP), so the two are kept apart rather than
//! making cmg-pki depend on cmg-token.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Bounds for one fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLimits {
    /// Time to establish the TCP connection.
    pub connect_timeout: Duration,
    /// Total time for connect, response head and the whole body.
    pub timeout: Duration,
    /// Largest accepted body.
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

/// Why a fetch failed; the text goes into the revocation error and the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("not a usable http:// URL: {0}")]
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

/// A pooled HTTP/1.1 client. Cheap to clone; must be used on a Tokio runtime.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

impl HttpClient {
    pub fn new(limits: &FetchLimits) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(true);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(limits.connect_timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(1)
            .build(http);
        Self { client }
    }

    /// GET `url` (`http://` only); the body of a `200 OK`, within `limits`.
    pub async fn get(&self, url: &str, limits: &FetchLimits) -> Result<Bytes, FetchError> {
        self.send(http::Method::GET, url, None, limits).await
    }

    /// POST `body` as `content_type` to `url`; the body of a `200 OK`.
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
        let uri = parse_http_url(url)?;
        let mut req = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::USER_AGENT, "cmg-revocation");
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
        let resp = self
            .client
            .request(req)
            .await
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
        let initial = declared.map_or(16 * 1024, |len| len as usize);
        let mut buf = BytesMut::with_capacity(initial);
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
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| FetchError::Url(format!("{url}: {e}")))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(FetchError::Url(url.to_owned()));
    }
    Ok(uri)
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
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
}
