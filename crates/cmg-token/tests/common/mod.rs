//! Helpers shared by the cmg-token integration tests: fixture keys and hand-made tokens.
#![allow(dead_code)]

use std::path::PathBuf;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

pub fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// The decoded payload of a compact JWS.
pub fn payload(token: &str) -> serde_json::Value {
    let part = token.split('.').nth(1).expect("payload part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
}

/// `token` with its payload replaced by `payload` (signature kept).
pub fn with_payload(token: &str, payload: &serde_json::Value) -> String {
    let mut parts = token.split('.');
    let header = parts.next().expect("header");
    parts.next();
    let sig = parts.next().expect("signature");
    format!("{header}.{}.{sig}", b64(payload.to_string().as_bytes()))
}

/// An unsigned token: `alg: none`, empty signature.
pub fn alg_none(payload: &serde_json::Value, kid: Option<&str>) -> String {
    let mut header = serde_json::json!({ "alg": "none", "typ": "JWT" });
    if let Some(kid) = kid {
        header["kid"] = kid.into();
    }
    format!(
        "{}.{}.",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    )
}

/// The classic key-confusion forgery: HS256 with the issuer's public key as the secret.
pub fn hs256_with_secret(payload: &serde_json::Value, secret: &[u8], kid: Option<&str>) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(
        &header,
        payload,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("HS256 signing")
}
