use super::*;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::EncodingKey;
use serde_json::json;

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(path).expect("fixture")
}

pub(crate) fn rsa_jwk(n: u8) -> serde_json::Value {
    let key = EncodingKey::from_rsa_pem(&fixture(&format!("site-key-{n}.pem"))).expect("rsa");
    serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::RS256).expect("jwk"))
        .expect("json")
}

pub(crate) fn ec_jwk() -> serde_json::Value {
    let key = EncodingKey::from_ec_pem(&fixture("ec-p256.pem")).expect("ec");
    serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::ES256).expect("jwk"))
        .expect("json")
}

fn with(mut jwk: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    for (k, v) in extra.as_object().expect("object") {
        jwk[k] = v.clone();
    }
    jwk
}

fn found(set: &KeySet, kid: Option<&str>, alg: Algorithm) -> bool {
    matches!(set.lookup(kid, alg), Lookup::Found(_))
}

#[test]
fn keeps_only_usable_signature_keys() {
    let doc = json!({"keys": [
        with(rsa_jwk(1), json!({"kid": "rsa", "use": "sig"})),
        with(ec_jwk(), json!({"kid": "ec"})),
        with(rsa_jwk(2), json!({"kid": "enc", "use": "enc"})),
        with(rsa_jwk(2), json!({"kid": "ps", "alg": "PS256"})),
        with(rsa_jwk(2), json!({"kid": "ops", "key_ops": ["encrypt"]})),
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty": "RSA", "kid": "small", "n": "AQAB", "e": "AQAB"},
        {"kid": "no-kty"},
        "not an object",
    ]});
    let set = KeySet::parse(doc.to_string().as_bytes()).expect("parse");
    assert_eq!(set.len(), 2, "{set:?}");
    assert!(found(&set, Some("rsa"), Algorithm::RS256));
    assert!(found(&set, Some("ec"), Algorithm::ES256));
    assert!(matches!(
        set.lookup(Some("rsa"), Algorithm::ES256),
        Lookup::WrongAlg
    ));
    for kid in ["enc", "ps", "ops", "hmac", "ed", "small", "other"] {
        assert!(
            matches!(set.lookup(Some(kid), Algorithm::RS256), Lookup::Missing),
            "{kid}"
        );
    }
    // No kid: only when exactly one key fits the algorithm.
    assert!(found(&set, None, Algorithm::ES256));
    assert!(found(&set, None, Algorithm::RS256));
}

#[test]
fn no_kid_with_several_candidates_is_missing() {
    let doc = json!({"keys": [
        with(rsa_jwk(1), json!({"kid": "a"})),
        with(rsa_jwk(2), json!({"kid": "b"})),
    ]});
    let set = KeySet::parse(doc.to_string().as_bytes()).expect("parse");
    assert!(matches!(
        set.lookup(None, Algorithm::RS256),
        Lookup::Missing
    ));
}

#[test]
fn documents_without_usable_keys_are_refused() {
    for doc in [
        json!({"keys": []}),
        json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
        json!({"nokeys": 1}),
        json!([1, 2]),
    ] {
        let err = KeySet::parse(doc.to_string().as_bytes()).expect_err("no keys");
        assert_eq!(err.code(), "issuer_metadata_invalid");
    }
}
