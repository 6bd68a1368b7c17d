//! Gateway configuration: the TOML file (`raw`, unknown fields rejected) validated
//! into [`Config`], which holds parsed addresses, durations, published URLs and the
//! token and settings keys read from their files. One file per section that needs
//! more than a line of checking; tests build a `Config` in code or load the fixture
//! files in `tests/fixtures/config/`.

mod client_auth;
mod limits;
mod proxy_protocol;
mod published;
mod raw;
mod settings;
#[cfg(test)]
mod tests;
mod tokens;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cmg_core::config::{load_toml, resolve, ConfigError};
use cmg_proto::mapping::{AuthKind, PrefixTable, PublishedUrl};
use serde::Deserialize;

pub use self::limits::Limits;
pub use self::proxy_protocol::ProxyProtocol;
use self::raw::RawConfig;
pub use self::settings::SettingsConfig;
use crate::tokens::TokenSettings;

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
    /// How long in-flight client requests may take to finish after shutdown is
    /// requested (`[shutdown] grace`, default 10 s).
    pub drain_grace: Duration,
    /// How long, after shutdown is requested, the instance goes on accepting and serving
    /// as usual with `/ready` already 503, so that a balancer's health check takes it out
    /// before its listeners close (`[shutdown] delay`, default 0, at most 1 min).
    pub drain_delay: Duration,
    /// PROXY protocol headers from a load balancer (`[proxy_protocol]`); `None`: off.
    pub proxy_protocol: Option<ProxyProtocol>,
}

/// The default of `[shutdown] grace`.
pub const DEFAULT_DRAIN_GRACE: Duration = Duration::from_secs(10);

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
    /// CRLs of the site CA(s), re-read when they change.
    pub crl_files: Vec<PathBuf>,
    /// Check connection point certificates' revocation at the channel handshake, as
    /// client certificates' (the same checker: `crl_files`, the certificates'
    /// distribution points and OCSP responders, `[client_auth]`'s fetch settings; an
    /// unknown status refuses). Default: on when `crl_files` are given.
    pub verify_revocation: bool,
    /// HTTP/2 PING interval on each channel; a dead channel is noticed within
    /// `ping_interval + ping_timeout`.
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// Time a forwarded request may wait for response headers from the channel.
    pub response_timeout: Duration,
}

impl ChannelSettings {
    pub fn new(site_ca: Vec<PathBuf>) -> Self {
        Self {
            site_ca,
            crl_files: Vec::new(),
            verify_revocation: false,
            // A silent channel (packets dropped) is noticed within 2.5 s: PING after
            // 1 s without a frame, closed 1.5 s later without its ACK.
            ping_interval: Duration::from_secs(1),
            ping_timeout: Duration::from_millis(1500),
            response_timeout: Duration::from_secs(120),
        }
    }
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
        let published = published::urls(path, raw.published_urls)?;
        let paths = |v: Vec<PathBuf>| v.iter().map(|p| resolve(path, p)).collect::<Vec<_>>();
        let tokens = tokens::token_settings(path, raw.tokens)?;
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
        let limits = limits::limits(path, raw.limits)?;
        let mut channel = ChannelSettings::new(paths(raw.channel.site_ca));
        channel.verify_revocation = raw
            .channel
            .verify_revocation
            .unwrap_or(!raw.channel.crl_files.is_empty());
        channel.crl_files = paths(raw.channel.crl_files);
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
            settings: raw
                .settings
                .map(|r| settings::settings_config(path, r))
                .transpose()?,
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
            drain_grace: match raw.shutdown.grace {
                None => DEFAULT_DRAIN_GRACE,
                Some(d) if d > Duration::from_secs(3600) => {
                    return Err(inv("shutdown.grace", &"must be at most 1h"))
                }
                Some(d) => d,
            },
            drain_delay: match raw.shutdown.delay {
                None => Duration::ZERO,
                Some(d) if d > Duration::from_secs(60) => {
                    return Err(inv("shutdown.delay", &"must be at most 1m"))
                }
                Some(d) => d,
            },
            proxy_protocol: raw
                .proxy_protocol
                .map(|r| proxy_protocol::proxy_protocol(path, r))
                .transpose()?,
        })
    }
}
