use der::Encode;
use x509_ocsp::OcspResponse;

use super::request::OcspQuery;
use super::response::verify;
use super::*;

fn query() -> OcspQuery {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
    // DER of the Name "CN=x".
    let name = vec![
        0x30, 0x0c, 0x31, 0x0a, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x01, b'x',
    ];
    OcspQuery::new(
        name,
        spki,
        &[0x10, 0x01],
        vec!["http://127.0.0.1:1/".into()],
    )
    .expect("query")
}

#[test]
fn hostile_bodies_are_refused_with_a_reason() {
    let q = query();
    for body in [
        &b""[..],
        b"\x30\x03\x0a\x01",
        b"<html>not ocsp</html>",
        &[0x30; 64],
    ] {
        assert!(
            matches!(verify(body, &q, None, 0), Err(OcspError::Malformed(_))),
            "{body:?}"
        );
    }
    let later = OcspResponse::try_later().to_der().expect("der");
    assert_eq!(
        verify(&later, &q, None, 0),
        Err(OcspError::NotSuccessful("tryLater"))
    );
}

#[test]
fn request_is_der_with_the_cert_id_and_nonce() {
    let q = query();
    let der = q.encode(Some(&[7; 16])).expect("encode");
    let parsed = <x509_ocsp::OcspRequest as der::Decode>::from_der(&der).expect("decode");
    assert_eq!(parsed.tbs_request.request_list[0].req_cert, q.cert_id);
    assert_eq!(parsed.nonce().expect("nonce").0.as_bytes(), &[7u8; 16][..]);
    assert!(q.encode(None).expect("encode").len() < der.len());
}

#[test]
fn answers_expire_and_refresh_at_three_quarters() {
    let a = OcspAnswer {
        status: CertStatus::Good,
        this_update: 1000,
        valid_until: 2000,
    };
    assert_eq!(a.refresh_at(), 1750);
    assert!(a.is_usable_at(2000 + CLOCK_SKEW - 1));
    assert!(!a.is_usable_at(2000 + CLOCK_SKEW));
}

#[test]
fn urls_of_garbage_are_none() {
    assert!(ocsp_urls(b"\x30\x00").is_empty());
}

#[test]
fn one_fetch_at_a_time_and_a_failed_responder_waits_retry_after() {
    use std::time::{Duration, Instant};
    let mut e = cache::OcspEntry::new(std::sync::Arc::new(query()));
    let retry = Duration::from_secs(30);
    assert!(e.wants_fetch(1000, retry), "nothing known yet");
    e.fetching = true;
    e.last_attempt = Some(Instant::now());
    assert!(!e.wants_fetch(1000, retry), "one in flight");
    e.fetching = false;
    e.last_error = Some("cannot connect".into());
    assert!(
        !e.wants_fetch(1000, retry),
        "failed just now: wait retry_after"
    );
    assert!(e.wants_fetch(1000, Duration::ZERO));
    assert!(e.describe(1000).contains("cannot connect"));
    e.answer = Some(OcspAnswer {
        status: CertStatus::Good,
        this_update: 1000,
        valid_until: 2000,
    });
    e.last_attempt = None;
    assert!(!e.wants_fetch(1100, retry), "fresh answer");
    assert!(e.wants_fetch(1800, retry), "refresh due at three quarters");
    assert!(e.usable(2000 + CLOCK_SKEW).is_none(), "expired");
}
