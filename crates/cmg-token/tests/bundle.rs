//! Settings bundles: signed by the site key, verified by the gateway; forgeries, other
//! keys, tokens passed as bundles and bundles passed as tokens are refused.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cmg_proto::settings::{
    ClientAuthSettings, ContentSettings, SettingsBundle, TlsSettings, TokenSettings, BUNDLE_FORMAT,
};
use cmg_proto::SiteCode;
use cmg_token::site::BULK_DEFAULT_LIFETIME;
use cmg_token::{BundleError, BundleVerifier, SiteGuid, SiteSigner, SiteVerifier};
use common::fixture;

const GUID: &str = "{6F1C3A7E-0B5D-4C2A-9E8F-1A2B3C4D5E6F}";

fn guid() -> SiteGuid {
    GUID.parse().expect("guid")
}

fn signer(n: u8) -> SiteSigner {
    SiteSigner::from_pem(&fixture(&format!("site-key-{n}.pem")), &guid()).expect("signer")
}

fn verifier(keys: &[u8]) -> BundleVerifier {
    let pems: Vec<Vec<u8>> = keys
        .iter()
        .map(|n| fixture(&format!("site-key-{n}.pub.pem")))
        .collect();
    BundleVerifier::from_pems(&pems).expect("verifier")
}

fn bundle(version: u64) -> SettingsBundle {
    SettingsBundle {
        format: BUNDLE_FORMAT,
        site: SiteCode::new("DEM").expect("site"),
        site_guid: GUID.into(),
        gateway: "cmg1".into(),
        version,
        issued_at: 1_700_000_000,
        service_name: "cmg.demo.test".into(),
        published: vec![],
        client_auth: ClientAuthSettings {
            trusted_roots_pem: vec![],
            intermediates_pem: vec![],
            trust_list_sha256: None,
            verify_revocation: true,
        },
        tls: TlsSettings {
            min_version: "1.2".into(),
        },
        tokens: TokenSettings::default(),
        content: ContentSettings::default(),
        service_stopped: None,
        instances: Vec::new(),
    }
}

fn code(r: Result<SettingsBundle, BundleError>) -> &'static str {
    match r {
        Ok(b) => panic!("expected a refusal, got version {}", b.version),
        Err(e) => e.code(),
    }
}

#[test]
fn signed_bundle_round_trip_and_rollover() {
    let signed = signer(1).sign_bundle(&bundle(7)).expect("sign");
    assert_eq!(verifier(&[1]).verify(&signed).expect("verify"), bundle(7));
    // During a rollover the gateway holds both keys and accepts either.
    assert_eq!(
        verifier(&[2, 1]).verify(&signed).expect("overlap").version,
        7
    );
    assert_eq!(code(verifier(&[2]).verify(&signed)), "unknown_kid");
}

#[test]
fn tampered_payload_is_refused() {
    let signed = signer(1).sign_bundle(&bundle(7)).expect("sign");
    let parts: Vec<&str> = signed.split('.').collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
    payload["version"] = serde_json::json!(8);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).expect("json")),
        parts[2]
    );
    assert_eq!(code(verifier(&[1]).verify(&forged)), "bad_signature");
}

#[test]
fn tokens_and_bundles_are_not_interchangeable() {
    let signer = signer(1);
    let token = signer.issue_bulk(BULK_DEFAULT_LIFETIME).expect("token");
    assert_eq!(code(verifier(&[1]).verify(&token.token)), "wrong_type");

    let signed = signer.sign_bundle(&bundle(1)).expect("sign");
    let pems = [fixture("site-key-1.pub.pem")];
    let tokens = SiteVerifier::from_pems(&pems, &guid()).expect("verifier");
    let err = tokens
        .verify(&signed, &|_| false)
        .expect_err("bundle as token");
    assert_eq!(err.code(), "malformed");
}

#[test]
fn unknown_format_and_garbage_are_refused() {
    let mut b = bundle(1);
    b.format = BUNDLE_FORMAT + 1;
    let signed = signer(1).sign_bundle(&b).expect("sign");
    assert_eq!(code(verifier(&[1]).verify(&signed)), "unsupported_format");
    assert_eq!(code(verifier(&[1]).verify("")), "malformed");
    assert_eq!(code(verifier(&[1]).verify("a.b.c")), "malformed");
}

#[test]
fn instances_are_read_without_verifying() {
    let plain = signer(1).sign_bundle(&bundle(3)).expect("sign");
    assert_eq!(cmg_token::bundle::peek_instances(&plain), Some(vec![]));
    let mut b = bundle(4);
    b.instances = vec![cmg_proto::settings::InstanceAddrs {
        name: "cmg1-1".into(),
        channel: vec![
            "gw-1.contoso.test:10140".into(),
            "gw-1.contoso.test:443".into(),
        ],
    }];
    let signed = signer(1).sign_bundle(&b).expect("sign");
    assert_eq!(
        cmg_token::bundle::peek_instances(&signed),
        Some(b.instances.clone())
    );
    assert_eq!(
        verifier(&[1]).verify(&signed).expect("verify").instances,
        b.instances
    );
    assert_eq!(cmg_token::bundle::peek_instances("not.a.bundle"), None);
}
