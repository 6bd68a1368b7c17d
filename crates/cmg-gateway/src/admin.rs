//! The admin listener (plain HTTP, bind it to loopback or a private address):
//! `GET /metrics` (Prometheus text), `GET /ready` (200 once at least one channel is up,
//! 503 before: a load balancer probe), `GET /channels` (one line per live channel).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::state::Gateway;

fn answer(gw: &Gateway, path: &str) -> Response<Full<Bytes>> {
    let (status, body) = match path {
        "/metrics" => {
            gw.metrics()
                .channels
                .set(gw.registry().snapshot().len() as i64);
            (StatusCode::OK, gw.metrics().encode())
        }
        "/ready" => {
            let n = gw.registry().snapshot().len();
            if n > 0 {
                (StatusCode::OK, format!("ready: {n} channel(s)\n"))
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: no channel from any connection point\n".into(),
                )
            }
        }
        "/channels" => (
            StatusCode::OK,
            gw.registry()
                .snapshot()
                .iter()
                .map(|c| {
                    format!(
                        "{} site={} connection_id={} peer={} thread={}\n",
                        c.connector, c.site, c.id, c.peer, c.shard
                    )
                })
                .collect(),
        ),
        _ => (StatusCode::NOT_FOUND, "not found\n".into()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp
}

/// Serves the admin listener until `stop` is cancelled.
pub async fn serve(gw: Arc<Gateway>, listener: TcpListener, stop: CancellationToken) {
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    debug!(error = %e, "admin accept failed");
                    continue;
                }
            },
            _ = stop.cancelled() => return,
        };
        let gw = gw.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let resp = answer(&gw, req.uri().path());
                async move { Ok::<_, Infallible>(resp) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(5))
                .serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                debug!(%peer, error = %e, "admin connection error");
            }
        });
    }
}
