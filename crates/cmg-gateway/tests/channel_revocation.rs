//! Connection point certificates on the channel listener go through the same revocation
//! check as client certificates (`[channel] crl_files`, `verify_revocation`): a revoked
//! one is refused at the handshake with a warning naming the reason, and no channel comes
//! up; a good one still gets its channel (the gateway, the channel's HTTP/2 client, sends
//! its connection preface).

mod logs;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use cmg_core::shutdown::Shutdown;
use cmg_pki::demo::{DemoPki, DemoPkiPaths, DemoPkiSpec};
use cmg_proto::{ConnectorId, SiteCode};
use cmg_test_support::eventually;
use cmg_test_support::tls::TestClient;
use logs::logs;
use tokio::io::AsyncReadExt;

const SERVICE: &str = "cmg.demo.test";
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn q(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

fn ids() -> [ConnectorId; 2] {
    [
        ConnectorId::new("cp1").expect("id"),
        ConnectorId::new("cp2").expect("id"),
    ]
}

/// A gateway whose channel listener checks connection point certificates against a
/// site CRL that revokes cp2.
async fn gateway(dir: &Path) -> (DemoPkiPaths, SocketAddr, Shutdown) {
    let pki = DemoPki::generate(&DemoPkiSpec {
        service_name: SERVICE.into(),
        site: SiteCode::new("DEM").expect("site"),
        connectors: ids().to_vec(),
        crl_url: None,
    })
    .expect("pki");
    let paths = pki.write(dir).expect("write");
    let crl = dir.join("site-ca.crl");
    std::fs::write(&crl, pki.mint_site_crl(&ids()[1]).expect("crl")).expect("write crl");
    let text = format!(
        "instance = \"gw1\"\nservice_name = \"{SERVICE}\"\n\
         [listen]\nclient = \"127.0.0.1:0\"\nchannel = \"127.0.0.1:0\"\n\
         [tls]\ncert = {}\nkey = {}\n\
         [client_auth]\n\
         [channel]\nsite_ca = [{}]\ncrl_files = [{}]\n",
        q(&paths.server_cert),
        q(&paths.server_key),
        q(&paths.site_ca),
        q(&crl),
    );
    let path = dir.join("gw.toml");
    std::fs::write(&path, text).expect("config");
    let config = cmg_gateway::Config::from_file(&path).expect("valid config");
    assert!(config.channel.verify_revocation, "on with crl_files");
    let bound = cmg_gateway::bind(config).await.expect("bind");
    let addr = bound.channel_addr().expect("channel listener");
    let shutdown = Shutdown::new();
    tokio::spawn(bound.run(shutdown.clone()));
    (paths, addr, shutdown)
}

/// Opens a channel as connection point `n`; returns the first bytes the gateway sends
/// (or the error that ended the connection) and the local address, as logs name it.
async fn dial(
    paths: &DemoPkiPaths,
    addr: SocketAddr,
    n: usize,
) -> (Result<Vec<u8>, String>, SocketAddr) {
    let cp = &paths.connectors[n];
    let mut tls = TestClient::trusting_pem([paths.root_ca.as_path()])
        .identity_pem(&cp.cert, &cp.key)
        .alpn(&[cmg_proto::channel::ALPN])
        .connect(addr, SERVICE)
        .await
        .expect("TLS 1.3: the client's side of the handshake completes");
    let local = tls.get_ref().0.local_addr().expect("local addr");
    let mut got = vec![0u8; PREFACE.len()];
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read_exact(&mut got))
        .await
        .expect("the gateway answers or closes in time");
    (read.map(|_| got).map_err(|e| e.to_string()), local)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_connection_point_is_refused_and_a_good_one_connects() {
    let buf = logs();
    let dir = tempfile::tempdir().expect("dir");
    let (paths, addr, shutdown) = gateway(dir.path()).await;

    let (good, _) = dial(&paths, addr, 0).await;
    assert_eq!(
        good.expect("cp1's channel comes up"),
        PREFACE,
        "the gateway starts HTTP/2 on cp1's channel"
    );

    let (revoked, local) = dial(&paths, addr, 1).await;
    let err = revoked.expect_err("cp2 is revoked: no channel");
    assert!(
        err.to_lowercase().contains("revoked"),
        "the alert says why: {err}"
    );
    let needle = format!("peer={local}");
    let ours = |l: &&str| l.contains(&needle) && l.contains("connection point channel refused");
    let text = eventually(format!("the refusal of {local} logged"))
        .within(Duration::from_secs(10))
        .until(
            || String::from_utf8_lossy(&buf.lock().unwrap_or_else(|p| p.into_inner())).to_string(),
            |text| text.lines().any(|l| ours(&l)),
        )
        .await;
    let line = text.lines().find(ours).expect("found");
    assert!(
        line.contains("WARN") && line.to_lowercase().contains("revoked"),
        "the reason: {line}"
    );

    // The good one still connects afterwards.
    let (again, _) = dial(&paths, addr, 0).await;
    assert_eq!(again.expect("cp1 again"), PREFACE);
    shutdown.token.cancel();
}
