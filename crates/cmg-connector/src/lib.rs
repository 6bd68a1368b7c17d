//! The on-premises connection point of cmg.
//!
//! It dials out to every gateway instance's channel address (TCP, directly or through an
//! HTTP CONNECT proxy, + mutually authenticated TLS, ALPN `cmg-channel/1`) and keeps one
//! channel to each, redialling with jittered backoff. The instances are the settings
//! bundle's when it lists them, followed live (`instances`), else the config file's. Over a channel the roles flip: the gateway is the HTTP/2
//! client and the connection point the HTTP/2 server. The gateway's first request is the
//! hello; every later request is a client request the gateway already authenticated and
//! filtered, which the connection point maps from its external URL to the internal role
//! URL and streams to the role (HTTP/1.1, or HTTPS with the role CA and an optional client
//! certificate), streaming the answer back.
//!
//! With a `[site_api]` section it also talks to the site's publishing API (client
//! certificate from the site CA): it long-polls the gateway's signed settings bundle and
//! relays it to the instances, and it reports the state of its channels and the traffic
//! snapshots the instances post to it (`report`).
//!
//! It does not authenticate clients, filter URLs for them or count traffic (the gateway
//! does), and it never listens on a port: the private network opens no inbound port.
//!
//! The shape is the same as every role's: [`bind`] checks the [`Config`] and loads key
//! material without touching the network, [`Bound::run`] serves until the shutdown token
//! is cancelled, and [`Bound::status`] publishes the state of each channel.

mod admin;
mod backoff;
mod channel;
pub mod config;
pub mod error;
mod forward;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod instances;
pub mod metrics;
mod relay;
mod report;
mod respond;
mod role_pool;
mod route;
pub mod settings;
pub mod site;
pub mod status;
mod supervisor;
mod tls;
pub mod traffic;

use std::sync::Arc;

use tokio::sync::watch;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;
use tracing::{info, Instrument};

use cmg_core::admin::AdminListener;
use cmg_core::shutdown::Shutdown;

pub use config::Config;
pub use error::ConnectorError;
pub use route::InvalidInternalUrl;
pub use status::{
    wait_all_up, wait_until, ChannelState, ChannelStatus, ConnectorStatus, WaitTimedOut,
};

use admin::ConnectorAdmin;
use backoff::Backoff;
use channel::Dialer;
use config::SettingsSource;
use forward::Forwarder;
use instances::Spawner;
use relay::Relay;
use report::Reporter;
use site::SiteClient;

/// A connection point whose configuration and key material are loaded; [`Bound::run`]
/// starts dialling.
#[derive(Debug)]
pub struct Bound {
    config: Config,
    dialer: Arc<Dialer>,
    forwarder: Arc<Forwarder>,
    relay: Arc<Relay>,
    site: Option<SiteClient>,
    admin: Option<AdminListener>,
    status: Arc<watch::Sender<ConnectorStatus>>,
    /// The data-path threads, started here so a failure to start them is a setup error.
    shards: cmg_core::shards::Shards,
}

/// A read-only handle on the URL mappings in force ([`Bound::mappings`]).
#[derive(Debug, Clone)]
pub struct MappingsInForce(Arc<Forwarder>);

impl MappingsInForce {
    /// External prefix and internal base URL of each mapping.
    pub fn list(&self) -> Vec<(String, String)> {
        self.0.mappings()
    }
}

/// What [`bind`] checks short of binding the admin listener and starting threads: at
/// least one gateway (or a settings source that lists them), the proxy, the channel TLS settings and the gateway's service name, the
/// on-premises forwarding (roles, their CAs and client certificates), the site API client.
/// `cmg connector --check` runs it. It does not dial the gateways, the roles or the site.
pub fn check(config: &Config) -> Result<(), ConnectorError> {
    if config.gateways.is_empty() && config.settings.is_none() {
        return Err(ConnectorError::NoGateways);
    }
    let proxy = config.proxy_from_env(|k| std::env::var(k).ok())?;
    tls::channel_config(&config.tls)?;
    tls::server_name(&config.service_name)?;
    Forwarder::new(config)?;
    config
        .site_api
        .as_ref()
        .map(|link| SiteClient::new(link, proxy.clone()))
        .transpose()?;
    Ok(())
}

/// Checks `config`, loads the channel and role TLS material and starts the data-path
/// threads. Opens no connection. The proxy is `[proxy]`'s, else the one this process's
/// environment names (`HTTPS_PROXY`, `NO_PROXY`).
pub async fn bind(config: Config) -> Result<Bound, ConnectorError> {
    bind_with_env(config, |k| std::env::var(k).ok()).await
}

/// [`bind`] with the environment injected (for the proxy variables).
pub async fn bind_with_env(
    config: Config,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Bound, ConnectorError> {
    if config.gateways.is_empty() && config.settings.is_none() {
        return Err(ConnectorError::NoGateways);
    }
    let proxy = config.proxy_from_env(env)?;
    if let Some(p) = &proxy {
        info!(proxy = %p.addr(), "going out through an HTTP CONNECT proxy");
    }
    let tls = TlsConnector::from(Arc::new(tls::channel_config(&config.tls)?));
    let server_name = tls::server_name(&config.service_name)?;
    let dialer = Arc::new(Dialer::new(tls, server_name, config.timing, proxy.clone()));
    let forwarder = Arc::new(Forwarder::new(&config)?);
    let site = config
        .site_api
        .as_ref()
        .map(|link| SiteClient::new(link, proxy.clone()))
        .transpose()?;
    let admin = config
        .admin
        .map(|addr| {
            AdminListener::bind(addr).map_err(|source| ConnectorError::AdminBind { addr, source })
        })
        .transpose()?;
    let (status, _) = watch::channel(ConnectorStatus::new(&config.gateways));
    let relay = Arc::new(Relay::new(config.id.as_str()));
    // Lane `l` of every instance runs on shard `l`: each data-path thread has a channel
    // to each instance, and a request never leaves the thread its channel is on.
    let shards = cmg_core::shards::Shards::start(config.threads, "cmg-connector")
        .map_err(ConnectorError::Shards)?;
    Ok(Bound {
        config,
        dialer,
        forwarder,
        relay,
        site,
        admin,
        status: Arc::new(status),
        shards,
    })
}

impl Bound {
    /// The state of every channel; changes as channels come and go.
    pub fn status(&self) -> watch::Receiver<ConnectorStatus> {
        self.status.subscribe()
    }

    /// The admin listener's address, when `[admin] listen` is set.
    pub fn admin_addr(&self) -> Option<std::net::SocketAddr> {
        self.admin.as_ref().map(AdminListener::local_addr)
    }

    /// The traffic snapshots the gateway instances posted, newest per instance.
    pub fn traffic(&self) -> traffic::HeldTraffic {
        traffic::HeldTraffic(self.relay.clone())
    }

    /// The URL mappings in force (external prefix, internal base URL): the config
    /// file's, or the site's once read.
    pub fn mappings(&self) -> MappingsInForce {
        MappingsInForce(self.forwarder.clone())
    }

    /// The configuration this connection point runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Keeps a channel to every gateway instance until `shutdown` is cancelled, then sends
    /// GOAWAY on each channel and waits (bounded by `timing.shutdown_grace`) for the
    /// requests in flight. Channel failures are retried, never returned.
    pub async fn run(self, shutdown: Shutdown) {
        let token = shutdown.token.child_token();
        info!(
            connector_id = %self.config.id,
            site = %self.config.site,
            gateways = self.config.gateways.len(),
            "connection point starting"
        );
        let follower = shutdown.tracker.spawn(
            instances::follow(
                Spawner {
                    shards: self.shards.handles(),
                    dialer: self.dialer.clone(),
                    forwarder: self.forwarder.clone(),
                    relay: self.relay.clone(),
                    status: self.status.clone(),
                    timing: self.config.timing,
                    tracker: shutdown.tracker.clone(),
                },
                self.config.gateways.clone(),
                self.relay.settings.subscribe(),
                token.clone(),
            )
            .in_current_span(),
        );
        match (&self.config.settings, &self.site, &self.config.site_api) {
            (
                Some(SettingsSource::File {
                    bundle_file,
                    poll_interval,
                }),
                _,
                _,
            ) => {
                shutdown.tracker.spawn(
                    settings::file_source::run(
                        bundle_file.clone(),
                        *poll_interval,
                        self.relay.settings.clone(),
                        token.clone(),
                    )
                    .in_current_span(),
                );
            }
            (Some(SettingsSource::Site), Some(site), Some(link)) => {
                let span = tracing::info_span!("site_settings", url = %link.url);
                shutdown.tracker.spawn(
                    settings::site_source::run(
                        site.clone(),
                        link.wait,
                        Backoff::new(link.backoff_base, link.backoff_max),
                        self.relay.clone(),
                        self.forwarder.clone(),
                        token.clone(),
                    )
                    .instrument(span),
                );
            }
            _ => {}
        }
        if let Some(listener) = self.admin {
            let routes = Arc::new(ConnectorAdmin {
                relay: self.relay.clone(),
                status: self.status.subscribe(),
            });
            let stop = Shutdown {
                token: token.clone(),
                tracker: shutdown.tracker.clone(),
            };
            shutdown
                .tracker
                .spawn(listener.serve(routes, stop).in_current_span());
        }
        // Reports outlive the channels: the last one says they are down.
        let report_stop = CancellationToken::new();
        let reporter = match (&self.site, &self.config.site_api) {
            (Some(site), Some(link)) => {
                let reporter = Reporter::new(
                    site.clone(),
                    self.config.id.to_string(),
                    self.relay.clone(),
                    self.status.subscribe(),
                    (link.report_interval, link.report_debounce),
                );
                let span = tracing::info_span!("report", url = %link.url);
                Some(
                    shutdown
                        .tracker
                        .spawn(reporter.run(report_stop.clone()).instrument(span)),
                )
            }
            _ => None,
        };
        // The follower ends on shutdown, once every channel has drained.
        let _ = follower.await;
        token.cancel();
        report_stop.cancel();
        if let Some(reporter) = reporter {
            let _ = reporter.await;
        }
        // The data-path threads stop last, once every channel has drained.
        drop(self.shards);
        info!("connection point stopped");
    }
}
