//! Entry point for the fuzz targets in `fuzz/` (feature `fuzzing`, off in every build
//! the project ships): a channel's HTTP/2 server side as the gateway reaches it, built
//! as every channel is ([`channel::server`]), answering the hello as a channel does
//! ([`channel::hello_fields`]). Not for any other use; `#[doc(hidden)]` at the crate
//! root.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use cmg_proto::channel::HELLO_PATH;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use crate::channel;

/// Serves `bytes` (what a gateway would send after TLS) as one channel and returns
/// when the connection ends: the input runs out, or the server refuses it.
pub async fn channel(bytes: Vec<u8>) {
    // What the server writes is dropped; the input ends in EOF.
    let io = tokio::io::join(std::io::Cursor::new(bytes), tokio::io::sink());
    let service = service_fn(|req: http::Request<hyper::body::Incoming>| async move {
        let status = if req.uri().path() != HELLO_PATH || req.method() != Method::POST {
            StatusCode::NOT_FOUND
        } else if channel::hello_fields(req.headers()).is_some() {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
        let mut resp = Response::new(Full::new(Bytes::new()));
        *resp.status_mut() = status;
        Ok::<_, Infallible>(resp)
    });
    let ping = Duration::from_secs(30);
    let _ = channel::server(ping, ping)
        .serve_connection(TokioIo::new(io), service)
        .await;
}
