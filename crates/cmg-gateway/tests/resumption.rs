//! TLS session resumption and revocation: a client that resumes a session after the
//! gateway learned that its certificate was revoked is refused, as a new handshake is.
//! A real gateway instance on loopback with revocation on, CRLs fetched from a loopback
//! distribution point; a real rustls client that keeps its session cache between
//! connections (no connection point: a request let in gets 503).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cmg_core::shutdown::Shutdown;
use cmg_pki::demo::{DemoPki, DemoPkiPaths, DemoPkiSpec};
use cmg_pki::revocation::publish::CrlServer;
use cmg_proto::{ConnectorId, SiteCode};
use cmg_test_support::eventually;
use cmg_test_support::tls::TestClient;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const SERVICE: &str = "cmg.demo.test";
const PROTECTED: &str = "/CCM_Proxy_MutualAuth/72057594037927939/CCM_System/request";

fn q(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

fn gateway_config(dir: &Path, p: &DemoPkiPaths) -> cmg_gateway::Config {
    let text = format!(
        "instance = \"gw1\"\nservice_name = \"{SERVICE}\"\n\
         [listen]\nclient = \"127.0.0.1:0\"\n\
         [tls]\ncert = {}\nkey = {}\n\
         [client_auth]\ntrusted_roots = [{}]\ntrusted_intermediates = [{}]\ncrl_retry_after = \"500ms\"\n\
         [channel]\nsite_ca = [{}]\n\
         [[published_url]]\nprefix = \"/CCM_Proxy_MutualAuth/72057594037927939/CCM_System\"\nsite = \"DEM\"\nmax_body_bytes = 1024\n",
        q(&p.server_cert),
        q(&p.server_key),
        q(&p.root_ca),
        q(&p.intermediate_ca),
        q(&p.site_ca),
    );
    let path = dir.join("gw.toml");
    std::fs::write(&path, &text).expect("write config");
    cmg_gateway::Config::from_file(&path).expect("valid config")
}

/// One connection with `config` (its session cache kept by the caller): whether the
/// handshake resumed a session, and the status of a GET of the protected URL (`Err`
/// when the gateway closed the connection instead of answering).
async fn exchange(
    addr: std::net::SocketAddr,
    config: &Arc<ClientConfig>,
) -> (bool, std::io::Result<u16>) {
    let name = ServerName::try_from(SERVICE).expect("name");
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let mut tls = match TlsConnector::from(config.clone()).connect(name, tcp).await {
        Ok(t) => t,
        Err(e) => return (false, Err(e)),
    };
    let resumed = tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    let status = async {
        tls.write_all(
            format!("GET {PROTECTED} HTTP/1.1\r\nHost: {SERVICE}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        let mut all = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut all))
            .await
            .map_err(|_| std::io::Error::other("no answer"))??;
        let head = String::from_utf8_lossy(&all);
        head.get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other("connection closed without an answer"))
    }
    .await;
    (resumed, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_session_is_refused_once_the_certificate_is_revoked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = CrlServer::start(([127, 0, 0, 1], 0).into())
        .await
        .expect("CRL server");
    let pki = DemoPki::generate(&DemoPkiSpec {
        service_name: SERVICE.into(),
        site: SiteCode::new("DEM").expect("site"),
        connectors: vec![ConnectorId::new("cp1").expect("id")],
        crl_url: Some(format!("{}/crl", server.base_url())),
    })
    .expect("generate");
    let p = pki.write(dir.path()).expect("write");
    // At first the intermediate's CRL lists nobody, and is past three quarters of its
    // validity: the gateway fetches it again every `crl_retry_after`.
    let now = OffsetDateTime::now_utc();
    let empty = pki
        .mint_empty_intermediate_crl(
            now - time::Duration::minutes(1),
            now + time::Duration::seconds(20),
        )
        .expect("CRL");
    server.set("crl/intermediate.crl", empty);
    server.set("crl/root.crl", pki.crls_der().1.to_vec());

    let bound = cmg_gateway::bind(gateway_config(dir.path(), &p))
        .await
        .expect("bind");
    let addr = bound.client_addr();
    let shutdown = Shutdown::new();
    tokio::spawn(bound.run(shutdown.clone()));

    // The client whose certificate is about to be revoked: one config, so one session
    // cache, for all its connections.
    let client = TestClient::trusting_pem([p.root_ca.as_path()])
        .identity_pem(&p.revoked_client_cert, &p.revoked_client_key)
        .alpn(&[b"http/1.1"]);
    let config = client.config();
    let (resumed, status) = exchange(addr, &config).await;
    assert!(!resumed, "first connection is a full handshake");
    assert_eq!(status.expect("let in before the revocation"), 503);
    let (resumed, status) = exchange(addr, &config).await;
    assert!(
        resumed,
        "the gateway resumes sessions (else this test proves nothing)"
    );
    assert_eq!(status.expect("resumed before the revocation"), 503);

    // The CA revokes it; the gateway learns it at its next fetch, which a new handshake
    // (its own session cache, so a full one) shows.
    let now = OffsetDateTime::now_utc();
    let listing = pki
        .mint_crl(
            false,
            now - time::Duration::seconds(1),
            now + time::Duration::hours(1),
        )
        .expect("CRL");
    server.set("crl/intermediate.crl", listing);
    let p2 = &p;
    eventually("the gateway refuses the revoked certificate on a full handshake")
        .within(Duration::from_secs(15))
        .every(Duration::from_millis(100))
        .until_async(
            move || async move {
                let fresh = TestClient::trusting_pem([p2.root_ca.as_path()])
                    .identity_pem(&p2.revoked_client_cert, &p2.revoked_client_key)
                    .alpn(&[b"http/1.1"])
                    .config();
                exchange(addr, &fresh).await.1.is_err()
            },
            |refused| *refused,
        )
        .await;

    // The old session resumes at the TLS layer, and the gateway then refuses it.
    let (resumed, status) = exchange(addr, &config).await;
    assert!(resumed, "the client resumed its session");
    assert!(
        status.is_err(),
        "a resumed session outlived the revocation: {status:?}"
    );

    // A client in good standing resumes as before.
    let good = TestClient::trusting_pem([p.root_ca.as_path()])
        .identity_pem(&p.client_cert, &p.client_key)
        .alpn(&[b"http/1.1"])
        .config();
    assert_eq!(exchange(addr, &good).await.1.expect("good client"), 503);
    let (resumed, status) = exchange(addr, &good).await;
    assert!(resumed);
    assert_eq!(status.expect("good client resumed"), 503);
    shutdown.token.cancel();
}
