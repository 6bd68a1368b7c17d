//! Signing and verifying settings bundles ([`cmg_proto::settings::SettingsBundle`]).
//!
//! A bundle travels as a compact JWS signed RS256 by the site key, with `typ`
//! [`BUNDLE_JWS_TYPE`] and the key's `kid`: the same key material and the same strict
//! header check as site tokens, but a distinct type in both directions, so a token can
//! never be taken for a bundle nor a bundle for a token. The payload is the bundle's JSON,
//! parsed with unknown fields refused. Whether a verified bundle may *replace* the one in
//! force (gateway, version) is [`SettingsBundle::may_replace`]'s decision, not this one's.

use cmg_proto::settings::{InstanceAddrs, SettingsBundle, BUNDLE_FORMAT, BUNDLE_JWS_TYPE};
use jsonwebtoken::Algorithm;

use crate::error::TokenError;
use crate::jws;
use crate::site::{SitePublicKey, SiteSigner};

/// Larger signed bundles are refused before parsing (trust material for many roots fits
/// well under it).
pub const MAX_BUNDLE_BYTES: usize = 4 << 20;

/// Why a signed bundle was refused.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The JWS is malformed, has a bad signature or an unknown key.
    #[error("bundle signature: {0}")]
    Jws(#[from] TokenError),
    /// The JWS is not a settings bundle (another `typ`).
    #[error("not a settings bundle (typ {0:?})")]
    WrongType(Option<String>),
    /// A bundle format this build does not read.
    #[error("bundle format {0} is not supported (this build reads {BUNDLE_FORMAT})")]
    Format(u32),
    /// The payload is not a valid bundle.
    #[error("bundle content: {0}")]
    Content(String),
}

impl BundleError {
    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Jws(e) => e.code(),
            Self::WrongType(_) => "wrong_type",
            Self::Format(_) => "unsupported_format",
            Self::Content(_) => "bad_content",
        }
    }
}

/// The `version` of a signed bundle, read **without** verifying it: for relays (the
/// connection point) that order bundles but leave trust decisions to the gateway.
pub fn peek_version(signed: &str) -> Option<u64> {
    peek_payload(signed)?.get("version")?.as_u64()
}

/// The instance list of a signed bundle, read **without** verifying it: the connection
/// point dials the instances it names. It got the bundle over its authenticated link to
/// the site (or from a local file), and an instance it dials must still present the
/// gateway's certificate, so a forged list can waste dials but not capture traffic.
/// `None` when the payload is unreadable; empty when the bundle lists no instances.
pub fn peek_instances(signed: &str) -> Option<Vec<InstanceAddrs>> {
    let payload = peek_payload(signed)?;
    match payload.get("instances") {
        None => Some(Vec::new()),
        Some(v) => serde_json::from_value(v.clone()).ok(),
    }
}

fn peek_payload(signed: &str) -> Option<serde_json::Value> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    if signed.len() > MAX_BUNDLE_BYTES {
        return None;
    }
    let payload = signed.trim().split('.').nth(1)?;
    let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&payload).ok()
}

impl SiteSigner {
    /// Signs `bundle` with the site key.
    pub fn sign_bundle(&self, bundle: &SettingsBundle) -> Result<String, TokenError> {
        self.sign_jws(Some(BUNDLE_JWS_TYPE), bundle)
    }
}

/// Verifies signed bundles against the site's public keys (several during a rollover).
#[derive(Debug, Clone)]
pub struct BundleVerifier {
    keys: Vec<SitePublicKey>,
}

impl BundleVerifier {
    /// Trusts `keys` (at least one).
    pub fn new(keys: Vec<SitePublicKey>) -> Result<Self, TokenError> {
        if keys.is_empty() {
            return Err(TokenError::Config(
                "a bundle verifier needs at least one site key".into(),
            ));
        }
        Ok(Self { keys })
    }

    /// Trusts the RSA public keys in `pems`.
    pub fn from_pems<P: AsRef<[u8]>>(pems: &[P]) -> Result<Self, TokenError> {
        let keys = pems
            .iter()
            .map(|p| SitePublicKey::from_pem(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(keys)
    }

    /// The verified bundle inside `signed`.
    pub fn verify(&self, signed: &str) -> Result<SettingsBundle, BundleError> {
        let signed = signed.trim();
        let header = jws::parse_header_limited(signed, &[Algorithm::RS256], MAX_BUNDLE_BYTES)?;
        if header.typ.as_deref() != Some(BUNDLE_JWS_TYPE) {
            return Err(BundleError::WrongType(header.typ));
        }
        let kid = header
            .kid
            .as_deref()
            .ok_or(TokenError::Malformed("bundle without kid"))?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(TokenError::UnknownKid)?;
        let claims = jws::verify_signature(signed, header.alg, &key.key)?;
        let bundle: SettingsBundle = serde_json::from_value(serde_json::Value::Object(claims))
            .map_err(|e| BundleError::Content(e.to_string()))?;
        if bundle.format != BUNDLE_FORMAT {
            return Err(BundleError::Format(bundle.format));
        }
        Ok(bundle)
    }
}
