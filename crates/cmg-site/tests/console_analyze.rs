//! The web console's connection analyzer page in memory: it runs the analyzer with an
//! uploaded certificate and key and shows the steps as text (✓ / ⚠ / ✗ with a word, not
//! colour alone), audits the run as `gateway.analyze` without the credential, keeps no
//! key material, and refuses without a session, a CSRF token or the same Origin, without
//! a credential, and with PEM that does not parse; what it echoes is escaped.

#[path = "console/harness.rs"]
mod harness;
#[allow(unused_macros)]
mod support;

use harness::{app, Browser};
use http::{Method, StatusCode};
use support::{gateway_pki, gateway_request, test_site, GatewayPki, Kind};

const PAGE: &str = "/ui/gateways/gw1/analyze";
/// A loopback port nothing listens on: the TCP step fails at once.
const NOBODY: &str = "127.0.0.1:1";

async fn site() -> (cmg_site::Store, support::TestDb, GatewayPki) {
    let (store, db) = test_site(Kind::Sqlite).await;
    let pki = gateway_pki("gw1.example.test");
    store
        .create_gateway(gateway_request("gw1", &pki), &support::admin())
        .await
        .expect("gateway");
    (store, db, pki)
}

async fn analyses(store: &cmg_site::Store) -> Vec<cmg_site::model::AuditEntry> {
    store
        .audit(1000, None)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == "gateway.analyze")
        .collect()
}

/// The base64 body of a PEM block's first line: a piece of the key that must not leak.
fn key_line(pem: &str) -> &str {
    pem.lines()
        .find(|l| !l.starts_with("-----") && l.len() > 40)
        .expect("a base64 line")
}

#[tokio::test]
async fn runs_the_analyzer_shows_text_statuses_and_audits_without_the_key() {
    let (store, db, pki) = site().await;
    let mut b = Browser::new(app(&store));
    b.sign_in("alice").await;

    let detail = b.get("/ui/gateways/gw1").await;
    assert!(detail.body.contains(r#"href="/ui/gateways/gw1/analyze""#));
    let page = b.get(PAGE).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Run the analyzer"));
    assert!(page.body.contains(r#"type="file""#), "a file upload");

    let ran = b
        .post(
            PAGE,
            &[
                ("instances", NOBODY),
                ("cert_pem", &pki.client_cert),
                ("key_pem", &pki.client_key),
                ("token", ""),
            ],
        )
        .await;
    assert_eq!(ran.status, StatusCode::OK, "{}", ran.body);
    assert!(ran.body.contains(r#"id="analysis""#), "{}", ran.body);
    // Each status is a symbol and a word beside its colour class.
    let chain_row = ran
        .body
        .split("<tr")
        .find(|r| r.contains(&format!("<td>{}</td>", cmg_analyze::CHAIN)))
        .unwrap_or_else(|| panic!("no chain row:\n{}", ran.body));
    assert!(chain_row.contains("✓ pass"), "{chain_row}");
    let tcp_row = ran
        .body
        .split("<tr")
        .find(|r| r.contains(&format!("tcp {NOBODY}")))
        .unwrap_or_else(|| panic!("no tcp row:\n{}", ran.body));
    assert!(
        tcp_row.contains("st-error") && tcp_row.contains("✗ fail"),
        "{tcp_row}"
    );
    assert!(ran.body.contains("✗ A step failed"), "the summary says so");
    // The key and certificate are not echoed into the form.
    assert!(!ran.body.contains(key_line(&pki.client_key)));
    assert!(!ran.body.contains(key_line(&pki.client_cert)));

    let runs = analyses(&store).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].actor, "web:alice");
    assert_eq!(runs[0].target, "gw1");
    assert_eq!(runs[0].detail["credential"], "certificate");
    assert_eq!(runs[0].detail["ok"], false);
    assert_eq!(runs[0].detail["instances"][0], NOBODY);
    let text = runs[0].detail.to_string();
    assert!(
        !text.contains("PRIVATE KEY") && !text.contains("CERTIFICATE"),
        "{text}"
    );
    // Nothing of the key reached the database.
    assert!(!db.sqlite_text().contains(key_line(&pki.client_key)));
}

#[tokio::test]
async fn refuses_without_session_csrf_or_origin() {
    let (store, _db, pki) = site().await;
    let fields = |csrf: String| {
        vec![
            ("csrf", csrf),
            ("instances", NOBODY.to_owned()),
            ("cert_pem", pki.client_cert.clone()),
            ("key_pem", pki.client_key.clone()),
        ]
    };
    // No session: the page sends the browser to sign in, the form is refused.
    let mut anon = Browser::new(app(&store));
    let page = anon.get(PAGE).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.header("location"), "/ui/sign-in");
    let post = anon.post_raw(PAGE, &fields("x".into())).await;
    assert_eq!(post.status, StatusCode::FORBIDDEN);

    let mut b = Browser::new(app(&store));
    b.sign_in("alice").await;
    b.get(PAGE).await;
    let good = b.csrf.clone();
    let wrong = b.post_raw(PAGE, &fields("0".repeat(64))).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(wrong.body.contains("token is wrong"), "{}", wrong.body);
    let missing = b.post_raw(PAGE, &fields(String::new())[1..]).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    b.origin = Some("https://evil.example".into());
    let foreign = b.post_raw(PAGE, &fields(good)).await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert!(foreign.body.contains("Origin"), "{}", foreign.body);
    assert!(analyses(&store).await.is_empty(), "nothing ran");
}

#[tokio::test]
async fn a_missing_or_malformed_credential_is_a_clear_error() {
    let (store, _db, pki) = site().await;
    let mut b = Browser::new(app(&store));
    b.sign_in("alice").await;
    b.get(PAGE).await;
    let bad_cert = "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n";
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "Give a client certificate and its key, or a token"),
        (
            vec![("cert_pem", bad_cert), ("key_pem", &pki.client_key)],
            "The certificate is not valid PEM",
        ),
        (
            vec![("cert_pem", "hello"), ("key_pem", &pki.client_key)],
            "The certificate",
        ),
        (
            vec![("cert_pem", &pki.client_cert), ("key_pem", "no key here")],
            "The private key is not valid PEM",
        ),
        (
            vec![("cert_pem", &pki.client_cert)],
            "A certificate needs its private key",
        ),
        (
            vec![
                ("cert_pem", &pki.client_cert),
                ("key_pem", &pki.client_key),
                ("token", "abc"),
            ],
            "not both",
        ),
    ];
    for (fields, says) in cases {
        let r = b.post(PAGE, &fields).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{fields:?}: {}", r.body);
        assert!(
            r.body.contains(says),
            "{fields:?} should say {says}:\n{}",
            r.body
        );
        assert!(!r.body.contains(r#"id="analysis""#), "nothing ran");
    }
    assert!(analyses(&store).await.is_empty());

    // An unknown gateway is a 404, with or without a credential.
    assert_eq!(
        b.get("/ui/gateways/nope/analyze").await.status,
        StatusCode::NOT_FOUND
    );
    let r = b
        .post("/ui/gateways/nope/analyze", &[("token", "abc")])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
}

#[tokio::test]
async fn what_the_page_echoes_is_escaped() {
    const X: &str = "<script>alert(1)</script>";
    let (store, _db, _pki) = site().await;
    let mut b = Browser::new(app(&store));
    b.sign_in("alice").await;
    b.get(PAGE).await;
    let r = b.post(PAGE, &[("instances", X), ("token", X)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!r.body.contains("<script>alert"), "{}", r.body);
    assert!(
        r.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        r.body
    );
    let runs = analyses(&store).await;
    assert_eq!(runs[0].detail["credential"], "token");
    // The audit page shows the run, escaped too.
    let audit = b.request(Method::GET, "/ui/audit", None).await;
    assert!(audit.body.contains("gateway.analyze"));
    assert!(!audit.body.contains("<script>alert"));
}

#[tokio::test]
async fn a_failing_run_shows_its_banner_as_a_failure() {
    let (store, _db, pki) = site().await;
    let mut b = Browser::new(app(&store));
    b.sign_in("alice").await;
    b.get(PAGE).await;
    let ran = b
        .post(
            PAGE,
            &[
                ("instances", NOBODY),
                ("cert_pem", &pki.client_cert),
                ("key_pem", &pki.client_key),
            ],
        )
        .await;
    // The analyzer ran (200), and what it found is a failure: the banner says so in the
    // error class, as the summary line does, and never in the success class.
    assert_eq!(ran.status, StatusCode::OK, "{}", ran.body);
    let banner = ran
        .body
        .split("<p ")
        .find(|p| p.contains("The analyzer ran"))
        .unwrap_or_else(|| panic!("no banner:\n{}", ran.body));
    assert!(
        banner.starts_with(r#"class="notice err" role="alert">The analyzer ran: "#),
        "{banner}"
    );
    assert!(banner.contains("step(s) failed"), "{banner}");
    assert!(!ran.body.contains(r#"class="notice ok""#), "{}", ran.body);
    assert!(
        ran.body
            .contains(r#"<p id="analysis-summary" class="summary st-error">"#),
        "{}",
        ran.body
    );
}
