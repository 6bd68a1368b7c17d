//! Location answers: signed by the site key, verified by the client; tampered,
//! oversized, malformed, foreign-typed, other-site, expired and future answers are
//! refused, each with its own error, and tokens, bundles and answers never pass for
//! one another.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cmg_proto::device::{
    CandidateList, ClientAuth, ClientSettingsInForce, LocationAnswer, LocationCandidate, Via,
    LOCATION_FORMAT, MAX_LOCATION_ANSWER_BYTES,
};
use cmg_proto::location::{CandidateKind, Locality};
use cmg_proto::SiteCode;
use cmg_token::site::BULK_DEFAULT_LIFETIME;
use cmg_token::{
    BundleVerifier, LocationError, LocationVerifier, SiteGuid, SiteSigner, SiteVerifier,
};
use common::fixture;

const NOW: u64 = 1_800_000_000;

fn guid() -> SiteGuid {
    "6f1c3a7e-0b5d-4c2a-9e8f-1a2b3c4d5e6f"
        .parse()
        .expect("guid")
}

fn signer(n: u8) -> SiteSigner {
    SiteSigner::from_pem(&fixture(&format!("site-key-{n}.pem")), &guid()).expect("signer")
}

fn site(code: &str) -> SiteCode {
    SiteCode::new(code).expect("site")
}

fn verifier(n: u8) -> LocationVerifier {
    let pem = String::from_utf8(fixture(&format!("site-key-{n}.pub.pem"))).expect("utf8");
    LocationVerifier::from_pem_file_text(&pem, site("PS1")).expect("verifier")
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn answer() -> LocationAnswer {
    LocationAnswer {
        format: LOCATION_FORMAT,
        site: site("PS1"),
        issued_at: NOW,
        expires_at: NOW + 7 * 86_400,
        client: "dev-1".into(),
        auth: ClientAuth::Certificate,
        via: Via::Intranet,
        boundary_groups: vec!["paris".into()],
        candidates: vec![LocationCandidate {
            list: Some(CandidateList::Intranet),
            kind: CandidateKind::Intranet,
            name: "mp1".into(),
            url: "https://mp1.corp.example".into(),
            locality: Locality::CurrentGroup,
            auth: ClientAuth::Certificate,
        }],
        client_settings: ClientSettingsInForce {
            enable_cmg: true,
            allow_cloud_dp: true,
            policy_interval_secs: 3600,
        },
        content: None,
        site_keys_pem: vec![],
    }
}

fn code(r: Result<LocationAnswer, LocationError>) -> &'static str {
    r.expect_err("refused").code()
}

#[test]
fn a_signed_answer_verifies_and_round_trips() {
    let signed = signer(1).sign_location(&answer()).expect("sign");
    let got = verifier(1)
        .verify_at(&signed, at(NOW + 60))
        .expect("verify");
    assert_eq!(got, answer());
    // A file with several keys (the enrolment file during a rollover) trusts each.
    let both = format!(
        "{}{}",
        String::from_utf8(fixture("site-key-2.pub.pem")).expect("utf8"),
        String::from_utf8(fixture("site-key-1.pub.pem")).expect("utf8")
    );
    let v = LocationVerifier::from_pem_file_text(&both, site("PS1")).expect("two keys");
    v.verify_at(&signed, at(NOW))
        .expect("second key of the file");
}

#[test]
fn tampered_and_foreign_keys_are_refused() {
    let signed = signer(1).sign_location(&answer()).expect("sign");
    let mut parts: Vec<String> = signed.split('.').map(str::to_owned).collect();
    let mut forged = answer();
    forged.candidates[0].url = "https://evil.example".into();
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).expect("json"));
    let tampered = parts.join(".");
    assert_eq!(
        code(verifier(1).verify_at(&tampered, at(NOW))),
        "bad_signature"
    );

    let other_key = signer(2).sign_location(&answer()).expect("sign");
    assert_eq!(
        code(verifier(1).verify_at(&other_key, at(NOW))),
        "unknown_kid"
    );
}

#[test]
fn oversized_and_malformed_answers_are_refused() {
    let big = "A".repeat(MAX_LOCATION_ANSWER_BYTES + 1);
    assert!(matches!(
        verifier(1).verify_at(&big, at(NOW)),
        Err(LocationError::TooLarge(n)) if n == MAX_LOCATION_ANSWER_BYTES + 1
    ));
    for bad in ["", "a.b", "a.b.c", "not a jws at all"] {
        assert_eq!(
            code(verifier(1).verify_at(bad, at(NOW))),
            "malformed",
            "{bad:?}"
        );
    }
}

#[test]
fn other_site_expired_and_future_answers_are_refused() {
    let mut other = answer();
    other.site = site("XYZ");
    let signed = signer(1).sign_location(&other).expect("sign");
    assert!(matches!(
        verifier(1).verify_at(&signed, at(NOW)),
        Err(LocationError::OtherSite { expected, got }) if expected.as_str() == "PS1" && got.as_str() == "XYZ"
    ));

    let signed = signer(1).sign_location(&answer()).expect("sign");
    let after = answer().expires_at + 301;
    assert_eq!(code(verifier(1).verify_at(&signed, at(after))), "expired");
    assert_eq!(
        code(verifier(1).verify_at(&signed, at(NOW - 301))),
        "not_yet_valid"
    );
    verifier(1)
        .verify_at(&signed, at(NOW - 299))
        .expect("within the clock skew");

    let mut newer = answer();
    newer.format = LOCATION_FORMAT + 1;
    let signed = signer(1).sign_location(&newer).expect("sign");
    assert_eq!(
        code(verifier(1).verify_at(&signed, at(NOW))),
        "unsupported_format"
    );
}

#[test]
fn format_2_candidates_carry_their_list_and_format_1_answers_still_verify() {
    let signed = signer(1).sign_location(&answer()).expect("sign");
    let got = verifier(1).verify_at(&signed, at(NOW)).expect("format 2");
    assert_eq!(got.format, 2);
    assert_eq!(
        got.candidates_in(CandidateList::Intranet).count(),
        1,
        "{got:?}"
    );

    // Format 2 with a candidate whose list is not said: not an answer.
    let mut untagged = answer();
    untagged.candidates[0].list = None;
    let signed = signer(1).sign_location(&untagged).expect("sign");
    let e = verifier(1)
        .verify_at(&signed, at(NOW))
        .expect_err("untagged");
    assert_eq!(e.code(), "bad_content", "{e}");
    assert!(e.to_string().contains("has no `list`"), "{e}");

    // Format 1 (before the tag), as a client may hold one from an older site.
    let mut old = answer();
    old.format = 1;
    old.candidates[0].list = None;
    let signed = signer(1).sign_location(&old).expect("sign");
    let got = verifier(1).verify_at(&signed, at(NOW)).expect("format 1");
    assert_eq!(
        got.candidates_in(CandidateList::Intranet)
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["mp1"]
    );
}

#[test]
fn answers_tokens_and_bundles_are_not_interchangeable() {
    let signer = signer(1);
    let token = signer.issue_bulk(BULK_DEFAULT_LIFETIME).expect("token");
    assert_eq!(
        code(verifier(1).verify_at(&token.token, at(NOW))),
        "wrong_type"
    );

    let signed = signer.sign_location(&answer()).expect("sign");
    let pems = [fixture("site-key-1.pub.pem")];
    let tokens = SiteVerifier::from_pems(&pems, &guid()).expect("verifier");
    let err = tokens
        .verify(&signed, &|_| false)
        .expect_err("answer as token");
    assert_eq!(err.code(), "malformed");
    let bundles = BundleVerifier::from_pems(&pems).expect("bundles");
    assert_eq!(
        bundles
            .verify(&signed)
            .expect_err("answer as bundle")
            .code(),
        "wrong_type"
    );
}

#[test]
fn a_payload_that_is_not_an_answer_is_refused() {
    // Signed by the right key with the right type, but not an answer.
    let signer = signer(1);
    let mut v = serde_json::to_value(answer()).expect("json");
    v["candidates"] = serde_json::json!("everything");
    let signed = sign_raw(&signer, &v);
    assert_eq!(code(verifier(1).verify_at(&signed, at(NOW))), "bad_content");
    let mut v = serde_json::to_value(answer()).expect("json");
    v["extra"] = serde_json::json!(1);
    let signed = sign_raw(&signer, &v);
    assert_eq!(code(verifier(1).verify_at(&signed, at(NOW))), "bad_content");
}

/// Signs any JSON as a location answer (the signer's typ and kid): a stand-in for a
/// site that sends something it should not.
fn sign_raw(signer: &SiteSigner, payload: &serde_json::Value) -> String {
    // The header of a real answer (its typ and kid), over a payload of our choosing,
    // signed with the same key.
    let good = signer.sign_location(&answer()).expect("sign");
    let header_b64 = good.split('.').next().expect("header");
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_b64).expect("b64")).expect("json");
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = header["kid"].as_str().map(str::to_owned);
    h.typ = header["typ"].as_str().map(str::to_owned);
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&fixture("site-key-1.pem")).expect("key");
    jsonwebtoken::encode(&h, payload, &key).expect("encode")
}
