//! The site's listener: HTTPS (rustls) with an optional client certificate, verified in
//! the handshake against the site CA (connection points) and the client root CAs of the
//! site's gateways (clients on the intranet, for the location service). Admin calls
//! authenticate with the bearer token; publishing calls with a connection point
//! certificate (which must also be on record); clients with theirs or a device token.
//! The client roots are read at bind and again after every change at the site (a
//! gateway's trusted roots changed): new handshakes use the new set.
//!
//! Shape as every role: [`bind`] → [`Bound::local_addr`] → [`Bound::run`].

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cmg_core::admin::AdminListener;
use cmg_core::Shutdown;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig as RustlsConfig};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;
use tracing::Instrument as _;

use crate::admin::SiteAdmin;
use crate::alerts::Notifier;
use crate::api::{self, AppState, PeerCert};
use crate::metrics::Metrics;
use crate::store::{Actor, ExportListen, Store};
use crate::Secret;

/// How the site serves.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub admin_token: Secret,
    /// Longest wait of a bundle long poll.
    pub long_poll: Duration,
    /// How often keys past their overlap are retired.
    pub key_check_interval: Duration,
    /// Addresses written into exported `gateway.toml` files by default.
    pub export_listen: ExportListen,
    /// The connection points' report interval (a gateway's status turns stale after
    /// twice this without a report).
    pub report_interval: Duration,
    /// How often every gateway's traffic alert is evaluated (also after each report).
    pub alert_interval: Duration,
    /// Longest wait for the alert webhook.
    pub webhook_timeout: Duration,
    /// The HTTP CONNECT proxy alert webhooks go through (`HTTPS_PROXY`/`NO_PROXY`, read
    /// by the binary); `None`: direct.
    pub outbound_proxy: Option<Arc<cmg_core::proxy::Proxy>>,
    /// Plain HTTP admin listener for `/metrics`, `/ready` and `/live` (loopback or a
    /// private address).
    pub admin_listen: Option<SocketAddr>,
    /// How long a web console session lives (idle, absolute).
    pub console_session: crate::store::SessionLifetime,
}

impl Config {
    pub fn new(listen: SocketAddr, admin_token: Secret) -> Self {
        Self {
            listen,
            admin_token,
            long_poll: Duration::from_secs(30),
            key_check_interval: Duration::from_secs(60),
            export_listen: ExportListen::default(),
            report_interval: Duration::from_secs(300),
            alert_interval: Duration::from_secs(360),
            webhook_timeout: Duration::from_secs(10),
            outbound_proxy: None,
            admin_listen: None,
            console_session: api::CONSOLE_SESSION,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Store(#[from] crate::StoreError),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A bound, not yet serving, site server.
pub struct Bound {
    listener: TcpListener,
    /// Replaced when the gateways' client roots change.
    tls: Arc<RwLock<TlsAcceptor>>,
    client_roots: Vec<String>,
    state: AppState,
    key_check_interval: Duration,
    alert_interval: Duration,
    admin: Option<AdminListener>,
}

fn tls_config(
    store_tls: &crate::store::ApiTls,
    client_roots: &[String],
) -> Result<RustlsConfig, SetupError> {
    let tls = |e: &dyn std::fmt::Display| SetupError::Tls(e.to_string());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in cmg_pki::pem::parse_certs(&store_tls.ca_pem).map_err(|e| tls(&e))? {
        roots.add(c).map_err(|e| tls(&e))?;
    }
    for pem in client_roots {
        for c in cmg_pki::pem::parse_certs(pem).map_err(|e| tls(&e))? {
            roots.add(c).map_err(|e| tls(&e))?;
        }
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| tls(&e))?;
    let chain = cmg_pki::pem::parse_certs(&store_tls.cert_pem).map_err(|e| tls(&e))?;
    let key = cmg_pki::pem::parse_key(store_tls.key_pem.expose()).map_err(|e| tls(&e))?;
    let mut config = RustlsConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| tls(&e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Everything the listener serves: the API under `/api/v1`, the web console under `/ui`.
pub fn app(state: AppState) -> axum::Router {
    api::router(state.clone()).nest("/ui", crate::ui::router(state))
}

/// Loads the TLS material from the store and binds the listener.
pub async fn bind(store: Store, config: Config) -> Result<Bound, SetupError> {
    let api_tls = store.api_tls().await?;
    let client_roots = store.client_trust_roots().await?;
    let tls = tls_config(&api_tls, &client_roots)?;
    let listener = cmg_core::net::bind(config.listen).map_err(|source| SetupError::Bind {
        addr: config.listen,
        source,
    })?;
    let admin = match config.admin_listen {
        Some(addr) => {
            Some(AdminListener::bind(addr).map_err(|source| SetupError::Bind { addr, source })?)
        }
        None => None,
    };
    let metrics = Arc::new(Metrics::new());
    let notifier = Notifier::new(
        config.webhook_timeout,
        metrics.clone(),
        config.outbound_proxy.clone(),
    )
    .map_err(|e| SetupError::Tls(e.to_string()))?;
    let mut state = AppState::new(
        store,
        &config.admin_token,
        config.long_poll,
        notifier,
        metrics,
    );
    state.export_listen = Arc::new(config.export_listen.clone());
    state.report_interval = config.report_interval;
    state.console_session = config.console_session;
    Ok(Bound {
        listener,
        tls: Arc::new(RwLock::new(TlsAcceptor::from(Arc::new(tls)))),
        client_roots,
        state,
        key_check_interval: config.key_check_interval,
        alert_interval: config.alert_interval,
        admin,
    })
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl Bound {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The admin listener's address (`/metrics`, `/ready`, `/live`), when configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(AdminListener::local_addr)
    }

    /// Serves until `shutdown` is cancelled, then waits for open requests (up to 10 s).
    pub async fn run(mut self, shutdown: Shutdown) {
        self.state.stopping = shutdown.clone();
        let router = app(self.state.clone());
        if let Some(listener) = self.admin.take() {
            tracing::info!(addr = %listener.local_addr(), "site admin listener (metrics, ready, live)");
            let routes = Arc::new(SiteAdmin {
                store: self.state.store.clone(),
                metrics: self.state.metrics.clone(),
                report_interval: self.state.report_interval,
            });
            shutdown.tracker.spawn(
                listener
                    .serve(routes, shutdown.clone())
                    .instrument(tracing::info_span!("admin")),
            );
        }
        let addr = self.listener.local_addr().ok();
        tracing::info!(addr = ?addr, "site API listening");
        let store = self.state.store.clone();
        let interval = self.key_check_interval;
        let token = shutdown.token.clone();
        shutdown.tracker.spawn(
            async move {
                let system = Actor::new("system");
                loop {
                    tokio::select! {
                        _ = token.cancelled() => return,
                        _ = tokio::time::sleep(interval) => {}
                    }
                    if let Err(e) = store.retire_expired_keys(&system).await {
                        tracing::warn!(error = %e, "retiring signing keys failed");
                    }
                    // Seed 001: the storage account key rotates every 180 days
                    // (per account, `rotation_days`).
                    if let Err(e) = store.rotate_due_storage_keys(crate::now(), &system).await {
                        tracing::warn!(error = %e, "rotating storage keys failed");
                    }
                }
            }
            .instrument(tracing::info_span!("key_rotation")),
        );
        shutdown.tracker.spawn(
            follow_client_roots(
                self.state.store.clone(),
                self.tls.clone(),
                std::mem::take(&mut self.client_roots),
                shutdown.clone(),
            )
            .instrument(tracing::info_span!("client_roots")),
        );
        let state = self.state.clone();
        let interval = self.alert_interval;
        let token = shutdown.token.clone();
        shutdown.tracker.spawn(
            async move {
                loop {
                    tokio::select! {
                        _ = token.cancelled() => return,
                        _ = tokio::time::sleep(interval) => {}
                    }
                    state.notifier.evaluate(&state.store, None).await;
                    if let Err(e) = state.store.prune_reports(crate::now()).await {
                        tracing::warn!(error = %e, "pruning old traffic failed");
                    }
                }
            }
            .instrument(tracing::info_span!("alerts")),
        );
        loop {
            let (tcp, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = self.listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            cmg_core::net::tune(&tcp);
            let tls = match self.tls.read() {
                Ok(t) => t.clone(),
                Err(poisoned) => poisoned.into_inner().clone(),
            };
            let router = router.clone();
            let token = shutdown.token.clone();
            shutdown.tracker.spawn(
                async move {
                    let stream = match tokio::time::timeout(
                        Duration::from_secs(10),
                        tls.accept(tcp),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            return;
                        }
                    };
                    let cert = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| c.clone().into_owned());
                    let peer_cert = PeerCert(cert);
                    let service = hyper::service::service_fn(
                        move |mut req: http::Request<hyper::body::Incoming>| {
                            req.extensions_mut().insert(peer_cert.clone());
                            router.clone().oneshot(req.map(axum::body::Body::new))
                        },
                    );
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(conn);
                    tokio::select! {
                        r = conn.as_mut() => {
                            if let Err(e) = r {
                                tracing::debug!(error = %e, "connection ended with an error");
                            }
                        }
                        _ = token.cancelled() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = tokio::time::timeout(Duration::from_secs(10), conn).await;
                        }
                    }
                }
                .instrument(tracing::info_span!("conn", %peer)),
            );
        }
        tracing::info!("site API stopped accepting");
    }
}

/// Rebuilds the TLS acceptor when the gateways' client roots change (checked after
/// every change at the site).
async fn follow_client_roots(
    store: Store,
    tls: Arc<RwLock<TlsAcceptor>>,
    mut current: Vec<String>,
    shutdown: Shutdown,
) {
    let mut changes = store.subscribe();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = changes.changed() => if r.is_err() { return },
        }
        let roots = match store.client_trust_roots().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "reading the client roots failed");
                continue;
            }
        };
        if roots == current {
            continue;
        }
        let built = match store.api_tls().await {
            Ok(api) => tls_config(&api, &roots),
            Err(e) => Err(SetupError::Store(e)),
        };
        match built {
            Ok(config) => {
                let acceptor = TlsAcceptor::from(Arc::new(config));
                match tls.write() {
                    Ok(mut t) => *t = acceptor,
                    Err(poisoned) => *poisoned.into_inner() = acceptor,
                }
                tracing::info!(roots = roots.len(), "client roots changed");
                current = roots;
            }
            Err(e) => tracing::warn!(error = %e, "client roots changed but are not usable"),
        }
    }
}
