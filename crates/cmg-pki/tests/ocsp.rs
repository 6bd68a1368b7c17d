//! OCSP against a real responder (OpenSSL's, `cmg_test_support::ocsp`): certificates
//! whose issuer publishes no CRL get their status from the responder named in their
//! AIA, fail-closed.

use std::time::{Duration, Instant};

use cmg_pki::pem::load_certs;
use cmg_pki::revocation::{FetchLimits, RevocationChecker, RevocationConfig};
use cmg_pki::{verify_chain, Purpose, TrustStore, VerifyError, VerifyOptions};
use cmg_test_support::ocsp::{generate, Bound, OcspPki, Signer};
use tokio::net::TcpListener;

fn config() -> RevocationConfig {
    RevocationConfig {
        limits: FetchLimits {
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            max_bytes: 64 * 1024,
        },
        handshake_wait: Duration::from_millis(2500),
        retry_after: Duration::from_millis(200),
        ..RevocationConfig::default()
    }
}

fn store(pki: &OcspPki, config: RevocationConfig) -> TrustStore {
    let roots = load_certs(&pki.ca).expect("ca");
    let checker = RevocationChecker::new(config, roots.clone(), Vec::new()).expect("checker");
    TrustStore::new(roots, Vec::new())
        .expect("store")
        .with_revocation(checker)
}

async fn verify(store: &TrustStore, pki: &OcspPki, name: &str) -> Result<(), VerifyError> {
    let certs = load_certs(&pki.client(name).0).expect("client cert");
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        verify_chain(
            &store,
            &certs[0],
            &certs[1..],
            &VerifyOptions::new(Purpose::Client),
        )
        .map(|_| ())
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_revoked_and_unknown_by_the_ca_key() {
    let bound = Bound::bind().await;
    let pki = generate(&bound.url());
    let responder = bound.serve(&pki, Signer::Ca, 60);
    let store = store(&pki, config());

    verify(&store, &pki, "good").await.expect("good accepted");
    let revoked = verify(&store, &pki, "revoked").await.expect_err("revoked");
    assert_eq!(revoked.code(), "ocsp_revoked", "{revoked}");
    assert_eq!(revoked.check(), "revocation");
    let unknown = verify(&store, &pki, "unknown").await.expect_err("unknown");
    assert_eq!(unknown.code(), "ocsp_unknown", "{unknown}");
    assert!(unknown.to_string().contains("does not know"), "{unknown}");
    assert_eq!(responder.hits(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegated_responder_is_accepted() {
    let bound = Bound::bind().await;
    let pki = generate(&bound.url());
    let _responder = bound.serve(&pki, Signer::Delegated, 60);
    let store = store(&pki, config());
    verify(&store, &pki, "good").await.expect("good accepted");
    let revoked = verify(&store, &pki, "revoked").await.expect_err("revoked");
    assert_eq!(revoked.code(), "ocsp_revoked", "{revoked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_signed_by_a_key_the_ca_never_authorized_is_refused() {
    let bound = Bound::bind().await;
    let pki = generate(&bound.url());
    let responder = bound.serve(&pki, Signer::Rogue, 60);
    let store = store(&pki, config());
    let err = verify(&store, &pki, "good")
        .await
        .expect_err("rogue signer");
    assert_eq!(err.code(), "ocsp_unknown", "{err}");
    assert!(err.to_string().contains("signature"), "{err}");
    assert_eq!(
        err.to_rustls().to_string(),
        VerifyError::OcspUnknown(String::new())
            .to_rustls()
            .to_string()
    );
    assert!(responder.hits() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_answer_is_reused_until_next_update() {
    let bound = Bound::bind().await;
    let pki = generate(&bound.url());
    let responder = bound.serve(&pki, Signer::Ca, 60);
    let store = store(&pki, config());
    verify(&store, &pki, "good").await.expect("good accepted");
    verify(&store, &pki, "good").await.expect("good again");
    assert_eq!(responder.hits(), 1, "second check must come from the cache");
    drop(responder);
    verify(&store, &pki, "good")
        .await
        .expect("still accepted from the cache with the responder gone");
    // A certificate never asked about has no cached answer: refused.
    let err = verify(&store, &pki, "revoked").await.expect_err("down");
    assert_eq!(err.code(), "ocsp_unknown", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responder_down_is_refused_quickly() {
    let bound = Bound::bind().await;
    let pki = generate(&bound.url());
    drop(bound); // nothing listens on the responder's port any more
    let store = store(&pki, config());
    let started = Instant::now();
    let err = verify(&store, &pki, "good").await.expect_err("down");
    assert_eq!(err.code(), "ocsp_unknown", "{err}");
    assert!(err.to_string().contains("cannot connect"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responder_that_never_answers_costs_at_most_the_handshake_wait() {
    // Accepts connections and reads, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/ocsp", listener.local_addr().expect("addr"));
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..16 {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            held.push(s);
        }
    });
    let pki = generate(&url);
    let wait = Duration::from_millis(800);
    let store = store(
        &pki,
        RevocationConfig {
            handshake_wait: wait,
            ..config()
        },
    );
    let started = Instant::now();
    let err = verify(&store, &pki, "good").await.expect_err("silent");
    let took = started.elapsed();
    assert_eq!(err.code(), "ocsp_unknown", "{err}");
    assert!(err.to_string().contains("in progress"), "{err}");
    assert!(
        took >= wait && took < wait + Duration::from_secs(2),
        "{took:?}"
    );
    silent.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_off_means_no_crl_is_unknown() {
    let bound = Bound::bind().await;
    let pki = generate(&bound.url());
    let responder = bound.serve(&pki, Signer::Ca, 60);
    let store = store(
        &pki,
        RevocationConfig {
            ocsp: false,
            ..config()
        },
    );
    let err = verify(&store, &pki, "good")
        .await
        .expect_err("no CRL, no OCSP");
    assert_eq!(err.code(), "revocation_unknown", "{err}");
    assert_eq!(responder.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cert_verify_reports_ocsp_codes() {
    use cmg_pki::cli::{verify_request, VerifyRequest};
    let bound = Bound::bind().await;
    let pki = generate(&bound.url());
    let _responder = bound.serve(&pki, Signer::Ca, 60);
    let request = |name: &str, ocsp: bool| VerifyRequest {
        trust: vec![pki.ca.clone()],
        intermediates: Vec::new(),
        crls: Vec::new(),
        crl_fetch: false,
        ocsp,
        time: None,
        purpose: Purpose::Client,
        name: None,
        leaf: pki.client(name).0,
    };
    // Off the async workers, as the binary and a handshake verifier run it.
    let run = |req: VerifyRequest| {
        tokio::task::spawn_blocking(move || {
            let verdict = verify_request(&req);
            serde_json::from_str::<serde_json::Value>(&verdict.json(&req)).expect("json")
        })
    };
    let good = run(request("good", true)).await.expect("join");
    assert_eq!(good["ok"], true, "{good}");
    assert_eq!(good["revocation"], "checked", "{good}");
    let revoked = run(request("revoked", true)).await.expect("join");
    assert_eq!(revoked["ok"], false, "{revoked}");
    assert_eq!(revoked["check"], "revocation", "{revoked}");
    assert_eq!(revoked["code"], "ocsp_revoked", "{revoked}");
    let unknown = run(request("unknown", true)).await.expect("join");
    assert_eq!(unknown["code"], "ocsp_unknown", "{unknown}");
    // Without --ocsp (and no CRL), revocation is not checked at all.
    let unchecked = run(request("revoked", false)).await.expect("join");
    assert_eq!(unchecked["ok"], true, "{unchecked}");
    assert_eq!(unchecked["revocation"], "not_checked", "{unchecked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_cache_answers_after_a_restart_with_the_responder_down() {
    let bound = Bound::bind().await;
    let pki = generate(&bound.url());
    let responder = bound.serve(&pki, Signer::Delegated, 60);
    let cache = tempfile::tempdir().expect("cache dir");
    let with_disk = || RevocationConfig {
        cache_dir: Some(cache.path().to_owned()),
        ..config()
    };
    let first = store(&pki, with_disk());
    verify(&first, &pki, "good").await.expect("good accepted");
    let revoked = verify(&first, &pki, "revoked").await.expect_err("revoked");
    assert_eq!(revoked.code(), "ocsp_revoked");
    drop(first);
    drop(responder);

    // A new checker (a restarted gateway) with the responder gone.
    let second = store(&pki, with_disk());
    verify(&second, &pki, "good")
        .await
        .expect("good accepted from the disk cache");
    let revoked = verify(&second, &pki, "revoked").await.expect_err("revoked");
    assert_eq!(revoked.code(), "ocsp_revoked", "{revoked}");
    let unknown = verify(&second, &pki, "unknown")
        .await
        .expect_err("never asked");
    assert_eq!(unknown.code(), "ocsp_unknown", "{unknown}");

    // A tampered cached answer is not used.
    for entry in std::fs::read_dir(cache.path().join("ocsp")).expect("ocsp dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "ocsp") {
            let mut der = std::fs::read(&path).expect("read");
            let last = der.len() - 1;
            der[last] ^= 0x55;
            std::fs::write(&path, der).expect("tamper");
        }
    }
    let third = store(&pki, with_disk());
    let err = verify(&third, &pki, "good")
        .await
        .expect_err("tampered cache");
    assert_eq!(err.code(), "ocsp_unknown", "{err}");
}
