//! Bearer tokens from Entra ID or any OpenID Connect issuer.
//!
//! [`OidcVerifier::discover`] reads `<issuer>/.well-known/openid-configuration`, checks
//! that it names the configured issuer, and fetches the JWKS it points to. The key set is
//! held behind an `RwLock<Arc<_>>`: verification takes a read lock for a pointer copy and
//! never waits on the network unless a token names a key id the set does not hold. Then
//! the JWKS is fetched again, at most once per `jwks_refresh_min_interval` (one fetch at
//! a time; concurrent callers wait for it and look again), which is how a key rotation at
//! the issuer is picked up.

mod jwks;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use crate::error::TokenError;
use crate::fetch::{FetchLimits, HttpFetcher};
use crate::jws::{self, Claims};
use jwks::{KeySet, Lookup};

/// Algorithms accepted from an OIDC issuer; everything else is refused before key lookup.
const ACCEPTED_ALGS: &[Algorithm] = &[Algorithm::RS256, Algorithm::ES256];

/// Where tokens come from and what they must say.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// Exactly as in the tokens' `iss` and the discovery document's `issuer`
    /// (Entra: `https://login.microsoftonline.com/<tenant id>/v2.0`).
    pub issuer: String,
    /// Accepted `aud` values (Entra: the server app's ID URI or client ID); any one.
    pub audiences: Vec<String>,
    /// When set, the `tid` claim must be one of these.
    pub allowed_tenants: Option<Vec<String>>,
    /// Allowed clock difference for `exp` and `nbf`.
    pub clock_skew: Duration,
    /// A token with an unknown key id triggers a JWKS fetch at most this often.
    pub jwks_refresh_min_interval: Duration,
    /// Total time for one discovery or JWKS fetch.
    pub fetch_timeout: Duration,
    /// Largest discovery or JWKS document accepted.
    pub max_document_bytes: usize,
    /// Tests only: allow `http://` for an issuer and JWKS on a loopback address.
    pub allow_insecure_loopback: bool,
}

impl OidcConfig {
    /// A configuration with the defaults: 60 s skew, 5 min refresh interval, 10 s fetch
    /// timeout, 256 KiB documents, https only, no tenant restriction.
    pub fn new(issuer: impl Into<String>, audiences: Vec<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audiences,
            allowed_tenants: None,
            clock_skew: Duration::from_secs(60),
            jwks_refresh_min_interval: Duration::from_secs(300),
            fetch_timeout: Duration::from_secs(10),
            max_document_bytes: 256 * 1024,
            allow_insecure_loopback: false,
        }
    }

    /// Checks the settings (issuer URL scheme, audiences, tenants, limits) without any
    /// network access; [`OidcVerifier::discover`] calls it too.
    pub fn validate(&self) -> Result<(), TokenError> {
        check_url(&self.issuer, self.allow_insecure_loopback)
            .map_err(|e| TokenError::Config(format!("issuer {:?}: {e}", self.issuer)))?;
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return Err(TokenError::Config("at least one non-empty audience".into()));
        }
        if self.allowed_tenants.as_ref().is_some_and(Vec::is_empty) {
            return Err(TokenError::Config(
                "allowed_tenants is empty: every token would be refused".into(),
            ));
        }
        if self.clock_skew > Duration::from_secs(600) {
            return Err(TokenError::Config("clock_skew above 10 minutes".into()));
        }
        if self.fetch_timeout.is_zero() || self.max_document_bytes == 0 {
            return Err(TokenError::Config(
                "fetch_timeout and max_document_bytes must be positive".into(),
            ));
        }
        Ok(())
    }

    fn limits(&self) -> FetchLimits {
        FetchLimits {
            connect_timeout: self.fetch_timeout,
            timeout: self.fetch_timeout,
            max_bytes: self.max_document_bytes,
        }
    }
}

/// https with a host; http only to a loopback address when `allow_loopback_http`.
fn check_url(url: &str, allow_loopback_http: bool) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|_| "not a URL".to_string())?;
    let host = uri.host().ok_or("no host")?;
    if uri.query().is_some() || url.contains('#') {
        return Err("query or fragment not allowed".into());
    }
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if allow_loopback_http => {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err("http is allowed for loopback addresses only".into())
            }
        }
        _ => Err("must be https".into()),
    }
}

/// A token that passed every check.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub issuer: String,
    /// The configured audience the token matched.
    pub audience: String,
    pub subject: Option<String>,
    /// Entra `tid`.
    pub tenant: Option<String>,
    /// `azp`, `appid` or `client_id`, whichever the issuer sets.
    pub client_id: Option<String>,
    /// `jti` or Entra's `uti`.
    pub token_id: Option<String>,
    pub expires_at: SystemTime,
    /// All claims, for callers that need more (roles, `oid`, `scp`).
    pub claims: Claims,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// Verifies bearer tokens of one issuer. Cheap to clone; share one per issuer.
#[derive(Debug, Clone)]
pub struct OidcVerifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: OidcConfig,
    jwks_uri: String,
    http: HttpFetcher,
    keys: RwLock<Arc<KeySet>>,
    /// When the JWKS was last fetched (or tried); held across a fetch so only one runs.
    last_refresh: tokio::sync::Mutex<Instant>,
}

impl OidcVerifier {
    /// Validates `config`, reads the issuer's discovery document and fetches its JWKS.
    pub async fn discover(config: OidcConfig, http: &HttpFetcher) -> Result<Self, TokenError> {
        config.validate()?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            config.issuer.trim_end_matches('/')
        );
        let doc = http
            .get(&url, config.limits())
            .await
            .map_err(TokenError::IssuerUnreachable)?;
        let doc: Discovery = serde_json::from_slice(&doc).map_err(|e| {
            TokenError::IssuerMetadata(format!("discovery document is not usable: {e}"))
        })?;
        if doc.issuer != config.issuer {
            return Err(TokenError::IssuerMetadata(format!(
                "discovery document names issuer {:?}, configured {:?}",
                doc.issuer, config.issuer
            )));
        }
        check_url(&doc.jwks_uri, config.allow_insecure_loopback)
            .map_err(|e| TokenError::IssuerMetadata(format!("jwks_uri {:?}: {e}", doc.jwks_uri)))?;
        let keys = fetch_keys(http, &doc.jwks_uri, config.limits()).await?;
        tracing::debug!(issuer = %config.issuer, keys = keys.len(), "OIDC issuer discovered");
        Ok(Self {
            inner: Arc::new(Inner {
                jwks_uri: doc.jwks_uri,
                http: http.clone(),
                keys: RwLock::new(Arc::new(keys)),
                last_refresh: tokio::sync::Mutex::new(Instant::now()),
                config,
            }),
        })
    }

    pub fn config(&self) -> &OidcConfig {
        &self.inner.config
    }

    /// Verifies `token` now.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        self.verify_at(token, SystemTime::now()).await
    }

    /// Verifies `token` as if the time were `now` (tests, replay of logs). The JWKS refresh
    /// rate limit still runs on the real clock.
    pub async fn verify_at(
        &self,
        token: &str,
        now: SystemTime,
    ) -> Result<VerifiedToken, TokenError> {
        let header = jws::parse_header(token, ACCEPTED_ALGS)?;
        let key = self.key_for(header.kid.as_deref(), header.alg).await?;
        let claims = jws::verify_signature(token, header.alg, &key)?;
        let config = &self.inner.config;

        let issuer = jws::string_claim(&claims, "iss").ok_or(TokenError::BadIssuer)?;
        if issuer != config.issuer {
            return Err(TokenError::BadIssuer);
        }
        let audience = jws::matched_audience(&claims, &config.audiences)?;
        let expires_at = jws::check_times(&claims, now, config.clock_skew)?;
        let tenant = jws::string_claim(&claims, "tid");
        if let Some(allowed) = &config.allowed_tenants {
            match &tenant {
                Some(tid) if allowed.iter().any(|a| a.eq_ignore_ascii_case(tid)) => {}
                _ => return Err(TokenError::TenantNotAllowed),
            }
        }
        Ok(VerifiedToken {
            issuer,
            audience,
            subject: jws::string_claim(&claims, "sub"),
            tenant,
            client_id: ["azp", "appid", "client_id"]
                .iter()
                .find_map(|c| jws::string_claim(&claims, c)),
            token_id: jws::string_claim(&claims, "jti")
                .or_else(|| jws::string_claim(&claims, "uti")),
            expires_at,
            claims,
        })
    }

    fn current_keys(&self) -> Arc<KeySet> {
        match self.inner.keys.read() {
            Ok(keys) => Arc::clone(&keys),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, TokenError> {
        match self.current_keys().lookup(kid, alg) {
            Lookup::Found(key) => return Ok(key.clone()),
            Lookup::WrongAlg => return Err(TokenError::unsupported_alg("key-mismatch")),
            Lookup::Missing => {}
        }
        self.refresh_rate_limited().await?;
        match self.current_keys().lookup(kid, alg) {
            Lookup::Found(key) => Ok(key.clone()),
            Lookup::WrongAlg => Err(TokenError::unsupported_alg("key-mismatch")),
            Lookup::Missing => Err(TokenError::UnknownKid),
        }
    }

    /// Fetches the JWKS again unless that was done less than the minimum interval ago.
    /// Callers look the key up again afterwards either way: a concurrent caller may just
    /// have refreshed.
    async fn refresh_rate_limited(&self) -> Result<(), TokenError> {
        let inner = &self.inner;
        let mut last = inner.last_refresh.lock().await;
        if last.elapsed() < inner.config.jwks_refresh_min_interval {
            return Ok(());
        }
        *last = Instant::now();
        let keys = fetch_keys(&inner.http, &inner.jwks_uri, inner.config.limits()).await?;
        tracing::info!(issuer = %inner.config.issuer, keys = keys.len(), "JWKS refreshed for an unknown key id");
        let keys = Arc::new(keys);
        match inner.keys.write() {
            Ok(mut slot) => *slot = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
        Ok(())
    }
}

async fn fetch_keys(
    http: &HttpFetcher,
    jwks_uri: &str,
    limits: FetchLimits,
) -> Result<KeySet, TokenError> {
    let doc = http
        .get(jwks_uri, limits)
        .await
        .map_err(TokenError::IssuerUnreachable)?;
    KeySet::parse(&doc)
}

#[cfg(test)]
mod tests;
