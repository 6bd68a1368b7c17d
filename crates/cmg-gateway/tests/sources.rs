//! Who the source of a connection is, on a real gateway's client listener (loopback, no
//! connection point): with PROXY protocol the header's client address is the one the
//! access log names; a connection without a header, from an untrusted source, or whose
//! header stalls is closed before TLS, and the reason is logged. Per-source caps count
//! that real source.

mod common;
mod logs;

use std::net::SocketAddr;
use std::time::Duration;

use cmg_core::shutdown::Shutdown;
use cmg_test_support::eventually;
use cmg_test_support::tls::TestClient;
use common::{pki, q, SERVICE};
use logs::logs;
use ppp::v2;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const PROBE: &str = "/CCM_Proxy_MutualAuth/ServiceMetadata";

async fn logged(what: &str) -> String {
    let buf = logs();
    let text = eventually(format!("a log line with {what:?}"))
        .within(Duration::from_secs(10))
        .until(
            || String::from_utf8_lossy(&buf.lock().unwrap_or_else(|p| p.into_inner())).to_string(),
            |text| text.lines().any(|l| l.contains(what)),
        )
        .await;
    text.lines()
        .find(|l| l.contains(what))
        .expect("the condition found it")
        .to_owned()
}

struct Gateway {
    addr: SocketAddr,
    shutdown: Shutdown,
    paths: cmg_pki::demo::DemoPkiPaths,
    _dir: tempfile::TempDir,
}

async fn start(trusted: &str) -> Gateway {
    start_with(trusted, "").await
}

async fn start_with(trusted: &str, limits: &str) -> Gateway {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = pki(dir.path());
    let text = format!(
        "instance = \"gw1\"\nservice_name = \"{SERVICE}\"\n\
         [listen]\nclient = \"127.0.0.1:0\"\n\
         [tls]\ncert = {}\nkey = {}\n\
         [channel]\nsite_ca = [{}]\n\
         [limits]\n{limits}\n\
         [proxy_protocol]\ntrusted_sources = [\"{trusted}\"]\nheader_timeout = \"300ms\"\n",
        q(&p.server_cert),
        q(&p.server_key),
        q(&p.site_ca),
    );
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, text).expect("write");
    let config = cmg_gateway::Config::from_file(&path).expect("config");
    let bound = cmg_gateway::bind(config).await.expect("bind");
    let addr = bound.client_addr();
    let shutdown = Shutdown::new();
    tokio::spawn(bound.run(shutdown.clone()));
    Gateway {
        addr,
        shutdown,
        paths: p,
        _dir: dir,
    }
}

/// TLS over `tcp` (after whatever was written on it).
async fn tls(
    gw: &Gateway,
    tcp: TcpStream,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let config = TestClient::trusting_pem([gw.paths.root_ca.as_path()])
        .alpn(&[b"http/1.1"])
        .config();
    let name = ServerName::try_from(SERVICE).expect("name");
    TlsConnector::from(config).connect(name, tcp).await
}

/// TLS over `tcp` (after whatever was written on it), then one GET of the probe.
async fn probe(gw: &Gateway, tcp: TcpStream) -> std::io::Result<u16> {
    let mut tls = tls(gw, tcp).await?;
    tls.write_all(
        format!("GET {PROBE} HTTP/1.1\r\nHost: {SERVICE}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await?;
    let head = String::from_utf8_lossy(&out);
    head.get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))
}

fn v2_header(client: SocketAddr, dest: SocketAddr) -> Vec<u8> {
    v2::Builder::with_addresses(
        v2::Version::Two | v2::Command::Proxy,
        v2::Protocol::Stream,
        (client, dest),
    )
    .build()
    .expect("header")
}

#[tokio::test]
async fn the_headers_client_address_is_the_one_logged() {
    logs();
    let gw = start("127.0.0.1/32").await;
    let client: SocketAddr = "203.0.113.77:51000".parse().expect("addr");
    let mut tcp = TcpStream::connect(gw.addr).await.expect("connect");
    tcp.write_all(&v2_header(client, gw.addr))
        .await
        .expect("header");
    assert_eq!(probe(&gw, tcp).await.expect("probe"), 200);
    let line = logged("203.0.113.77:51000").await;
    assert!(
        line.contains("ServiceMetadata"),
        "the access line names the client: {line}"
    );

    let mut tcp = TcpStream::connect(gw.addr).await.expect("connect");
    tcp.write_all(b"PROXY TCP4 198.51.100.78 192.0.2.1 52000 443\r\n")
        .await
        .expect("header");
    assert_eq!(probe(&gw, tcp).await.expect("v1 probe"), 200);
    logged("198.51.100.78:52000").await;
    gw.shutdown.token.cancel();
}

#[tokio::test]
async fn connections_without_a_usable_header_are_closed_before_tls() {
    logs();
    let gw = start("127.0.0.1/32").await;
    // A client that speaks TLS straight away: its ClientHello is not a header.
    let tcp = TcpStream::connect(gw.addr).await.expect("connect");
    let local = tcp.local_addr().expect("local");
    probe(&gw, tcp).await.expect_err("no header, no TLS");
    let line = logged(&format!("peer={local} reason=\"missing\"")).await;
    assert!(line.contains("PROXY protocol header refused"), "{line}");

    // A header that never completes: closed after the header timeout.
    let mut tcp = TcpStream::connect(gw.addr).await.expect("connect");
    let local = tcp.local_addr().expect("local");
    let header = v2_header("203.0.113.5:1".parse().expect("addr"), gw.addr);
    tcp.write_all(&header[..10]).await.expect("partial");
    let mut byte = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut byte))
        .await
        .expect("closed by the gateway, not by this test's patience")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed");
    logged(&format!("peer={local} reason=\"timeout\"")).await;
    gw.shutdown.token.cancel();
}

#[tokio::test]
async fn a_header_from_an_untrusted_source_is_refused() {
    logs();
    let gw = start("10.0.0.0/8").await;
    let mut tcp = TcpStream::connect(gw.addr).await.expect("connect");
    let local = tcp.local_addr().expect("local");
    tcp.write_all(&v2_header("203.0.113.9:1".parse().expect("addr"), gw.addr))
        .await
        .expect("header");
    probe(&gw, tcp).await.expect_err("untrusted source");
    logged(&format!("peer={local} reason=\"untrusted_source\"")).await;
    gw.shutdown.token.cancel();
}

#[tokio::test]
async fn per_source_caps_count_the_real_source() {
    logs();
    let gw = start_with("127.0.0.1/32", "max_connections_per_source = 1").await;
    let connect = |client: &str| {
        let client: SocketAddr = client.parse().expect("addr");
        let addr = gw.addr;
        async move {
            let mut tcp = TcpStream::connect(addr).await.expect("connect");
            tcp.write_all(&v2_header(client, addr))
                .await
                .expect("header");
            tcp
        }
    };
    // One connection of 203.0.113.21 held open after its handshake...
    let held = tls(&gw, connect("203.0.113.21:1000").await)
        .await
        .expect("first connection of the source");
    // ...so a second one from the same source is closed before TLS,
    tls(&gw, connect("203.0.113.21:1001").await)
        .await
        .expect_err("over the source's cap");
    logged("reason=\"per_source_connections\"").await;
    // while another source behind the same balancer is served.
    assert_eq!(
        probe(&gw, connect("203.0.113.22:1000").await)
            .await
            .expect("other source"),
        200
    );
    drop(held);
    gw.shutdown.token.cancel();
}
