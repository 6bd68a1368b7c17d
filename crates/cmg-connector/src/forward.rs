//! Forwarding a client request from a channel to an internal role.
//!
//! The external path is mapped to the internal URL (longest prefix, case-insensitive),
//! hop-by-hop headers are dropped, `Host` is set to the role's authority, and the cmg
//! headers the gateway added (client identity, request ID, `X-Forwarded-For`) go along
//! untouched. Both bodies are streamed: the channel's `Incoming` body is the role
//! request's body and the role's `Incoming` body is the channel response's body, so
//! backpressure is HTTP/2 flow control on one side and TCP on the other.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::{header, HeaderValue, Request, Response, Version};
use http_body_util::Either;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tracing::{info, warn};

use cmg_core::error_chain::chain;
use cmg_proto::headers;
use cmg_proto::mapping::{ExternalPrefix, PrefixTable, UrlMapping, SITE_SCHEME};

use crate::config::Config;
use crate::error::ConnectorError;
use crate::respond::{ChannelBody, Refusal};
use crate::role_pool::{PoolLimits, RolePool};
use crate::route::{self, Route};
use crate::tls;

/// How long an idle keep-alive connection to a role is kept.
const ROLE_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle keep-alive connections kept per role.
const ROLE_MAX_IDLE: usize = 256;
/// Largest read buffer of a role connection, so the largest piece of a response body the
/// connection point takes from a role at once. hyper's HTTP/2 sender takes a whole piece
/// once the channel stream has any window, so this (with the channel's stream window)
/// bounds what a client that never reads its answer makes the connection point hold per
/// stream. 64 KiB still moves bodies at full speed; response heads stay far below it.
const ROLE_READ_BUFFER: usize = 64 * 1024;

/// The mappings and the connector towards the roles; one per connection point, shared
/// by every channel (the keep-alive pools are per shard: [`Forwarder::role_client`]).
///
/// The mappings are the config file's until the site publishes its own
/// ([`Forwarder::use_site_mappings`]); they are swapped whole, and a request in flight
/// keeps the table it started with.
#[derive(Debug)]
pub(crate) struct Forwarder {
    routes: ArcSwap<PrefixTable<Route>>,
    /// The config file's mappings: the fallback when the site publishes none.
    config_routes: Arc<PrefixTable<Route>>,
    /// Opens connections to the roles (plain or TLS by the mapping's scheme).
    https: HttpsConnector<HttpConnector>,
    role_timeout: Duration,
    /// Whether `[roles]` has a client certificate to present.
    has_client_cert: bool,
    /// This connection point's ID, sent on every response.
    connection_point: HeaderValue,
    /// The site API URL that `cmg-site:` mappings resolve to (`[site_api] url`).
    site: Option<String>,
}

impl Forwarder {
    pub fn new(config: &Config) -> Result<Self, ConnectorError> {
        let site = config.site_api.as_ref().map(|l| l.url.to_string());
        let routes = Arc::new(routes_of(
            config.mappings.iter().map(|(_, m)| m),
            site.as_deref(),
        )?);

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.timing.role_connect_timeout));
        http.set_keepalive(Some(Duration::from_secs(60)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls::role_config(&config.roles, config.site_api.as_ref())?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);

        let connection_point = HeaderValue::from_str(config.id.as_str())
            .map_err(|_| ConnectorError::InvalidId(config.id.to_string()))?;
        Ok(Self {
            routes: ArcSwap::new(routes.clone()),
            config_routes: routes,
            https,
            role_timeout: config.timing.role_timeout,
            has_client_cert: config.roles.client_cert.is_some(),
            connection_point,
            site,
        })
    }

    /// Replaces the mappings with the site's; an empty list goes back to the config
    /// file's. Nothing changes when one of them is not usable.
    pub fn use_site_mappings(&self, mappings: &[UrlMapping]) -> Result<usize, ConnectorError> {
        if mappings.is_empty() {
            self.routes.store(self.config_routes.clone());
            return Ok(self.config_routes.len());
        }
        let table = routes_of(mappings.iter(), self.site.as_deref())?;
        let n = table.len();
        self.routes.store(Arc::new(table));
        Ok(n)
    }

    /// The mappings in force: external prefix and internal base URL.
    pub fn mappings(&self) -> Vec<(String, String)> {
        self.routes
            .load()
            .iter()
            .map(|(p, r)| (p.to_string(), r.internal.clone()))
            .collect()
    }

    /// A new keep-alive pool towards the roles, for one channel: a pooled connection is
    /// registered with the reactor of the shard that opened it, so only that channel's
    /// shard uses it.
    pub fn role_pool(&self) -> RolePool {
        RolePool::new(
            self.https.clone(),
            PoolLimits {
                idle_timeout: ROLE_IDLE_TIMEOUT,
                max_idle_per_role: ROLE_MAX_IDLE,
                max_read_buffer: ROLE_READ_BUFFER,
            },
        )
    }

    /// This connection point's ID as a header value.
    pub fn connection_point(&self) -> &HeaderValue {
        &self.connection_point
    }

    /// Forwards one client request that arrived on the channel `connection_id`.
    pub async fn forward(
        &self,
        req: Request<Incoming>,
        connection_id: &str,
        client: &RolePool,
    ) -> Response<ChannelBody> {
        // The request line's fields are gathered only when it will be written (the
        // clock and two copies per request otherwise).
        let logged = tracing::enabled!(target: "cmg_connector::request", tracing::Level::INFO);
        let started = logged.then(Instant::now);
        let (mut parts, body) = req.into_parts();
        let method = parts.method.clone();
        let seen = logged.then(|| {
            let path = parts
                .uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
            let request_id = parts
                .headers
                .get(headers::REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned();
            (path, request_id)
        });

        let routes = self.routes.load_full();
        let (route, resp) = match route::resolve(&routes, parts.uri.path(), parts.uri.query()) {
            Err(reason) => {
                let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                warn!(target: "cmg_connector::request", %method, %path, %reason, connection_id, "not forwarded");
                (None, Refusal::NoMapping.response(&self.connection_point))
            }
            Ok((route, target)) => {
                headers::strip_hop_by_hop(&mut parts.headers);
                parts.headers.insert(header::HOST, route.base.host.clone());
                parts.uri = target;
                parts.version = Version::HTTP_11;
                let resp = self
                    .send(Request::from_parts(parts, body), route, client)
                    .await;
                (Some(route), resp)
            }
        };

        if let (Some(started), Some((path, request_id))) = (started, seen) {
            info!(
                target: "cmg_connector::request",
                %method,
                %path,
                status = resp.status().as_u16(),
                role = route.map_or("-", |r| r.base.authority.as_str()),
                endpoint = route.map_or("-", |r| r.endpoint.as_str()),
                connection_id,
                request_id,
                elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "request"
            );
        }
        resp
    }

    async fn send(
        &self,
        req: Request<Incoming>,
        route: &Route,
        client: &RolePool,
    ) -> Response<ChannelBody> {
        let role = route.base.authority.as_str();
        match tokio::time::timeout(self.role_timeout, client.request(req)).await {
            Ok(Ok(resp)) => {
                let (mut parts, body) = resp.into_parts();
                headers::strip_hop_by_hop(&mut parts.headers);
                parts
                    .headers
                    .insert(headers::CONNECTION_POINT, self.connection_point.clone());
                Response::from_parts(parts, Either::Left(body))
            }
            Ok(Err(e)) if !self.has_client_cert && wants_client_cert(&e) => {
                warn!(target: "cmg_connector::request", role, error = %chain(&e), "role requires a client certificate; set [roles] client_cert and client_key");
                Refusal::ClientCertificateRequired.response(&self.connection_point)
            }
            Ok(Err(e)) => {
                warn!(target: "cmg_connector::request", role, error = %chain(&e), "role unreachable");
                Refusal::RoleUnreachable.response(&self.connection_point)
            }
            Err(_) => {
                warn!(target: "cmg_connector::request", role, after = ?self.role_timeout, "role timed out");
                Refusal::RoleTimeout.response(&self.connection_point)
            }
        }
    }
}

/// The route table of `mappings`; the first mapping of a prefix (compared
/// case-insensitively) wins.
///
/// A `cmg-site:` internal URL (the site's own token service) is resolved against the
/// site API URL; without a `[site_api]` it is left out, with a warning (requests to it
/// get `CMGConnector_NoMapping`).
fn routes_of<'a>(
    mappings: impl Iterator<Item = &'a UrlMapping>,
    site: Option<&str>,
) -> Result<PrefixTable<Route>, ConnectorError> {
    let mut routes: Vec<(ExternalPrefix, Route)> = Vec::new();
    for mapping in mappings {
        let resolved;
        let mapping = match mapping.internal_base.strip_prefix(SITE_SCHEME) {
            None => mapping,
            Some(path) => match site {
                Some(base) => {
                    resolved = UrlMapping {
                        prefix: mapping.prefix.clone(),
                        internal_base: format!("{}{path}", base.trim_end_matches('/')),
                    };
                    &resolved
                }
                None => {
                    warn!(prefix = %mapping.prefix, internal = %mapping.internal_base, "mapping to the site's own service needs [site_api]; left out");
                    continue;
                }
            },
        };
        let prefix = &mapping.prefix;
        if routes
            .iter()
            .any(|(p, _)| p.as_str().eq_ignore_ascii_case(prefix.as_str()))
        {
            continue;
        }
        let route = Route::new(mapping).map_err(|source| ConnectorError::InvalidMapping {
            prefix: prefix.to_string(),
            url: mapping.internal_base.clone(),
            source,
        })?;
        routes.push((prefix.clone(), route));
    }
    PrefixTable::new(routes).map_err(|e| ConnectorError::InvalidMapping {
        prefix: e.0.clone(),
        url: String::new(),
        source: route::InvalidInternalUrl::Parse(e.to_string()),
    })
}

/// True when a role refused the TLS handshake for lack of a client certificate (the
/// TLS 1.3 `certificate_required` alert, or a handshake failure alert from a TLS 1.2
/// server, which is what IIS sends when it requires one).
fn wants_client_cert(e: &(dyn StdError + 'static)) -> bool {
    use rustls::AlertDescription::{CertificateRequired, HandshakeFailure};
    let mut cur = Some(e);
    while let Some(err) = cur {
        let tls = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::AlertReceived(CertificateRequired | HandshakeFailure)) = tls {
            return true;
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn recognises_a_role_asking_for_a_client_certificate() {
        let alert = |a| Outer(std::io::Error::other(rustls::Error::AlertReceived(a)));
        assert!(wants_client_cert(&alert(
            rustls::AlertDescription::CertificateRequired
        )));
        assert!(!wants_client_cert(&alert(
            rustls::AlertDescription::BadCertificate
        )));
        let refused = Outer(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(!wants_client_cert(&refused));
        assert_eq!(
            chain(&refused),
            "client error (Connect): connection refused"
        );
    }
}
