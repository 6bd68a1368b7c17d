//! The optional admin listener (`[admin] listen`; plain HTTP, bind it to loopback or a
//! private address): `GET /metrics` (Prometheus text), `GET /ready` (200 while at least
//! one channel is up, 503 otherwise: a probe for the service health), `GET /channels`
//! (one line per configured gateway instance).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::relay::Relay;
use crate::status::{ChannelState, ConnectorStatus};

/// Connections served at once; more wait in the accept queue.
const MAX_CONNECTIONS: usize = 32;

fn answer(relay: &Relay, status: &ConnectorStatus, path: &str) -> Response<Full<Bytes>> {
    let (code, body) = match path {
        "/metrics" => (
            StatusCode::OK,
            relay.metrics.encode(status, relay.settings.version()),
        ),
        "/ready" => {
            let up = status.up();
            if up > 0 {
                (
                    StatusCode::OK,
                    format!("ready: {up} of {} channel(s) up\n", status.channels.len()),
                )
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: no channel to any gateway instance\n".into(),
                )
            }
        }
        "/channels" => (
            StatusCode::OK,
            status
                .channels
                .iter()
                .map(|c| match &c.state {
                    ChannelState::Up {
                        connection_id,
                        instance,
                    } => format!(
                        "{} up instance={instance} connection_id={connection_id}\n",
                        c.gateway
                    ),
                    ChannelState::Connecting => format!("{} connecting\n", c.gateway),
                    ChannelState::Down { last_error } => {
                        format!("{} down error={last_error:?}\n", c.gateway)
                    }
                })
                .collect(),
        ),
        _ => (StatusCode::NOT_FOUND, "not found\n".into()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = code;
    resp
}

/// Serves the admin listener until `stop` is cancelled.
pub(crate) async fn serve(
    listener: TcpListener,
    relay: Arc<Relay>,
    status: watch::Receiver<ConnectorStatus>,
    stop: CancellationToken,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = stop.cancelled() => return,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    debug!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => return,
        };
        let (relay, status, stop) = (relay.clone(), status.clone(), stop.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let current = status.borrow().clone();
                let resp = answer(&relay, &current, req.uri().path());
                async move { Ok::<_, Infallible>(resp) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                r = conn => if let Err(e) = r {
                    debug!(%peer, error = %e, "admin connection error");
                },
                _ = stop.cancelled() => {}
            }
        });
    }
}
