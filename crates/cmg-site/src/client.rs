//! A small HTTPS client for the site API: the CLI's admin commands and the tests use it.
//! It trusts the site CA only, and presents a client certificate when given one.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::ADMIN_NAME_HEADER;
use crate::Secret;

/// What a call returned: status, headers and body (JSON when it parses).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    /// The body read as `T`: a view type of [`crate::model`].
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why a call failed before an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("site API client setup: {0}")]
    Setup(String),
    #[error("site API at {url}: {message}")]
    Request { url: String, message: String },
}

/// The client.
#[derive(Clone)]
pub struct SiteClient {
    /// The site servers, `https://host:port` each; tried in turn from `current`.
    bases: Arc<[String]>,
    /// The server that answered last.
    current: Arc<std::sync::atomic::AtomicUsize>,
    token: Option<Secret>,
    admin_name: Option<String>,
    http: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for SiteClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteClient")
            .field("bases", &self.bases)
            .finish_non_exhaustive()
    }
}

impl SiteClient {
    /// `base` like `https://127.0.0.1:8443`, or several site servers comma-separated
    /// (two `cmg site serve` on one database): a call goes to the one that answered last,
    /// and to the next when it cannot be connected to (only then: a request that may
    /// have reached a server is never sent twice). `ca_pem` the site CA; `client` an
    /// optional certificate chain and key (PEM) to present.
    pub fn new(
        base: &str,
        ca_pem: &str,
        token: Option<Secret>,
        client: Option<(&str, &str)>,
    ) -> Result<Self, ClientError> {
        let setup = |e: &dyn std::fmt::Display| ClientError::Setup(e.to_string());
        let mut roots = rustls::RootCertStore::empty();
        for c in cmg_pki::pem::parse_certs(ca_pem).map_err(|e| setup(&e))? {
            roots.add(c).map_err(|e| setup(&e))?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| setup(&e))?
        .with_root_certificates(roots);
        let tls = match client {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    cmg_pki::pem::parse_certs(cert).map_err(|e| setup(&e))?,
                    cmg_pki::pem::parse_key(key).map_err(|e| setup(&e))?,
                )
                .map_err(|e| setup(&e))?,
            None => builder.with_no_client_auth(),
        };
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            // HTTP/2 when the server offers it: a refused body (413) then ends only its
            // stream, and the answer is never lost to a connection reset.
            .enable_all_versions()
            .build();
        Ok(Self {
            bases: base
                .split(',')
                .map(|b| b.trim().trim_end_matches('/').to_owned())
                .filter(|b| !b.is_empty())
                .collect(),
            current: Arc::default(),
            token,
            admin_name: None,
            http: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// Names the person acting, for the audit log.
    pub fn with_admin_name(mut self, name: impl Into<String>) -> Self {
        self.admin_name = Some(name.into());
        self
    }

    /// Sends a raw body (tests use it for malformed requests).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Reply, ClientError> {
        use std::sync::atomic::Ordering;
        let n = self.bases.len().max(1);
        let start = self.current.load(Ordering::Relaxed);
        let body = Bytes::from(body);
        let mut attempt = 0;
        let (resp, url) = loop {
            let i = (start + attempt) % n;
            let url = format!("{}{path}", self.bases.get(i).map_or("", String::as_str));
            let err = |m: &dyn std::fmt::Display| ClientError::Request {
                url: url.clone(),
                message: m.to_string(),
            };
            let mut req = Request::builder().method(method.clone()).uri(&url);
            if let Some(t) = &self.token {
                req = req.header(
                    http::header::AUTHORIZATION,
                    format!("Bearer {}", t.expose()),
                );
            }
            if let Some(n) = &self.admin_name {
                req = req.header(ADMIN_NAME_HEADER, n.as_str());
            }
            if let Some(ct) = content_type {
                req = req.header(http::header::CONTENT_TYPE, ct);
            }
            let req = req.body(Full::new(body.clone())).map_err(|e| err(&e))?;
            match self.http.request(req).await {
                Ok(resp) => {
                    self.current.store(i, Ordering::Relaxed);
                    break (resp, url);
                }
                // Not connected: nothing was sent, the next server may take it.
                // hyper-util's `client error (Connect)` keeps the reason (refused, a
                // certificate not valid for the name) in its source: the message carries
                // the whole chain.
                Err(e) if e.is_connect() && attempt + 1 < n => {
                    let error = cmg_core::error_chain::chain(&e);
                    tracing::warn!(%url, %error, "site server unreachable; trying the next");
                    attempt += 1;
                }
                Err(e) => return Err(err(&cmg_core::error_chain::chain(&e))),
            }
        };
        let err = |m: &dyn std::fmt::Display| ClientError::Request {
            url: url.clone(),
            message: m.to_string(),
        };
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| err(&cmg_core::error_chain::chain(&e)))?
            .to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// Sends `body` as JSON (or nothing).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply, ClientError> {
        match body {
            Some(v) => self.send(method, path, v).await,
            None => self.raw(method, path, None, Vec::new()).await,
        }
    }

    /// Sends `body` serialised as JSON: a request type of [`crate::model`], the very
    /// type the API's handler reads, so a misspelt field does not compile.
    pub async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<Reply, ClientError> {
        let json = serde_json::to_vec(body).map_err(|e| ClientError::Request {
            url: format!("{}{path}", self.bases.first().map_or("", String::as_str)),
            message: format!("encoding the request body: {e}"),
        })?;
        self.raw(method, path, Some("application/json"), json).await
    }
}
