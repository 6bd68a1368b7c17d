//! Accept loops. On the client port the ClientHello decides the face of a connection:
//! ALPN `cmg-channel/1` is a connection point (site-CA certificate required), anything
//! else a client. The optional dedicated channel port accepts connection points only.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cmg_core::shards::{ShardHandles, ShardStream};
use cmg_core::shutdown::Shutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;
use tracing::{debug, warn};

use crate::tls::LiveTls;
use crate::{channel, conn, Gateway};

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
}

/// A TLS connection accepted on either face, movable between shards.
pub type ServerTls = TlsStream<ShardStream>;

/// Accepts until the task is aborted. Accept errors (e.g. out of file descriptors)
/// pause the loop briefly instead of spinning.
///
/// Each connection goes to the next shard in turn and is served there (TLS handshake
/// included); a channel may move once more when it is placed ([`channel::serve::serve`]).
pub async fn accept_loop(ctx: Context, listener: TcpListener, face: Face) {
    let next = AtomicUsize::new(0);
    let slots = Arc::new(Semaphore::new(ctx.gw.limits.max_connections));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(v) => v,
            Err(e) => {
                warn!(error = %e, "accept failed; pausing 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            ctx.gw.metrics.connections_refused.inc();
            debug!(%peer, "connection limit reached; closing new connection");
            continue;
        };
        cmg_core::net::tune(&stream);
        let shard = next.fetch_add(1, Ordering::Relaxed) % ctx.shards.len();
        // Registered with the shard's own reactor: every wake-up of this connection
        // then happens on the shard's thread.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                debug!(%peer, error = %e, "cannot hand the connection to a shard");
                continue;
            }
        };
        let ctx2 = ctx.clone();
        let task = ctx.clients.tracker.track_future(async move {
            match TcpStream::from_std(stream) {
                Ok(stream) => handshake(ctx2, stream.into(), peer, face, shard).await,
                Err(e) => debug!(%peer, error = %e, "cannot register the connection on its shard"),
            }
            drop(permit);
        });
        ctx.shards.spawn_on(shard, task);
    }
}

async fn handshake(ctx: Context, stream: ShardStream, peer: SocketAddr, face: Face, shard: usize) {
    let limit = ctx.gw.limits.handshake_timeout;
    let accepted = async {
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream).await?;
        let wants_channel = face == Face::Channel
            || start
                .client_hello()
                .alpn()
                .is_some_and(|mut protos| protos.any(|p| p == cmg_proto::channel::ALPN));
        let configs = ctx.tls.get();
        let config = if wants_channel {
            configs.channel
        } else {
            configs.client
        };
        let tls = start.into_stream(config).await?;
        Ok::<_, std::io::Error>((tls, wants_channel))
    };
    let (tls, is_channel) = tokio::select! {
        r = tokio::time::timeout(limit, accepted) => match r {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                ctx.gw.metrics.handshake_failures.inc();
                debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                ctx.gw.metrics.handshake_failures.inc();
                debug!(%peer, after = ?limit, "TLS handshake timed out");
                return;
            }
        },
        _ = ctx.clients.cancelled() => return,
    };
    if is_channel {
        let here = (shard, ctx.shards.clone());
        ctx.channels.tracker.spawn(channel::serve::serve(
            ctx.gw,
            tls,
            peer,
            here,
            ctx.channels.clone(),
        ));
    } else {
        conn::serve(ctx.gw, tls, peer, shard, ctx.clients.token.clone()).await;
    }
}
