//! Accept loops. On the client port the ClientHello decides the face of a connection:
//! ALPN `cmg-channel/1` is a connection point (site-CA certificate required), anything
//! else a client. The optional dedicated channel port accepts connection points only.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cmg_core::shards::{ShardHandles, ShardStream};
use cmg_core::shutdown::Shutdown;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::LazyConfigAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use crate::config::ProxyProtocol;
use crate::per_source::{PerSource, SourceSlot};
use crate::proxy_header;
use crate::shard::on_shard_boxed;
use crate::state::Gateway;
use crate::tls::LiveTls;
use crate::{channel, conn};

/// Which faces a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// Clients, and connection points by ALPN.
    Client,
    /// Connection points only.
    Channel,
}

/// What every accepted connection needs.
#[derive(Clone, Debug)]
pub struct Context {
    pub gw: Arc<Gateway>,
    pub tls: Arc<LiveTls>,
    /// Client connections: cancelled first on shutdown, drained.
    pub clients: Shutdown,
    /// Channels: closed after the client requests drained.
    pub channels: Shutdown,
    /// The data-path threads (shards) connections are placed on.
    pub shards: ShardHandles,
    /// PROXY protocol: which listeners require a header, from which sources.
    pub proxy: Option<Arc<ProxyProtocol>>,
    /// Per-source caps on connections and handshakes, when configured.
    pub per_source: Option<Arc<PerSource>>,
}

/// A connection's places: one under the connection limit, one under its source's
/// caps; both released when it is dropped.
#[derive(Debug)]
struct Admitted {
    _permit: OwnedSemaphorePermit,
    source: Option<SourceSlot>,
}

impl Admitted {
    fn handshake_done(&mut self) {
        if let Some(s) = &mut self.source {
            s.handshake_done();
        }
    }
}

impl Context {
    /// The PROXY protocol settings, when `face`'s listener requires a header.
    fn proxy_for(&self, face: Face) -> Option<Arc<ProxyProtocol>> {
        self.proxy.clone().filter(|p| match face {
            Face::Client => p.client,
            Face::Channel => p.channel,
        })
    }
}

/// Accepts until `stop` is cancelled. Accept errors (e.g. out of file descriptors)
/// pause the loop briefly instead of spinning.
///
/// The TLS handshake runs on the runtime this loop runs on (multi-threaded: a handshake
/// that waits for a CRL fetch blocks only its own worker, in `block_in_place`); the
/// established connection then moves to a shard: clients to the next one in turn,
/// channels to the one [`channel::serve::start`] places them on.
pub async fn accept_loop(ctx: Context, listener: TcpListener, face: Face, stop: CancellationToken) {
    let next = Arc::new(AtomicUsize::new(0));
    let slots = Arc::new(Semaphore::new(ctx.gw.limits().max_connections));
    let proxy = ctx.proxy_for(face);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(v) => v,
            Err(e) => {
                warn!(error = %e, "accept failed; pausing 100 ms");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = stop.cancelled() => return,
                }
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            ctx.gw.metrics().connections_refused.inc();
            debug!(%peer, "connection limit reached; closing new connection");
            continue;
        };
        cmg_core::net::tune(&stream);
        if let Some(p) = &proxy {
            // Checked before a byte is read: only the balancer may name a client.
            if !p
                .trusted
                .iter()
                .any(|n| n.contains(&peer.ip().to_canonical()))
            {
                ctx.gw.metrics().proxy_refused("untrusted_source");
                warn!(%peer, reason = "untrusted_source", "PROXY protocol required from the load balancer's networks; connection closed");
                continue;
            }
        }
        let ctx2 = ctx.clone();
        let next = next.clone();
        let proxy = proxy.clone();
        // One span per connection, from the handshake to the close (a channel's own
        // `tunnel` span opens inside it).
        let span = tracing::info_span!("conn", %peer, client = tracing::field::Empty);
        ctx.clients.tracker.spawn(
            async move {
                let mut stream = stream;
                let peer = match proxy {
                    None => peer,
                    Some(p) => match client_address(&ctx2, &mut stream, peer, &p).await {
                        Some(client) => client,
                        None => return,
                    },
                };
                // Counted by the real source (after the PROXY header, if any).
                let source = match &ctx2.per_source {
                    None => None,
                    Some(caps) => match caps.admit(peer.ip()) {
                        Ok(slot) => Some(slot),
                        Err(refusal) => {
                            ctx2.gw.metrics().source_refused(refusal.code());
                            info!(%peer, reason = refusal.code(), "source over its cap; connection closed");
                            return;
                        }
                    },
                };
                let admitted = Admitted {
                    _permit: permit,
                    source,
                };
                let shard = next.fetch_add(1, Ordering::Relaxed);
                handshake(ctx2, (stream.into(), peer), face, shard, admitted).await;
            }
            .instrument(span),
        );
    }
}

/// The client address from the PROXY protocol header at the start of `stream`, or
/// `None` (logged, counted) when the connection must be closed.
async fn client_address(
    ctx: &Context,
    stream: &mut tokio::net::TcpStream,
    peer: SocketAddr,
    p: &ProxyProtocol,
) -> Option<SocketAddr> {
    let read = tokio::select! {
        r = tokio::time::timeout(p.header_timeout, proxy_header::read(stream, peer)) => r,
        _ = ctx.clients.cancelled() => return None,
    };
    match read {
        Ok(Ok(client)) => {
            tracing::Span::current().record("client", tracing::field::display(client));
            Some(client)
        }
        Ok(Err(e)) => {
            ctx.gw.metrics().proxy_refused(e.code());
            warn!(%peer, reason = e.code(), error = %e, "PROXY protocol header refused; connection closed");
            None
        }
        Err(_) => {
            ctx.gw.metrics().proxy_refused("timeout");
            warn!(%peer, reason = "timeout", after = ?p.header_timeout, "PROXY protocol header not complete in time; connection closed");
            None
        }
    }
}

/// A resumed TLS session carries the client certificate of the handshake it resumes,
/// and rustls does not call the verifier again: a client whose certificate was revoked
/// since could go on working for as long as it resumes. So the chain is checked again
/// here, with the CRLs and OCSP answers known now; a refusal ends the connection like a
/// failed handshake (the verifier logs the reason). A full handshake was checked by
/// rustls already and is not checked twice.
fn recheck_resumed(
    tls: &crate::shard::ServerTls,
    verifier: Option<&cmg_pki::client_verifier::PkiClientVerifier>,
) -> std::io::Result<()> {
    use rustls::server::danger::ClientCertVerifier as _;
    let (_, session) = tls.get_ref();
    if session.handshake_kind() != Some(rustls::HandshakeKind::Resumed) {
        return Ok(());
    }
    let (Some(verifier), Some([leaf, intermediates @ ..])) =
        (verifier, session.peer_certificates())
    else {
        return Ok(());
    };
    verifier
        .verify_client_cert(leaf, intermediates, rustls_pki_types::UnixTime::now())
        .map(|_| ())
        .map_err(|e| std::io::Error::other(format!("resumed session refused: {e}")))
}

/// Whether a handshake failed because the peer's certificate was refused (revoked,
/// untrusted, expired, the wrong identity) rather than for a protocol reason.
fn refused_certificate(e: &std::io::Error) -> bool {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented) => true,
        Some(_) => false,
        // `recheck_resumed`'s refusal of a resumed session.
        None => e.to_string().starts_with("resumed session refused"),
    }
}

async fn handshake(
    ctx: Context,
    (stream, peer): (ShardStream, SocketAddr),
    face: Face,
    shard: usize,
    mut admitted: Admitted,
) {
    let limit = ctx.gw.limits().handshake_timeout;
    // Whether the peer asked for a channel, for the log line of a refusal.
    let channel_attempt = std::sync::atomic::AtomicBool::new(face == Face::Channel);
    let accepted = async {
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream).await?;
        let wants_channel = face == Face::Channel
            || start
                .client_hello()
                .alpn()
                .is_some_and(|mut protos| protos.any(|p| p == cmg_proto::channel::ALPN));
        channel_attempt.store(wants_channel, std::sync::atomic::Ordering::Relaxed);
        let configs = ctx.tls.get();
        let config = if wants_channel {
            configs.channel.clone()
        } else {
            configs.client.clone()
        };
        let tls = start.into_stream(config).await?;
        if wants_channel {
            recheck_resumed(&tls, Some(&configs.channel_verifier))?;
        } else {
            recheck_resumed(&tls, configs.client_verifier.as_deref())?;
        }
        Ok::<_, std::io::Error>((tls, wants_channel))
    };
    // Not cut short by a stop: a connection in its handshake when the signal comes is
    // served its first request (`conn`), so no accepted connection fails.
    let (tls, is_channel) = match tokio::time::timeout(limit, accepted).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            ctx.gw.metrics().handshake_failures.inc();
            if refused_certificate(&e) && channel_attempt.into_inner() {
                // An operator's matter (a revoked or foreign connection point), unlike a
                // scanner's broken handshake: said at warn, with the reason.
                warn!(%peer, error = %e, "connection point channel refused: its certificate did not verify");
            } else {
                debug!(%peer, error = %e, "TLS handshake failed");
            }
            return;
        }
        Err(_) => {
            ctx.gw.metrics().handshake_failures.inc();
            debug!(%peer, after = ?limit, "TLS handshake timed out");
            return;
        }
    };
    admitted.handshake_done();
    if is_channel {
        // Channels do not count against the client connection limits.
        drop(admitted);
        channel::serve::start(ctx.gw, tls, peer, &ctx.shards, &ctx.channels);
    } else {
        let shard = shard % ctx.shards.len();
        let (gw, stop) = (ctx.gw, ctx.clients.token.clone());
        on_shard_boxed(
            &ctx.shards,
            shard,
            Box::new(tls),
            &ctx.clients.tracker,
            move |tls| {
                async move {
                    conn::serve(gw, tls, peer, shard, stop).await;
                    drop(admitted);
                }
                .in_current_span()
            },
        );
    }
}
