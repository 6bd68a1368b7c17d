//! Tokens the site issues and signs itself (RS256): bulk registration tokens and device
//! tokens, as in the product's token-based authentication.
//!
//! Claims: `iss = urn:sccm:oauth2:<site guid>`, `aud = urn:sccm:service`,
//! `token_type` = `BulkRegistration` or `Device`, `jti` (the tracking ID the site lists
//! and blocks by), `sub` (the device ID, device tokens only), `iat`, `nbf`, `exp`. The
//! header carries `kid`, the RFC 7638 thumbprint of the signing key, so a verifier that
//! holds several site keys (rollover overlap) picks the right one directly.
//!
//! The token itself is shown once to whoever asked for it and never stored or logged;
//! only its tracking ID and expiry are kept by the site.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::Serialize;

use crate::error::TokenError;
use crate::jws;

/// `aud` of every site token.
pub const SERVICE_AUDIENCE: &str = "urn:sccm:service";
/// Lifetime of a bulk registration token unless the administrator picks another.
pub const BULK_DEFAULT_LIFETIME: Duration = Duration::from_secs(3 * 24 * 3600);
/// Longest bulk registration token the site issues.
pub const BULK_MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// Lifetime of a device token (renewed by the client before it ends).
pub const DEVICE_DEFAULT_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);
/// Longest device token the site issues.
pub const DEVICE_MAX_LIFETIME: Duration = DEVICE_DEFAULT_LIFETIME;
/// Shortest token of either kind.
pub const MIN_LIFETIME: Duration = Duration::from_secs(60);

const TOKEN_TYPE_CLAIM: &str = "token_type";
const MAX_DEVICE_ID_LEN: usize = 256;

/// A site's GUID, in canonical form (lowercase, no braces).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SiteGuid(String);

impl SiteGuid {
    /// `urn:sccm:oauth2:<guid>`, the `iss` of this site's tokens.
    pub fn issuer(&self) -> String {
        format!("urn:sccm:oauth2:{}", self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SiteGuid {
    type Err = TokenError;

    /// Accepts `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, optionally in braces, any case.
    fn from_str(s: &str) -> Result<Self, TokenError> {
        let bare = s
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .unwrap_or(s);
        let groups: Vec<&str> = bare.split('-').collect();
        let shape_ok = groups.len() == 5
            && groups
                .iter()
                .zip([8, 4, 4, 4, 12])
                .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()));
        if !shape_ok {
            return Err(TokenError::Config(format!("site GUID {s:?} is not a GUID")));
        }
        Ok(Self(bare.to_ascii_lowercase()))
    }
}

impl fmt::Display for SiteGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a site token lets its bearer do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// Lets any device register with the site (bulk, time-limited).
    BulkRegistration,
    /// Identifies one registered device.
    Device,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BulkRegistration => "BulkRegistration",
            Self::Device => "Device",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "BulkRegistration" => Some(Self::BulkRegistration),
            "Device" => Some(Self::Device),
            _ => None,
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A freshly issued token. `Debug` masks the token.
#[derive(Clone)]
pub struct IssuedToken {
    /// The bearer token: hand it out once, never store or log it.
    pub token: String,
    /// `jti`: what the site lists and blocks.
    pub tracking_id: String,
    pub kind: TokenKind,
    pub expires_at: SystemTime,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<redacted>")
            .field("tracking_id", &self.tracking_id)
            .field("kind", &self.kind)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A site token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteToken {
    pub kind: TokenKind,
    pub tracking_id: String,
    /// The device ID of a device token; `None` for bulk registration tokens.
    pub subject: Option<String>,
    pub expires_at: SystemTime,
}

#[derive(Serialize)]
struct SiteClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    token_type: &'a str,
    jti: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
}

/// A new RSA 2048 site signing key as PKCS#8 PEM (`PRIVATE KEY`).
///
/// aws-lc-rs generates it (rcgen, used for certificates, cannot make RSA keys); the
/// PEM goes straight to the caller, which stores it encrypted (the site) or in a file
/// only root can read (`cmg token keygen`).
pub fn generate_key_pem() -> Result<String, TokenError> {
    use aws_lc_rs::encoding::AsDer as _;
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|_| TokenError::Key("RSA key generation failed".into()))?;
    let der = key
        .as_der()
        .map_err(|_| TokenError::Key("RSA key encoding failed".into()))?;
    Ok(pem_encode("PRIVATE KEY", der.as_ref()))
}

/// The SubjectPublicKeyInfo DER of an RSA private key in PEM (PKCS#8 or PKCS#1).
fn public_key_der(key_pem: &[u8]) -> Result<Vec<u8>, TokenError> {
    use aws_lc_rs::encoding::AsDer as _;
    use aws_lc_rs::signature::KeyPair as _;
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::PrivateKeyDer;
    let bad = || TokenError::Key("not an RSA private key in PEM".into());
    let der = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| bad())?;
    let pair = match &der {
        PrivateKeyDer::Pkcs8(k) => aws_lc_rs::rsa::KeyPair::from_pkcs8(k.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(k) => aws_lc_rs::rsa::KeyPair::from_der(k.secret_pkcs1_der()),
        _ => return Err(bad()),
    }
    .map_err(|_| bad())?;
    let spki = pair.public_key().as_der().map_err(|_| bad())?;
    Ok(spki.as_ref().to_vec())
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::engine::general_purpose::STANDARD;
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Signs site tokens with the site's RSA key.
pub struct SiteSigner {
    pub(crate) key: EncodingKey,
    pub(crate) public: SitePublicKey,
    /// SubjectPublicKeyInfo DER of the public key.
    public_der: Vec<u8>,
    issuer: String,
}

impl fmt::Debug for SiteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiteSigner")
            .field("issuer", &self.issuer)
            .field("kid", &self.public.kid)
            .finish_non_exhaustive()
    }
}

impl SiteSigner {
    /// `claims` as an RS256 JWS with the site key and its key ID; `typ` replaces the
    /// default `JWT` when given (every site-signed object: tokens, settings bundles,
    /// location answers).
    pub(crate) fn sign_jws<T: Serialize>(
        &self,
        typ: Option<&str>,
        claims: &T,
    ) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.public.kid.clone());
        if let Some(typ) = typ {
            header.typ = Some(typ.to_owned()); // otherwise jsonwebtoken's default, "JWT"
        }
        jsonwebtoken::encode(&header, claims, &self.key)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    /// An RSA private key (PKCS#1 or PKCS#8 PEM, 2048 bits or more) for `site`.
    pub fn from_pem(key_pem: &[u8], site: &SiteGuid) -> Result<Self, TokenError> {
        let key = EncodingKey::from_rsa_pem(key_pem)
            .map_err(|_| TokenError::Key("not an RSA private key in PEM".into()))?;
        let jwk = Jwk::from_encoding_key(&key, Algorithm::RS256)
            .map_err(|_| TokenError::Key("not a usable RSA private key".into()))?;
        let public = SitePublicKey::from_jwk(jwk)?;
        let public_der = public_key_der(key_pem)?;
        // Sign once now so a broken key fails at startup, not at the first request.
        jsonwebtoken::crypto::sign(b"cmg-token key check", &key, Algorithm::RS256)
            .map_err(|_| TokenError::Key("RSA key cannot sign".into()))?;
        Ok(Self {
            key,
            public,
            public_der,
            issuer: site.issuer(),
        })
    }

    /// The matching public key as PEM (`PUBLIC KEY`), to hand to gateways.
    pub fn public_key_pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.public_der)
    }

    /// The matching public key, for a [`SiteVerifier`].
    pub fn public_key(&self) -> SitePublicKey {
        self.public.clone()
    }

    /// A bulk registration token valid for `lifetime` (1 minute to 7 days; the default
    /// is [`BULK_DEFAULT_LIFETIME`]).
    pub fn issue_bulk(&self, lifetime: Duration) -> Result<IssuedToken, TokenError> {
        check_lifetime(lifetime, BULK_MAX_LIFETIME)?;
        self.issue(
            TokenKind::BulkRegistration,
            None,
            lifetime,
            SystemTime::now(),
        )
    }

    /// A device token for `device_id`, valid for `lifetime` (1 minute to 90 days; the
    /// default is [`DEVICE_DEFAULT_LIFETIME`]).
    pub fn issue_device(
        &self,
        device_id: &str,
        lifetime: Duration,
    ) -> Result<IssuedToken, TokenError> {
        check_lifetime(lifetime, DEVICE_MAX_LIFETIME)?;
        if device_id.is_empty()
            || device_id.len() > MAX_DEVICE_ID_LEN
            || device_id.chars().any(char::is_control)
        {
            return Err(TokenError::Config(
                "device ID must be 1 to 256 printable characters".into(),
            ));
        }
        self.issue(
            TokenKind::Device,
            Some(device_id),
            lifetime,
            SystemTime::now(),
        )
    }

    fn issue(
        &self,
        kind: TokenKind,
        subject: Option<&str>,
        lifetime: Duration,
        now: SystemTime,
    ) -> Result<IssuedToken, TokenError> {
        let iat = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| TokenError::Signing("clock before 1970".into()))?
            .as_secs();
        let exp = iat + lifetime.as_secs();
        let tracking_id = new_uuid_v4();
        let claims = SiteClaims {
            iss: &self.issuer,
            aud: SERVICE_AUDIENCE,
            sub: subject,
            token_type: kind.as_str(),
            jti: &tracking_id,
            iat,
            nbf: iat,
            exp,
        };
        let token = self.sign_jws(None, &claims)?;
        Ok(IssuedToken {
            token,
            tracking_id,
            kind,
            expires_at: UNIX_EPOCH + Duration::from_secs(exp),
        })
    }
}

fn check_lifetime(lifetime: Duration, max: Duration) -> Result<(), TokenError> {
    if lifetime < MIN_LIFETIME || lifetime > max {
        return Err(TokenError::Lifetime {
            requested: lifetime,
            max,
        });
    }
    Ok(())
}

/// A random UUID (version 4), lowercase: a token's tracking ID, a site GUID.
pub fn new_uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// One of the site's public keys, with its key id (RFC 7638 SHA-256 thumbprint).
#[derive(Clone)]
pub struct SitePublicKey {
    pub(crate) kid: String,
    pub(crate) key: DecodingKey,
}

impl fmt::Debug for SitePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SitePublicKey")
            .field("kid", &self.kid)
            .finish()
    }
}

impl SitePublicKey {
    /// An RSA public key in PEM (`PUBLIC KEY` or `RSA PUBLIC KEY`), 2048 bits or more.
    pub fn from_pem(pem: &[u8]) -> Result<Self, TokenError> {
        let key = DecodingKey::from_rsa_pem(pem)
            .map_err(|_| TokenError::Key("not an RSA public key in PEM".into()))?;
        let jwk = Jwk::from_decoding_key(&key, Some(Algorithm::RS256))
            .map_err(|_| TokenError::Key("not a usable RSA public key".into()))?;
        Self::from_jwk(jwk)
    }

    fn from_jwk(jwk: Jwk) -> Result<Self, TokenError> {
        let AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
            return Err(TokenError::Key("not an RSA key".into()));
        };
        let modulus = URL_SAFE_NO_PAD
            .decode(&rsa.n)
            .map_err(|_| TokenError::Key("bad RSA modulus".into()))?;
        if modulus.iter().skip_while(|b| **b == 0).count() < 256 {
            return Err(TokenError::Key("RSA key under 2048 bits".into()));
        }
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|_| TokenError::Key("cannot compute key thumbprint".into()))?;
        let key = DecodingKey::from_rsa_components(&rsa.n, &rsa.e)
            .map_err(|_| TokenError::Key("bad RSA public key".into()))?;
        Ok(Self { kid, key })
    }

    /// The key id put in the header of tokens this key signs.
    pub fn kid(&self) -> &str {
        &self.kid
    }
}

/// Verifies site tokens against one or more site keys (several during a key rollover).
#[derive(Debug, Clone)]
pub struct SiteVerifier {
    keys: Vec<SitePublicKey>,
    issuer: String,
    clock_skew: Duration,
}

impl SiteVerifier {
    /// Trusts `keys` (at least one) for tokens of `site`. Clock skew defaults to 60 s.
    pub fn new(keys: Vec<SitePublicKey>, site: &SiteGuid) -> Result<Self, TokenError> {
        if keys.is_empty() {
            return Err(TokenError::Config(
                "a site verifier needs at least one key".into(),
            ));
        }
        Ok(Self {
            keys,
            issuer: site.issuer(),
            clock_skew: Duration::from_secs(60),
        })
    }

    /// Trusts the RSA public keys in `pems` (one PEM per key).
    pub fn from_pems<P: AsRef<[u8]>>(pems: &[P], site: &SiteGuid) -> Result<Self, TokenError> {
        let keys = pems
            .iter()
            .map(|p| SitePublicKey::from_pem(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(keys, site)
    }

    pub fn with_clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew;
        self
    }

    /// Verifies `token` now; `blocked(tracking_id)` says whether the site blocked it.
    pub fn verify(
        &self,
        token: &str,
        blocked: &dyn Fn(&str) -> bool,
    ) -> Result<SiteToken, TokenError> {
        self.verify_at(token, SystemTime::now(), blocked)
    }

    /// As [`verify`](Self::verify), as if the time were `now`.
    pub fn verify_at(
        &self,
        token: &str,
        now: SystemTime,
        blocked: &dyn Fn(&str) -> bool,
    ) -> Result<SiteToken, TokenError> {
        let header = jws::parse_header(token, &[Algorithm::RS256])?;
        // A site token has no `typ` or `JWT`: a settings bundle or a location answer
        // (signed by the same key, with their own `typ`) is never a token.
        if !matches!(header.typ.as_deref(), None | Some("JWT")) {
            return Err(TokenError::Malformed("not a site token (typ)"));
        }
        let claims = match header.kid.as_deref() {
            Some(kid) => {
                let key = self
                    .keys
                    .iter()
                    .find(|k| k.kid == kid)
                    .ok_or(TokenError::UnknownKid)?;
                jws::verify_signature(token, header.alg, &key.key)?
            }
            // No kid: a handful of site keys at most, so try each.
            None => self
                .keys
                .iter()
                .find_map(|k| jws::verify_signature(token, header.alg, &k.key).ok())
                .ok_or(TokenError::BadSignature)?,
        };
        if jws::string_claim(&claims, "iss").as_deref() != Some(self.issuer.as_str()) {
            return Err(TokenError::BadIssuer);
        }
        jws::matched_audience(&claims, &[SERVICE_AUDIENCE.to_owned()])?;
        let expires_at = jws::check_times(&claims, now, self.clock_skew)?;
        let kind = jws::string_claim(&claims, TOKEN_TYPE_CLAIM)
            .as_deref()
            .and_then(TokenKind::parse)
            .ok_or(TokenError::Malformed("unknown site token type"))?;
        let tracking_id =
            jws::string_claim(&claims, "jti").ok_or(TokenError::Malformed("no jti claim"))?;
        let subject = jws::string_claim(&claims, "sub");
        if kind == TokenKind::Device && subject.is_none() {
            return Err(TokenError::Malformed("device token without subject"));
        }
        if blocked(&tracking_id) {
            return Err(TokenError::Blocked);
        }
        Ok(SiteToken {
            kind,
            tracking_id,
            subject,
            expires_at,
        })
    }
}
