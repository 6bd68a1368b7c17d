//! Signing and verifying location answers ([`cmg_proto::device::LocationAnswer`]).
//!
//! The site signs an answer as a compact JWS, RS256, with its active key, `typ`
//! [`LOCATION_JWS_TYPE`] and the key's `kid` (the same key material and strict header
//! check as site tokens and settings bundles, a type of its own in every direction).
//! A client verifies with the site public keys it was enrolled with
//! (`cmg site client trust` writes them to a file the client's config names), and
//! refuses, each with its own [`LocationError`]: a signed answer larger than
//! [`MAX_LOCATION_ANSWER_BYTES`], a malformed JWS, another `typ`, an unknown key or a
//! bad signature, a format it does not read (it reads 1 and 2), a payload that is not
//! an answer or whose candidate lists are not well formed (format 2: every candidate
//! tagged with its list; `LocationAnswer::check_lists`), an answer for another site, one issued in the future or one that has expired. A refused answer
//! changes nothing: the client keeps its last good one (the agent's job).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cmg_proto::device::{
    LocationAnswer, LOCATION_FORMAT, LOCATION_FORMATS_READ, LOCATION_JWS_TYPE,
    MAX_LOCATION_ANSWER_BYTES,
};
use cmg_proto::SiteCode;
use jsonwebtoken::Algorithm;

use crate::error::TokenError;
use crate::jws;
use crate::site::{SitePublicKey, SiteSigner};

/// How long an answer the site signs stays valid: the client refreshes every 24 hours
/// and uses its last good answer while the site cannot be reached, up to this.
pub const ANSWER_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why a signed location answer was refused.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error("location answer is {0} bytes, more than {MAX_LOCATION_ANSWER_BYTES}")]
    TooLarge(usize),
    /// Malformed JWS, unknown key, bad signature.
    #[error("location answer signature: {0}")]
    Jws(#[from] TokenError),
    #[error("not a location answer (typ {0:?})")]
    WrongType(Option<String>),
    #[error(
        "location answer format {0} is not supported (this build reads 1 to {LOCATION_FORMAT})"
    )]
    Format(u32),
    #[error("location answer content: {0}")]
    Content(String),
    #[error("location answer is for site {got}, this client belongs to {expected}")]
    OtherSite { expected: SiteCode, got: SiteCode },
    #[error("location answer expired")]
    Expired,
    #[error("location answer is issued in the future")]
    NotYetValid,
}

impl LocationError {
    /// A stable code for logs, status output and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge(_) => "too_large",
            Self::Jws(e) => e.code(),
            Self::WrongType(_) => "wrong_type",
            Self::Format(_) => "unsupported_format",
            Self::Content(_) => "bad_content",
            Self::OtherSite { .. } => "other_site",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
        }
    }
}

impl SiteSigner {
    /// Signs a location answer with the site key.
    pub fn sign_location(&self, answer: &LocationAnswer) -> Result<String, TokenError> {
        self.sign_jws(Some(LOCATION_JWS_TYPE), answer)
    }
}

/// Verifies location answers for one site against its public keys.
#[derive(Debug, Clone)]
pub struct LocationVerifier {
    keys: Vec<SitePublicKey>,
    site: SiteCode,
    clock_skew: Duration,
}

impl LocationVerifier {
    /// Trusts `keys` (at least one) for answers of `site`; clock skew 5 minutes.
    pub fn new(keys: Vec<SitePublicKey>, site: SiteCode) -> Result<Self, TokenError> {
        if keys.is_empty() {
            return Err(TokenError::Config(
                "a location verifier needs at least one site key".into(),
            ));
        }
        Ok(Self {
            keys,
            site,
            clock_skew: Duration::from_secs(300),
        })
    }

    /// Trusts every RSA public key in `pem` (one or more `PUBLIC KEY` blocks: the file
    /// `cmg site client trust` writes).
    pub fn from_pem_file_text(pem: &str, site: SiteCode) -> Result<Self, TokenError> {
        let keys = split_pem_blocks(pem)
            .iter()
            .map(|p| SitePublicKey::from_pem(p.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(keys, site)
    }

    pub fn with_clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew;
        self
    }

    /// The verified answer inside `signed`, as if the time were `now`.
    pub fn verify_at(
        &self,
        signed: &str,
        now: SystemTime,
    ) -> Result<LocationAnswer, LocationError> {
        let signed = signed.trim();
        if signed.len() > MAX_LOCATION_ANSWER_BYTES {
            return Err(LocationError::TooLarge(signed.len()));
        }
        let header =
            jws::parse_header_limited(signed, &[Algorithm::RS256], MAX_LOCATION_ANSWER_BYTES)?;
        if header.typ.as_deref() != Some(LOCATION_JWS_TYPE) {
            return Err(LocationError::WrongType(header.typ));
        }
        let kid = header
            .kid
            .as_deref()
            .ok_or(TokenError::Malformed("location answer without kid"))?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(TokenError::UnknownKid)?;
        let claims = jws::verify_signature(signed, header.alg, &key.key)?;
        if let Some(f) = claims.get("format").and_then(serde_json::Value::as_u64) {
            if !LOCATION_FORMATS_READ.iter().any(|r| u64::from(*r) == f) {
                return Err(LocationError::Format(u32::try_from(f).unwrap_or(u32::MAX)));
            }
        }
        let answer: LocationAnswer = serde_json::from_value(serde_json::Value::Object(claims))
            .map_err(|e| LocationError::Content(e.to_string()))?;
        answer
            .check_lists()
            .map_err(|e| LocationError::Content(e.to_string()))?;
        if answer.site != self.site {
            return Err(LocationError::OtherSite {
                expected: self.site.clone(),
                got: answer.site,
            });
        }
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let skew = self.clock_skew.as_secs();
        if now > answer.expires_at.saturating_add(skew) {
            return Err(LocationError::Expired);
        }
        if now.saturating_add(skew) < answer.issued_at {
            return Err(LocationError::NotYetValid);
        }
        Ok(answer)
    }

    /// As [`verify_at`](Self::verify_at), now.
    pub fn verify(&self, signed: &str) -> Result<LocationAnswer, LocationError> {
        self.verify_at(signed, SystemTime::now())
    }
}

/// The PEM blocks of a file holding several.
fn split_pem_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN ") {
            cur = Some(String::new());
        }
        if let Some(c) = cur.as_mut() {
            c.push_str(line);
            c.push('\n');
        }
        if line.starts_with("-----END ") {
            if let Some(c) = cur.take() {
                out.push(c);
            }
        }
    }
    out
}
