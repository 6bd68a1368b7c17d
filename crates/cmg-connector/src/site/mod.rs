//! The connection point's client of the site's publishing API (`[site_api]`): HTTPS with the
//! site CA as the only trust anchor and the connection point's certificate as the client
//! identity (the site checks it is a connection point of this gateway on record).
//!
//! Two calls: the bundle long poll (`SiteClient::bundle`, used by
//! `settings::site_source`) and the report post (`SiteClient::post_report`,
//! used by `report`). Every body read is bounded, every call has a deadline.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cmg_core::proxy::{Proxy, ProxyConnector};
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use cmg_proto::mapping::{ExternalPrefix, UrlMapping};
use cmg_proto::report::{ConnectionPointReport, MAX_REPORT_BYTES, SITE_REPORT_PATH};
use cmg_token::bundle::MAX_BUNDLE_BYTES;

use crate::config::SiteLink;
use crate::error::ConnectorError;
use crate::settings::SignedBundle;
use crate::tls;

/// The header carrying the bundle's version on a `200` from the site.
pub const VERSION_HEADER: &str = "cmg-settings-version";

/// Extra time granted on top of the long-poll wait before a call counts as hung.
const SLACK: Duration = Duration::from_secs(15);
/// Longest error body kept for the log.
const ERROR_BODY: usize = 512;

/// Why a call to the site failed.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("request failed: {0}")]
    Request(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("site answered {status}: {body}")]
    Status { status: StatusCode, body: String },
    #[error("bundle larger than {limit} bytes; refused")]
    TooLarge { limit: usize },
    #[error("not a settings bundle: {0}")]
    NotABundle(&'static str),
    #[error("cannot encode the report: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("not a mapping list: {0}")]
    BadMappings(String),
}

/// Largest mapping list read from the site.
const MAX_MAPPINGS_BYTES: usize = 4 << 20;

/// The site's URL mappings for the gateway.
#[derive(Debug, Clone)]
pub struct SiteMappings {
    /// The gateway's settings version when the list was read.
    pub settings_version: u64,
    pub mappings: Vec<UrlMapping>,
}

/// The site's answer; it carries more fields (auth kind, body limit) than the
/// connection point forwards by, so unknown fields are ignored here.
#[derive(Debug, serde::Deserialize)]
struct RawMappings {
    settings_version: u64,
    mappings: Vec<RawMapping>,
}

#[derive(Debug, serde::Deserialize)]
struct RawMapping {
    external: String,
    internal: String,
}

/// A keep-alive HTTPS client bound to one site and one gateway.
#[derive(Debug, Clone)]
pub(crate) struct SiteClient {
    client: Client<HttpsConnector<ProxyConnector>, Full<Bytes>>,
    /// The site servers, `https://host:port` each, no trailing slash; a call goes to
    /// `current` (the one that answered last) and on to the next when it cannot be
    /// connected to.
    bases: Arc<[String]>,
    current: Arc<std::sync::atomic::AtomicUsize>,
    gateway: String,
}

impl SiteClient {
    /// A client of the site at `link`, going through `proxy` when one applies.
    pub fn new(link: &SiteLink, proxy: Option<Arc<Proxy>>) -> Result<Self, ConnectorError> {
        let http = ProxyConnector::new(proxy, Duration::from_secs(10));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls::site_config(link)?)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(2)
            .build(https);
        let bases = std::iter::once(&link.url)
            .chain(&link.fallback_urls)
            .map(|u| format!("https://{}", u.authority().map_or("", |a| a.as_str())))
            .collect();
        Ok(Self {
            client,
            bases,
            current: Arc::default(),
            gateway: link.gateway.clone(),
        })
    }

    pub fn gateway(&self) -> &str {
        &self.gateway
    }

    /// One long poll: `Some` with a bundle newer than `after`, `None` when the site
    /// answered `204` after (at most) `wait`.
    pub async fn bundle(
        &self,
        after: u64,
        wait: Duration,
    ) -> Result<Option<SignedBundle>, SiteError> {
        let path = format!(
            "/api/v1/publish/gateways/{}/bundle?after={after}&wait={}",
            self.gateway,
            wait.as_secs().max(1)
        );
        let deadline = wait + SLACK;
        let call = async {
            let resp = self
                .send(Method::GET, &path, "application/jose", None)
                .await?;
            match resp.status() {
                StatusCode::NO_CONTENT => Ok(None),
                StatusCode::OK => {
                    let announced = resp
                        .headers()
                        .get(header::CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    if announced.is_some_and(|n| n > MAX_BUNDLE_BYTES as u64) {
                        return Err(SiteError::TooLarge {
                            limit: MAX_BUNDLE_BYTES,
                        });
                    }
                    let header_version = resp
                        .headers()
                        .get(VERSION_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    let body = Limited::new(resp.into_body(), MAX_BUNDLE_BYTES)
                        .collect()
                        .await
                        .map_err(|e| {
                            if e.is::<http_body_util::LengthLimitError>() {
                                SiteError::TooLarge {
                                    limit: MAX_BUNDLE_BYTES,
                                }
                            } else {
                                SiteError::Request(e.to_string())
                            }
                        })?
                        .to_bytes();
                    let text = std::str::from_utf8(&body)
                        .map_err(|_| SiteError::NotABundle("body is not text"))?;
                    let bundle = SignedBundle::parse(text)
                        .ok_or(SiteError::NotABundle("no version in the payload"))?;
                    if header_version.is_some_and(|v| v != bundle.version) {
                        return Err(SiteError::NotABundle(
                            "version header and bundle version differ",
                        ));
                    }
                    Ok(Some(bundle))
                }
                status => Err(status_error(status, resp.into_body()).await),
            }
        };
        tokio::time::timeout(deadline, call)
            .await
            .map_err(|_| SiteError::Timeout(deadline))?
    }

    /// The URL mappings the site publishes for the gateway.
    pub async fn mappings(&self) -> Result<SiteMappings, SiteError> {
        let path = format!("/api/v1/publish/gateways/{}/mappings", self.gateway);
        let call = async {
            let resp = self
                .send(Method::GET, &path, "application/json", None)
                .await?;
            if resp.status() != StatusCode::OK {
                return Err(status_error(resp.status(), resp.into_body()).await);
            }
            let body = Limited::new(resp.into_body(), MAX_MAPPINGS_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        SiteError::TooLarge {
                            limit: MAX_MAPPINGS_BYTES,
                        }
                    } else {
                        SiteError::Request(e.to_string())
                    }
                })?
                .to_bytes();
            let raw: RawMappings =
                serde_json::from_slice(&body).map_err(|e| SiteError::BadMappings(e.to_string()))?;
            let mut mappings = Vec::with_capacity(raw.mappings.len());
            for m in raw.mappings {
                let prefix = ExternalPrefix::new(m.external)
                    .map_err(|e| SiteError::BadMappings(e.to_string()))?;
                mappings.push(UrlMapping {
                    prefix,
                    internal_base: m.internal,
                });
            }
            Ok(SiteMappings {
                settings_version: raw.settings_version,
                mappings,
            })
        };
        tokio::time::timeout(SLACK, call)
            .await
            .map_err(|_| SiteError::Timeout(SLACK))?
    }

    /// Posts one report; any `2xx` is success.
    pub async fn post_report(
        &self,
        report: &ConnectionPointReport,
        timeout: Duration,
    ) -> Result<(), SiteError> {
        let body = serde_json::to_vec(report)?;
        if body.len() > MAX_REPORT_BYTES {
            return Err(SiteError::Request(format!(
                "report of {} bytes is above the {MAX_REPORT_BYTES}-byte limit",
                body.len()
            )));
        }
        let path = SITE_REPORT_PATH.replace("{name}", &self.gateway);
        let body = Bytes::from(body);
        let call = async {
            let resp = self
                .send(Method::POST, &path, "application/json", Some(body))
                .await?;
            if resp.status().is_success() {
                Ok(())
            } else {
                Err(status_error(resp.status(), resp.into_body()).await)
            }
        };
        tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| SiteError::Timeout(timeout))?
    }
}

impl SiteClient {
    /// One request to the site server in use; when it cannot be connected to (nothing
    /// was sent), the same request to the next one, each at most once. A GET carries
    /// `accept` as `Accept`, a body goes as `Content-Type: accept`.
    async fn send(
        &self,
        method: Method,
        path: &str,
        accept: &'static str,
        body: Option<Bytes>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, SiteError> {
        use std::sync::atomic::Ordering;
        let n = self.bases.len().max(1);
        let start = self.current.load(Ordering::Relaxed);
        for attempt in 0..n {
            let i = (start + attempt) % n;
            let base = self.bases.get(i).map_or("", String::as_str);
            let name = if body.is_some() {
                header::CONTENT_TYPE
            } else {
                header::ACCEPT
            };
            let req = Request::builder()
                .method(method.clone())
                .uri(format!("{base}{path}"))
                .header(name, accept)
                .body(Full::new(body.clone().unwrap_or_default()))
                .map_err(|e| SiteError::Request(e.to_string()))?;
            match self.client.request(req).await {
                Ok(resp) => {
                    if attempt > 0 {
                        tracing::info!(site = %base, "using the next site server");
                    }
                    self.current.store(i, Ordering::Relaxed);
                    return Ok(resp);
                }
                Err(e) if e.is_connect() && attempt + 1 < n => {
                    tracing::warn!(site = %base, error = %request_error(e), "site server unreachable; trying the next");
                }
                Err(e) => return Err(request_error(e)),
            }
        }
        Err(SiteError::Request("no site URL".into()))
    }
}

fn request_error(e: hyper_util::client::legacy::Error) -> SiteError {
    SiteError::Request(cmg_core::error_chain::chain(&e))
}

/// A short excerpt of an error body for the log.
async fn status_error(status: StatusCode, body: hyper::body::Incoming) -> SiteError {
    let body = match tokio::time::timeout(
        Duration::from_secs(2),
        Limited::new(body, 16 * 1024).collect(),
    )
    .await
    {
        Ok(Ok(b)) => {
            let b = b.to_bytes();
            let n = b.len().min(ERROR_BODY);
            String::from_utf8_lossy(&b[..n]).into_owned()
        }
        _ => String::new(),
    };
    SiteError::Status { status, body }
}

#[cfg(test)]
mod tests;
