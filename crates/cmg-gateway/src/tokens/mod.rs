//! Bearer-token authentication for `CCM_Proxy_ServerAuth` URLs (seed 003): site-issued
//! tokens and Entra ID / OIDC tokens, verified by `cmg-token`.
//!
//! The token's `iss` (read unverified, only to pick a verifier) routes it to the site
//! verifier or to one configured OIDC issuer; that verifier then checks everything.
//! Successes are cached by the token's SHA-256 for at most `cache_max_age` (and never
//! past the token's expiry), so a keep-alive client pays one signature check per
//! `cache_max_age`, not one per request. The cache is emptied whenever the settings
//! (keys, block list, issuers) change, so a blocked token is refused from the next
//! request on.
//!
//! OIDC discovery runs in the background at start; an issuer that cannot be reached is
//! retried (at most every [`DISCOVERY_RETRY`]) when a token for it arrives, and until
//! then its tokens get 503 (`issuer_unreachable`): the gateway cannot decide, which is
//! not the client's fault.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use cmg_token::{
    HttpFetcher, OidcConfig, OidcVerifier, SiteGuid, SiteVerifier, TokenCache, TokenError,
};
use http::HeaderValue;
use tracing::{info, warn};

use crate::identity::{AuthMethod, ClientIdentity};

/// How often discovery of an unreachable OIDC issuer is retried, at most.
pub const DISCOVERY_RETRY: Duration = Duration::from_secs(10);
/// Verified tokens remembered at once.
const CACHE_CAPACITY: usize = 100_000;

/// Validated token settings (from the config file today; from the site's settings
/// bundle once it publishes them).
#[derive(Clone, Debug, Default)]
pub struct TokenSettings {
    /// The site whose tokens are accepted, and its verification keys (PEM text; several
    /// during a key rollover).
    pub site: Option<SiteTokens>,
    /// Tracking IDs (`jti`) of blocked site tokens.
    pub blocked: Vec<String>,
    pub oidc: Vec<OidcIssuer>,
    /// Longest time a verified token is trusted without checking it again.
    pub cache_max_age: Duration,
}

#[derive(Clone, Debug)]
pub struct SiteTokens {
    pub guid: SiteGuid,
    pub keys_pem: Vec<String>,
}

/// One accepted OIDC issuer.
#[derive(Clone, Debug)]
pub struct OidcIssuer {
    pub issuer: String,
    pub audiences: Vec<String>,
    /// Allowed `tid` values; empty: any tenant.
    pub tenants: Vec<String>,
    /// Extra roots for the issuer's TLS (PEM files); empty: the Mozilla root set.
    pub ca: Vec<PathBuf>,
    /// Tests and demos only: allow `http://` to a loopback issuer.
    pub allow_http_loopback: bool,
}

impl TokenSettings {
    /// Whether any kind of token can be accepted.
    pub fn is_enabled(&self) -> bool {
        self.site.is_some() || !self.oidc.is_empty()
    }
}

/// Why a bearer token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum TokenRefusal {
    /// No `Authorization: Bearer` header.
    #[error("no bearer token")]
    Missing,
    /// The token was checked and refused.
    #[error("{reason}: {0}", reason = .0.reason())]
    Invalid(TokenError),
    /// The gateway could not decide (issuer unreachable): 503, retry later.
    #[error("{reason}: {0}", reason = .0.reason())]
    Undecided(TokenError),
}

impl TokenRefusal {
    /// Stable sub-code for the client and the log.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "token_required",
            Self::Invalid(e) | Self::Undecided(e) => e.code(),
        }
    }
}

/// Everything needed to check a token; replaced as a whole when settings change.
#[derive(Debug)]
struct State {
    site: Option<(SiteVerifier, String)>,
    blocked: HashSet<String>,
    oidc: Vec<Arc<OidcSlot>>,
}

/// An OIDC issuer, discovered or still to be.
#[derive(Debug)]
struct OidcSlot {
    config: OidcConfig,
    http: HttpFetcher,
    verifier: RwLock<Option<OidcVerifier>>,
    /// Serialises discovery and rate-limits retries.
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
}

/// The gateway's token checker.
#[derive(Debug)]
pub struct TokenAuth {
    state: RwLock<Arc<State>>,
    /// Verified tokens by SHA-256, with their expiry.
    cache: TokenCache<(Arc<ClientIdentity>, SystemTime)>,
    cache_max_age: Duration,
    /// Incremented by every [`update`](Self::update): a connection's remembered token
    /// from an older generation is checked again.
    generation: AtomicU64,
}

/// The last token verified on one client connection. A keep-alive client sends the
/// same `Authorization` bytes on every request: compared with these, the request skips
/// hashing the token and the cache shared by every connection (one byte comparison and
/// an atomic load instead of a SHA-256 and a mutex).
#[derive(Debug, Default)]
pub struct ConnToken(ArcSwapOption<Remembered>);

#[derive(Debug)]
struct Remembered {
    authorization: HeaderValue,
    identity: Arc<ClientIdentity>,
    /// The earlier of the token's expiry and the cache's maximum age.
    until: SystemTime,
    generation: u64,
}

impl TokenAuth {
    /// Builds the checker; OIDC issuers are not contacted yet (see [`discover_all`]).
    ///
    /// [`discover_all`]: Self::discover_all
    pub fn new(settings: &TokenSettings) -> Result<Self, TokenError> {
        let state = build_state(settings)?;
        let max_age = if settings.cache_max_age.is_zero() {
            Duration::from_secs(300)
        } else {
            settings.cache_max_age
        };
        Ok(Self {
            state: RwLock::new(Arc::new(state)),
            cache: TokenCache::new(CACHE_CAPACITY, max_age),
            generation: AtomicU64::new(0),
            cache_max_age: max_age,
        })
    }

    /// Replaces keys, block list and issuers at once and forgets every cached result.
    pub fn update(&self, settings: &TokenSettings) -> Result<(), TokenError> {
        let state = build_state(settings)?;
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(state);
        self.cache.clear();
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    fn state(&self) -> Arc<State> {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Fetches every OIDC issuer's discovery document and keys; logs failures (they are
    /// retried on demand).
    pub async fn discover_all(&self) {
        let state = self.state();
        for slot in &state.oidc {
            if let Err(e) = slot.verifier().await {
                warn!(issuer = %slot.config.issuer, error = %e, "OIDC issuer not reachable yet; its tokens get 503 until it is");
            }
        }
    }

    /// Checks the `Authorization` header of a request.
    /// `conn` remembers the last token verified on the request's connection.
    pub async fn authenticate(
        &self,
        authorization: Option<&HeaderValue>,
        conn: &ConnToken,
    ) -> Result<Arc<ClientIdentity>, TokenRefusal> {
        let now = SystemTime::now();
        let generation = self.generation.load(Ordering::Acquire);
        if let (Some(value), Some(last)) = (authorization, conn.0.load().as_ref()) {
            if last.generation == generation
                && now < last.until
                && last.authorization.as_bytes() == value.as_bytes()
            {
                return Ok(last.identity.clone());
            }
        }
        let (identity, expires_at) = self.verify(authorization, now).await?;
        // A copy, so the connection does not pin the request's read buffer.
        if let Some(value) = authorization.and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
        {
            conn.0.store(Some(Arc::new(Remembered {
                authorization: value,
                identity: identity.clone(),
                until: expires_at.min(now + self.cache_max_age),
                generation,
            })));
        }
        Ok(identity)
    }

    /// Checks a token through the shared cache, or in full.
    async fn verify(
        &self,
        authorization: Option<&HeaderValue>,
        now: SystemTime,
    ) -> Result<(Arc<ClientIdentity>, SystemTime), TokenRefusal> {
        let token = bearer(authorization)?;
        if let Some(hit) = self.cache.get(token, now) {
            return Ok(hit);
        }
        let state = self.state();
        let issuer = cmg_token::peek_issuer(token)
            .ok_or(TokenRefusal::Invalid(TokenError::Malformed("no issuer")))?;
        let (identity, expires_at) = match &state.site {
            Some((verifier, site_issuer)) if *site_issuer == issuer => {
                let t = verifier
                    .verify_at(token, now, &|jti| state.blocked.contains(jti))
                    .map_err(TokenRefusal::Invalid)?;
                let subject = t.subject.as_deref().unwrap_or("-");
                let header = format!(
                    "token; issuer=\"{issuer}\"; type={}; sub=\"{}\"; jti={}",
                    t.kind.as_str(),
                    sanitize(subject),
                    t.tracking_id
                );
                (
                    identity(header, subject, AuthMethod::SiteToken),
                    t.expires_at,
                )
            }
            _ => {
                let slot = state
                    .oidc
                    .iter()
                    .find(|s| s.config.issuer == issuer)
                    .ok_or(TokenRefusal::Invalid(TokenError::BadIssuer))?;
                let verifier = slot.verifier().await.map_err(TokenRefusal::Undecided)?;
                let t = verifier.verify_at(token, now).await.map_err(|e| {
                    if e.is_token_fault() {
                        TokenRefusal::Invalid(e)
                    } else {
                        TokenRefusal::Undecided(e)
                    }
                })?;
                let subject = t.subject.as_deref().unwrap_or("-");
                let mut header = format!(
                    "token; issuer=\"{}\"; sub=\"{}\"",
                    sanitize(&t.issuer),
                    sanitize(subject)
                );
                if let Some(tid) = &t.tenant {
                    header.push_str(&format!("; tid=\"{}\"", sanitize(tid)));
                }
                (
                    identity(header, subject, AuthMethod::OidcToken),
                    t.expires_at,
                )
            }
        };
        let identity = Arc::new(identity);
        self.cache
            .insert(token, (identity.clone(), expires_at), expires_at, now);
        Ok((identity, expires_at))
    }

    pub fn cache_max_age(&self) -> Duration {
        self.cache_max_age
    }
}

impl TokenSettings {
    /// Checks everything `TokenAuth::new` would refuse (site keys, issuer URLs and
    /// audiences, issuer CA files) without building the checker.
    pub fn check(&self) -> Result<(), TokenError> {
        if let Some(s) = &self.site {
            SiteVerifier::from_pems(&s.keys_pem, &s.guid)?;
        }
        for i in &self.oidc {
            oidc_config(i).validate()?;
            issuer_roots(i)?;
        }
        Ok(())
    }
}

fn build_state(settings: &TokenSettings) -> Result<State, TokenError> {
    let site = match &settings.site {
        Some(s) => Some((
            SiteVerifier::from_pems(&s.keys_pem, &s.guid)?,
            s.guid.issuer(),
        )),
        None => None,
    };
    let oidc = settings
        .oidc
        .iter()
        .map(|i| OidcSlot::new(i).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(State {
        site,
        blocked: settings.blocked.iter().cloned().collect(),
        oidc,
    })
}

impl OidcSlot {
    fn new(i: &OidcIssuer) -> Result<Self, TokenError> {
        let config = oidc_config(i);
        config.validate()?;
        let http = HttpFetcher::with_roots(issuer_roots(i)?)
            .map_err(|e| TokenError::Config(format!("issuer {}: {e}", i.issuer)))?;
        Ok(Self {
            config,
            http,
            verifier: RwLock::new(None),
            last_attempt: tokio::sync::Mutex::new(None),
        })
    }

    /// The discovered verifier, discovering now when needed (one attempt at a time, at
    /// most every [`DISCOVERY_RETRY`]).
    async fn verifier(&self) -> Result<OidcVerifier, TokenError> {
        if let Some(v) = self.current() {
            return Ok(v);
        }
        let mut last = self.last_attempt.lock().await;
        if let Some(v) = self.current() {
            return Ok(v);
        }
        if last.is_some_and(|t| t.elapsed() < DISCOVERY_RETRY) {
            return Err(TokenError::IssuerMetadata(
                "issuer discovery failed recently; retrying later".into(),
            ));
        }
        *last = Some(Instant::now());
        let v = OidcVerifier::discover(self.config.clone(), &self.http).await?;
        info!(issuer = %self.config.issuer, "OIDC issuer discovered");
        *self.verifier.write().unwrap_or_else(|p| p.into_inner()) = Some(v.clone());
        Ok(v)
    }

    fn current(&self) -> Option<OidcVerifier> {
        self.verifier
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

fn oidc_config(i: &OidcIssuer) -> OidcConfig {
    let mut config = OidcConfig::new(i.issuer.clone(), i.audiences.clone());
    config.allowed_tenants = (!i.tenants.is_empty()).then(|| i.tenants.clone());
    config.allow_insecure_loopback = i.allow_http_loopback;
    config
}

/// The roots an issuer's TLS is checked with: its `ca` files, else the Mozilla set.
fn issuer_roots(i: &OidcIssuer) -> Result<rustls::RootCertStore, TokenError> {
    let mut roots = rustls::RootCertStore::empty();
    if i.ca.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for path in &i.ca {
        // The error names the file.
        cmg_pki::pem::add_roots(&mut roots, path)
            .map_err(|e| TokenError::Config(format!("issuer CA: {e}")))?;
    }
    Ok(roots)
}

/// The token in `Authorization: Bearer <token>` (scheme case-insensitive, RFC 6750).
fn bearer(value: Option<&HeaderValue>) -> Result<&str, TokenRefusal> {
    let value = value.ok_or(TokenRefusal::Missing)?;
    let value = value
        .to_str()
        .map_err(|_| TokenRefusal::Invalid(TokenError::Malformed("authorization not ASCII")))?;
    let (scheme, token) = value.split_once(' ').ok_or(TokenRefusal::Missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenRefusal::Missing);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(TokenRefusal::Invalid(TokenError::Malformed("empty token")));
    }
    Ok(token)
}

fn identity(header: String, subject: &str, method: AuthMethod) -> ClientIdentity {
    ClientIdentity {
        header: HeaderValue::from_str(&header)
            .unwrap_or_else(|_| HeaderValue::from_static("token")),
        subject: subject.to_owned(),
        method,
    }
}

/// Claim text safe inside a quoted header parameter.
fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '"' || c == '\\' { '\'' } else { c })
        .take(256)
        .collect()
}

#[cfg(test)]
mod tests;
