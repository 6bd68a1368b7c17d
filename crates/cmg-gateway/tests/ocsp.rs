//! OCSP at the gateway's TLS handshake: client certificates whose CA publishes no CRL
//! but names an OCSP responder (OpenSSL's, on loopback: see
//! `cmg_test_support::ocsp`). The honest client gets through the handshake (and
//! then 503 `no_connection_point`, as this gateway has no connection point); the client
//! the responder reports revoked, and the one it does not know, are refused at the
//! handshake.

use std::path::Path;
use std::time::Duration;

use cmg_core::shutdown::Shutdown;
use cmg_pki::demo::{DemoPki, DemoPkiSpec};
use cmg_proto::{ConnectorId, SiteCode};
use cmg_test_support::ocsp::{generate, Bound, Signer};
use cmg_test_support::tls::TestClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SERVICE: &str = "cmg.demo.test";
const PROTECTED: &str = "/CCM_Proxy_MutualAuth/72057594037927939/CCM_System/request";

fn q(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// GET of the protected URL with a client certificate; the status, or `Err` when the
/// handshake (or the connection right after it, under TLS 1.3) was refused.
async fn status(
    addr: std::net::SocketAddr,
    server_root: &Path,
    cert: &Path,
    key: &Path,
) -> std::io::Result<u16> {
    let mut s = TestClient::trusting_pem([server_root])
        .identity_pem(cert, key)
        .alpn(&[b"http/1.1"])
        .connect(addr, SERVICE)
        .await?;
    s.write_all(format!("GET {PROTECTED} HTTP/1.1\r\nHost: {SERVICE}\r\n\r\n").as_bytes())
        .await?;
    let mut buf = [0u8; 12];
    let mut have = 0;
    while have < buf.len() {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf[have..]))
            .await
            .map_err(|_| std::io::Error::other("no response"))??;
        if n == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        have += n;
    }
    std::str::from_utf8(&buf[9..12])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_revoked_client_is_refused_and_the_honest_one_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = DemoPki::generate(&DemoPkiSpec {
        service_name: SERVICE.into(),
        site: SiteCode::new("DEM").expect("site"),
        connectors: vec![ConnectorId::new("cp1").expect("id")],
        crl_url: None,
    })
    .expect("demo PKI")
    .write(dir.path())
    .expect("write");
    let bound = Bound::bind().await;
    let pki = generate(&bound.url());
    let responder = bound.serve(&pki, Signer::Delegated, 60);

    // Revocation and OCSP on by default; the client CA has no CRL at all.
    let text = format!(
        "instance = \"gw1\"\nservice_name = \"{SERVICE}\"\n\
         [listen]\nclient = \"127.0.0.1:0\"\n\
         [tls]\ncert = {}\nkey = {}\n\
         [client_auth]\ntrusted_roots = [{}]\ncrl_handshake_wait = \"5s\"\n\
         [channel]\nsite_ca = [{}]\n\
         [[published_url]]\nprefix = \"/CCM_Proxy_MutualAuth/72057594037927939/CCM_System\"\nsite = \"DEM\"\nmax_body_bytes = 1024\n",
        q(&demo.server_cert),
        q(&demo.server_key),
        q(&pki.ca),
        q(&demo.site_ca),
    );
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, &text).expect("write config");
    let config = cmg_gateway::Config::from_file(&path).expect("config");
    assert!(config.client_auth.revocation.ocsp);
    let bound = cmg_gateway::bind(config).await.expect("bind");
    let addr = bound.client_addr();
    let shutdown = Shutdown::new();
    tokio::spawn(bound.run(shutdown.clone()));

    let (good, good_key) = pki.client("good");
    let (revoked, revoked_key) = pki.client("revoked");
    let (unknown, unknown_key) = pki.client("unknown");
    assert_eq!(
        status(addr, &demo.root_ca, &good, &good_key)
            .await
            .expect("honest client"),
        503,
        "the honest client passes the handshake"
    );
    assert!(
        status(addr, &demo.root_ca, &revoked, &revoked_key)
            .await
            .is_err(),
        "revoked (OCSP) client got through"
    );
    assert!(
        status(addr, &demo.root_ca, &unknown, &unknown_key)
            .await
            .is_err(),
        "client unknown to the responder got through"
    );
    let asked = responder.hits();
    assert_eq!(asked, 3);
    // The honest client's next handshakes use the cached answer.
    for _ in 0..3 {
        assert_eq!(
            status(addr, &demo.root_ca, &good, &good_key)
                .await
                .expect("honest client again"),
            503
        );
    }
    assert_eq!(responder.hits(), asked, "cached answer not reused");
    shutdown.token.cancel();
}
