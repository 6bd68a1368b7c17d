//! Site-issued tokens: issue and verify, lifetimes, expiry, block list, key rollover and
//! forgeries.

mod common;

use std::time::{Duration, SystemTime};

use cmg_token::site::{
    BULK_DEFAULT_LIFETIME, BULK_MAX_LIFETIME, DEVICE_DEFAULT_LIFETIME, SERVICE_AUDIENCE,
};
use cmg_token::{SiteGuid, SitePublicKey, SiteSigner, SiteVerifier, TokenError, TokenKind};
use common::fixture;

const GUID: &str = "{6F1C3A7E-0B5D-4C2A-9E8F-1A2B3C4D5E6F}";

fn guid() -> SiteGuid {
    GUID.parse().expect("guid")
}

fn signer(n: u8) -> SiteSigner {
    SiteSigner::from_pem(&fixture(&format!("site-key-{n}.pem")), &guid()).expect("signer")
}

fn verifier(keys: &[u8]) -> SiteVerifier {
    let pems: Vec<Vec<u8>> = keys
        .iter()
        .map(|n| fixture(&format!("site-key-{n}.pub.pem")))
        .collect();
    SiteVerifier::from_pems(&pems, &guid()).expect("verifier")
}

fn never_blocked(_: &str) -> bool {
    false
}

fn code(r: Result<cmg_token::SiteToken, TokenError>) -> &'static str {
    match r {
        Ok(t) => panic!("expected a refusal, got {t:?}"),
        Err(e) => e.code(),
    }
}

#[test]
fn bulk_token_round_trip() {
    let issued = signer(1).issue_bulk(BULK_DEFAULT_LIFETIME).expect("issue");
    assert_eq!(issued.kind, TokenKind::BulkRegistration);
    let id = &issued.tracking_id;
    assert_eq!(id.len(), 36, "uuid-like tracking id: {id}");
    assert_eq!(id.matches('-').count(), 4);
    assert_eq!(id.as_bytes()[14], b'4', "version 4: {id}");

    let claims = common::payload(&issued.token);
    assert_eq!(
        claims["iss"],
        "urn:sccm:oauth2:6f1c3a7e-0b5d-4c2a-9e8f-1a2b3c4d5e6f"
    );
    assert_eq!(claims["aud"], SERVICE_AUDIENCE);
    assert_eq!(claims["token_type"], "BulkRegistration");
    assert_eq!(claims["jti"], id.as_str());
    let (iat, nbf, exp) = (
        claims["iat"].as_u64().expect("iat"),
        claims["nbf"].as_u64().expect("nbf"),
        claims["exp"].as_u64().expect("exp"),
    );
    assert_eq!(nbf, iat);
    assert_eq!(exp - iat, 3 * 24 * 3600);

    let token = verifier(&[1])
        .verify(&issued.token, &never_blocked)
        .expect("verify");
    assert_eq!(token.kind, TokenKind::BulkRegistration);
    assert_eq!(&token.tracking_id, id);
    assert_eq!(token.subject, None);
    assert_eq!(token.expires_at, issued.expires_at);
}

#[test]
fn device_token_round_trip() {
    let issued = signer(1)
        .issue_device("GUID:1234-device", DEVICE_DEFAULT_LIFETIME)
        .expect("issue");
    let token = verifier(&[1])
        .verify(&issued.token, &never_blocked)
        .expect("verify");
    assert_eq!(token.kind, TokenKind::Device);
    assert_eq!(token.subject.as_deref(), Some("GUID:1234-device"));
    let left = token
        .expires_at
        .duration_since(SystemTime::now())
        .expect("future");
    assert!(left > Duration::from_secs(89 * 24 * 3600), "{left:?}");
}

#[test]
fn lifetimes_outside_the_range_are_refused() {
    let s = signer(1);
    assert!(s.issue_bulk(BULK_MAX_LIFETIME).is_ok());
    let too_long = s.issue_bulk(BULK_MAX_LIFETIME + Duration::from_secs(1));
    assert_eq!(
        too_long.expect_err("8 days").code(),
        "lifetime_out_of_range"
    );
    let too_short = s.issue_bulk(Duration::from_secs(5));
    assert_eq!(too_short.expect_err("5 s").code(), "lifetime_out_of_range");
    let device = s.issue_device("d", DEVICE_DEFAULT_LIFETIME + Duration::from_secs(3600));
    assert_eq!(device.expect_err("91 days").code(), "lifetime_out_of_range");
    assert_eq!(
        s.issue_device("", DEVICE_DEFAULT_LIFETIME)
            .expect_err("empty device id")
            .code(),
        "config_invalid"
    );
}

#[test]
fn expired_and_not_yet_valid() {
    let issued = signer(1)
        .issue_bulk(Duration::from_secs(3600))
        .expect("issue");
    let v = verifier(&[1]);
    let now = SystemTime::now();
    // Within the 60 s skew either side: accepted.
    assert!(v
        .verify_at(
            &issued.token,
            now + Duration::from_secs(3630),
            &never_blocked
        )
        .is_ok());
    assert!(v
        .verify_at(&issued.token, now - Duration::from_secs(30), &never_blocked)
        .is_ok());
    assert_eq!(
        code(v.verify_at(
            &issued.token,
            now + Duration::from_secs(7200),
            &never_blocked
        )),
        "token_expired"
    );
    assert_eq!(
        code(v.verify_at(
            &issued.token,
            now - Duration::from_secs(600),
            &never_blocked
        )),
        "token_not_yet_valid"
    );
}

#[test]
fn blocked_tracking_id_is_refused() {
    let s = signer(1);
    let blocked = s.issue_bulk(BULK_DEFAULT_LIFETIME).expect("issue");
    let other = s.issue_bulk(BULK_DEFAULT_LIFETIME).expect("issue");
    let list = [blocked.tracking_id.clone()];
    let is_blocked = |jti: &str| list.iter().any(|b| b == jti);
    let v = verifier(&[1]);
    let err = v.verify(&blocked.token, &is_blocked).expect_err("blocked");
    assert_eq!(err.code(), "token_blocked");
    assert_eq!(err.reason(), "CMGService_Invalid_Token/token_blocked");
    assert!(v.verify(&other.token, &is_blocked).is_ok());
}

#[test]
fn key_rollover_overlap() {
    let (old, new) = (signer(1), signer(2));
    assert_ne!(old.public_key().kid(), new.public_key().kid());
    let t_old = old.issue_bulk(BULK_DEFAULT_LIFETIME).expect("issue");
    let t_new = new.issue_bulk(BULK_DEFAULT_LIFETIME).expect("issue");

    // During the overlap both keys are trusted.
    let both = verifier(&[1, 2]);
    assert!(both.verify(&t_old.token, &never_blocked).is_ok());
    assert!(both.verify(&t_new.token, &never_blocked).is_ok());

    // After it, the old key's tokens are refused.
    let only_new = verifier(&[2]);
    assert!(only_new.verify(&t_new.token, &never_blocked).is_ok());
    assert_eq!(
        code(only_new.verify(&t_old.token, &never_blocked)),
        "unknown_kid"
    );

    // The signer derives the same key id as the public PEM.
    let from_pem = SitePublicKey::from_pem(&fixture("site-key-1.pub.pem")).expect("pem");
    assert_eq!(from_pem.kid(), old.public_key().kid());
    let from_signer = SiteVerifier::new(vec![old.public_key()], &guid()).expect("verifier");
    assert!(from_signer.verify(&t_old.token, &never_blocked).is_ok());
}

#[test]
fn wrong_site_and_tampering_are_refused() {
    let issued = signer(1).issue_bulk(BULK_DEFAULT_LIFETIME).expect("issue");
    let other_site: SiteGuid = "00000000-0000-0000-0000-000000000001"
        .parse()
        .expect("guid");
    let pems = [fixture("site-key-1.pub.pem")];
    let other = SiteVerifier::from_pems(&pems, &other_site).expect("verifier");
    assert_eq!(
        code(other.verify(&issued.token, &never_blocked)),
        "bad_issuer"
    );

    let mut claims = common::payload(&issued.token);
    claims["token_type"] = "Device".into();
    claims["sub"] = "someone-else".into();
    let tampered = common::with_payload(&issued.token, &claims);
    assert_eq!(
        code(verifier(&[1]).verify(&tampered, &never_blocked)),
        "bad_signature"
    );
}

#[test]
fn alg_none_and_hmac_with_the_public_key_are_refused() {
    let issued = signer(1).issue_bulk(BULK_DEFAULT_LIFETIME).expect("issue");
    let claims = common::payload(&issued.token);
    let kid = signer(1).public_key().kid().to_owned();
    let v = verifier(&[1]);

    let none = common::alg_none(&claims, Some(&kid));
    assert_eq!(code(v.verify(&none, &never_blocked)), "unsupported_alg");

    let forged = common::hs256_with_secret(&claims, &fixture("site-key-1.pub.pem"), Some(&kid));
    let err = v.verify(&forged, &never_blocked).expect_err("HS256");
    assert_eq!(err.code(), "unsupported_alg");
    // The refusal never carries the token.
    assert!(!err.to_string().contains(&forged));
    assert!(!format!("{err:?}").contains(&forged));
}

#[test]
fn issued_token_debug_is_masked() {
    let issued = signer(1).issue_bulk(BULK_DEFAULT_LIFETIME).expect("issue");
    let debug = format!("{issued:?}");
    assert!(!debug.contains(&issued.token));
    assert!(debug.contains(&issued.tracking_id));
}

#[test]
fn weak_or_wrong_keys_are_refused() {
    let err = SiteSigner::from_pem(&fixture("rsa-1024.pem"), &guid()).expect_err("1024 bits");
    assert_eq!(err.code(), "key_invalid");
    let err = SiteSigner::from_pem(&fixture("ec-p256.pem"), &guid()).expect_err("EC key");
    assert_eq!(err.code(), "key_invalid");
    let err = SiteSigner::from_pem(b"not a key", &guid()).expect_err("garbage");
    assert_eq!(err.code(), "key_invalid");
    assert!("not-a-guid".parse::<SiteGuid>().is_err());
    let empty: [&[u8]; 0] = [];
    assert!(SiteVerifier::from_pems(&empty, &guid()).is_err());
}

#[test]
fn generated_key_signs_and_its_public_pem_verifies() {
    let pem = cmg_token::site::generate_key_pem().expect("generate");
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let generated = SiteSigner::from_pem(pem.as_bytes(), &guid()).expect("signer");
    let public = generated.public_key_pem();
    let verifier = SiteVerifier::from_pems(&[public.as_bytes()], &guid()).expect("verifier");
    let issued = generated.issue_bulk(BULK_DEFAULT_LIFETIME).expect("issue");
    let token = verifier
        .verify(&issued.token, &never_blocked)
        .expect("verify");
    assert_eq!(token.tracking_id, issued.tracking_id);
    // The fixture key exports the same public key as its public key file.
    let exported = SitePublicKey::from_pem(signer(1).public_key_pem().as_bytes()).expect("pem");
    let file = SitePublicKey::from_pem(&fixture("site-key-1.pub.pem")).expect("file");
    assert_eq!(exported.kid(), file.kid());
}
