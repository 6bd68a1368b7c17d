//! One accepted channel: identify the connection point from its certificate, run the
//! HTTP/2 client over the TLS stream, say hello, register, and unregister when it ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cmg_core::coalesce::coalesce;
use cmg_core::shards::ShardHandles;
use cmg_core::shutdown::Shutdown;
use cmg_proto::{channel, headers, ConnectionId, ConnectorId, SiteCode};
use http::{Method, Request, StatusCode};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};

use crate::body::ForwardBody;
use crate::registry::{Channel, Placement};
use crate::shard::{on_shard, ServerTls};
use crate::state::Gateway;
use crate::upstream::ChannelSender;

/// Why a channel could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("connection point certificate: {0}")]
    Identity(String),
    #[error("HTTP/2 handshake: {0}")]
    Handshake(#[source] h2::Error),
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
    let (h2, mut conn) = h2::client::Builder::new()
        .enable_push(false)
        .initial_window_size(channel::STREAM_WINDOW)
        .initial_connection_window_size(channel::CONNECTION_WINDOW)
        .max_header_list_size(channel::MAX_HEADER_LIST)
        .max_concurrent_reset_streams(1024)
        .handshake::<_, Bytes>(tls)
        .await
        .map_err(ChannelError::Handshake)?;
    let pings = conn
        .ping_pong()
        .expect("the connection's ping handle, taken once");
    // The connection is driven here, its polls counted for the write coalescing; the
    // flag marks the sender closed when this function returns.
    let mut conn = std::pin::pin!(polls.drive(conn));
    let (sender, _closed) = ChannelSender::new(h2);
    let mut keepalive = std::pin::pin!(keepalive(
        pings,
        settings.ping_interval,
        settings.ping_timeout
    ));

    let hello = hello(gw, &sender, id, &connector);
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
        e = &mut keepalive => {
            warn!(error = %e, "channel keep-alive failed");
            "no answer to keep-alive pings"
        }
        _ = stop.cancelled() => "gateway shutting down",
    };
    gw.registry().remove(id);
    drop(placement);
    Ok(reason)
}

/// Pings the connection point every `every` (idle or not); returns why once a ping
/// goes unanswered for `within` or cannot be sent.
async fn keepalive(mut pings: h2::PingPong, every: Duration, within: Duration) -> String {
    loop {
        tokio::time::sleep(every).await;
        match tokio::time::timeout(within, pings.ping(h2::Ping::opaque())).await {
            Ok(Ok(_pong)) => {}
            Ok(Err(e)) => return format!("ping failed: {e}"),
            Err(_) => return format!("no PING answer within {within:?}"),
        }
    }
}

async fn hello(
    gw: &Gateway,
    sender: &ChannelSender,
    id: ConnectionId,
    connector: &ConnectorId,
) -> Result<(), ChannelError> {
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
        .send(req)
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
