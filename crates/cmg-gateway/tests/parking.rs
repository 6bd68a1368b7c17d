//! Parked HTTP/1.1 connections on a real gateway (loopback, no connection point): a
//! keep-alive connection quiet between requests gives up its HTTP machinery and keeps
//! only its TLS session (`cmg_gateway_client_connections_parked` counts it), and comes
//! back when bytes arrive: pipelined requests are answered in order, none lost, a head
//! split across the wake-up is read whole, keep-alive stays on; the idle timeout and a
//! stop still close it.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cmg_core::shutdown::Shutdown;
use cmg_test_support::eventually;
use cmg_test_support::tls::TestClient;
use common::{pki, q, SERVICE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const PROBE: &str = "/CCM_Proxy_MutualAuth/ServiceMetadata";

struct Gateway {
    client: SocketAddr,
    admin: SocketAddr,
    shutdown: Shutdown,
    run: tokio::task::JoinHandle<()>,
    roots: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn start(limits: &str) -> Gateway {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = pki(dir.path());
    let text = format!(
        "instance = \"gw1\"\nservice_name = \"{SERVICE}\"\n\
         [listen]\nclient = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n\
         [tls]\ncert = {}\nkey = {}\n\
         [channel]\nsite_ca = [{}]\n\
         [shutdown]\ngrace = \"5s\"\n\
         [limits]\n{limits}\n",
        q(&p.server_cert),
        q(&p.server_key),
        q(&p.site_ca),
    );
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, text).expect("write");
    let config = cmg_gateway::Config::from_file(&path).expect("config");
    let bound = cmg_gateway::bind(config).await.expect("bind");
    let (client, admin) = (bound.client_addr(), bound.admin_addr().expect("admin"));
    let shutdown = Shutdown::new();
    let run = tokio::spawn(bound.run(shutdown.clone()));
    Gateway {
        client,
        admin,
        shutdown,
        run,
        roots: p.root_ca.clone(),
        _dir: dir,
    }
}

impl Gateway {
    async fn connect(&self) -> TlsStream<TcpStream> {
        TestClient::trusting_pem([self.roots.as_path()])
            .alpn(&[b"http/1.1"])
            .connect(self.client, SERVICE)
            .await
            .expect("handshake")
    }

    /// A gauge of the gateway's metrics page.
    async fn gauge(&self, name: &str) -> Option<i64> {
        let mut s = TcpStream::connect(self.admin).await.ok()?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        let prefix = format!("cmg_gateway_{name}{{");
        out.lines()
            .find(|l| l.starts_with(&prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    async fn parked_becomes(&self, n: i64) {
        eventually(format!("{n} parked client connection(s)"))
            .until_async(
                || self.gauge("client_connections_parked"),
                |v| *v == Some(n),
            )
            .await;
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {SERVICE}\r\n\r\n")
}

/// Reads one response (head and `Content-Length` body); its status and head.
async fn response(s: &mut TlsStream<TcpStream>, pending: &mut Vec<u8>) -> (u16, String) {
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("a response in time")
            .expect("read");
        assert!(n > 0, "closed before a response: {pending:?}");
        pending.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&pending[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().expect("a length"))
        .unwrap_or_else(|| panic!("a Content-Length: {head}"));
    while pending.len() < head_end + len {
        let n = s.read(&mut chunk).await.expect("read body");
        assert!(n > 0, "closed in a body");
        pending.extend_from_slice(&chunk[..n]);
    }
    pending.drain(..head_end + len);
    (head[9..12].parse().expect("status"), head)
}

/// Sends `requests` in one write and returns the statuses in the order they came.
async fn pipelined(s: &mut TlsStream<TcpStream>, requests: &[&str]) -> Vec<u16> {
    let all: String = requests.iter().map(|p| get(p)).collect();
    s.write_all(all.as_bytes()).await.expect("write");
    let mut pending = Vec::new();
    let mut statuses = Vec::new();
    for _ in requests {
        let (status, head) = response(s, &mut pending).await;
        assert!(
            !head.contains("connection: close"),
            "keep-alive stays: {head}"
        );
        statuses.push(status);
    }
    assert!(pending.is_empty(), "nothing more than the answers");
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_connection_serves_pipelined_requests_in_order() {
    let gw = start("idle_timeout = \"60s\"").await;
    let mut s = gw.connect().await;
    // A connection starts parked: nothing sent yet.
    gw.parked_becomes(1).await;
    let order = [PROBE, "/nowhere", PROBE, "/nowhere/else", PROBE];
    let want = vec![200, 404, 200, 404, 200];
    assert_eq!(pipelined(&mut s, &order).await, want);
    // Quiet between requests: parked again, then woken by the next burst.
    gw.parked_becomes(1).await;
    assert_eq!(pipelined(&mut s, &order).await, want);
    gw.parked_becomes(1).await;

    // A head whose first bytes wake the connection and whose rest comes later.
    let request = get(PROBE);
    let (first, rest) = request.split_at(7);
    s.write_all(first.as_bytes()).await.expect("write");
    gw.parked_becomes(0).await;
    s.write_all(rest.as_bytes()).await.expect("write");
    let (status, _) = response(&mut s, &mut Vec::new()).await;
    assert_eq!(status, 200);
    gw.parked_becomes(1).await;
    assert_eq!(gw.gauge("client_connections").await, Some(1));

    drop(s);
    gw.parked_becomes(0).await;
    eventually("the closed connection to leave the count")
        .until_async(|| gw.gauge("client_connections"), |v| *v == Some(0))
        .await;
    gw.shutdown.token.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_connection_still_idles_out() {
    let gw = start("idle_timeout = \"2s\"").await;
    let mut s = gw.connect().await;
    assert_eq!(pipelined(&mut s, &[PROBE]).await, vec![200]);
    let answered = Instant::now();
    gw.parked_becomes(1).await;
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("closed at the idle timeout")
        .expect("a clean close (close_notify)");
    assert_eq!(n, 0);
    assert!(
        answered.elapsed() >= Duration::from_millis(1900),
        "closed too early: {:?}",
        answered.elapsed()
    );
    gw.parked_becomes(0).await;
    gw.shutdown.token.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_closes_a_parked_connection_that_has_been_served() {
    let gw = start("idle_timeout = \"60s\"").await;
    let mut s = gw.connect().await;
    assert_eq!(pipelined(&mut s, &[PROBE]).await, vec![200]);
    gw.parked_becomes(1).await;
    gw.shutdown.token.cancel();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("closed by the stop")
        .expect("a clean close (close_notify)");
    assert_eq!(n, 0);
    tokio::time::timeout(Duration::from_secs(10), gw.run)
        .await
        .expect("run returns after the drain")
        .expect("join");
}
