//! One accepted channel: identify the connection point from its certificate, run the
//! HTTP/2 client over the TLS stream, say hello, register, and unregister when it ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cmg_core::coalesce::coalesce;
use cmg_core::shards::ShardHandles;
use cmg_core::shutdown::Shutdown;
use cmg_proto::{channel, headers, ConnectionId, ConnectorId, SiteCode};
use http::{Method, Request, StatusCode};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};

use super::executor::CountingExecutor;
use crate::body::ForwardBody;
use crate::registry::{Channel, Placement};
use crate::shard::{on_shard, ServerTls};
use crate::state::Gateway;

/// Why a channel could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("connection point certificate: {0}")]
    Identity(String),
    #[error("HTTP/2 handshake: {0}")]
    Handshake(#[source] hyper::Error),
    #[error("hello: {0}")]
    Hello(String),
}

fn identify(tls: &ServerTls) -> Result<(SiteCode, ConnectorId), ChannelError> {
    let cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| ChannelError::Identity("no certificate presented".into()))?;
    cmg_pki::describe::connector_identity(cert).map_err(|e| ChannelError::Identity(e.to_string()))
}

/// Starts serving one channel, until it ends or the gateway's channels are shut down.
///
/// The channel is placed on a shard ([`ChannelRegistry::place`]): the one with the
/// fewest channels of this connection point, so a connection point that keeps one
/// channel per thread gives every shard its own; the TLS stream moves there before the
/// HTTP/2 handshake.
///
/// [`ChannelRegistry::place`]: super::ChannelRegistry::place
pub fn start(
    gw: Arc<Gateway>,
    tls: ServerTls,
    peer: SocketAddr,
    shards: &ShardHandles,
    channels: &Shutdown,
) {
    let id = ConnectionId(rand::random());
    let (site, connector) = match identify(&tls) {
        Ok(v) => v,
        Err(e) => {
            warn!(%peer, connection_id = %id, error = %e, "channel refused");
            return;
        }
    };
    let placement = gw.registry().place(&connector, shards.len());
    let shard = placement.shard();
    let span = tracing::info_span!("tunnel", connector_id = %connector, site = %site, connection_id = %id, %peer, shard);
    let stop = channels.token.clone();
    on_shard(shards, shard, tls, &channels.tracker, move |tls| {
        async move {
            match run(&gw, tls, (peer, placement), id, site, connector, stop).await {
                Ok(reason) => info!(reason, "channel closed"),
                Err(e) => warn!(error = %cmg_core::error_chain::chain(&e), "channel failed"),
            }
        }
        .instrument(span)
    });
}

async fn run(
    gw: &Arc<Gateway>,
    tls: ServerTls,
    (peer, placement): (SocketAddr, Placement),
    id: ConnectionId,
    site: SiteCode,
    connector: ConnectorId,
    stop: CancellationToken,
) -> Result<&'static str, ChannelError> {
    let settings = gw.channel_settings();
    // Requests starting in the same turn of the shard go out in one TLS write.
    let (tls, polls) = coalesce(tls);
    let (mut sender, conn) = http2::Builder::new(CountingExecutor(polls))
        .timer(TokioTimer::new())
        .keep_alive_interval(settings.ping_interval)
        .keep_alive_timeout(settings.ping_timeout)
        .keep_alive_while_idle(true)
        .initial_stream_window_size(channel::STREAM_WINDOW)
        .initial_connection_window_size(channel::CONNECTION_WINDOW)
        .max_header_list_size(channel::MAX_HEADER_LIST)
        .max_concurrent_reset_streams(1024)
        .handshake::<_, ForwardBody>(TokioIo::new(tls))
        .await
        .map_err(ChannelError::Handshake)?;
    let mut conn = std::pin::pin!(conn);

    let hello = hello(gw, &mut sender, id, &connector);
    let answered = tokio::select! {
        r = &mut conn => {
            return Err(ChannelError::Hello(format!("connection ended before hello: {r:?}")));
        }
        r = tokio::time::timeout(Duration::from_secs(10), hello) => r,
    };
    match answered {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(ChannelError::Hello("no answer within 10s".into())),
    }

    gw.registry().insert(Arc::new(Channel {
        id,
        connector,
        site,
        peer,
        shard: placement.shard(),
        sender,
    }));
    info!(instance = %gw.instance(), "channel established");
    let reason = tokio::select! {
        r = &mut conn => match r {
            Ok(()) => "closed by connection point",
            Err(e) => {
                warn!(error = %cmg_core::error_chain::chain(&e), "channel connection error");
                "connection error"
            }
        },
        _ = stop.cancelled() => "gateway shutting down",
    };
    gw.registry().remove(id);
    drop(placement);
    Ok(reason)
}

async fn hello(
    gw: &Gateway,
    sender: &mut http2::SendRequest<ForwardBody>,
    id: ConnectionId,
    connector: &ConnectorId,
) -> Result<(), ChannelError> {
    sender
        .ready()
        .await
        .map_err(|e| ChannelError::Hello(e.to_string()))?;
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!(
            "https://{}{}",
            gw.service_name(),
            channel::HELLO_PATH
        ))
        .header(headers::CONNECTION_ID, id.to_string())
        .header(headers::GATEWAY_INSTANCE, gw.instance_header().clone())
        .header(headers::GATEWAY_THREADS, gw.threads())
        .body(ForwardBody::empty())
        .map_err(|e| ChannelError::Hello(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| ChannelError::Hello(e.to_string()))?;
    if resp.status() != StatusCode::OK {
        return Err(ChannelError::Hello(format!("status {}", resp.status())));
    }
    let named = resp
        .headers()
        .get(headers::CONNECTION_POINT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if named != connector.as_str() {
        return Err(ChannelError::Hello(format!(
            "connection point calls itself {named:?} but its certificate names {connector}"
        )));
    }
    Ok(())
}
