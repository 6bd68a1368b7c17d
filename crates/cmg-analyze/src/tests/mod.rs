//! Each step's decision without a network: answers through the gateway, the server
//! certificate, the client certificate and the token.

use std::path::Path;
use std::time::SystemTime;

use bytes::Bytes;
use cmg_pki::demo::{DemoPki, DemoPkiPaths, DemoPkiSpec};
use cmg_proto::mapping::AuthKind;
use cmg_proto::settings::{ClientAuthSettings, SettingsBundle};
use cmg_proto::SiteCode;
use http::{HeaderMap, HeaderValue, StatusCode};
use rustls_pki_types::UnixTime;

use crate::*;

fn answer(status: u16, headers: &[(&'static str, &str)], body: &str) -> Result<Answer, NetError> {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(*k, HeaderValue::from_str(v).expect("header"));
    }
    Ok(Answer {
        status: StatusCode::from_u16(status).expect("status"),
        headers: h,
        body: Bytes::from(body.to_owned()),
    })
}

#[test]
fn who_answered_a_role_request() {
    let mp = RoleKind::ManagementPoint;
    let ok = role_step("r", answer(200, &[], "<MPList/>"), mp);
    assert_eq!(ok.status, Status::Pass, "{ok:?}");
    let refused = role_step(
        "r",
        answer(
            404,
            &[("cmg-error", "CMGConnector_NoMapping")],
            "no mapping",
        ),
        mp,
    );
    assert_eq!(refused.status, Status::Fail);
    assert!(
        refused.detail.contains("CMGConnector_NoMapping"),
        "{refused:?}"
    );
    assert!(refused.remedy.contains("URL mapping"), "{refused:?}");
    let gateway = role_step(
        "r",
        answer(503, &[], "503 Service Unavailable: no_connection_point\n"),
        mp,
    );
    assert_eq!(gateway.status, Status::Fail);
    assert!(
        gateway
            .detail
            .contains("the gateway refused: 503 no_connection_point"),
        "{gateway:?}"
    );
    assert!(gateway.remedy.contains("channel"), "{gateway:?}");
    let odd = role_step("r", answer(500, &[], "boom"), mp);
    assert_eq!(odd.status, Status::Warn, "{odd:?}");
    let sup = role_step("r", answer(405, &[], ""), RoleKind::SoftwareUpdatePoint);
    assert_eq!(sup.status, Status::Pass, "{sup:?}");
    let net = role_step(
        "r",
        Err(NetError::Tls(
            "received fatal alert: CertificateRevoked".into(),
        )),
        mp,
    );
    assert_eq!(net.status, Status::Fail);
    assert!(net.remedy.contains("client certificate"), "{net:?}");
    assert_eq!(
        gateway_code(&answer(401, &[], "401 Unauthorized: token_expired\n").expect("answer")),
        Some("token_expired".into())
    );
    assert_eq!(
        gateway_code(&answer(401, &[], "<html>denied</html>").expect("answer")),
        None
    );
}

#[test]
fn service_metadata_must_name_the_service_and_the_prefix() {
    let body = "<ServiceMetadata><ServiceName>cmg.test</ServiceName><Instance>gw1</Instance>\
                <Auth>MutualAuth</Auth><Version>1</Version></ServiceMetadata>";
    let ok = metadata_step(
        "m",
        answer(200, &[], body),
        "cmg.test",
        AuthKind::MutualAuth,
    );
    assert_eq!(ok.status, Status::Pass, "{ok:?}");
    assert!(ok.detail.contains("instance gw1"), "{ok:?}");
    let other = metadata_step(
        "m",
        answer(200, &[], body),
        "other.test",
        AuthKind::MutualAuth,
    );
    assert_eq!(other.status, Status::Fail, "{other:?}");
    let wrong_prefix = metadata_step(
        "m",
        answer(200, &[], body),
        "cmg.test",
        AuthKind::ServerAuth,
    );
    assert_eq!(wrong_prefix.status, Status::Fail, "{wrong_prefix:?}");
    let missing = metadata_step(
        "m",
        answer(404, &[], "404 Not Found: url_not_published"),
        "cmg.test",
        AuthKind::MutualAuth,
    );
    assert_eq!(missing.status, Status::Fail, "{missing:?}");
}

fn pki(dir: &Path) -> DemoPkiPaths {
    DemoPki::generate(&DemoPkiSpec {
        service_name: "cmg.test".into(),
        site: SiteCode::new("TST").expect("site"),
        connectors: Vec::new(),
        crl_url: None,
    })
    .expect("pki")
    .write(dir)
    .expect("write")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).expect("read")
}

fn client_auth(p: &DemoPkiPaths, verify_revocation: bool) -> ClientAuthSettings {
    ClientAuthSettings {
        trusted_roots_pem: vec![read(&p.root_ca)],
        intermediates_pem: vec![read(&p.intermediate_ca)],
        trust_list_sha256: None,
        verify_revocation,
    }
}

#[test]
fn client_certificate_decisions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = pki(dir.path());
    let auth = client_auth(&p, false);
    let steps = |cert: &Path, key: &Path, auth: &ClientAuthSettings| {
        certificate_steps(auth, &read(cert), &read(key))
    };
    let good = steps(&p.client_cert, &p.client_key, &auth);
    assert_eq!(
        (good[0].status, good[1].status),
        (Status::Pass, Status::Warn),
        "{good:?}"
    );
    assert!(good[1].detail.contains("does not verify"), "{good:?}");
    for (cert, key, code) in [
        (
            &p.untrusted_client_cert,
            &p.untrusted_client_key,
            "unknown_issuer",
        ),
        (&p.expired_client_cert, &p.expired_client_key, "expired"),
        (&p.no_eku_client_cert, &p.no_eku_client_key, "wrong_eku"),
    ] {
        let s = steps(cert, key, &auth);
        assert_eq!(s[0].name, CHAIN);
        assert_eq!(s[0].status, Status::Fail, "{s:?}");
        assert!(s[0].detail.contains(code), "{code}: {s:?}");
        assert!(!s[0].remedy.is_empty(), "{s:?}");
    }
    // A trust list that excludes the root leaves nothing trusted.
    let listed = ClientAuthSettings {
        trust_list_sha256: Some(vec!["00".repeat(32)]),
        ..auth.clone()
    };
    let s = steps(&p.client_cert, &p.client_key, &listed);
    assert_eq!(s[0].status, Status::Fail, "{s:?}");
    assert!(s[0].detail.contains("trusts no root"), "{s:?}");
    // Revocation on and no CRL to be had (no distribution point): fail-closed, as the
    // gateway refuses it.
    let s = steps(&p.client_cert, &p.client_key, &client_auth(&p, true));
    assert_eq!(s[1].name, REVOCATION);
    assert_eq!(s[1].status, Status::Fail, "{s:?}");
    assert!(
        s[1].detail.contains("revocation_unknown") || s[1].detail.contains("ocsp_unknown"),
        "{s:?}"
    );
    // A key file that is not a key.
    let s = steps(&p.client_cert, &p.client_cert, &auth);
    assert_eq!(s[0].status, Status::Fail, "{s:?}");
}

#[test]
fn server_certificate_decisions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = pki(dir.path());
    let chain = cmg_pki::pem::load_certs(&p.server_cert).expect("chain");
    let roots = cmg_pki::pem::load_certs(&p.root_ca).expect("root");
    let now = UnixTime::now();
    let ok = server_certificate_step("s", &chain, &roots, "cmg.test", now);
    assert_eq!(ok.status, Status::Pass, "{ok:?}");
    let name = server_certificate_step("s", &chain, &roots, "elsewhere.test", now);
    assert_eq!(name.status, Status::Fail, "{name:?}");
    assert!(name.detail.contains("name_mismatch"), "{name:?}");
    let other = cmg_pki::pem::load_certs(&p.untrusted_root_ca).expect("root");
    let untrusted = server_certificate_step("s", &chain, &other, "cmg.test", now);
    assert_eq!(untrusted.status, Status::Fail, "{untrusted:?}");
    assert_eq!(
        server_certificate_step("s", &[], &roots, "cmg.test", now).status,
        Status::Fail
    );
}

fn bundle(keys: Vec<String>, blocked: Vec<String>) -> SettingsBundle {
    serde_json::from_value(serde_json::json!({
        "format": 1, "site": "TST", "site_guid": "6f1c3a7e-0b5d-4c2a-9e8f-1a2b3c4d5e6f",
        "gateway": "g", "version": 1, "issued_at": 1, "service_name": "cmg.test",
        "published": [],
        "client_auth": {"trusted_roots_pem": [], "intermediates_pem": [], "verify_revocation": false},
        "tls": {"min_version": "1.2"},
        "tokens": {"oidc": [], "site_keys_pem": keys, "blocked_token_ids": blocked},
        "content": {"enabled": false}
    }))
    .expect("bundle")
}

#[test]
fn token_decisions() {
    let guid: cmg_token::SiteGuid = "6f1c3a7e-0b5d-4c2a-9e8f-1a2b3c4d5e6f"
        .parse()
        .expect("guid");
    let key = cmg_token::site::generate_key_pem().expect("key");
    let signer = cmg_token::SiteSigner::from_pem(key.as_bytes(), &guid).expect("signer");
    let issued = signer
        .issue_bulk(std::time::Duration::from_secs(3600))
        .expect("token");
    let now = SystemTime::now();
    let b = bundle(vec![signer.public_key_pem()], Vec::new());
    assert_eq!(token_step(&b, &issued.token, now).status, Status::Pass);
    let blocked = bundle(
        vec![signer.public_key_pem()],
        vec![issued.tracking_id.clone()],
    );
    let s = token_step(&blocked, &issued.token, now);
    assert_eq!(s.status, Status::Fail, "{s:?}");
    let other = cmg_token::site::generate_key_pem().expect("key");
    let other = cmg_token::SiteSigner::from_pem(other.as_bytes(), &guid).expect("signer");
    let s = token_step(
        &bundle(vec![other.public_key_pem()], Vec::new()),
        &issued.token,
        now,
    );
    assert_eq!(s.status, Status::Fail, "{s:?}");
    assert_eq!(token_step(&b, "not a token", now).status, Status::Fail);
}

mod location;
