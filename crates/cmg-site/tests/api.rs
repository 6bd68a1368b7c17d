//! The site API over HTTPS on loopback: admin authentication and refusals, the API
//! document (committed copy, served copy, every operation routed), and the publishing
//! API (connection point certificate, long poll).

#[macro_use]
mod support;

use std::time::Duration;

use cmg_test_support::eventually;
use cmg_token::BundleVerifier;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use support::{gateway_body, gateway_pki, spawn_site, Kind, Site};

async fn audit_len(site: &Site) -> usize {
    site.store.audit(1000, None).await.expect("audit").len()
}

/// The committed `openapi.json` is the generated document; `CMG_WRITE_OPENAPI=1` rewrites
/// it (then review the diff).
#[test]
fn committed_openapi_is_the_generated_one() {
    let generated =
        serde_json::to_string_pretty(&cmg_site::api::openapi()).expect("document") + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    if std::env::var_os("CMG_WRITE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write openapi.json");
    }
    let committed = std::fs::read_to_string(&path).expect("openapi.json");
    assert!(
        committed == generated,
        "crates/cmg-site/openapi.json differs from the generated document; \
         rerun this test with CMG_WRITE_OPENAPI=1 and commit the file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_is_served_and_every_operation_is_routed() {
    let doc = serde_json::to_value(cmg_site::api::openapi()).expect("document");
    let site = spawn_site(Kind::Sqlite).await;
    // Served without the admin token, equal to the generated one.
    let reply = site
        .anonymous()
        .call(Method::GET, "/api/v1/openapi.json", None)
        .await
        .expect("call");
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), doc);

    // Each documented operation answers with its own handler's answer, never "no such
    // path" or "wrong method", and documents the status it answered with.
    let client = site.admin();
    let seq_before = site.store.site().await.expect("site").change_seq;
    let mut operations = 0;
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("operations") {
            operations += 1;
            let concrete = path.replace("{name}", "nope").replace("{id}", "0");
            let reply = client
                .call(
                    method.to_ascii_uppercase().parse().expect("method"),
                    &concrete,
                    None,
                )
                .await
                .expect("call");
            let code = reply.json()["error"].as_str().unwrap_or("").to_owned();
            assert!(
                code != "no_route" && code != "method_not_allowed",
                "{method} {path}: {} {}",
                reply.status,
                reply.text()
            );
            assert!(
                op["responses"].get(reply.status.as_str()).is_some(),
                "{method} {path}: {} is not documented",
                reply.status
            );
        }
    }
    assert_eq!(operations, 51);
    // The probe changed nothing.
    assert_eq!(
        site.store.site().await.expect("site").change_seq,
        seq_before
    );
    let reply = client
        .call(Method::GET, "/api/v1/nowhere", None)
        .await
        .expect("call");
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["error"], "no_route");
}

both!(admin_refusals_are_clear_and_change_nothing);
async fn admin_refusals_are_clear_and_change_nothing(kind: Kind) {
    let site = spawn_site(kind).await;
    let pki = gateway_pki("cmg.contoso.test");
    let good = gateway_body("gw1", &pki);
    let before = audit_len(&site).await;

    let r = site
        .anonymous()
        .call(Method::POST, "/api/v1/gateways", Some(&good))
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"], "admin_token_required");
    let r = site
        .anonymous()
        .call(Method::GET, "/api/v1/audit", None)
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = site
        .with_token("wrong")
        .call(Method::POST, "/api/v1/gateways", Some(&good))
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"], "bad_admin_token");

    let admin = site.admin();
    let r = admin
        .raw(
            Method::POST,
            "/api/v1/gateways",
            Some("application/json"),
            b"{\"name\": ".to_vec(),
        )
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], "bad_json");
    assert!(r.json()["message"].as_str().is_some_and(|m| !m.is_empty()));

    let mut unknown = good.clone();
    unknown["surprise"] = json!(true);
    let r = admin
        .call(Method::POST, "/api/v1/gateways", Some(&unknown))
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], "invalid_body");
    assert!(r.text().contains("surprise"), "{}", r.text());

    let mut huge = good.clone();
    huge["region"] = json!("x".repeat(2 << 20));
    let r = admin
        .call(Method::POST, "/api/v1/gateways", Some(&huge))
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.json()["error"], "body_too_large");
    // The server closes a connection whose body it refused unread: go on with a new client.
    let admin = site.admin();

    let r = admin
        .raw(
            Method::POST,
            "/api/v1/gateways",
            Some("text/plain"),
            good.to_string().into_bytes(),
        )
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let mut bad = good.clone();
    bad["instances"] = json!(17);
    let r = admin
        .call(Method::POST, "/api/v1/gateways", Some(&bad))
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], "bad_instances");

    // Nothing changed.
    assert_eq!(audit_len(&site).await, before);
    assert!(site.store.gateways().await.expect("list").is_empty());

    // The good request works, is audited with the admin's name, and a bad modify leaves
    // the version alone.
    let r = admin
        .call(Method::POST, "/api/v1/gateways", Some(&good))
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["settings_version"], 1);
    let r = admin
        .call(
            Method::PATCH,
            "/api/v1/gateways/gw1",
            Some(&json!({"instances": 0})),
        )
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = admin
        .call(
            Method::PATCH,
            "/api/v1/gateways/gw1",
            Some(&json!({"instancez": 3})),
        )
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(site.store.settings_version("gw1").await.expect("v"), 1);
    let r = admin
        .call(Method::GET, "/api/v1/audit?limit=1", None)
        .await
        .expect("call");
    assert_eq!(r.json()[0]["action"], "gateway.create");
    assert_eq!(r.json()[0]["actor"], "admin:tester");

    // Last gateway: refused with a reason, then forced.
    let r = admin
        .call(Method::DELETE, "/api/v1/gateways/gw1", None)
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.json()["error"], "last_gateway");
    let r = admin
        .call(Method::DELETE, "/api/v1/gateways/gw1?force=yes", None)
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = admin
        .call(Method::DELETE, "/api/v1/gateways/gw1?force=true", None)
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

both!(publishing_needs_the_connection_point_certificate_and_long_polls);
async fn publishing_needs_the_connection_point_certificate_and_long_polls(kind: Kind) {
    let site = spawn_site(kind).await;
    let pki = gateway_pki("cmg.contoso.test");
    let admin = site.admin();
    for name in ["gw1", "gw2"] {
        let r = admin
            .call(
                Method::POST,
                "/api/v1/gateways",
                Some(&gateway_body(name, &pki)),
            )
            .await
            .expect("call");
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
    let r = admin
        .call(
            Method::POST,
            "/api/v1/roles",
            Some(
                &json!({"role_id": "72057594037927939", "kind": "management_point",
                         "internal_url": "http://mp01.corp.example", "mode": "http",
                         "allow_gateway_traffic": true}),
            ),
        )
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let add = |gw: &str, id: &str| {
        let admin = admin.clone();
        let body = json!({"gateway": gw, "id": id});
        async move {
            let r = admin
                .call(Method::POST, "/api/v1/connection-points", Some(&body))
                .await
                .expect("call");
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
            r.json()
        }
    };
    let cp1 = add("gw1", "cp1").await;
    let cp2 = add("gw2", "cp2").await;
    let cp = site.with_cert(
        cp1["cert_pem"].as_str().expect("cert"),
        cp1["key_pem"].as_str().expect("key"),
    );

    // No certificate; another CA's certificate; a connection point of another gateway.
    let path = "/api/v1/publish/gateways/gw1/bundle";
    let r = site
        .anonymous()
        .call(Method::GET, path, None)
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"], "client_certificate_required");
    let client_cert = std::fs::read_to_string(pki.dir.path().join("client.pem")).expect("pem");
    let client_key = std::fs::read_to_string(pki.dir.path().join("client.key")).expect("key");
    // A client certificate of the gateway's trusted roots passes the handshake (the
    // location service takes it) but is no connection point.
    let r = site
        .with_cert(&client_cert, &client_key)
        .call(Method::GET, path, None)
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"], "not_a_connection_point");
    let untrusted_cert =
        std::fs::read_to_string(pki.dir.path().join("client-untrusted.pem")).expect("pem");
    let untrusted_key =
        std::fs::read_to_string(pki.dir.path().join("client-untrusted.key")).expect("key");
    assert!(
        site.with_cert(&untrusted_cert, &untrusted_key)
            .call(Method::GET, path, None)
            .await
            .is_err(),
        "a certificate from a CA nobody trusts fails the handshake"
    );
    let other = site.with_cert(
        cp2["cert_pem"].as_str().expect("cert"),
        cp2["key_pem"].as_str().expect("key"),
    );
    let r = other.call(Method::GET, path, None).await.expect("call");
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"], "wrong_gateway");

    // The bundle, at once.
    let r = cp
        .call(Method::GET, &format!("{path}?after=0"), None)
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let version: u64 = r.headers["cmg-settings-version"]
        .to_str()
        .expect("h")
        .parse()
        .expect("v");
    let keys = site.store.keys().await.expect("keys");
    let verifier = BundleVerifier::from_pems(&[keys[0].public_pem.as_bytes()]).expect("verifier");
    let bundle = verifier.verify(&r.text()).expect("verify");
    assert_eq!(bundle.version, version);
    assert_eq!(bundle.gateway, "gw1");
    assert_eq!(
        bundle.published.len(),
        6,
        "the management point's six endpoints"
    );

    // Nothing newer: 204 after the wait.
    let r = cp
        .call(Method::GET, &format!("{path}?after={version}&wait=1"), None)
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    // A long poll returns when a change lands: made once the poll waits on the store.
    let listening = site.store.subscribers();
    let poll = {
        let cp = cp.clone();
        let p = format!("{path}?after={version}");
        tokio::spawn(async move {
            let t = std::time::Instant::now();
            (
                cp.call(Method::GET, &p, None).await.expect("call"),
                t.elapsed(),
            )
        })
    };
    eventually("the long poll to wait on the store's changes")
        .until(|| site.store.subscribers(), |n| *n > listening)
        .await;
    let r = admin
        .call(
            Method::PATCH,
            "/api/v1/gateways/gw1",
            Some(&json!({"verify_revocation": false})),
        )
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let (r, took) = tokio::time::timeout(Duration::from_secs(8), poll)
        .await
        .expect("long poll answered")
        .expect("task");
    assert_eq!(r.status, StatusCode::OK);
    assert!(took < Duration::from_secs(5), "{took:?}");
    let newer = verifier.verify(&r.text()).expect("verify");
    assert_eq!(newer.version, version + 1);
    assert!(!newer.client_auth.verify_revocation);

    // The mappings for the connection point.
    let r = cp
        .call(Method::GET, "/api/v1/publish/gateways/gw1/mappings", None)
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["mappings"].as_array().expect("list").len(), 6);
    assert_eq!(
        r.json()["mappings"][0]["internal"],
        "http://mp01.corp.example/CCM_System"
    );

    // A removed connection point is refused.
    let r = admin
        .call(Method::DELETE, "/api/v1/connection-points/cp1", None)
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = cp.call(Method::GET, path, None).await.expect("call");
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"], "not_a_connection_point");

    // A poll parked when the site starts stopping is answered 204 at once: the site's
    // drain does not wait out the long polls (30 s here).
    let path2 = "/api/v1/publish/gateways/gw2/bundle";
    let r = other
        .call(Method::GET, &format!("{path2}?after=0"), None)
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v2 = r.headers["cmg-settings-version"]
        .to_str()
        .expect("h")
        .to_owned();
    let listening = site.store.subscribers();
    let parked = tokio::spawn(async move {
        let t = std::time::Instant::now();
        let r = other
            .call(Method::GET, &format!("{path2}?after={v2}"), None)
            .await
            .expect("call");
        (r, t.elapsed())
    });
    eventually("the poll to wait on the store's changes")
        .until(|| site.store.subscribers(), |n| *n > listening)
        .await;
    site.shutdown.token.cancel();
    let (r, took) = tokio::time::timeout(Duration::from_secs(8), parked)
        .await
        .expect("the parked poll answered when the site stopped")
        .expect("task");
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(took < Duration::from_secs(8), "{took:?}");
}

/// The token service: a bulk token registers a device, the device token renews itself;
/// every misuse is refused with the right status and issues nothing.
async fn sts_registers_and_renews_device_tokens(kind: Kind) {
    let site = spawn_site(kind).await;
    let admin = site.admin();
    let r = admin
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&json!({"lifetime_minutes": 60})),
        )
        .await
        .expect("new token");
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let bulk = r.json()["token"].as_str().expect("token").to_owned();
    let bulk_id = r.json()["tracking_id"].as_str().expect("id").to_owned();
    let verifier = support::site_token_verifier(&site.store).await;
    let sts = |t: &str| site.with_token(t);
    let audit_before = audit_len(&site).await;

    // Register device-1 with the bulk token.
    let r = sts(&bulk)
        .call(
            Method::POST,
            "/api/v1/sts/token",
            Some(&json!({"device_id": "device-1"})),
        )
        .await
        .expect("register");
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let first = r.json()["token"].as_str().expect("token").to_owned();
    let t = verifier
        .verify(&first, &|_| false)
        .expect("a valid device token");
    assert_eq!(t.kind, cmg_token::site::TokenKind::Device);
    assert_eq!(t.subject.as_deref(), Some("device-1"));

    // The device token renews itself (empty body): same device, a new tracking ID.
    let r = sts(&first)
        .raw(Method::POST, "/api/v1/sts/token", None, Vec::new())
        .await
        .expect("renew");
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let renewed = verifier
        .verify(r.json()["token"].as_str().expect("token"), &|_| false)
        .expect("valid");
    assert_eq!(renewed.subject.as_deref(), Some("device-1"));
    assert_ne!(renewed.tracking_id, t.tracking_id);
    assert!(renewed.expires_at >= t.expires_at);
    assert_eq!(audit_len(&site).await, audit_before + 2);

    // Refusals: nothing issued, nothing audited.
    let cases: Vec<(Option<&str>, Value, StatusCode, &str)> = vec![
        (
            None,
            json!({"device_id": "d"}),
            StatusCode::UNAUTHORIZED,
            "token_missing",
        ),
        (
            Some("garbage"),
            json!({}),
            StatusCode::UNAUTHORIZED,
            "malformed",
        ),
        (
            Some(&bulk),
            json!({}),
            StatusCode::BAD_REQUEST,
            "device_id_required",
        ),
        (
            Some(&first),
            json!({"device_id": "device-2"}),
            StatusCode::BAD_REQUEST,
            "device_mismatch",
        ),
        (
            Some(&bulk),
            json!({"device_id": "d", "admin": true}),
            StatusCode::BAD_REQUEST,
            "bad_json",
        ),
        (
            Some(&bulk),
            json!({"device_id": ""}),
            StatusCode::BAD_REQUEST,
            "bad_device_id",
        ),
        (
            Some(support::ADMIN_TOKEN),
            json!({"device_id": "d"}),
            StatusCode::UNAUTHORIZED,
            "malformed",
        ),
    ];
    for (token, body, status, code) in cases {
        let client = match token {
            Some(t) => sts(t),
            None => site.anonymous(),
        };
        let r = client
            .call(Method::POST, "/api/v1/sts/token", Some(&body))
            .await
            .expect("call");
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert_eq!(r.json()["error"], code, "{body}: {}", r.text());
        if status == StatusCode::UNAUTHORIZED {
            let challenge = r.headers[http::header::WWW_AUTHENTICATE]
                .to_str()
                .expect("ascii");
            assert!(challenge.contains(code), "{challenge}");
        }
    }
    // A blocked bulk token registers nothing.
    let r = admin
        .call(
            Method::POST,
            &format!("/api/v1/tokens/{bulk_id}/block"),
            None,
        )
        .await
        .expect("block");
    assert!(r.status.is_success(), "{}", r.text());
    let audit_blocked = audit_len(&site).await;
    let r = sts(&bulk)
        .call(
            Method::POST,
            "/api/v1/sts/token",
            Some(&json!({"device_id": "device-3"})),
        )
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(r.json()["error"], "token_blocked");
    assert_eq!(audit_len(&site).await, audit_blocked);
}
both!(sts_registers_and_renews_device_tokens);
