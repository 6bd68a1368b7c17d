//! Fail-closed revocation with CRLs fetched over HTTP from loopback servers: an honest
//! publisher ([`CrlServer`]) and hostile ones (down, trickling, endless body).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use cmg_pki::demo::{DemoPki, DemoPkiPaths, DemoPkiSpec};
use cmg_pki::pem::load_certs;
use cmg_pki::revocation::publish::CrlServer;
use cmg_pki::revocation::{FetchLimits, RevocationChecker, RevocationConfig};
use cmg_pki::{verify_chain, Purpose, TrustStore, VerifyError, VerifyOptions};
use cmg_proto::SiteCode;
use cmg_test_support::eventually;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

struct Pki {
    pki: DemoPki,
    paths: DemoPkiPaths,
    _dir: tempfile::TempDir,
}

fn pki(crl_base: &str) -> Pki {
    let spec = DemoPkiSpec {
        service_name: "cmg.contoso.example".into(),
        site: SiteCode::new("PS1").expect("site"),
        connectors: Vec::new(),
        crl_url: Some(crl_base.to_owned()),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = DemoPki::generate(&spec).expect("generate");
    let paths = pki.write(dir.path()).expect("write");
    Pki {
        pki,
        paths,
        _dir: dir,
    }
}

/// An intermediate CRL valid from now + `from` to now + `to` minutes.
fn mint(p: &Pki, from: i64, to: i64) -> Vec<u8> {
    let now = OffsetDateTime::now_utc();
    p.pki
        .mint_crl(
            false,
            now + time::Duration::minutes(from),
            now + time::Duration::minutes(to),
        )
        .expect("mint")
}

/// Publishes the PKI's two CRLs under `/crl/` on `server`.
fn publish(server: &CrlServer, p: &Pki) {
    let (intermediate, root) = p.pki.crls_der();
    server.set("crl/intermediate.crl", intermediate.to_vec());
    server.set("crl/root.crl", root.to_vec());
}

/// A CRL server on loopback and a PKI whose CRLs it publishes.
async fn published() -> (CrlServer, Pki) {
    let server = CrlServer::start(([127, 0, 0, 1], 0).into())
        .await
        .expect("server");
    let p = pki(&format!("{}/crl", server.base_url()));
    publish(&server, &p);
    (server, p)
}

fn config() -> RevocationConfig {
    RevocationConfig {
        limits: FetchLimits {
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            max_bytes: 256 * 1024,
        },
        handshake_wait: Duration::from_millis(1500),
        retry_after: Duration::from_millis(200),
        ..RevocationConfig::default()
    }
}

/// A store trusting the roots of `pkis`, checking revocation with a new checker.
fn store(pkis: &[&Pki], config: RevocationConfig) -> TrustStore {
    let roots: Vec<_> = pkis
        .iter()
        .flat_map(|p| load_certs(&p.paths.root_ca).expect("root"))
        .collect();
    let checker = RevocationChecker::new(config, roots.clone(), Vec::new()).expect("checker");
    TrustStore::new(roots, Vec::new())
        .expect("store")
        .with_revocation(checker)
}

fn verify(store: &TrustStore, cert: &Path) -> Result<(), VerifyError> {
    let chain = load_certs(cert).expect("cert");
    verify_chain(
        store,
        &chain[0],
        &chain[1..],
        &VerifyOptions::new(Purpose::Client),
    )
    .map(|_| ())
}

/// Verifies off the async test task, as rustls does on a runtime worker.
async fn verify_blocking(store: &TrustStore, cert: &Path) -> Result<(), VerifyError> {
    let (store, cert) = (store.clone(), cert.to_owned());
    tokio::task::spawn_blocking(move || verify(&store, &cert))
        .await
        .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetched_crl_rejects_the_revoked_and_accepts_the_good() {
    let (server, p) = published().await;
    let store = store(&[&p], config());

    verify_blocking(&store, &p.paths.client_cert)
        .await
        .expect("good client");
    let err = verify_blocking(&store, &p.paths.revoked_client_cert)
        .await
        .expect_err("revoked");
    assert_eq!(err.code(), "revoked", "{err}");
    assert_eq!(err.service_code(), "CMGService_Revocation_Revoked");

    // Both CRLs are cached now: further checks do not touch the network.
    let hits = server.hits();
    for _ in 0..20 {
        verify_blocking(&store, &p.paths.client_cert)
            .await
            .expect("good client, cached");
    }
    assert_eq!(server.hits(), hits, "cached CRLs were fetched again");
    // The CRLs' signature checks are remembered by now (verify::memo): the answers
    // stay the same, the revoked certificate included.
    let err = verify_blocking(&store, &p.paths.revoked_client_cert)
        .await
        .expect_err("revoked, after the CRL checks were remembered");
    assert_eq!(err.code(), "revoked", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_crl_means_unknown_status() {
    let (server, p) = published().await;
    let stale = mint(&p, -10 * 24 * 60, -24 * 60);
    server.set("crl/intermediate.crl", stale);
    let store = store(&[&p], config());
    let err = verify_blocking(&store, &p.paths.client_cert)
        .await
        .expect_err("expired CRL");
    assert_eq!(err.code(), "revocation_unknown", "{err}");
    assert_eq!(err.service_code(), "CMGService_Revocation_Unknown");
    assert!(err.to_string().contains("expired"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_crl_signature_means_unknown_status() {
    let (server, p) = published().await;
    let mut forged = p.pki.crls_der().0.to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    server.set("crl/intermediate.crl", forged);
    let store = store(&[&p], config());
    let err = verify_blocking(&store, &p.paths.revoked_client_cert)
        .await
        .expect_err("forged CRL");
    assert_eq!(err.code(), "revocation_unknown", "{err}");
    assert!(err.to_string().contains("signature"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_distribution_point_is_refused_quickly_with_the_reason() {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr")
    };
    let p = pki(&format!("http://{closed}/crl"));
    let store = store(&[&p], config());
    let started = Instant::now();
    let err = verify_blocking(&store, &p.paths.client_cert)
        .await
        .expect_err("no CRL");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.code(), "revocation_unknown", "{err}");
    assert!(err.to_string().contains("cannot connect"), "{err}");
}

/// What a hostile distribution point does after reading the request.
#[derive(Clone, Copy)]
enum Hostile {
    /// One byte of a declared 100 kB body every 100 ms.
    Trickle,
    /// A chunked body of zeros that never ends (1 GiB and more).
    Endless,
}

async fn hostile_server(kind: Hostile) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = sock.read(&mut buf).await;
                let head: &[u8] = match kind {
                    Hostile::Trickle => b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n",
                    Hostile::Endless => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                };
                if sock.write_all(head).await.is_err() {
                    return;
                }
                let chunk = [0u8; 64 * 1024];
                // Bounded so the task ends even if the client never hangs up.
                for _ in 0..20_000 {
                    let sent = match kind {
                        Hostile::Trickle => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            sock.write_all(b"x").await
                        }
                        Hostile::Endless => {
                            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
                            framed.extend_from_slice(&chunk);
                            framed.extend_from_slice(b"\r\n");
                            sock.write_all(&framed).await
                        }
                    };
                    if sent.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_distribution_points_cost_bounded_time_and_spare_honest_clients() {
    let server = CrlServer::start(([127, 0, 0, 1], 0).into())
        .await
        .expect("server");
    let honest = pki(&format!("{}/crl", server.base_url()));
    publish(&server, &honest);
    let trickle = pki(&format!(
        "http://{}/crl",
        hostile_server(Hostile::Trickle).await
    ));
    let endless = pki(&format!(
        "http://{}/crl",
        hostile_server(Hostile::Endless).await
    ));
    let store = store(&[&honest, &trickle, &endless], config());
    // The honest client's CRLs get cached.
    verify_blocking(&store, &honest.paths.client_cert)
        .await
        .expect("honest client");

    let hostile = [
        (trickle.paths.client_cert.clone(), "fetch in progress"),
        (endless.paths.client_cert.clone(), "larger than"),
    ];
    let mut waiting = Vec::new();
    for (cert, _) in &hostile {
        let (store, cert) = (store.clone(), cert.clone());
        waiting.push(tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            (verify(&store, &cert), started.elapsed())
        }));
    }
    // Meanwhile the honest client keeps getting through, fast.
    for _ in 0..20 {
        let started = Instant::now();
        verify_blocking(&store, &honest.paths.client_cert)
            .await
            .expect("honest client during the attack");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
    }
    for (task, (_, reason)) in waiting.into_iter().zip(hostile) {
        let (result, took) = task.await.expect("join");
        let err = result.expect_err("hostile CRL server");
        assert_eq!(err.code(), "revocation_unknown", "{err}");
        assert!(err.to_string().contains(reason), "{reason}: {err}");
        // handshake_wait (1.5 s) plus scheduling slack.
        assert!(took < Duration::from_secs(3), "{took:?}");
    }
    // The trickling fetch ends at the total deadline and says so.
    let (store, cert) = (&store, &trickle.paths.client_cert);
    eventually("the trickling CRL fetch to time out")
        .within(Duration::from_secs(5))
        .every(Duration::from_millis(100))
        .until_async(
            move || async move {
                verify_blocking(store, cert)
                    .await
                    .expect_err("still hostile")
                    .to_string()
            },
            |err| err.contains("no complete answer within"),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_cache_serves_after_a_restart_without_the_server() {
    let cache = tempfile::tempdir().expect("cache dir");
    let (server, p) = published().await;
    let with_disk = || RevocationConfig {
        cache_dir: Some(cache.path().join("crls")),
        ..config()
    };
    let first = store(&[&p], with_disk());
    verify_blocking(&first, &p.paths.client_cert)
        .await
        .expect("online");
    drop(first);
    drop(server);

    let restarted = store(&[&p], with_disk());
    let started = Instant::now();
    verify_blocking(&restarted, &p.paths.client_cert)
        .await
        .expect("offline, from the disk cache");
    let err = verify_blocking(&restarted, &p.paths.revoked_client_cert)
        .await
        .expect_err("revoked, from the disk cache");
    assert_eq!(err.code(), "revoked");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crls_are_refreshed_in_the_background_before_next_update() {
    let (server, p) = published().await;
    // The intermediate's CRL is three quarters through its validity at once.
    let short = mint(&p, -60, 5);
    server.set("crl/intermediate.crl", short);
    let store = store(&[&p], config());
    verify_blocking(&store, &p.paths.client_cert)
        .await
        .expect("first fetch");
    let hits = server.hits();
    // With retry_after 200 ms, the tick (1 s) fetches it again without any handshake.
    eventually("a background refresh of the CRLs")
        .within(Duration::from_secs(5))
        .every(Duration::from_millis(50))
        .until(|| server.hits(), |n| *n >= hits + 2)
        .await;
    verify_blocking(&store, &p.paths.client_cert)
        .await
        .expect("still good");
}
