//! Shared by the integration tests: a management point on 127.0.0.1:0 in a temp dir,
//! and a one-connection HTTP/1.1 client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use cmg_core::shutdown::Shutdown;
use cmg_mp::{Config, JournalEntry};
use cmg_test_support::eventually;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

pub type Body = BoxBody<Bytes, std::io::Error>;

pub struct Mp {
    pub addr: SocketAddr,
    /// The admin listener, when the config sets one.
    pub admin: Option<SocketAddr>,
    pub journal: PathBuf,
    pub data_dir: PathBuf,
    shutdown: Shutdown,
    task: JoinHandle<()>,
    _dir: tempfile::TempDir,
    _trace: tracing::subscriber::DefaultGuard,
}

impl Mp {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(edit: impl FnOnce(&mut Config)) -> Self {
        let trace = tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_test_writer()
                .with_env_filter("cmg_mp=debug")
                .finish(),
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: dir.path().join("mp"),
            tls: None,
            admin: None,
            site: None,
            policy_dir: None,
        };
        edit(&mut config);
        let data_dir = config.data_dir.clone();
        let bound = cmg_mp::bind(config).await.expect("bind");
        let addr = bound.local_addr();
        let admin = bound.admin_addr();
        let journal = bound.journal_path();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(bound.run(shutdown.clone()));
        Self {
            addr,
            admin,
            journal,
            data_dir,
            shutdown,
            task,
            _dir: dir,
            _trace: trace,
        }
    }

    pub fn journal(&self) -> Vec<JournalEntry> {
        cmg_mp::read_journal(&self.journal).expect("read journal")
    }

    /// Waits (bounded) until the journal holds `n` entries; for requests whose client
    /// cannot see a response (it hung up).
    pub async fn journal_eventually(&self, n: usize) -> Vec<JournalEntry> {
        eventually(format!("{n} journal entries"))
            .within(Duration::from_secs(10))
            .every(Duration::from_millis(10))
            .until(|| self.journal(), |entries| entries.len() >= n)
            .await
    }

    /// Stops the server and asserts a clean exit.
    pub async fn stop(self) {
        self.shutdown.token.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("run returns after cancel")
            .expect("run task ends cleanly");
    }

    /// Sends one request on a fresh HTTP/1.1 connection; returns the head and whole body.
    pub async fn send(&self, req: Request<Body>) -> (http::response::Parts, Bytes) {
        send_to(self.addr, req).await
    }
}

/// Sends one request to `addr` on a fresh HTTP/1.1 connection; returns the head and
/// whole body.
pub async fn send_to(addr: SocketAddr, req: Request<Body>) -> (http::response::Parts, Bytes) {
    {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let resp: Response<hyper::body::Incoming> = sender.send_request(req).await.expect("send");
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        (parts, body)
    }
}

pub fn request(method: &str, path: &str, body: Body) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "mp.contoso.test")
        .body(body)
        .expect("request")
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

pub fn header<'a>(parts: &'a http::response::Parts, name: &str) -> &'a str {
    parts
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("header {name}"))
        .to_str()
        .expect("ascii header")
}
