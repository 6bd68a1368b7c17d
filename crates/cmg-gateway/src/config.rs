//! Gateway configuration: a TOML `RawConfig` (unknown fields rejected) validated into
//! [`Config`], which holds parsed addresses, durations and published URLs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cmg_core::config::{load_toml, resolve, ConfigError};
use cmg_proto::mapping::{AuthKind, ExternalPrefix, PrefixTable, PublishedUrl};
use cmg_proto::SiteCode;
use cmg_token::{SiteGuid, SitePublicKey};
use serde::Deserialize;

use crate::settings::SettingsConfig;
use crate::tokens::{OidcIssuer, SiteTokens, TokenAuth, TokenSettings};

/// Minimum TLS version offered to clients ("Enforce TLS 1.2", seed 001).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum MinTls {
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

/// Validated gateway configuration. Tests build it in code; the binary reads a file.
#[derive(Clone, Debug)]
pub struct Config {
    /// This instance's name, e.g. `gw1`: in logs, the channel hello and route headers.
    pub instance: String,
    /// The service name clients use (from the server certificate in a later issue).
    pub service_name: String,
    pub listen: Listen,
    pub tls: ServerTls,
    pub client_auth: ClientAuth,
    pub channel: ChannelSettings,
    pub limits: Limits,
    pub published: PrefixTable<PublishedUrl>,
    /// Bearer tokens accepted on `CCM_Proxy_ServerAuth` URLs.
    pub tokens: TokenSettings,
    /// Settings bundles from the site (over the channels); `None`: config file only.
    pub settings: Option<SettingsConfig>,
    /// Add `cmg-gateway-instance` and keep `cmg-connection-point` on responses
    /// (demo and tests; off in production: it tells clients the internal topology).
    pub route_headers: bool,
    /// Traffic snapshots posted to the connection points (`[reports]`).
    pub reports: Reports,
    /// Content serving (`[content]`): local timeouts, and the switch and storage
    /// account until a settings bundle gives them.
    pub content: crate::content::ContentConfig,
    /// Data-path threads (shards): client connections and channels are spread over
    /// them, and a request stays on its connection's thread. Default: one per core.
    pub threads: usize,
}

/// `[reports]`: how often this instance posts its traffic snapshot on every channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reports {
    pub interval: Duration,
}

impl Default for Reports {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Listen {
    /// Client listener (443 in production); also accepts channels by ALPN.
    pub client: SocketAddr,
    /// Dedicated channel listener for connection points (10140.. in the product).
    pub channel: Option<SocketAddr>,
    /// Plain HTTP admin listener: `/metrics`, `/ready`. Loopback or a private address.
    pub admin: Option<SocketAddr>,
}

#[derive(Clone, Debug)]
pub struct ServerTls {
    /// Server certificate chain (leaf first).
    pub cert: PathBuf,
    pub key: PathBuf,
    pub min_version: MinTls,
    /// How often the TLS files are checked for changes; `None` turns reloading off.
    pub reload_interval: Option<Duration>,
}

#[derive(Clone, Debug)]
pub struct ClientAuth {
    /// Uploaded trusted root CAs for client certificates.
    pub trusted_roots: Vec<PathBuf>,
    /// Uploaded intermediate CAs (clients often send only their leaf).
    pub trusted_intermediates: Vec<PathBuf>,
    /// Hand-configured CRL files, used next to the fetched ones.
    pub crl_files: Vec<PathBuf>,
    /// "Verify client certificate revocation" (seed 004; on by default): every
    /// certificate below the root needs a usable CRL, or the client is refused. Off: no
    /// revocation check at all (`crl_files` are then ignored).
    pub verify_revocation: bool,
    /// CRL fetching, caching and timing (see `cmg_pki::revocation`).
    pub revocation: cmg_pki::revocation::RevocationConfig,
    /// The certificate trust list: when not empty, a client chain must end at an
    /// uploaded root that is also in one of these PEM files.
    pub trust_list: Vec<PathBuf>,
}

#[derive(Clone, Debug)]
pub struct ChannelSettings {
    /// The site CA(s) that issue connection point certificates.
    pub site_ca: Vec<PathBuf>,
    /// HTTP/2 PING interval on each channel; a dead channel is noticed within
    /// `ping_interval + ping_timeout`.
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// Time a forwarded request may wait for response headers from the channel.
    pub response_timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct Limits {
    pub handshake_timeout: Duration,
    /// Whole request head (request line + headers), HTTP/1.1; header list, HTTP/2.
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub header_read_timeout: Duration,
    /// A connection with no request in flight and no bytes moving for this long is closed.
    pub idle_timeout: Duration,
    pub max_concurrent_streams: u32,
    /// Accepted client connections at once; past it new ones are closed at accept.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            max_concurrent_streams: 128,
            max_connections: 50_000,
        }
    }
}

impl ChannelSettings {
    pub fn new(site_ca: Vec<PathBuf>) -> Self {
        Self {
            site_ca,
            ping_interval: Duration::from_secs(5),
            ping_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(120),
        }
    }
}

// ---- the file format ----

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    instance: String,
    service_name: String,
    listen: RawListen,
    tls: RawTls,
    #[serde(default)]
    client_auth: RawClientAuth,
    channel: RawChannel,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default, rename = "published_url")]
    published_urls: Vec<RawPublishedUrl>,
    #[serde(default)]
    tokens: RawTokens,
    settings: Option<RawSettings>,
    #[serde(default)]
    route_headers: bool,
    #[serde(default)]
    reports: RawReports,
    #[serde(default)]
    content: crate::content::config::RawContent,
    threads: Option<usize>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct RawReports {
    #[serde(default, with = "humantime_serde")]
    interval: Option<Duration>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    /// The gateway (cloud service) name in the site.
    gateway: String,
    /// Site public keys (PEM files) that sign settings bundles.
    site_keys: Vec<PathBuf>,
    /// Where the last good bundle is kept.
    last_good: PathBuf,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct RawTokens {
    /// The site GUID whose tokens are accepted (issuer `urn:sccm:oauth2:<guid>`).
    site_guid: Option<String>,
    /// The site's token verification keys (RSA public keys, PEM files).
    #[serde(default)]
    site_keys: Vec<PathBuf>,
    /// Tracking IDs of blocked site tokens.
    #[serde(default)]
    blocked_token_ids: Vec<String>,
    #[serde(default, with = "humantime_serde")]
    cache_max_age: Option<Duration>,
    #[serde(default)]
    oidc: Vec<RawOidc>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawOidc {
    issuer: String,
    audiences: Vec<String>,
    #[serde(default)]
    tenants: Vec<String>,
    #[serde(default)]
    ca: Vec<PathBuf>,
    #[serde(default)]
    allow_http_loopback: bool,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawListen {
    client: SocketAddr,
    channel: Option<SocketAddr>,
    admin: Option<SocketAddr>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: PathBuf,
    key: PathBuf,
    #[serde(default = "default_min_tls")]
    min_version: MinTls,
    /// `"0s"` turns reloading off.
    #[serde(default, with = "humantime_serde")]
    reload_interval: Option<Duration>,
}

fn default_min_tls() -> MinTls {
    MinTls::Tls12
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct RawClientAuth {
    #[serde(default)]
    trusted_roots: Vec<PathBuf>,
    #[serde(default)]
    trusted_intermediates: Vec<PathBuf>,
    #[serde(default)]
    crl_files: Vec<PathBuf>,
    #[serde(default)]
    trust_list: Vec<PathBuf>,
    // Revocation (serde's `flatten` would defeat deny_unknown_fields, so flat here).
    /// Default true.
    verify_revocation: Option<bool>,
    /// Fetch CRLs from the certificates' http:// distribution points; default true.
    crl_fetch: Option<bool>,
    crl_cache_dir: Option<PathBuf>,
    #[serde(default, with = "humantime_serde")]
    crl_fetch_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    crl_connect_timeout: Option<Duration>,
    crl_max_bytes: Option<usize>,
    /// How long a handshake may wait for a CRL not cached yet.
    #[serde(default, with = "humantime_serde")]
    crl_handshake_wait: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    crl_retry_after: Option<Duration>,
    /// Ask a certificate's OCSP responder (AIA) when no usable CRL covers it;
    /// default true.
    ocsp: Option<bool>,
    /// Send a nonce in OCSP requests (an echoed nonce must match); default true.
    ocsp_nonce: Option<bool>,
}

impl RawClientAuth {
    fn revocation(
        &self,
        path: &Path,
    ) -> Result<(bool, cmg_pki::revocation::RevocationConfig), ConfigError> {
        let d = cmg_pki::revocation::RevocationConfig::default();
        let mut limits = d.limits;
        limits.timeout = self.crl_fetch_timeout.unwrap_or(limits.timeout);
        limits.connect_timeout = self.crl_connect_timeout.unwrap_or(limits.connect_timeout);
        limits.max_bytes = self.crl_max_bytes.unwrap_or(limits.max_bytes);
        let config = cmg_pki::revocation::RevocationConfig {
            fetch: self.crl_fetch.unwrap_or(d.fetch),
            limits,
            handshake_wait: self.crl_handshake_wait.unwrap_or(d.handshake_wait),
            retry_after: self.crl_retry_after.unwrap_or(d.retry_after),
            cache_dir: self.crl_cache_dir.as_ref().map(|dir| resolve(path, dir)),
            max_urls: d.max_urls,
            ocsp: self.ocsp.unwrap_or(d.ocsp),
            ocsp_nonce: self.ocsp_nonce.unwrap_or(d.ocsp_nonce),
            max_ocsp_entries: d.max_ocsp_entries,
        };
        let inv = |field: &str, msg: &str| {
            ConfigError::invalid(path, format!("client_auth.{field}"), msg.to_owned())
        };
        if config.limits.timeout.is_zero() || config.limits.connect_timeout.is_zero() {
            return Err(inv("crl_fetch_timeout", "fetch timeouts must be positive"));
        }
        if config.limits.max_bytes < 1024 {
            return Err(inv("crl_max_bytes", "must be at least 1024"));
        }
        Ok((self.verify_revocation.unwrap_or(true), config))
    }
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    site_ca: Vec<PathBuf>,
    #[serde(default, with = "humantime_serde")]
    ping_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    ping_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    response_timeout: Option<Duration>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default, with = "humantime_serde")]
    handshake_timeout: Option<Duration>,
    max_header_bytes: Option<usize>,
    max_headers: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    header_read_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    idle_timeout: Option<Duration>,
    max_concurrent_streams: Option<u32>,
    max_connections: Option<usize>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawPublishedUrl {
    prefix: String,
    site: String,
    max_body_bytes: u64,
    auth: Option<AuthKind>,
}

impl Config {
    /// Reads and validates a gateway config file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = load_toml(path)?;
        Self::from_raw(path, raw)
    }

    /// Parses and validates config text; `path` names the source and anchors
    /// relative paths.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = cmg_core::config::parse_toml(path, text)?;
        Self::from_raw(path, raw)
    }

    fn from_raw(path: &Path, raw: RawConfig) -> Result<Self, ConfigError> {
        let inv =
            |field: &str, msg: &dyn ToString| ConfigError::invalid(path, field, msg.to_string());
        if raw.instance.is_empty() || raw.instance.len() > 64 {
            return Err(inv("instance", &"must be 1 to 64 characters"));
        }
        if raw.service_name.is_empty() || raw.service_name.contains('*') {
            return Err(inv(
                "service_name",
                &"must be a host name (for a wildcard certificate, give the host name to use)",
            ));
        }
        let mut published = Vec::with_capacity(raw.published_urls.len());
        for (i, u) in raw.published_urls.into_iter().enumerate() {
            let field = |f: &str| format!("published_url[{i}].{f}");
            let prefix = ExternalPrefix::new(u.prefix).map_err(|e| inv(&field("prefix"), &e))?;
            let site = SiteCode::new(u.site).map_err(|e| inv(&field("site"), &e))?;
            let auth = match (u.auth, AuthKind::from_prefix(prefix.as_str())) {
                (Some(a), _) | (None, Some(a)) => a,
                (None, None) => {
                    return Err(inv(
                        &field("auth"),
                        &"required when the prefix is not under CCM_Proxy_MutualAuth or CCM_Proxy_ServerAuth",
                    ))
                }
            };
            published.push((
                prefix.clone(),
                PublishedUrl {
                    prefix,
                    site,
                    auth,
                    max_body: u.max_body_bytes,
                },
            ));
        }
        let paths = |v: Vec<PathBuf>| v.iter().map(|p| resolve(path, p)).collect::<Vec<_>>();
        let tokens = token_settings(path, raw.tokens)?;
        if !tokens.is_enabled() {
            if let Some((prefix, _)) = published
                .iter()
                .find(|(_, u)| u.auth == AuthKind::ServerAuth)
            {
                return Err(inv(
                    "tokens",
                    &format!("published URL {} needs token authentication: set tokens.site_guid and tokens.site_keys, or add a [[tokens.oidc]] issuer", prefix.as_str()),
                ));
            }
        }
        let published = PrefixTable::new(published).map_err(|e| inv("published_url", &e))?;
        if raw.channel.site_ca.is_empty() {
            return Err(inv(
                "channel.site_ca",
                &"at least one site CA certificate is required",
            ));
        }
        let d = Limits::default();
        let l = raw.limits;
        let limits = Limits {
            handshake_timeout: l.handshake_timeout.unwrap_or(d.handshake_timeout),
            max_header_bytes: l.max_header_bytes.unwrap_or(d.max_header_bytes),
            max_headers: l.max_headers.unwrap_or(d.max_headers),
            header_read_timeout: l.header_read_timeout.unwrap_or(d.header_read_timeout),
            idle_timeout: l.idle_timeout.unwrap_or(d.idle_timeout),
            max_concurrent_streams: l.max_concurrent_streams.unwrap_or(d.max_concurrent_streams),
            max_connections: l.max_connections.unwrap_or(d.max_connections),
        };
        if limits.max_header_bytes < 8192 {
            return Err(inv("limits.max_header_bytes", &"must be at least 8192"));
        }
        if limits.max_headers == 0 || limits.max_concurrent_streams == 0 {
            return Err(inv(
                "limits",
                &"max_headers and max_concurrent_streams must be positive",
            ));
        }
        let mut channel = ChannelSettings::new(paths(raw.channel.site_ca));
        if let Some(v) = raw.channel.ping_interval {
            channel.ping_interval = v;
        }
        if let Some(v) = raw.channel.ping_timeout {
            channel.ping_timeout = v;
        }
        if let Some(v) = raw.channel.response_timeout {
            channel.response_timeout = v;
        }
        let (verify_revocation, revocation) = raw.client_auth.revocation(path)?;
        Ok(Config {
            instance: raw.instance,
            service_name: raw.service_name.to_ascii_lowercase(),
            listen: Listen {
                client: raw.listen.client,
                channel: raw.listen.channel,
                admin: raw.listen.admin,
            },
            tls: ServerTls {
                cert: resolve(path, &raw.tls.cert),
                key: resolve(path, &raw.tls.key),
                min_version: raw.tls.min_version,
                reload_interval: match raw.tls.reload_interval {
                    None => Some(Duration::from_secs(30)),
                    Some(d) if d.is_zero() => None,
                    Some(d) => Some(d),
                },
            },
            client_auth: ClientAuth {
                trusted_roots: paths(raw.client_auth.trusted_roots),
                trusted_intermediates: paths(raw.client_auth.trusted_intermediates),
                crl_files: paths(raw.client_auth.crl_files),
                trust_list: paths(raw.client_auth.trust_list),
                verify_revocation,
                revocation,
            },
            channel,
            limits,
            published,
            tokens,
            settings: raw.settings.map(|r| settings_config(path, r)).transpose()?,
            route_headers: raw.route_headers,
            reports: {
                let interval = raw.reports.interval.unwrap_or(Reports::default().interval);
                if interval < Duration::from_millis(100) {
                    return Err(inv("reports.interval", &"must be at least 100ms"));
                }
                Reports { interval }
            },
            content: raw.content.validate(path)?,
            threads: cmg_core::shards::threads_setting(raw.threads)
                .map_err(|e| inv("threads", &e))?,
        })
    }
}

fn settings_config(path: &Path, raw: RawSettings) -> Result<SettingsConfig, ConfigError> {
    let inv = |field: &str, msg: String| ConfigError::invalid(path, field, msg);
    if raw.gateway.is_empty() {
        return Err(inv("settings.gateway", "must not be empty".into()));
    }
    if raw.site_keys.is_empty() {
        return Err(inv(
            "settings.site_keys",
            "at least one site key file".into(),
        ));
    }
    let site_keys_pem = read_site_keys(path, &raw.site_keys, "settings.site_keys")?;
    let config = SettingsConfig {
        gateway: raw.gateway,
        site_keys_pem,
        last_good: resolve(path, &raw.last_good),
    };
    config
        .verifier()
        .map_err(|e| inv("settings.site_keys", e.to_string()))?;
    Ok(config)
}

/// Reads RSA public keys (PEM files), checking each.
fn read_site_keys(path: &Path, files: &[PathBuf], field: &str) -> Result<Vec<String>, ConfigError> {
    let mut keys_pem = Vec::with_capacity(files.len());
    for (i, p) in files.iter().enumerate() {
        let file = resolve(path, p);
        let bad = |msg: String| {
            ConfigError::invalid(
                path,
                format!("{field}[{i}]"),
                format!("{}: {msg}", file.display()),
            )
        };
        let text = std::fs::read_to_string(&file).map_err(|e| bad(e.to_string()))?;
        SitePublicKey::from_pem(text.as_bytes()).map_err(|e| bad(e.to_string()))?;
        keys_pem.push(text);
    }
    Ok(keys_pem)
}

fn token_settings(path: &Path, raw: RawTokens) -> Result<TokenSettings, ConfigError> {
    let inv = |field: &str, msg: String| ConfigError::invalid(path, field, msg);
    let site = match (raw.site_guid, raw.site_keys.is_empty()) {
        (None, true) => None,
        (None, false) => {
            return Err(inv(
                "tokens.site_guid",
                "required with tokens.site_keys".into(),
            ))
        }
        (Some(_), true) => {
            return Err(inv(
                "tokens.site_keys",
                "at least one site key file is required with tokens.site_guid".into(),
            ))
        }
        (Some(guid), false) => {
            let guid: SiteGuid = guid
                .parse()
                .map_err(|e| inv("tokens.site_guid", format!("{e}")))?;
            let mut keys_pem = Vec::with_capacity(raw.site_keys.len());
            for (i, p) in raw.site_keys.iter().enumerate() {
                let file = resolve(path, p);
                let text = std::fs::read_to_string(&file).map_err(|e| {
                    inv(
                        &format!("tokens.site_keys[{i}]"),
                        format!("{}: {e}", file.display()),
                    )
                })?;
                SitePublicKey::from_pem(text.as_bytes()).map_err(|e| {
                    inv(
                        &format!("tokens.site_keys[{i}]"),
                        format!("{}: {e}", file.display()),
                    )
                })?;
                keys_pem.push(text);
            }
            Some(SiteTokens { guid, keys_pem })
        }
    };
    let oidc = raw
        .oidc
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            if o.issuer.is_empty() || o.audiences.is_empty() {
                return Err(inv(
                    &format!("tokens.oidc[{i}]"),
                    "issuer and at least one audience are required".into(),
                ));
            }
            Ok(OidcIssuer {
                issuer: o.issuer,
                audiences: o.audiences,
                tenants: o.tenants,
                ca: o.ca.iter().map(|p| resolve(path, p)).collect(),
                allow_http_loopback: o.allow_http_loopback,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let settings = TokenSettings {
        site,
        blocked: raw.blocked_token_ids,
        oidc,
        cache_max_age: raw.cache_max_age.unwrap_or(Duration::from_secs(300)),
    };
    // Build once so a bad issuer URL or key fails at startup with the file named.
    TokenAuth::new(&settings).map_err(|e| inv("tokens", e.to_string()))?;
    Ok(settings)
}
