//! [`Gateway`]: the state of one instance that every connection and task reads: who
//! the instance is, its limits, the channels, the published URLs, the settings in
//! force and their version, metrics, token and TLS checkers, content storage.
//!
//! Settings change only through [`Gateway::swap_settings`] and
//! [`Gateway::announce_version`] (called by `settings::apply`); everything else reads.
//! The settings version is a `watch`, so readiness, the cluster harness and tests wait
//! on it instead of polling. This file holds state and its accessors, no behaviour of
//! the request path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use cmg_proto::mapping::{PrefixTable, PublishedUrl};
use http::{uri, HeaderValue};
use tokio::sync::watch;

use crate::config::{ChannelSettings, Config, Limits};
use crate::content::{ContentConfig, ContentSource};
use crate::error::SetupError;
use crate::metrics::{EndpointStats, Metrics};
use crate::registry::ChannelRegistry;
use crate::tls::TlsManager;
use crate::tokens::{OidcIssuer, TokenAuth};

/// A published URL with its counters.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub url: PublishedUrl,
    pub stats: Arc<EndpointStats>,
}

/// The published URLs in force.
pub(crate) type Published = PrefixTable<Arc<Endpoint>>;

/// What a settings bundle swaps in at once (see `settings::apply`).
#[derive(Debug)]
pub(crate) struct SettingsSwap {
    pub published: Published,
    pub content: Option<Arc<ContentSource>>,
    pub stopped: Option<String>,
}

/// Everything the request path reads, shared by every connection of an instance.
#[derive(Debug)]
pub(crate) struct Gateway {
    instance: String,
    instance_header: HeaderValue,
    /// Data-path threads (`threads`), announced in each channel hello.
    threads: usize,
    service_name: String,
    /// `service_name` as a URI authority, for the upstream request target.
    authority: uri::Authority,
    channel: ChannelSettings,
    limits: Limits,
    route_headers: bool,
    registry: Arc<ChannelRegistry>,
    /// From the config file at start, replaced whole by each settings bundle (requests
    /// in flight keep the table they started with).
    published: ArcSwap<Published>,
    /// Set while the site has stopped the service (critical traffic alert).
    stopped: ArcSwapOption<String>,
    /// Set when the instance starts stopping: HTTP/1.1 answers close their connection.
    draining: AtomicBool,
    /// Version of the settings bundle in force (0: config file only).
    version: watch::Sender<u64>,
    metrics: Arc<Metrics>,
    tokens: TokenAuth,
    tls: Arc<TlsManager>,
    /// The OIDC issuers of the config file: a settings bundle names the issuers, and
    /// these supply the local transport settings (`ca`, `allow_http_loopback`) of the
    /// same issuer URL, which the site cannot know.
    local_oidc: Vec<OidcIssuer>,
    /// The storage content is served from while content is on, `None` while off.
    content: ArcSwapOption<ContentSource>,
    /// `[content]` of the config file: local timeouts, and the storage account a
    /// bundle without one falls back to.
    content_local: ContentConfig,
    /// `[settings] instance_key`: opens the secrets bundles seal to this instance.
    instance_key: Option<Arc<cmg_token::InstanceKey>>,
    /// Counters of content requests (one endpoint label, `content`).
    content_stats: Arc<EndpointStats>,
}

impl Gateway {
    pub fn new(config: &Config, tls: Arc<TlsManager>) -> Result<Self, SetupError> {
        let bad = |message: String| SetupError::File {
            path: "<config>".into(),
            message,
        };
        let metrics = Arc::new(Metrics::new(&config.instance));
        let content_stats = Arc::new(metrics.endpoint("content"));
        let published = PrefixTable::new(
            config
                .published
                .iter()
                .map(|(prefix, url)| (prefix.clone(), Arc::new(endpoint(&metrics, url.clone())))),
        )
        .map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            instance: config.instance.clone(),
            instance_header: HeaderValue::from_str(&config.instance).map_err(|_| {
                bad(format!(
                    "instance name {:?} is not a valid header value",
                    config.instance
                ))
            })?,
            threads: config.threads,
            service_name: config.service_name.clone(),
            authority: config.service_name.parse().map_err(|_| {
                bad(format!(
                    "service name {:?} is not a valid host",
                    config.service_name
                ))
            })?,
            channel: config.channel.clone(),
            limits: config.limits.clone(),
            route_headers: config.route_headers,
            registry: Arc::new(ChannelRegistry::new()),
            published: ArcSwap::from_pointee(published),
            stopped: ArcSwapOption::empty(),
            draining: AtomicBool::new(false),
            version: watch::channel(0).0,
            metrics,
            tokens: TokenAuth::new(&config.tokens).map_err(|e| bad(format!("tokens: {e}")))?,
            tls,
            local_oidc: config.tokens.oidc.clone(),
            content: ArcSwapOption::new(
                crate::content::config::initial_source(&config.content)
                    .map_err(|e| bad(e.to_string()))?,
            ),
            content_local: config.content.clone(),
            instance_key: config
                .settings
                .as_ref()
                .and_then(|s| s.instance_key.clone()),
            content_stats,
        })
    }

    /// This instance's name (`gw1`): logs, the channel hello, route headers.
    pub fn instance(&self) -> &str {
        &self.instance
    }
    pub fn instance_header(&self) -> &HeaderValue {
        &self.instance_header
    }
    pub fn threads(&self) -> usize {
        self.threads
    }
    /// The host name clients use.
    pub fn service_name(&self) -> &str {
        &self.service_name
    }
    pub fn authority(&self) -> &uri::Authority {
        &self.authority
    }
    pub fn channel_settings(&self) -> &ChannelSettings {
        &self.channel
    }
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
    /// Whether responses name the instance and the connection point (demo and tests).
    pub fn route_headers(&self) -> bool {
        self.route_headers
    }
    pub fn registry(&self) -> &Arc<ChannelRegistry> {
        &self.registry
    }
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
    pub fn tokens(&self) -> &TokenAuth {
        &self.tokens
    }
    pub fn tls(&self) -> &Arc<TlsManager> {
        &self.tls
    }
    pub fn local_oidc(&self) -> &[OidcIssuer] {
        &self.local_oidc
    }
    pub fn content_local(&self) -> &ContentConfig {
        &self.content_local
    }
    pub fn instance_key(&self) -> Option<&cmg_token::InstanceKey> {
        self.instance_key.as_deref()
    }
    pub fn content_stats(&self) -> &Arc<EndpointStats> {
        &self.content_stats
    }

    /// The published URL `path` falls under (longest prefix), if any.
    pub fn lookup(&self, path: &str) -> Option<Arc<Endpoint>> {
        self.published.load().lookup(path).map(|(_, ep)| ep.clone())
    }

    /// Why the site stopped the service, while it is stopped.
    pub fn stopped(&self) -> Option<Arc<String>> {
        self.stopped.load_full()
    }

    /// The instance is stopping: answers tell HTTP/1.1 clients to close.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// The storage content is served from, `None` while content serving is off.
    pub fn content_source(&self) -> Option<Arc<ContentSource>> {
        self.content.load_full()
    }

    /// A published URL with its counters (the same counters for the same prefix).
    pub fn endpoint(&self, url: PublishedUrl) -> Endpoint {
        endpoint(&self.metrics, url)
    }

    /// Puts a bundle's published URLs, content source and service stop in force.
    pub fn swap_settings(&self, swap: SettingsSwap) {
        self.published.store(Arc::new(swap.published));
        self.content.store(swap.content);
        self.stopped.store(swap.stopped.map(Arc::new));
    }

    /// Follows the settings version in force.
    pub fn watch_settings(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Announces `version` as the one in force (readiness, the metric, watchers).
    pub fn announce_version(&self, version: u64) {
        self.version.send_replace(version);
        self.metrics.settings_version.set(version as i64);
    }
}

fn endpoint(metrics: &Metrics, url: PublishedUrl) -> Endpoint {
    Endpoint {
        stats: Arc::new(metrics.endpoint(url.prefix.as_str())),
        url,
    }
}
