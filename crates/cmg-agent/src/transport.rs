//! Requests to management points, gateways and the site: one pooled client per server
//! (cmg-client's [`HttpsClient`] for https, which checks the server certificate against
//! the configured roots under the URL's host name and presents the client certificate;
//! a plain hyper client for an `http://` intranet management point). Names are looked up
//! in the config's `resolve` table first (the demo's service name is not in DNS), then
//! in DNS. Every exchange is bounded: the caller's deadline covers the head and the
//! body, and bodies are read up to a size cap checked by header and while streaming.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cmg_client::{ClientTls, HttpsClient};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::endpoint::BaseUrl;

/// Why an exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("{server}: {message}")]
    Connect { server: String, message: String },
    #[error("{server}: no answer within {after:?}")]
    Timeout { server: String, after: Duration },
    #[error("{server}: answer body larger than {limit} bytes")]
    TooLarge { server: String, limit: usize },
    #[error("{server}: reading the answer: {message}")]
    Body { server: String, message: String },
    #[error("cannot build a request for `{0}`")]
    BadRequest(String),
}

/// A whole answer read into memory.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Debug, Clone)]
enum Pooled {
    Https(HttpsClient),
    Http(Client<HttpConnector, Full<Bytes>>),
}

/// The agent's clients, one per (server, identity).
#[derive(Debug, Clone)]
pub struct Transport {
    roots: Vec<std::path::PathBuf>,
    identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
    resolve: Arc<std::collections::BTreeMap<String, SocketAddr>>,
    pool: Arc<Mutex<HashMap<(String, bool), Pooled>>>,
}

impl Transport {
    /// `identity`: the client certificate chain and key, presented to https servers.
    pub fn new(
        roots: Vec<std::path::PathBuf>,
        identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
        resolve: std::collections::BTreeMap<String, SocketAddr>,
    ) -> Self {
        Self {
            roots,
            identity,
            resolve: Arc::new(resolve),
            pool: Arc::default(),
        }
    }

    /// The same settings with an empty pool: no connection opened before (perhaps over
    /// a route that is gone) is reused.
    pub fn fresh(&self) -> Self {
        Self {
            pool: Arc::default(),
            ..self.clone()
        }
    }

    async fn client(&self, base: &BaseUrl) -> Result<Pooled, TransportError> {
        let key = (base.host_port(), base.https);
        if let Some(c) = self
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(c.clone());
        }
        let pooled = if base.https {
            let addr = self.address(base).await?;
            let tls = ClientTls {
                ca: self.roots.clone(),
                identity: self.identity.clone(),
            };
            let c = HttpsClient::new(&tls, addr, &base.host, false).map_err(|e| {
                TransportError::Connect {
                    server: base.to_string(),
                    message: e.to_string(),
                }
            })?;
            Pooled::Https(c)
        } else {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            connector.set_connect_timeout(Some(Duration::from_secs(5)));
            Pooled::Http(Client::builder(TokioExecutor::new()).build(connector))
        };
        self.pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, pooled.clone());
        Ok(pooled)
    }

    async fn address(&self, base: &BaseUrl) -> Result<SocketAddr, TransportError> {
        let hp = base.host_port();
        if let Some(a) = self
            .resolve
            .get(&hp)
            .or_else(|| self.resolve.get(&base.host))
        {
            return Ok(*a);
        }
        tokio::net::lookup_host(&hp)
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or(TransportError::Resolve(hp))
    }

    /// Sends `req` (its URI an origin-form path under `base`) and returns the head,
    /// within `deadline`.
    pub async fn send(
        &self,
        base: &BaseUrl,
        req: Request<Full<Bytes>>,
        deadline: Duration,
    ) -> Result<Response<Incoming>, TransportError> {
        let server = base.to_string();
        let client = self.client(base).await?;
        let fut = async {
            match client {
                Pooled::Https(c) => c.request(req).await.map_err(|e| e.to_string()),
                Pooled::Http(c) => {
                    let (mut parts, body) = req.into_parts();
                    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                    let host = if base.host.contains(':') {
                        format!("[{}]", base.host)
                    } else {
                        base.host.clone()
                    };
                    let addr = match self.resolve.get(&base.host_port()) {
                        Some(a) => a.to_string(),
                        None => format!("{host}:{}", base.port),
                    };
                    parts.uri = format!("http://{addr}{pq}")
                        .parse()
                        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
                    if let Ok(v) = format!("{host}:{}", base.port).parse() {
                        parts.headers.insert(http::header::HOST, v);
                    }
                    c.request(Request::from_parts(parts, body))
                        .await
                        .map_err(|e| cmg_core::error_chain::chain(&e))
                }
            }
        };
        match tokio::time::timeout(deadline, fut).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(message)) => Err(TransportError::Connect { server, message }),
            Err(_) => Err(TransportError::Timeout {
                server,
                after: deadline,
            }),
        }
    }

    /// Sends `req` and reads the whole answer, at most `max` bytes, all within
    /// `deadline`.
    pub async fn fetch(
        &self,
        base: &BaseUrl,
        req: Request<Full<Bytes>>,
        max: usize,
        deadline: Duration,
    ) -> Result<Answer, TransportError> {
        let server = base.to_string();
        let started = tokio::time::Instant::now();
        let resp = self.send(base, req, deadline).await?;
        let left = deadline.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, read_bounded(resp, max, &server)).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::Timeout {
                server,
                after: deadline,
            }),
        }
    }
}

/// Reads `resp`'s body, refusing more than `max` bytes by `Content-Length` or stream.
pub async fn read_bounded(
    resp: Response<Incoming>,
    max: usize,
    server: &str,
) -> Result<Answer, TransportError> {
    let too_large = || TransportError::TooLarge {
        server: server.to_owned(),
        limit: max,
    };
    let declared = resp
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let (parts, mut body) = resp.into_parts();
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| TransportError::Body {
            server: server.to_owned(),
            message: cmg_core::error_chain::chain(&e),
        })?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > max {
                return Err(too_large());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body: buf.freeze(),
    })
}

/// `GET path` with an empty body.
pub fn get(path: &str) -> Result<Request<Full<Bytes>>, TransportError> {
    Request::get(path)
        .body(Full::new(Bytes::new()))
        .map_err(|_| TransportError::BadRequest(path.to_owned()))
}
