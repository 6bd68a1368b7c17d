//! A minimal HTTP server that publishes CRLs from memory: the demo's distribution
//! point on loopback, and the honest server of the tests. `GET /<path>` answers the
//! bytes set for that path (`application/pkix-crl`), anything else 404. Not meant to
//! face the internet: no limits beyond hyper's own.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

#[derive(Debug, Default)]
struct Files {
    by_path: RwLock<HashMap<String, Bytes>>,
    hits: AtomicU64,
}

/// A running CRL publisher; stops when dropped.
#[derive(Debug)]
pub struct CrlServer {
    addr: SocketAddr,
    files: Arc<Files>,
    task: JoinHandle<()>,
}

impl CrlServer {
    /// Binds `addr` (use port 0 for an ephemeral port) and serves on the current
    /// Tokio runtime.
    pub async fn start(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let files = Arc::new(Files::default());
        let task = tokio::spawn(serve(listener, files.clone()));
        Ok(Self { addr, files, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://ADDR`, to which `path`s are appended.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Publishes `bytes` at `/{path}` (replacing what was there).
    pub fn set(&self, path: &str, bytes: impl Into<Bytes>) {
        self.files
            .by_path
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(format!("/{}", path.trim_start_matches('/')), bytes.into());
    }

    /// Requests answered so far (any path).
    pub fn hits(&self) -> u64 {
        self.files.hits.load(Ordering::Relaxed)
    }
}

impl Drop for CrlServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, files: Arc<Files>) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let files = files.clone();
        conns.spawn(async move {
            let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let files = files.clone();
                async move { Ok::<_, Infallible>(answer(&files, req.uri().path())) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
        // Reap finished connections so the set does not grow without bound.
        while conns.try_join_next().is_some() {}
    }
}

fn answer(files: &Files, path: &str) -> http::Response<Full<Bytes>> {
    files.hits.fetch_add(1, Ordering::Relaxed);
    let found = files
        .by_path
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(path)
        .cloned();
    let mut resp = http::Response::new(Full::new(found.clone().unwrap_or_default()));
    match found {
        Some(_) => {
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/pkix-crl"),
            );
        }
        None => *resp.status_mut() = http::StatusCode::NOT_FOUND,
    }
    resp
}
