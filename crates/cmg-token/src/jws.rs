//! What both verifiers share: a strict look at the JOSE header before any key is chosen,
//! the signature check (jsonwebtoken, restricted to the one accepted algorithm), and the
//! claim checks that take an explicit `now`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::error::TokenError;

/// Larger bearer tokens are refused before any parsing (Entra tokens are a few KiB).
pub(crate) const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Claims of a token whose signature verified.
pub(crate) type Claims = Map<String, Value>;

/// The parts of the JOSE header that matter here.
#[derive(Debug)]
pub(crate) struct JoseHeader {
    pub alg: Algorithm,
    pub kid: Option<String>,
    /// The `typ` header, when present (site tokens have none; bundles must have theirs).
    pub typ: Option<String>,
}

/// Reads the header of a compact JWS and checks `alg` against `allowed` before anything
/// else: `none`, HMAC and any other algorithm are refused here, so no key is ever looked
/// up (let alone used) for them.
pub(crate) fn parse_header(token: &str, allowed: &[Algorithm]) -> Result<JoseHeader, TokenError> {
    parse_header_limited(token, allowed, MAX_TOKEN_BYTES)
}

/// As [`parse_header`], for a JWS of at most `max_bytes` (settings bundles are larger
/// than tokens).
pub(crate) fn parse_header_limited(
    token: &str,
    allowed: &[Algorithm],
    max_bytes: usize,
) -> Result<JoseHeader, TokenError> {
    if token.is_empty() {
        return Err(TokenError::Malformed("empty token"));
    }
    if token.len() > max_bytes {
        return Err(TokenError::Malformed("token too large"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("not a compact JWS"));
    };
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed("header is not base64url"))?;
    let header: Map<String, Value> =
        serde_json::from_slice(&header).map_err(|_| TokenError::Malformed("header is not JSON"))?;
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg.as_str(),
        Some(_) => return Err(TokenError::Malformed("alg is not a string")),
        None => return Err(TokenError::Malformed("header has no alg")),
    };
    let alg = match alg {
        "RS256" => Algorithm::RS256,
        "ES256" => Algorithm::ES256,
        other => return Err(TokenError::unsupported_alg(other)),
    };
    if !allowed.contains(&alg) {
        return Err(TokenError::unsupported_alg(match alg {
            Algorithm::ES256 => "ES256",
            _ => "RS256",
        }));
    }
    if header.contains_key("crit") {
        return Err(TokenError::Malformed("critical header extensions"));
    }
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(kid)) if kid.len() <= 256 => Some(kid.clone()),
        Some(_) => return Err(TokenError::Malformed("bad kid")),
    };
    let typ = match header.get("typ") {
        None | Some(Value::Null) => None,
        Some(Value::String(typ)) if typ.len() <= 64 => Some(typ.clone()),
        Some(_) => return Err(TokenError::Malformed("bad typ")),
    };
    Ok(JoseHeader { alg, kid, typ })
}

/// Verifies the signature with `key` for exactly `alg` and returns the claims. Claim
/// checks are left to the caller (they take an explicit `now`).
pub(crate) fn verify_signature(
    token: &str,
    alg: Algorithm,
    key: &DecodingKey,
) -> Result<Claims, TokenError> {
    let mut validation = Validation::new(alg);
    validation.algorithms = vec![alg];
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    use jsonwebtoken::errors::ErrorKind as K;
    match jsonwebtoken::decode::<Claims>(token, key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(e) => Err(match e.kind() {
            K::InvalidSignature
            | K::InvalidRsaKey(_)
            | K::InvalidEcdsaKey
            | K::InvalidKeyFormat
            | K::Provider(_) => TokenError::BadSignature,
            K::InvalidAlgorithm | K::UnsupportedAlgorithm | K::InvalidAlgorithmName => {
                TokenError::unsupported_alg("key-mismatch")
            }
            _ => TokenError::Malformed("undecodable token"),
        }),
    }
}

fn numeric_date(claims: &Claims, name: &'static str) -> Result<Option<u64>, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(v) = n.as_u64() {
                Ok(Some(v))
            } else if let Some(v) = n.as_f64().filter(|v| v.is_finite() && *v >= 0.0) {
                Ok(Some(v as u64))
            } else {
                Err(TokenError::Malformed("bad time claim"))
            }
        }
        Some(_) => Err(TokenError::Malformed("bad time claim")),
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `exp` (required), `nbf` and `iat` (optional) against `now` with `skew` either way.
/// Returns the expiry time.
pub(crate) fn check_times(
    claims: &Claims,
    now: SystemTime,
    skew: Duration,
) -> Result<SystemTime, TokenError> {
    let now = unix(now);
    let skew = skew.as_secs();
    let exp = numeric_date(claims, "exp")?.ok_or(TokenError::Malformed("no exp claim"))?;
    if now > exp.saturating_add(skew) {
        return Err(TokenError::Expired);
    }
    // A token issued in the future (beyond the skew) is not valid yet either: issuers
    // that set no `nbf` (oidc-provider's access tokens) still set `iat`.
    for claim in ["nbf", "iat"] {
        if let Some(start) = numeric_date(claims, claim)? {
            if now.saturating_add(skew) < start {
                return Err(TokenError::NotYetValid);
            }
        }
    }
    Ok(UNIX_EPOCH + Duration::from_secs(exp))
}

/// The first of the token's audiences (`aud`, string or array) that is accepted.
pub(crate) fn matched_audience(claims: &Claims, accepted: &[String]) -> Result<String, TokenError> {
    let matches = |a: &str| accepted.iter().any(|x| x == a);
    match claims.get("aud") {
        Some(Value::String(a)) if matches(a) => Ok(a.clone()),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .find(|a| matches(a))
            .map(str::to_owned)
            .ok_or(TokenError::BadAudience),
        _ => Err(TokenError::BadAudience),
    }
}

pub(crate) fn string_claim(claims: &Claims, name: &str) -> Option<String> {
    claims.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// The `iss` claim of a compact JWS, read **without** verifying anything: only to pick
/// which verifier (site or which OIDC issuer) checks the token. `None` when the token
/// is not shaped like a JWS with a string `iss`.
pub fn peek_issuer(token: &str) -> Option<String> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Claims = serde_json::from_slice(&payload).ok()?;
    string_claim(&claims, "iss")
}

#[cfg(test)]
mod tests;
