//! The gateway: the internet-facing half of cmg.
//!
//! One instance accepts TLS from clients and from connection points on the same port
//! (chosen by ALPN, [`listener`]), keeps the channels in a [`channel::ChannelRegistry`],
//! and serves each client request through [`request::handle`]: filter, authenticate,
//! limit, forward on a channel of the URL's site, stream the answer back.
//!
//! Built as [`bind`] (everything that can fail at startup: files, TLS, sockets) then
//! [`Bound::run`] (serves until the shutdown token is cancelled, then drains).

pub mod admin;
pub mod channel;
pub mod config;
pub mod conn;
pub mod content;
pub mod error;
pub mod h1_guard;
pub mod listener;
pub mod metrics;
pub mod request;
pub mod settings;
pub mod tls;
pub mod tokens;
pub mod traffic;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use cmg_core::shards::Shards;
use cmg_core::shutdown::{Drain, Shutdown};
use cmg_proto::mapping::{PrefixTable, PublishedUrl};
use http::{uri, HeaderValue};
use tokio::net::TcpListener;
use tracing::{info, warn};

pub use channel::{ChannelInfo, ChannelRegistry};
pub use config::Config;
pub use error::SetupError;

use crate::config::{ChannelSettings, Limits};
use crate::metrics::{EndpointStats, Metrics};

/// How long in-flight requests may take to finish after shutdown is requested.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// A published URL with its counters.
#[derive(Debug)]
pub struct Endpoint {
    pub url: PublishedUrl,
    pub stats: Arc<EndpointStats>,
}

/// Everything the request path reads, shared by every connection of an instance.
#[derive(Debug)]
pub struct Gateway {
    pub instance: String,
    pub instance_header: HeaderValue,
    /// Data-path threads (`threads`), announced in each channel hello.
    pub threads: usize,
    pub service_name: String,
    /// `service_name` as a URI authority, for the upstream request target.
    pub authority: uri::Authority,
    pub channel: ChannelSettings,
    pub limits: Limits,
    pub registry: Arc<ChannelRegistry>,
    /// Published URLs: from the config file at start, replaced whole by each settings
    /// bundle (requests in flight keep the table they started with).
    pub published: ArcSwap<PrefixTable<Arc<Endpoint>>>,
    /// Set while the site has stopped the service (critical traffic alert): every
    /// client request is answered 503 with this reason.
    pub stopped: ArcSwapOption<String>,
    /// Version of the settings bundle in force (0: config file only).
    pub settings_version: AtomicU64,
    pub route_headers: bool,
    pub metrics: Arc<Metrics>,
    /// Bearer-token checks for `CCM_Proxy_ServerAuth` URLs.
    pub tokens: tokens::TokenAuth,
    /// TLS material: files, replaced by a bundle's client trust once one is in force.
    pub tls: Arc<tls::TlsManager>,
    /// The OIDC issuers of the config file: a settings bundle names the issuers, and
    /// these supply the local transport settings (`ca`, `allow_http_loopback`) of the
    /// same issuer URL, which the site cannot know.
    pub local_oidc: Vec<tokens::OidcIssuer>,
    /// Content serving: the storage to read from while it is on, `None` while off
    /// (config file at start, replaced by each settings bundle).
    pub content: ArcSwapOption<content::ContentSource>,
    /// `[content]` of the config file: local timeouts, and the storage account a
    /// bundle without one falls back to.
    pub content_local: content::ContentConfig,
    /// Counters of content requests (one endpoint label, `content`).
    pub content_stats: Arc<EndpointStats>,
}

impl Gateway {
    fn new(config: &Config, tls: Arc<tls::TlsManager>) -> Result<Self, SetupError> {
        let bad = |message: String| SetupError::File {
            path: "<config>".into(),
            message,
        };
        let metrics = Arc::new(Metrics::new(&config.instance));
        let content_stats = Arc::new(metrics.endpoint("content"));
        let published = PrefixTable::new(config.published.iter().map(|(prefix, url)| {
            (
                prefix.clone(),
                Arc::new(Endpoint {
                    url: url.clone(),
                    stats: Arc::new(metrics.endpoint(prefix.as_str())),
                }),
            )
        }))
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
            registry: Arc::new(ChannelRegistry::new()),
            published: ArcSwap::from_pointee(published),
            stopped: ArcSwapOption::empty(),
            settings_version: AtomicU64::new(0),
            route_headers: config.route_headers,
            metrics,
            tokens: tokens::TokenAuth::new(&config.tokens).map_err(|e| bad(e.to_string()))?,
            tls,
            local_oidc: config.tokens.oidc.clone(),
            content: ArcSwapOption::new(
                content::config::initial_source(&config.content).map_err(|e| bad(e.to_string()))?,
            ),
            content_local: config.content.clone(),
            content_stats,
        })
    }
}

/// A gateway instance with its sockets bound, not yet serving.
#[derive(Debug)]
pub struct Bound {
    gw: Arc<Gateway>,
    settings: Option<Arc<settings::poll::SettingsRuntime>>,
    config: Config,
    client: TcpListener,
    channel: Option<TcpListener>,
    admin: Option<TcpListener>,
    /// The data-path threads, started at bind so a failure to start them is a setup
    /// error; stopped when `run` ends (or when this is dropped unused).
    shards: Shards,
}

fn bind_addr(addr: SocketAddr) -> Result<TcpListener, SetupError> {
    cmg_core::net::bind(addr).map_err(|source| SetupError::Bind { addr, source })
}

/// Loads TLS material, builds the request path and binds every listener.
pub fn bind(config: &Config) -> Result<Bound, SetupError> {
    let tls = Arc::new(tls::TlsManager::new(config)?);
    let gw = Arc::new(Gateway::new(config, tls)?);
    let settings = match &config.settings {
        None => None,
        Some(sc) => {
            let rt =
                settings::poll::SettingsRuntime::new(sc.clone()).map_err(|e| SetupError::File {
                    path: "<config>".into(),
                    message: format!("settings.site_keys: {e}"),
                })?;
            // The last good bundle, so the instance serves as the site last said even
            // when the site (or every connection point) is unreachable at start.
            match rt.restore(&gw) {
                Ok(Some(v)) => {
                    info!(version = v, path = %sc.last_good.display(), "last good settings bundle applied")
                }
                Ok(None) => {
                    info!(path = %sc.last_good.display(), "no settings bundle yet; serving the config file's settings until one arrives")
                }
                Err(e) => {
                    warn!(code = e.code(), error = %e, "last good settings bundle not usable; serving the config file's settings until a bundle arrives")
                }
            }
            Some(Arc::new(rt))
        }
    };
    let client = bind_addr(config.listen.client)?;
    let channel = config.listen.channel.map(bind_addr).transpose()?;
    let admin = config.listen.admin.map(bind_addr).transpose()?;
    let shards = Shards::start(config.threads, "cmg-gateway").map_err(SetupError::Threads)?;
    Ok(Bound {
        gw,
        settings,
        config: config.clone(),
        client,
        channel,
        admin,
        shards,
    })
}

fn local(l: &TcpListener) -> SocketAddr {
    l.local_addr()
        .expect("a bound listener has a local address")
}

impl Bound {
    /// The client listener's address (also accepts channels by ALPN).
    pub fn client_addr(&self) -> SocketAddr {
        local(&self.client)
    }
    /// The dedicated channel listener's address, when configured.
    pub fn channel_addr(&self) -> Option<SocketAddr> {
        self.channel.as_ref().map(local)
    }
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(local)
    }
    /// The instance's shared state (settings version, channels, metrics), for tests and
    /// the cluster harness.
    pub fn gateway(&self) -> Arc<Gateway> {
        self.gw.clone()
    }
    /// The live channels, for readiness checks and tests.
    pub fn registry(&self) -> Arc<ChannelRegistry> {
        self.gw.registry.clone()
    }

    /// Serves until `shutdown` is cancelled; then stops accepting, lets in-flight
    /// requests finish (up to [`DRAIN_GRACE`]) and closes the channels.
    pub async fn run(self, shutdown: Shutdown) {
        let Bound {
            gw,
            settings,
            config,
            client,
            channel,
            admin,
            shards,
        } = self;
        info!(instance = %gw.instance, client = %local(&client), channel = ?channel.as_ref().map(local), threads = shards.len(), "gateway listening");
        // Client connections and channels drain separately: channels must outlive the
        // client requests that are still using them.
        let clients = shutdown.child();
        let channels = Shutdown::new();
        let report_interval = config.reports.interval;
        if let Some(every) = config.tls.reload_interval {
            let stop = shutdown.token.clone();
            tokio::spawn(tls::reload::watch(gw.tls.clone(), every, stop));
        }
        {
            let gw = gw.clone();
            tokio::spawn(async move { gw.tokens.discover_all().await });
        }
        if let Some(rt) = settings {
            tokio::spawn(settings::poll::run(gw.clone(), rt, shutdown.token.clone()));
        }
        tokio::spawn(traffic::run(
            gw.clone(),
            report_interval,
            shutdown.token.clone(),
        ));
        let ctx = listener::Context {
            gw: gw.clone(),
            tls: gw.tls.live(),
            clients: clients.clone(),
            channels: channels.clone(),
            shards: shards.handles(),
        };
        let mut accept = tokio::task::JoinSet::new();
        accept.spawn(listener::accept_loop(
            ctx.clone(),
            client,
            listener::Face::Client,
        ));
        if let Some(l) = channel {
            accept.spawn(listener::accept_loop(
                ctx.clone(),
                l,
                listener::Face::Channel,
            ));
        }
        if let Some(l) = admin {
            accept.spawn(admin::serve(gw.clone(), l, shutdown.token.clone()));
        }
        shutdown.cancelled().await;
        accept.abort_all();
        info!(instance = %gw.instance, "gateway stopping: draining client requests");
        if let Drain::TimedOut { remaining } = clients.drain(DRAIN_GRACE).await {
            warn!(
                remaining,
                "client connections still open after the grace period; closing"
            );
        }
        // The counts of the drained requests, while the channels are still up.
        let taken = traffic::post_all(&gw).await;
        info!(instance = %gw.instance, connection_points = taken, "final traffic snapshot sent");
        channels.drain(Duration::from_secs(2)).await;
        drop(shards);
        info!(instance = %gw.instance, "gateway stopped");
    }
}
