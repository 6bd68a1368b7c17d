//! The gateway: the internet-facing half of cmg.
//!
//! One instance accepts TLS from clients and from connection points on the same port
//! (chosen by ALPN, `listener`), keeps the channels in a [`ChannelRegistry`], and
//! serves each client request through `request`: admit (filter, authenticate, limit)
//! then forward on a channel of the URL's site and stream the answer back. Settings
//! come from the site as signed bundles over the channels (`settings`).
//!
//! It does not decide what is published (the site does), reach into the private
//! network (connection points forward), or keep durable state beyond the last good
//! settings bundle.
//!
//! The shape is the same as every role's: [`bind`] does everything that can fail at
//! startup (files, TLS, sockets, threads) and returns a [`Bound`]; [`Bound::run`]
//! serves until the shutdown token is cancelled, then drains. Modules, lowest first:
//! vocabulary (`error`, `identity`, `body`, `shard`, `metrics`), the channel's HTTP/2
//! client end (`upstream`), the pieces built from
//! the config (`config`, `tokens`, `tls`, `content`, `registry`,
//! `h1_guard`), the instance state (`state`), what serves with it (`request`,
//! `settings`, `channel`, `conn`, `admin`), the accept loops (`listener`), and this
//! file.

mod admin;
mod body;
mod channel;
mod client;
pub mod config;
mod conn;
mod content;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod h1_guard;
mod identity;
mod listener;
mod metrics;
mod park;
mod per_source;
mod proxy_header;
mod registry;
mod request;
mod settings;
mod shard;
mod state;
#[cfg(test)]
mod testing;
mod tls;
mod tokens;
mod upstream;
mod watched;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cmg_core::admin::AdminListener;
use cmg_core::shards::Shards;
use cmg_core::shutdown::{Drain, Shutdown};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn, Instrument};

pub use config::Config;
pub use error::SetupError;
pub use registry::{ChannelInfo, ChannelRegistry};
pub use tokens::{OidcIssuer, SiteTokens, TokenSettings};

use crate::state::Gateway;

/// How long the channels may take to close after the client requests drained.
const CHANNEL_CLOSE_GRACE: Duration = Duration::from_secs(2);

/// A gateway instance with its sockets bound, not yet serving.
#[derive(Debug)]
pub struct Bound {
    gw: Arc<Gateway>,
    settings: Option<Arc<settings::SettingsRuntime>>,
    config: Config,
    client: TcpListener,
    channel: Option<TcpListener>,
    admin: Option<AdminListener>,
    /// The data-path threads, started at bind so a failure to start them is a setup
    /// error; stopped when `run` ends (or when this is dropped unused).
    shards: Shards,
}

fn bind_addr(addr: SocketAddr) -> Result<TcpListener, SetupError> {
    cmg_core::net::bind(addr).map_err(|source| SetupError::Bind { addr, source })
}

/// What [`bind`] checks short of binding sockets and starting threads: the server
/// certificate and key, the client trust store and CRL settings, the published routes,
/// the site keys of `[settings]` and the last good settings bundle (a bundle that does not
/// verify is a warning, as at start). `cmg gateway --check` runs it. It does not bind the
/// listeners (an address in use shows only at start) or reach CRL and OCSP servers.
pub fn check(config: &Config) -> Result<(), SetupError> {
    let tls = Arc::new(tls::TlsManager::new(config)?);
    let gw = Gateway::new(config, tls)?;
    if let Some(sc) = &config.settings {
        settings::restore(&gw, sc)?;
    }
    Ok(())
}

/// Loads TLS material, builds the request path, binds every listener and starts the
/// data-path threads: everything that can fail at startup. Async like every role's
/// `bind`, though nothing in it waits today.
pub async fn bind(config: Config) -> Result<Bound, SetupError> {
    let tls = Arc::new(tls::TlsManager::new(&config)?);
    let gw = Arc::new(Gateway::new(&config, tls)?);
    let settings = config
        .settings
        .as_ref()
        .map(|sc| settings::restore(&gw, sc))
        .transpose()?;
    let client = bind_addr(config.listen.client)?;
    let channel = config.listen.channel.map(bind_addr).transpose()?;
    let admin = config
        .listen
        .admin
        .map(|addr| AdminListener::bind(addr).map_err(|source| SetupError::Bind { addr, source }))
        .transpose()?;
    let shards = Shards::start(config.threads, "cmg-gateway").map_err(SetupError::Threads)?;
    Ok(Bound {
        gw,
        settings,
        config,
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
    /// The admin listener's address, when configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(AdminListener::local_addr)
    }
    /// The version of the site's settings bundle in force (0: the config file's
    /// settings), to wait on: it changes once a bundle is applied and on disk.
    pub fn settings_version(&self) -> watch::Receiver<u64> {
        self.gw.watch_settings()
    }
    /// The live channels, for readiness checks and tests.
    pub fn registry(&self) -> Arc<ChannelRegistry> {
        self.gw.registry().clone()
    }

    /// Serves until `shutdown` is cancelled; then (`/ready` 503 at once) goes on
    /// serving for `drain_delay`, stops accepting, lets in-flight requests finish (up to
    /// `drain_grace`), posts a last traffic snapshot and closes the channels. Every task it starts is tracked by `shutdown` and has ended (or
    /// been cancelled) when it returns.
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
        let span = tracing::info_span!("gateway", instance = %gw.instance());
        async move {
            info!(client = %local(&client), channel = ?channel.as_ref().map(local), threads = shards.len(), "gateway listening");
            // Client connections and channels drain separately: channels must outlive
            // the client requests that are still using them. Background tasks stop with
            // `shutdown` and are tracked by `tasks`.
            // Both stop after `[shutdown] delay`, not with `shutdown` itself.
            let clients = Shutdown::new();
            let channels = Shutdown::new();
            let tasks = Shutdown::new();
            let stop = tasks.token.clone();
            if let Some(every) = config.tls.reload_interval {
                tasks.tracker.spawn(tls::reload::watch(gw.tls().clone(), every, stop.clone()).in_current_span());
            }
            {
                let gw = gw.clone();
                let stop = stop.clone();
                // Discovery has no cancellation of its own: bounded by its fetch
                // timeouts, and dropped at shutdown.
                tasks.tracker.spawn(
                    async move {
                        tokio::select! {
                            _ = gw.tokens().discover_all() => {}
                            _ = stop.cancelled() => {}
                        }
                    }
                    .in_current_span(),
                );
            }
            if let Some(rt) = settings {
                tasks.tracker.spawn(settings::run(gw.clone(), rt, stop.clone()).in_current_span());
            }
            tasks.tracker.spawn(
                channel::report::run(gw.clone(), config.reports.interval, stop.clone()).in_current_span(),
            );
            let ctx = listener::Context {
                gw: gw.clone(),
                tls: gw.tls().live(),
                clients: clients.clone(),
                channels: channels.clone(),
                shards: shards.handles(),
                proxy: config.proxy_protocol.clone().map(Arc::new),
                per_source: per_source::PerSource::new(per_source::SourceCaps {
                    connections: config.limits.max_connections_per_source,
                    handshakes: config.limits.max_handshakes_per_source,
                }),
            };
            tasks.tracker.spawn(listener::accept_loop(ctx.clone(), client, listener::Face::Client, stop.clone()).in_current_span());
            if let Some(l) = channel {
                tasks.tracker.spawn(listener::accept_loop(ctx.clone(), l, listener::Face::Channel, stop.clone()).in_current_span());
            }
            // The admin listener outlives the drain: `/ready` answers 503 from the stop
            // on, so the balancer sees the instance leave while its requests finish.
            let admin_down = Shutdown::new();
            if let Some(l) = admin {
                let routes = Arc::new(admin::GatewayAdmin {
                    gw: gw.clone(),
                    stopping: shutdown.token.clone(),
                });
                admin_down
                    .tracker
                    .spawn(l.serve(routes, admin_down.clone()).in_current_span());
            }
            drop(ctx);
            shutdown.cancelled().await;
            if !config.drain_delay.is_zero() {
                info!(delay = ?config.drain_delay, "stop requested: /ready is 503; accepting for the drain delay");
                tokio::time::sleep(config.drain_delay).await;
            }
            // Stop accepting and the background tasks, then drain the clients.
            tasks.token.cancel();
            gw.start_draining();
            info!("gateway stopping: draining client requests");
            if let Drain::TimedOut { remaining } = clients.drain(config.drain_grace).await {
                warn!(remaining, grace = ?config.drain_grace, "client connections still open after the grace period; closing");
            }
            // The counts of the drained requests, while the channels are still up.
            let taken = channel::report::post_all(&gw).await;
            info!(connection_points = taken, "final traffic snapshot sent");
            if let Drain::TimedOut { remaining } = tasks.drain(CHANNEL_CLOSE_GRACE).await {
                warn!(remaining, "background tasks still running after shutdown; dropped");
            }
            channels.drain(CHANNEL_CLOSE_GRACE).await;
            admin_down.drain(CHANNEL_CLOSE_GRACE).await;
            drop(shards);
            info!("gateway stopped");
        }
        .instrument(span)
        .await
    }
}
