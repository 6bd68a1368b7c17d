//! A stop (SIGTERM) on a real gateway (loopback, no connection point): `/ready` turns
//! 503 at once while the admin listener keeps answering through the drain, and a
//! client connection accepted before the stop still gets its request answered (with
//! `Connection: close`) even when it had sent nothing yet. With `[shutdown] delay` the
//! instance still accepts new connections during the delay.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use cmg_core::shutdown::Shutdown;
use cmg_test_support::tls::TestClient;
use common::{pki, q, SERVICE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PROBE: &str = "/CCM_Proxy_MutualAuth/ServiceMetadata";

/// One plain HTTP/1.1 GET on the admin listener; the status line and body.
async fn admin_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.expect("admin connect");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_turns_ready_off_and_still_answers_an_accepted_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = pki(dir.path());
    let text = format!(
        "instance = \"gw1\"\nservice_name = \"{SERVICE}\"\n\
         [listen]\nclient = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n\
         [tls]\ncert = {}\nkey = {}\n\
         [channel]\nsite_ca = [{}]\n\
         [shutdown]\ngrace = \"5s\"\n",
        q(&p.server_cert),
        q(&p.server_key),
        q(&p.site_ca),
    );
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, text).expect("write");
    let config = cmg_gateway::Config::from_file(&path).expect("config");
    let bound = cmg_gateway::bind(config).await.expect("bind");
    let (addr, admin) = (bound.client_addr(), bound.admin_addr().expect("admin"));
    let shutdown = Shutdown::new();
    let run = tokio::spawn(bound.run(shutdown.clone()));

    let before = admin_get(admin, "/ready").await;
    assert!(
        before.starts_with("HTTP/1.1 503"),
        "no channel yet: {before}"
    );
    assert!(before.contains("no channel"), "{before}");

    // A client that finished its handshake and has not sent its request yet.
    let mut tls = TestClient::trusting_pem([p.root_ca.as_path()])
        .alpn(&[b"http/1.1"])
        .connect(addr, SERVICE)
        .await
        .expect("handshake");

    shutdown.token.cancel();
    let during = admin_get(admin, "/ready").await;
    assert!(during.starts_with("HTTP/1.1 503"), "{during}");
    assert!(during.contains("stopping"), "{during}");
    assert!(admin_get(admin, "/live").await.starts_with("HTTP/1.1 200"));

    tls.write_all(format!("GET {PROBE} HTTP/1.1\r\nHost: {SERVICE}\r\n\r\n").as_bytes())
        .await
        .expect("request after the stop");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer))
        .await
        .expect("the gateway closes after answering")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(
        answer.contains("<servicename>cmg.demo.test</servicename>"),
        "{answer}"
    );

    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("run returns after the drain")
        .expect("join");
    assert!(
        TcpStream::connect(admin).await.is_err(),
        "the admin listener is gone once the gateway has stopped"
    );
}

/// `[shutdown] delay`: after the stop, `/ready` is 503 at once but the instance goes on
/// accepting and serving as usual for the delay (a balancer takes it out meanwhile),
/// then drains and returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_drain_delay_a_stopping_instance_still_accepts_until_it_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = pki(dir.path());
    let text = format!(
        "instance = \"gw1\"\nservice_name = \"{SERVICE}\"\n\
         [listen]\nclient = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n\
         [tls]\ncert = {}\nkey = {}\n\
         [channel]\nsite_ca = [{}]\n\
         [shutdown]\ngrace = \"5s\"\ndelay = \"3s\"\n",
        q(&p.server_cert),
        q(&p.server_key),
        q(&p.site_ca),
    );
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, text).expect("write");
    let config = cmg_gateway::Config::from_file(&path).expect("config");
    assert_eq!(config.drain_delay, Duration::from_secs(3));
    let bound = cmg_gateway::bind(config).await.expect("bind");
    let (addr, admin) = (bound.client_addr(), bound.admin_addr().expect("admin"));
    let shutdown = Shutdown::new();
    let run = tokio::spawn(bound.run(shutdown.clone()));

    shutdown.token.cancel();
    let stopped = std::time::Instant::now();
    let during = admin_get(admin, "/ready").await;
    assert!(during.starts_with("HTTP/1.1 503"), "{during}");
    assert!(during.contains("stopping"), "{during}");

    // A connection made after the stop: accepted, answered as usual (not draining yet).
    let mut tls = TestClient::trusting_pem([p.root_ca.as_path()])
        .alpn(&[b"http/1.1"])
        .connect(addr, SERVICE)
        .await
        .expect("a handshake during the delay");
    tls.write_all(
        format!("GET {PROBE} HTTP/1.1\r\nHost: {SERVICE}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("request during the delay");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer))
        .await
        .expect("answered")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(
        stopped.elapsed() < Duration::from_secs(3),
        "the request took the whole delay; the check above proves nothing"
    );

    tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .expect("run returns after the delay and the drain")
        .expect("join");
    assert!(
        stopped.elapsed() >= Duration::from_secs(3),
        "returned before the delay"
    );
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the client listener is closed once the gateway has stopped"
    );
}
