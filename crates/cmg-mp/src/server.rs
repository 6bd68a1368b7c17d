//! [`bind`] and [`Bound::run`]: the accept loop, optional TLS, HTTP/1.1 + h2 per
//! connection, the optional admin listener, graceful drain on shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cmg_core::admin::AdminListener;
use cmg_core::fetch::HttpFetcher;
use cmg_core::shutdown::Shutdown;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::admin::MpAdmin;
use crate::bits::Sessions;
use crate::config::{Config, SiteLink, TlsFiles};
use crate::journal::Journal;
use crate::metrics::Metrics;
use crate::mplist::{self, SiteList};
use crate::policy::Policies;
use crate::service::{self, State};
use crate::{sms, MpError};

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The journal file's name under `data_dir`.
const JOURNAL_FILE: &str = "journal.jsonl";

/// A management point bound to its address, ready to [`run`](Bound::run).
pub struct Bound {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    state: Arc<State>,
    admin: Option<AdminListener>,
    /// `[site]` and its fetcher: the task that keeps the management point list current.
    site: Option<(SiteLink, HttpFetcher)>,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.tls.is_some())
            .field("admin", &self.admin_addr())
            .field("journal", &self.state.journal.path())
            .finish_non_exhaustive()
    }
}

/// Creates `data_dir` (with `incoming/` and `tmp/`), opens the journal, loads the TLS
/// material if configured, and binds the listener.
pub async fn bind(config: Config) -> Result<Bound, MpError> {
    let incoming_dir = config.data_dir.join("incoming");
    let tmp_dir = config.data_dir.join("tmp");
    for dir in [&config.data_dir, &incoming_dir, &tmp_dir] {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|source| MpError::DataDir {
                what: "create directory",
                path: dir.clone(),
                source,
            })?;
    }
    let journal_path = config.data_dir.join(JOURNAL_FILE);
    let journal = Journal::open(journal_path.clone()).map_err(|source| MpError::DataDir {
        what: "open journal",
        path: journal_path,
        source,
    })?;
    let (tls, cert_der) = match &config.tls {
        Some(files) => {
            let (acceptor, der) = load_tls(files)?;
            (Some(acceptor), Some(der))
        }
        None => (None, None),
    };
    let listener = cmg_core::net::bind(config.listen).map_err(|source| MpError::Bind {
        addr: config.listen,
        source,
    })?;
    let local_addr = listener.local_addr().map_err(MpError::LocalAddr)?;
    let admin = config
        .admin
        .map(|addr| AdminListener::bind(addr).map_err(|source| MpError::Bind { addr, source }))
        .transpose()?;
    let policies = match &config.policy_dir {
        Some(dir) => Some(
            Policies::open(dir.clone(), &config.data_dir)
                .await
                .map_err(|source| MpError::Policy {
                    path: dir.clone(),
                    source,
                })?,
        ),
        None => None,
    };
    let site = match &config.site {
        Some(link) => Some((link.clone(), mplist::fetcher(link)?)),
        None => None,
    };
    let state = Arc::new(State {
        site_list: Arc::new(SiteList::default()),
        policies,
        incoming_dir,
        tmp_dir,
        journal,
        pattern: sms::build_pattern(),
        sessions: Sessions::default(),
        cert_der,
        metrics: Metrics::new(),
    });
    Ok(Bound {
        listener,
        local_addr,
        tls,
        state,
        admin,
        site,
    })
}

impl Bound {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The admin listener's address (`/metrics`, `/ready`, `/live`), when configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(AdminListener::local_addr)
    }

    /// The JSON-lines request journal (see [`crate::read_journal`]).
    pub fn journal_path(&self) -> PathBuf {
        self.state.journal.path().to_owned()
    }

    /// Serves until `shutdown.token` is cancelled, then stops accepting, lets each
    /// connection finish its in-flight requests (idle keep-alive connections close at
    /// once, h2 gets GOAWAY) and returns when they have, and the admin listener too.
    pub async fn run(self, shutdown: Shutdown) {
        let Bound {
            listener,
            local_addr,
            tls,
            state,
            admin,
            site,
        } = self;
        let admin_addr = admin.as_ref().map(AdminListener::local_addr);
        tracing::info!(target: "cmg_mp", %local_addr, tls = tls.is_some(), admin = ?admin_addr, "management point serving");
        let token = shutdown.token.clone();
        let tasks = TaskTracker::new();
        if let Some(admin) = admin {
            let routes = Arc::new(MpAdmin {
                state: state.clone(),
                serving: local_addr,
            });
            let stop = Shutdown {
                token: token.clone(),
                tracker: tasks.clone(),
            };
            let span = tracing::info_span!(target: "cmg_mp", "admin");
            tasks.spawn(admin.serve(routes, stop).instrument(span));
        }
        if let Some((link, fetcher)) = site {
            let stop = Shutdown {
                token: token.clone(),
                tracker: tasks.clone(),
            };
            let span = tracing::info_span!(target: "cmg_mp", "site_list", site = %link.url);
            tasks.spawn(
                mplist::follow(link, fetcher, state.site_list.clone(), stop).instrument(span),
            );
        }
        loop {
            let (stream, peer) = tokio::select! {
                () = token.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(target: "cmg_mp", error = %e, "accept failed");
                        tokio::select! {
                            () = token.cancelled() => break,
                            () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                        }
                    }
                },
            };
            cmg_core::net::tune(&stream);
            let span = tracing::info_span!(target: "cmg_mp", "conn", %peer, local = %local_addr);
            let conn = serve_conn(
                stream,
                tls.clone(),
                state.clone(),
                tasks.clone(),
                token.clone(),
            );
            tasks.spawn(conn.instrument(span));
        }
        drop(listener);
        tasks.close();
        tasks.wait().await;
        tracing::info!(target: "cmg_mp", %local_addr, "management point stopped");
    }
}

async fn serve_conn(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    state: Arc<State>,
    tasks: TaskTracker,
    token: CancellationToken,
) {
    match tls {
        None => serve_io(TokioIo::new(stream), state, tasks, token).await,
        Some(acceptor) => {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            let stream = tokio::select! {
                () = token.cancelled() => return,
                done = handshake => match done {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(target: "cmg_mp", error = %e, "tls handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(target: "cmg_mp", "tls handshake timed out");
                        return;
                    }
                },
            };
            serve_io(TokioIo::new(stream), state, tasks, token).await
        }
    }
}

async fn serve_io<I>(
    io: TokioIo<I>,
    state: Arc<State>,
    tasks: TaskTracker,
    token: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| service::serve(state.clone(), tasks.clone(), req));
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = token.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(target: "cmg_mp", error = %e, "connection ended with an error");
    }
}

/// Loads the certificate chain and key into an acceptor offering h2 and http/1.1.
fn load_tls(files: &TlsFiles) -> Result<(TlsAcceptor, Vec<u8>), MpError> {
    let certs = cmg_pki::pem::load_certs(&files.cert)?;
    let key = cmg_pki::pem::load_key(&files.key)?;
    let leaf = certs.first().map(|c| c.to_vec()).unwrap_or_default();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), leaf))
}
