//! One channel to one gateway instance: dial (TCP, directly or through the HTTP CONNECT
//! proxy, the host name resolved on every dial; then TLS, ALPN `cmg-channel/1`), then
//! serve HTTP/2 over the stream (the gateway is the client), wait for the hello, and serve
//! client requests until the channel ends or its token asks for a GOAWAY.

use std::convert::Infallible;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use cmg_core::coalesce::{coalesce, Coalesced, Driven};
use cmg_core::proxy::Proxy;
use cmg_proto::addr::HostPort;
use cmg_proto::{channel, headers};

use crate::config::Timing;
use crate::error::ConnectorError;
use crate::forward::Forwarder;
use crate::relay::Relay;
use crate::respond::{self, ChannelBody, Refusal};
use crate::role_pool::RolePool;
use crate::status::{ChannelState, ConnectorStatus};

/// Concurrent client requests one gateway may run on a channel.
const MAX_STREAMS: u32 = 512;

/// Opens the TLS stream to a gateway instance.
pub(crate) struct Dialer {
    tls: TlsConnector,
    server_name: ServerName<'static>,
    timing: Timing,
    proxy: Option<Arc<Proxy>>,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer")
            .field("server_name", &self.server_name)
            .field("timing", &self.timing)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

impl Dialer {
    pub fn new(
        tls: TlsConnector,
        server_name: ServerName<'static>,
        timing: Timing,
        proxy: Option<Arc<Proxy>>,
    ) -> Self {
        Self {
            tls,
            server_name,
            timing,
            proxy,
        }
    }

    /// TCP connect (through the proxy when one applies to the host; else the name
    /// resolved now and each address tried) and TLS handshake, together bounded by
    /// `handshake_timeout`; checks that the gateway selected the channel protocol.
    pub async fn dial(&self, gateway: &HostPort) -> Result<TlsStream<TcpStream>, ConnectorError> {
        let after = self.timing.handshake_timeout;
        let connect = async {
            let tcp = cmg_core::proxy::connect(
                self.proxy.as_deref(),
                gateway.host(),
                gateway.port(),
                after,
            )
            .await
            .map_err(|source| ConnectorError::ChannelConnect {
                gateway: gateway.clone(),
                source,
            })?;
            self.tls
                .connect(self.server_name.clone(), tcp)
                .await
                .map_err(|source| ConnectorError::ChannelHandshake {
                    gateway: gateway.clone(),
                    source,
                })
        };
        let tls = tokio::time::timeout(after, connect).await.map_err(|_| {
            ConnectorError::HandshakeTimeout {
                gateway: gateway.clone(),
                after,
            }
        })??;
        match tls.get_ref().1.alpn_protocol() {
            Some(p) if p == channel::ALPN => Ok(tls),
            other => Err(ConnectorError::AlpnRefused {
                gateway: gateway.clone(),
                selected: other.map_or_else(
                    || "none".to_owned(),
                    |p| String::from_utf8_lossy(p).into_owned(),
                ),
            }),
        }
    }
}

/// What the gateway said in its hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hello {
    /// Shared: every request on the channel names it in its log line.
    pub connection_id: Arc<str>,
    pub instance: String,
}

/// How a channel ended.
#[derive(Debug)]
pub(crate) struct ChannelEnd {
    /// The gateway said hello: the channel was usable for a while.
    pub was_up: bool,
    /// `Ok` when the gateway closed the channel or shutdown drained it.
    pub result: Result<(), ConnectorError>,
}

/// Everything one channel's request handler needs.
#[derive(Debug)]
pub(crate) struct ChannelCtx {
    /// The instance's key (its first address): its entry in the status.
    pub key: String,
    /// Which of the channels to that gateway this is; lane 0 is the one the status
    /// shows.
    pub lane: usize,
    /// How many channels (one per data-path thread) this connection point keeps to
    /// each gateway.
    pub lanes: usize,
    pub dialer: Arc<Dialer>,
    pub forwarder: Arc<Forwarder>,
    pub relay: Arc<Relay>,
    pub status: Arc<watch::Sender<ConnectorStatus>>,
    pub timing: Timing,
}

/// Serves one dialled channel (`tls`, to `gateway`) until it ends, or until `token` is
/// cancelled (then the channel is drained with a GOAWAY).
pub(crate) async fn serve(
    ctx: Arc<ChannelCtx>,
    gateway: HostPort,
    tls: TlsStream<TcpStream>,
    token: CancellationToken,
) -> ChannelEnd {
    debug!(%gateway, "TLS established, waiting for hello");

    let (hello_tx, mut hello_rx) = watch::channel(None);
    let handler = Arc::new(Handler {
        key: ctx.key.clone(),
        lane: ctx.lane,
        lanes: ctx.lanes,
        // Created on this channel's shard, used only here.
        client: ctx.forwarder.role_pool(),
        gateway: gateway.clone(),
        forwarder: ctx.forwarder.clone(),
        relay: ctx.relay.clone(),
        status: ctx.status.clone(),
        hello: hello_tx,
        stopping: token.clone(),
    });
    let service = service_fn(move |req| {
        let handler = handler.clone();
        // Boxed: hyper spawns a task per stream holding this future, and moving a
        // pointer into it is cheaper than moving the whole request handling state.
        let handling = Box::pin(async move { handler.handle(req).await });
        async move { Ok::<_, Infallible>(handling.await) }
    });
    // Responses finishing in the same turn of the shard go out in one TLS write.
    let (tls, polls) = coalesce(tls);
    let conn = server(ctx.timing.ping_interval, ctx.timing.ping_timeout)
        .serve_connection(TokioIo::new(tls), service);
    let mut conn = pin!(conn);

    let after = ctx.timing.handshake_timeout;
    tokio::select! {
        r = polls.drive(conn.as_mut()) => {
            let gateway = gateway.clone();
            let result = match r {
                Ok(()) => Err(ConnectorError::ChannelClosed { gateway }),
                Err(source) => Err(ConnectorError::ChannelBroken { gateway, source }),
            };
            return ChannelEnd { was_up: false, result };
        }
        r = tokio::time::timeout(after, async { hello_rx.wait_for(Option::is_some).await.is_ok() }) => {
            if r != Ok(true) {
                return ChannelEnd { was_up: false, result: Err(ConnectorError::NoHello { gateway: gateway.clone(), after }) };
            }
        }
        _ = token.cancelled() => {
            drain(polls.drive(conn), ctx.timing.shutdown_grace).await;
            return ChannelEnd { was_up: false, result: Ok(()) };
        }
    }

    let result = tokio::select! {
        r = polls.drive(conn.as_mut()) => r.map_err(|source| ConnectorError::ChannelBroken { gateway, source }),
        _ = token.cancelled() => {
            drain(polls.drive(conn), ctx.timing.shutdown_grace).await;
            Ok(())
        }
    };
    ChannelEnd {
        was_up: true,
        result,
    }
}

/// The server side of a channel, as hyper drives it.
type ChannelConnection<C> =
    http2::Connection<TokioIo<Coalesced<TlsStream<TcpStream>>>, C, TokioExecutor>;

/// Sends GOAWAY and lets the requests in flight finish, at most `grace`.
async fn drain<C>(
    mut conn: Driven<std::pin::Pin<&mut ChannelConnection<C>>>,
    grace: std::time::Duration,
) where
    C: hyper::service::HttpService<Incoming, ResBody = ChannelBody>,
    C::Future: Send + 'static,
    C::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    conn.get_mut().as_mut().graceful_shutdown();
    match tokio::time::timeout(grace, conn).await {
        Ok(Ok(())) => info!("channel drained"),
        // After a GOAWAY the gateway may just close the stream; not worth a warning.
        Ok(Err(e)) => info!(error = %e, "channel closed while draining"),
        Err(_) => warn!(
            ?grace,
            "channel not drained within the grace period; closing"
        ),
    }
}

/// Answers the requests of one channel.
#[derive(Debug)]
struct Handler {
    key: String,
    lane: usize,
    lanes: usize,
    client: RolePool,
    gateway: HostPort,
    forwarder: Arc<Forwarder>,
    relay: Arc<Relay>,
    status: Arc<watch::Sender<ConnectorStatus>>,
    hello: watch::Sender<Option<Hello>>,
    /// Cancelled when the connection point starts stopping: parked settings long polls
    /// are answered at once so that the drain waits only for real requests.
    stopping: CancellationToken,
}

impl Handler {
    async fn handle(&self, req: Request<Incoming>) -> Response<ChannelBody> {
        if req.uri().path().starts_with(channel::CONTROL_PREFIX) {
            if req.uri().path() == channel::SETTINGS_PATH && req.method() == Method::GET {
                let after = crate::settings::after_param(req.uri().query());
                let cp = self.forwarder.connection_point();
                return self
                    .relay
                    .settings
                    .long_poll(after, cp, &self.stopping)
                    .await;
            }
            if req.uri().path() == cmg_proto::report::TRAFFIC_PATH && req.method() == Method::POST {
                let instance = self.hello.borrow().as_ref().map(|h| h.instance.clone());
                let cp = self.forwarder.connection_point();
                let resp = self
                    .relay
                    .traffic
                    .answer(req, instance.as_deref(), cp)
                    .await;
                let taken = resp.status() == http::StatusCode::NO_CONTENT;
                self.relay.metrics.snapshot(taken);
                return resp;
            }
            return self.control(&req);
        }
        let connection_id = self
            .hello
            .borrow()
            .as_ref()
            .map(|h| h.connection_id.clone())
            .unwrap_or_else(|| Arc::from(""));
        self.forwarder
            .forward(req, &connection_id, &self.client)
            .await
    }

    fn control(&self, req: &Request<Incoming>) -> Response<ChannelBody> {
        let cp = self.forwarder.connection_point();
        if req.uri().path() != channel::HELLO_PATH || req.method() != Method::POST {
            debug!(path = req.uri().path(), "unknown control request");
            return Refusal::UnknownControl.response(cp);
        }
        let Some(HelloFields {
            connection_id,
            instance,
            threads,
        }) = hello_fields(req.headers())
        else {
            warn!(gateway = %self.gateway, "hello without connection id or instance name");
            return Refusal::BadHello.response(cp);
        };
        info!(%connection_id, %instance, gateway = %self.gateway, lane = self.lane, "channel established");
        // Lane 0 speaks for the instance: the advice once, and the status.
        if self.lane == 0 {
            if let Some(advice) = fewer_lanes(self.lanes, threads) {
                warn!(%instance, gateway = %self.gateway, "{advice}");
            }
            let state = ChannelState::Up {
                connection_id: connection_id.clone(),
                instance: instance.clone(),
            };
            let key = &self.key;
            let via = (self.gateway.to_string() != *key).then(|| self.gateway.to_string());
            self.status.send_modify(|s| {
                if let Some(c) = s.channels.iter_mut().find(|c| c.gateway == *key) {
                    c.state = state;
                    c.via = via;
                }
            });
        }
        self.hello.send_replace(Some(Hello {
            connection_id: connection_id.into(),
            instance,
        }));
        respond::ok(cp)
    }
}

/// The HTTP/2 server side of a channel, as every channel is served (`ping`: the
/// keep-alive interval and timeout).
pub(crate) fn server(
    ping_interval: Duration,
    ping_timeout: Duration,
) -> http2::Builder<TokioExecutor> {
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .keep_alive_interval(ping_interval)
        .keep_alive_timeout(ping_timeout)
        .initial_stream_window_size(channel::STREAM_WINDOW)
        .initial_connection_window_size(channel::CONNECTION_WINDOW)
        .max_header_list_size(channel::MAX_HEADER_LIST)
        .max_concurrent_streams(MAX_STREAMS)
        // The gateway resets a stream whenever its client goes away mid-request; many
        // clients giving up at once (a load balancer timeout, a benchmark deadline) is
        // normal and must not tear the channel down. h2's default allows only 20
        // resets pending accept before it closes the whole connection.
        .max_pending_accept_reset_streams(MAX_STREAMS as usize * 8)
        .max_local_error_reset_streams(MAX_STREAMS as usize * 8);
    builder
}

/// What the gateway's hello says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct HelloFields {
    pub connection_id: String,
    pub instance: String,
    /// The instance's data-path threads, when it says (and says a number).
    pub threads: Option<usize>,
}

/// Reads the hello's headers: the connection id and instance name are required and
/// non-empty, the thread count optional.
pub(crate) fn hello_fields(headers: &http::HeaderMap) -> Option<HelloFields> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    Some(HelloFields {
        connection_id: header(headers::CONNECTION_ID)?,
        instance: header(headers::GATEWAY_INSTANCE)?,
        threads: header(headers::GATEWAY_THREADS).and_then(|v| v.parse().ok()),
    })
}

/// The advice to log when this connection point keeps fewer channels to an instance
/// (`lanes`, one per thread) than the instance has data-path threads: requests on the
/// instance's other threads then use a channel on another thread (correct, slower).
fn fewer_lanes(lanes: usize, gateway_threads: Option<usize>) -> Option<String> {
    let threads = gateway_threads?;
    (threads > lanes).then(|| {
        format!(
            "this connection point keeps {lanes} channel(s) to the instance, which has {threads} data-path threads: \
             set `threads = {threads}` here so that each of them has a local channel"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::{fewer_lanes, hello_fields, HelloFields};
    use http::{HeaderMap, HeaderValue};

    #[test]
    fn hello_needs_a_connection_id_and_an_instance() {
        let mut h = HeaderMap::new();
        h.insert("cmg-connection-id", HeaderValue::from_static("7"));
        assert_eq!(hello_fields(&h), None, "no instance");
        h.insert("cmg-gateway-instance", HeaderValue::from_static(""));
        assert_eq!(hello_fields(&h), None, "an empty instance");
        h.insert("cmg-gateway-instance", HeaderValue::from_static("gw-0"));
        h.insert("cmg-gateway-threads", HeaderValue::from_static("many"));
        let want = |threads| HelloFields {
            connection_id: "7".into(),
            instance: "gw-0".into(),
            threads,
        };
        assert_eq!(hello_fields(&h), Some(want(None)), "threads not a number");
        h.insert("cmg-gateway-threads", HeaderValue::from_static("4"));
        assert_eq!(hello_fields(&h), Some(want(Some(4))));
        let opaque = HeaderValue::from_bytes(b"gw\xff").expect("opaque bytes");
        h.insert("cmg-gateway-instance", opaque);
        assert_eq!(hello_fields(&h), None, "not visible ASCII");
    }

    #[test]
    fn advises_more_threads_only_when_the_gateway_has_more() {
        assert_eq!(fewer_lanes(2, None), None, "an older gateway says nothing");
        assert_eq!(fewer_lanes(2, Some(2)), None);
        assert_eq!(fewer_lanes(4, Some(2)), None);
        let advice = fewer_lanes(2, Some(8)).expect("advice");
        assert!(advice.contains("threads = 8"), "{advice}");
    }
}
