//! A JSON Web Key Set turned into ready-to-use verification keys, once per fetch.
//!
//! Only signature keys the verifier can use are kept: RSA (2048 bits or more) for RS256
//! and EC P-256 for ES256. Encryption keys, symmetric (`oct`) keys, other curves and
//! keys whose declared `alg` is anything else are skipped, so a hostile or sloppy JWKS
//! cannot smuggle an HMAC secret in.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use crate::error::TokenError;

/// Keys looked at per document; the rest is ignored.
const MAX_KEYS: usize = 64;

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawKey {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    key_use: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    key_ops: Option<Vec<String>>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

pub(crate) struct Key {
    alg: Algorithm,
    key: DecodingKey,
}

/// The usable keys of one JWKS document.
#[derive(Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<String, Key>,
    without_kid: Vec<Key>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("kids", &self.by_kid.keys().collect::<Vec<_>>())
            .field("without_kid", &self.without_kid.len())
            .finish()
    }
}

/// What a lookup found.
pub(crate) enum Lookup<'a> {
    Found(&'a DecodingKey),
    /// A key with this id exists but is for another algorithm.
    WrongAlg,
    Missing,
}

impl KeySet {
    pub(crate) fn parse(doc: &[u8]) -> Result<Self, TokenError> {
        let raw: RawSet = serde_json::from_slice(doc)
            .map_err(|e| TokenError::IssuerMetadata(format!("JWKS is not a key set: {e}")))?;
        let mut set = KeySet::default();
        for value in raw.keys.into_iter().take(MAX_KEYS) {
            let Ok(raw) = serde_json::from_value::<RawKey>(value) else {
                continue;
            };
            let kid = raw.kid.clone();
            let Some(key) = usable(raw) else { continue };
            match kid {
                Some(kid) => {
                    set.by_kid.entry(kid).or_insert(key);
                }
                None => set.without_kid.push(key),
            }
        }
        if set.is_empty() {
            return Err(TokenError::IssuerMetadata(
                "JWKS has no usable RS256 or ES256 signature key".into(),
            ));
        }
        Ok(set)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_kid.is_empty() && self.without_kid.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.by_kid.len() + self.without_kid.len()
    }

    /// The key for `kid` and `alg`. A token without `kid` is accepted only when the set
    /// holds exactly one key for its algorithm.
    pub(crate) fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Lookup<'_> {
        match kid {
            Some(kid) => match self.by_kid.get(kid) {
                Some(k) if k.alg == alg => Lookup::Found(&k.key),
                Some(_) => Lookup::WrongAlg,
                None => Lookup::Missing,
            },
            None => {
                let mut candidates = self
                    .by_kid
                    .values()
                    .chain(self.without_kid.iter())
                    .filter(|k| k.alg == alg);
                match (candidates.next(), candidates.next()) {
                    (Some(k), None) => Lookup::Found(&k.key),
                    _ => Lookup::Missing,
                }
            }
        }
    }
}

fn usable(raw: RawKey) -> Option<Key> {
    if raw.key_use.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    if let Some(ops) = &raw.key_ops {
        if !ops.iter().any(|op| op == "verify") {
            return None;
        }
    }
    let (alg, key) = match raw.kty.as_str() {
        "RSA" => {
            let (n, e) = (raw.n?, raw.e?);
            let modulus = URL_SAFE_NO_PAD.decode(n.trim_end_matches('=')).ok()?;
            let significant = modulus.iter().skip_while(|b| **b == 0).count();
            if significant < 256 {
                return None; // under 2048 bits
            }
            let key = DecodingKey::from_rsa_components(&n, &e).ok()?;
            (Algorithm::RS256, key)
        }
        "EC" => {
            if raw.crv.as_deref() != Some("P-256") {
                return None;
            }
            let key = DecodingKey::from_ec_components(&raw.x?, &raw.y?).ok()?;
            (Algorithm::ES256, key)
        }
        _ => return None,
    };
    let declared_ok = match raw.alg.as_deref() {
        None => true,
        Some("RS256") => alg == Algorithm::RS256,
        Some("ES256") => alg == Algorithm::ES256,
        Some(_) => false,
    };
    declared_ok.then_some(Key { alg, key })
}

#[cfg(test)]
pub(crate) mod tests;
