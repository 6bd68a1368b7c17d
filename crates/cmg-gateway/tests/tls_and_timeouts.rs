//! A real gateway instance on loopback (no connection point: requests that pass
//! authentication get 503 `no_connection_point`, which is how these tests see that the
//! TLS layer let a client in). Covers the TLS policy (minimum version, certificate trust
//! list), reloading TLS material from disk without dropping live connections, and the
//! HTTP/1.1 head and idle timers.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cmg_core::shutdown::Shutdown;
use cmg_pki::demo::{DemoPki, DemoPkiPaths, DemoPkiSpec};
use cmg_proto::{ConnectorId, SiteCode};
use cmg_test_support::eventually;
use cmg_test_support::tls::TestClient;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const SERVICE: &str = "cmg.demo.test";
const PROTECTED: &str = "/CCM_Proxy_MutualAuth/72057594037927939/CCM_System/request";
const PROBE: &str = "/CCM_Proxy_MutualAuth/ServiceMetadata";

fn pki(dir: &Path) -> DemoPkiPaths {
    pki_with_crls(dir, None).1
}

/// A demo PKI whose certificates name `crl_base` as their CRL distribution point.
fn pki_with_crls(dir: &Path, crl_base: Option<String>) -> (DemoPki, DemoPkiPaths) {
    let pki = DemoPki::generate(&DemoPkiSpec {
        service_name: SERVICE.into(),
        site: SiteCode::new("DEM").expect("site"),
        connectors: vec![ConnectorId::new("cp1").expect("id")],
        crl_url: crl_base,
    })
    .expect("generate");
    let paths = pki.write(dir).expect("write");
    (pki, paths)
}

fn q(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

fn list(ps: &[&PathBuf]) -> String {
    ps.iter().map(|p| q(p)).collect::<Vec<_>>().join(", ")
}

/// Writes and loads a gateway config; `tls_extra` and `client_auth` go in their tables.
fn config(
    dir: &Path,
    p: &DemoPkiPaths,
    tls_extra: &str,
    client_auth: &str,
    limits: &str,
) -> cmg_gateway::Config {
    let text = format!(
        "instance = \"gw1\"\nservice_name = \"{SERVICE}\"\n\
         [listen]\nclient = \"127.0.0.1:0\"\n\
         [tls]\ncert = {}\nkey = {}\n{tls_extra}\n\
         [client_auth]\n{client_auth}\n\
         [channel]\nsite_ca = [{}]\n\
         [limits]\n{limits}\n\
         [[published_url]]\nprefix = \"/CCM_Proxy_MutualAuth/72057594037927939/CCM_System\"\nsite = \"DEM\"\nmax_body_bytes = 1024\n",
        q(&p.server_cert),
        q(&p.server_key),
        q(&p.site_ca),
    );
    let path = dir.join("gw.toml");
    std::fs::write(&path, &text).expect("write config");
    cmg_gateway::Config::from_file(&path).expect("valid config")
}

/// The demo roots, with revocation checked against the demo's CRL file.
fn default_auth(p: &DemoPkiPaths) -> String {
    format!(
        "trusted_roots = [{}]\ntrusted_intermediates = [{}]\ncrl_files = [{}]",
        q(&p.root_ca),
        q(&p.intermediate_ca),
        q(&p.crl)
    )
}

async fn start(config: &cmg_gateway::Config) -> (std::net::SocketAddr, Shutdown) {
    let bound = cmg_gateway::bind(config.clone()).await.expect("bind");
    let addr = bound.client_addr();
    let shutdown = Shutdown::new();
    tokio::spawn(bound.run(shutdown.clone()));
    (addr, shutdown)
}

struct ClientSpec<'a> {
    roots: &'a [&'a PathBuf],
    identity: Option<(&'a Path, &'a Path)>,
    tls12_only: bool,
}

async fn connect(
    addr: std::net::SocketAddr,
    c: ClientSpec<'_>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut client =
        TestClient::trusting_pem(c.roots.iter().map(|p| p.as_path())).alpn(&[b"http/1.1"]);
    if let Some((cert, key)) = c.identity {
        client = client.identity_pem(cert, key);
    }
    if c.tls12_only {
        client = client.only(&rustls::version::TLS12);
    }
    client.connect(addr, SERVICE).await
}

/// Sends one HTTP/1.1 GET and reads the response head; returns the status, or an
/// error when the connection failed or closed (a refused client certificate shows up
/// here under TLS 1.3, after the client's side of the handshake finished).
async fn get(s: &mut TlsStream<TcpStream>, path: &str) -> std::io::Result<u16> {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {SERVICE}\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .map_err(|_| std::io::Error::other("no response"))??;
        if n == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status: u16 = head[9..12].parse().map_err(std::io::Error::other)?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut have = buf.len() - head_end;
    while have < len {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        have += n;
    }
    Ok(status)
}

async fn status_with(
    addr: std::net::SocketAddr,
    c: ClientSpec<'_>,
    path: &str,
) -> std::io::Result<u16> {
    let mut s = connect(addr, c).await?;
    get(&mut s, path).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minimum_tls_13_refuses_a_tls_12_handshake() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = pki(dir.path());
    let (addr, sd) = start(&config(
        dir.path(),
        &p,
        "min_version = \"1.3\"",
        &default_auth(&p),
        "",
    ))
    .await;
    let roots = [&p.root_ca];
    let old = connect(
        addr,
        ClientSpec {
            roots: &roots,
            identity: None,
            tls12_only: true,
        },
    )
    .await;
    assert!(old.is_err(), "TLS 1.2 handshake accepted with minimum 1.3");
    let status = status_with(
        addr,
        ClientSpec {
            roots: &roots,
            identity: None,
            tls12_only: false,
        },
        PROBE,
    )
    .await
    .expect("TLS 1.3 works");
    assert_eq!(status, 200);
    sd.token.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_trust_list_restricts_uploaded_roots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = pki(dir.path());
    let roots = [&p.root_ca];
    let valid = (p.client_cert.as_path(), p.client_key.as_path());
    let other = (
        p.untrusted_client_cert.as_path(),
        p.untrusted_client_key.as_path(),
    );
    let both = list(&[&p.root_ca, &p.untrusted_root_ca]);
    let inter = q(&p.intermediate_ca);
    let spec = |identity| ClientSpec {
        roots: &roots,
        identity: Some(identity),
        tls12_only: false,
    };

    // Both roots uploaded, no list: a client of either root is authenticated (503: it
    // passed authentication and found no connection point).
    // (The other root publishes no CRL: revocation is not what this test is about.)
    let auth = format!(
        "trusted_roots = [{both}]\ntrusted_intermediates = [{inter}]\nverify_revocation = false"
    );
    let (addr, sd) = start(&config(dir.path(), &p, "", &auth, "")).await;
    assert_eq!(
        status_with(addr, spec(valid), PROTECTED)
            .await
            .expect("valid"),
        503
    );
    assert_eq!(
        status_with(addr, spec(other), PROTECTED)
            .await
            .expect("other root"),
        503
    );
    sd.token.cancel();

    // The list names only the demo root: the other uploaded root no longer anchors.
    let auth = format!(
        "trusted_roots = [{both}]\ntrusted_intermediates = [{inter}]\ntrust_list = [{}]\nverify_revocation = false",
        q(&p.root_ca)
    );
    let (addr, sd) = start(&config(dir.path(), &p, "", &auth, "")).await;
    assert_eq!(
        status_with(addr, spec(valid), PROTECTED)
            .await
            .expect("valid"),
        503
    );
    assert!(
        status_with(addr, spec(other), PROTECTED).await.is_err(),
        "a chain to a root outside the trust list was accepted"
    );
    sd.token.cancel();

    // A list that leaves no uploaded root is a setup error, not an open door.
    let auth = format!(
        "trusted_roots = [{}]\ntrust_list = [{}]",
        q(&p.root_ca),
        q(&p.untrusted_root_ca)
    );
    let err = cmg_gateway::bind(config(dir.path(), &p, "", &auth, ""))
        .await
        .expect_err("must refuse");
    assert!(err.to_string().contains("trust list"), "{err}");
}

fn peer_cert(s: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    s.get_ref()
        .1
        .peer_certificates()
        .expect("server certificate")[0]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewed_certificate_is_picked_up_without_dropping_live_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = pki(&dir.path().join("one"));
    let renewed = pki(&dir.path().join("two"));
    let (addr, sd) = start(&config(
        dir.path(),
        &p,
        "reload_interval = \"100ms\"",
        &default_auth(&p),
        "",
    ))
    .await;
    let roots = [&p.root_ca, &renewed.root_ca];
    let spec = || ClientSpec {
        roots: &roots,
        identity: None,
        tls12_only: false,
    };
    let mut live = connect(addr, spec()).await.expect("connect");
    assert_eq!(get(&mut live, PROBE).await.expect("first request"), 200);
    let before = peer_cert(&live);

    // Renew on disk: key first, then certificate, as an operator's tooling would.
    std::fs::copy(&renewed.server_key, &p.server_key).expect("copy key");
    std::fs::copy(&renewed.server_cert, &p.server_cert).expect("copy cert");
    let spec = &spec;
    eventually("the renewed certificate on a new handshake")
        .within(Duration::from_secs(10))
        .every(Duration::from_millis(50))
        .until_async(
            move || async move { peer_cert(&connect(addr, spec()).await.expect("new handshake")) },
            |served| *served != before,
        )
        .await;
    // The connection opened before the renewal still works.
    assert_eq!(
        get(&mut live, PROBE)
            .await
            .expect("request on the live connection"),
        200
    );
    sd.token.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_outlives_the_header_timeout_but_a_stalled_head_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = pki(dir.path());
    let limits = "header_read_timeout = \"1s\"\nidle_timeout = \"30s\"";
    let (addr, sd) = start(&config(dir.path(), &p, "", &default_auth(&p), limits)).await;
    let roots = [&p.root_ca];
    let spec = || ClientSpec {
        roots: &roots,
        identity: None,
        tls12_only: false,
    };

    // Idle between requests for longer than the header timeout: still open. The
    // gateway's own header timer measures the idle time (no sleep): two stalled heads,
    // one after the other, each cut off about one header timeout after it started.
    let mut idle = connect(addr, spec()).await.expect("connect");
    assert_eq!(get(&mut idle, PROBE).await.expect("first"), 200);
    let idle_since = Instant::now();
    for _ in 0..2 {
        stalled_head_is_cut_off(connect(addr, spec()).await.expect("connect")).await;
    }
    assert!(idle_since.elapsed() >= Duration::from_millis(1800));
    assert_eq!(get(&mut idle, PROBE).await.expect("after idling"), 200);
    sd.token.cancel();
}

/// Half a head, then nothing: closed about one header timeout (1 s) later.
async fn stalled_head_is_cut_off(mut slow: TlsStream<TcpStream>) {
    slow.write_all(b"GET /CCM_Proxy_MutualAuth/Servi")
        .await
        .expect("write");
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "stalled head not cut off within 5 s");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "cut off too early: {:?}",
        started.elapsed()
    );
}

/// Status of a GET of the protected URL with `cert`; `Err` when the handshake (or the
/// connection right after it) was refused.
async fn protected_status(
    addr: std::net::SocketAddr,
    p: &DemoPkiPaths,
    cert: (&Path, &Path),
) -> std::io::Result<u16> {
    let roots = [&p.root_ca];
    let spec = ClientSpec {
        roots: &roots,
        identity: Some(cert),
        tls12_only: false,
    };
    status_with(addr, spec, PROTECTED).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetched_crl_refuses_the_revoked_client_at_the_handshake() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = cmg_pki::revocation::publish::CrlServer::start(([127, 0, 0, 1], 0).into())
        .await
        .expect("CRL server");
    let (pki, p) = pki_with_crls(dir.path(), Some(format!("{}/crl", server.base_url())));
    let (intermediate, root) = pki.crls_der();
    server.set("crl/intermediate.crl", intermediate.to_vec());
    server.set("crl/root.crl", root.to_vec());
    let good = (p.client_cert.as_path(), p.client_key.as_path());
    let revoked = (
        p.revoked_client_cert.as_path(),
        p.revoked_client_key.as_path(),
    );
    // Revocation on by default, no CRL file: everything comes from the CDPs.
    let auth = format!(
        "trusted_roots = [{}]\ntrusted_intermediates = [{}]\ncrl_cache_dir = {}",
        q(&p.root_ca),
        q(&p.intermediate_ca),
        q(&dir.path().join("crl-cache"))
    );
    let (addr, sd) = start(&config(dir.path(), &p, "", &auth, "")).await;
    assert_eq!(protected_status(addr, &p, good).await.expect("good"), 503);
    assert!(
        protected_status(addr, &p, revoked).await.is_err(),
        "revoked client got through"
    );
    sd.token.cancel();

    // verify_revocation = false: no check at all, the revoked client is let in.
    let off = format!("{auth}\nverify_revocation = false");
    let (addr, sd) = start(&config(dir.path(), &p, "", &off, "")).await;
    assert_eq!(
        protected_status(addr, &p, revoked).await.expect("no check"),
        503
    );
    sd.token.cancel();

    // Restart with the CRL server gone: the disk cache still decides.
    drop(server);
    let (addr, sd) = start(&config(dir.path(), &p, "", &auth, "")).await;
    assert_eq!(protected_status(addr, &p, good).await.expect("cached"), 503);
    assert!(protected_status(addr, &p, revoked).await.is_err());
    sd.token.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_crl_refuses_clients_in_bounded_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        l.local_addr().expect("addr")
    };
    let (_, p) = pki_with_crls(dir.path(), Some(format!("http://{closed}/crl")));
    let auth = format!(
        "trusted_roots = [{}]\ntrusted_intermediates = [{}]\ncrl_handshake_wait = \"1s\"",
        q(&p.root_ca),
        q(&p.intermediate_ca)
    );
    let (addr, sd) = start(&config(dir.path(), &p, "", &auth, "")).await;
    let good = (p.client_cert.as_path(), p.client_key.as_path());
    for _ in 0..3 {
        let started = Instant::now();
        assert!(
            protected_status(addr, &p, good).await.is_err(),
            "status unknown must be refused"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
    // A client without a certificate is not affected.
    let roots = [&p.root_ca];
    let spec = ClientSpec {
        roots: &roots,
        identity: None,
        tls12_only: false,
    };
    assert_eq!(status_with(addr, spec, PROBE).await.expect("probe"), 200);
    sd.token.cancel();
}

#[test]
fn revocation_keys_are_validated() {
    let base = "instance = \"gw1\"\nservice_name = \"cmg.demo.test\"\n\
                [listen]\nclient = \"127.0.0.1:0\"\n[tls]\ncert = \"s.pem\"\nkey = \"s.key\"\n\
                [channel]\nsite_ca = [\"site.pem\"]\n[client_auth]\n";
    let path = Path::new("/etc/cmg/gw.toml");
    let parse = |extra: &str| cmg_gateway::Config::from_toml(path, &format!("{base}{extra}"));
    let on = parse("").expect("defaults");
    assert!(on.client_auth.verify_revocation, "on by default");
    assert!(on.client_auth.revocation.fetch);
    assert_eq!(on.client_auth.revocation.limits.max_bytes, 10 * 1024 * 1024);
    assert!(on.client_auth.revocation.ocsp, "OCSP on by default");
    assert!(on.client_auth.revocation.ocsp_nonce);
    let off = parse(
        "ocsp = false
ocsp_nonce = false",
    )
    .expect("ocsp off");
    assert!(!off.client_auth.revocation.ocsp);
    assert!(!off.client_auth.revocation.ocsp_nonce);
    let tuned = parse("crl_cache_dir = \"crls\"\ncrl_fetch_timeout = \"5s\"\ncrl_max_bytes = 4096")
        .expect("tuned");
    let r = &tuned.client_auth.revocation;
    assert_eq!(r.cache_dir.as_deref(), Some(Path::new("/etc/cmg/crls")));
    assert_eq!(r.limits.timeout, Duration::from_secs(5));
    for (bad, field) in [
        ("ocsp = \"yes\"", "ocsp"),
        ("crl_max_bytes = 10", "crl_max_bytes"),
        ("crl_fetch_timeout = \"0s\"", "crl_fetch_timeout"),
        ("crl_bogus = 1", "crl_bogus"),
    ] {
        let err = parse(bad).expect_err(bad);
        assert!(err.to_string().contains(field), "{bad}: {err}");
    }
}
