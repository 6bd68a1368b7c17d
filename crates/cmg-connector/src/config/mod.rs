//! The connection point's configuration.
//!
//! Read in two stages: [`RawConfig`] mirrors the TOML file (unknown fields refused), then
//! [`Config::from_raw`] checks every value, resolves relative paths next to the file and
//! reads the key material once, so a bad file fails at startup with an error that names
//! the file and the field. Tests build [`Config`] in code.
//!
//! The connection point's identity (`id`, `site`) is taken from the file; the gateway
//! checks it against the URI SAN `urn:cmg:connection-point:<site>:<id>` of the channel
//! certificate, so a mismatch shows up there as a refused channel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::ServerName;

use cmg_core::config::{load_toml, parse_toml, resolve, ConfigError};
use cmg_proto::mapping::{ExternalPrefix, PrefixTable, UrlMapping, SITE_SCHEME};
use cmg_proto::{ConnectorId, SiteCode};

use crate::route::InternalBase;
use cmg_pki::pem;

mod instance;
mod raw;
pub use instance::{Instance, ProxySetting};
pub use raw::*;

/// A validated connection point configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub id: ConnectorId,
    pub site: SiteCode,
    /// The gateway's service name: the SNI sent on each channel and the name its
    /// certificate must carry.
    pub service_name: String,
    /// The bootstrap list of gateway instances (`gateways`): dialled until a settings
    /// bundle lists instances, and whenever the bundle lists none. The connection point
    /// keeps one channel (per lane) to each.
    pub gateways: Vec<Instance>,
    pub tls: ChannelTls,
    pub roles: RoleTls,
    pub mappings: PrefixTable<UrlMapping>,
    pub timing: Timing,
    /// Where the site's settings bundle for the gateway comes from; `None`: the gateway
    /// instances run on their own config files.
    pub settings: Option<SettingsSource>,
    /// The site's publishing API: settings bundles are long-polled from it and reports
    /// sent to it. Set together with `settings` only as [`SettingsSource::Site`].
    pub site_api: Option<SiteLink>,
    /// The admin listener (`/metrics`, `/ready`, `/live`, `/channels`), when configured.
    pub admin: Option<SocketAddr>,
    /// Data-path threads (shards); the connection point keeps one channel per thread to
    /// every gateway instance (its lanes). Default: one per core.
    pub threads: usize,
    /// How the connection point goes out: `[proxy]` when set (`url = "none"`: direct),
    /// else the environment's `HTTPS_PROXY` / `NO_PROXY` (read by the binary, see
    /// [`Config::proxy_from_env`]).
    pub proxy: ProxySetting,
}

/// How the connection point reaches its site (`[site_api]`; the top-level `site` key
/// already holds the site code).
#[derive(Debug, Clone)]
pub struct SiteLink {
    /// The site API base URL, `https://host:port` (no path).
    pub url: http::Uri,
    /// Further site servers (on the same database), tried in turn when the one in use
    /// cannot be connected to.
    pub fallback_urls: Vec<http::Uri>,
    /// The gateway (cloud service) name this connection point serves at the site.
    pub gateway: String,
    /// CA certificates the site API's server certificate must chain to.
    pub ca: Vec<PathBuf>,
    /// The client certificate presented to the site (default: the channel's).
    pub client: CertKey,
    /// How long the site may hold a bundle long poll open.
    pub wait: Duration,
    /// First reconnect delay ceiling after a failed poll; doubles, with full jitter.
    pub backoff_base: Duration,
    /// Largest reconnect delay.
    pub backoff_max: Duration,
    /// How often a report is sent even when nothing changed.
    pub report_interval: Duration,
    /// Pause after a channel changes state before the report goes out, so a burst of
    /// changes makes one report.
    pub report_debounce: Duration,
}

/// Key material of the channels.
#[derive(Debug, Clone)]
pub struct ChannelTls {
    /// The connection point's certificate chain (PEM), issued by the site CA.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// CA certificates the gateways' server certificates must chain to.
    pub gateway_ca: Vec<PathBuf>,
}

/// TLS towards internal roles with `https://` URLs.
#[derive(Debug, Clone, Default)]
pub struct RoleTls {
    /// CA certificates the roles' server certificates must chain to.
    pub ca: Vec<PathBuf>,
    /// The client certificate presented to roles that ask for one (an HTTPS management
    /// point does).
    pub client_cert: Option<CertKey>,
}

/// A certificate chain and its key, both PEM files.
#[derive(Debug, Clone)]
pub struct CertKey {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Liveness, reconnection and forwarding timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// HTTP/2 PING interval on each channel.
    pub ping_interval: Duration,
    /// How long a PING may go unanswered before the channel counts as dead.
    pub ping_timeout: Duration,
    /// How often every channel is checked (and a missing one retried at once).
    pub check_interval: Duration,
    /// Limit on TCP connect + TLS handshake, and on the gateway's hello after it.
    pub handshake_timeout: Duration,
    /// Limit on connecting to an internal role.
    pub role_connect_timeout: Duration,
    /// Limit on a role's response headers.
    pub role_timeout: Duration,
    /// First reconnect delay ceiling; doubles per failure, with full jitter.
    pub backoff_base: Duration,
    /// Largest reconnect delay.
    pub backoff_max: Duration,
    /// On shutdown, how long each channel may take to finish its in-flight requests
    /// after the GOAWAY.
    pub shutdown_grace: Duration,
    /// While a channel runs on a fallback address, how often the preferred addresses
    /// are dialled again; the first that answers takes over.
    pub fallback_probe: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            // As the gateway's: a silent channel is noticed within 2.5 s.
            ping_interval: Duration::from_secs(1),
            ping_timeout: Duration::from_millis(1500),
            check_interval: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(10),
            role_connect_timeout: Duration::from_secs(5),
            role_timeout: Duration::from_secs(120),
            backoff_base: Duration::from_millis(250),
            // Small on purpose: a connection point is back on an instance within 2 s of
            // its return (plus the handshake), as issue 16 promises; a refused dial to
            // one of at most 16 instances every 2 s costs nothing worth saving.
            backoff_max: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(10),
            fallback_probe: Duration::from_secs(30),
        }
    }
}

/// A source of the signed settings bundle relayed to the gateway instances.
#[derive(Debug, Clone)]
pub enum SettingsSource {
    /// A signed bundle file (`[settings] bundle_file`), re-read when it changes.
    File {
        bundle_file: PathBuf,
        /// How often the file is checked.
        poll_interval: Duration,
    },
    /// The site's publishing API (`[site_api]`), long-polled.
    Site,
}

impl Config {
    /// Reads, checks and resolves the TOML file at `path`.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        Self::from_raw(path, load_toml(path)?)
    }

    /// Parses `text` as if read from `path` (relative paths resolve next to `path`).
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, ConfigError> {
        Self::from_raw(path, parse_toml(path, text)?)
    }

    /// The second stage: checks every value of `raw`, read from `path`.
    pub fn from_raw(path: &Path, raw: RawConfig) -> Result<Self, ConfigError> {
        let invalid =
            |field: &str, msg: &dyn ToString| ConfigError::invalid(path, field, msg.to_string());

        let id = ConnectorId::new(raw.id).map_err(|e| invalid("id", &e))?;
        let site = SiteCode::new(raw.site).map_err(|e| invalid("site", &e))?;
        ServerName::try_from(raw.service_name.as_str()).map_err(|e| invalid("service_name", &e))?;

        if raw.gateways.is_empty() && raw.settings.is_none() && raw.site_api.is_none() {
            return Err(invalid(
                "gateways",
                &"at least one gateway instance is required (or a settings source whose bundle lists them)",
            ));
        }
        let mut gateways: Vec<Instance> = Vec::with_capacity(raw.gateways.len());
        for (i, g) in raw.gateways.iter().enumerate() {
            let addrs = match g {
                RawInstance::Addr(a) => std::slice::from_ref(a),
                RawInstance::Addrs(a) => a.channel.as_slice(),
            };
            let inst =
                Instance::parse(addrs).map_err(|e| invalid(&format!("gateways[{i}]"), &e))?;
            if let Some(dup) = inst
                .channel
                .iter()
                .find(|a| gateways.iter().any(|g| g.channel.contains(a)))
            {
                return Err(invalid(
                    &format!("gateways[{i}]"),
                    &format_args!("{dup} is listed twice"),
                ));
            }
            gateways.push(inst);
        }
        let proxy = match raw.proxy {
            None => ProxySetting::FromEnvironment,
            Some(p) if p.url == "none" => ProxySetting::Direct,
            Some(p) => ProxySetting::Via(std::sync::Arc::new(
                cmg_core::proxy::Proxy::new(&p.url, &p.no_proxy)
                    .map_err(|e| invalid("proxy", &e))?,
            )),
        };

        let cert = resolve(path, &raw.tls.cert);
        pem::load_certs(&cert).map_err(|e| invalid("tls.cert", &e.to_string()))?;
        let key = resolve(path, &raw.tls.key);
        pem::load_key(&key).map_err(|e| invalid("tls.key", &e.to_string()))?;
        if raw.tls.gateway_ca.is_empty() {
            return Err(invalid(
                "tls.gateway_ca",
                &"at least one CA file is required",
            ));
        }
        let gateway_ca = load_cas(path, "tls.gateway_ca", &raw.tls.gateway_ca)?;

        let mut entries = Vec::with_capacity(raw.mapping.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut any_https = false;
        for (i, m) in raw.mapping.into_iter().enumerate() {
            let prefix = ExternalPrefix::new(m.external)
                .map_err(|e| invalid(&format!("mapping[{i}].external"), &e))?;
            if let Some(first) = seen.insert(prefix.as_str().to_ascii_lowercase(), i) {
                return Err(invalid(
                    &format!("mapping[{i}].external"),
                    &format_args!("{prefix} is already mapped by mapping[{first}]"),
                ));
            }
            if let Some(rest) = m.internal.strip_prefix(SITE_SCHEME) {
                // The site's own service: resolved against `[site_api] url` when routes
                // are built.
                if raw.site_api.is_none() || !rest.starts_with('/') {
                    return Err(invalid(
                        &format!("mapping[{i}].internal"),
                        &format_args!(
                            "{:?}: a {SITE_SCHEME}/path mapping needs a [site_api] section",
                            m.internal
                        ),
                    ));
                }
            } else {
                let base = InternalBase::parse(&m.internal).map_err(|e| {
                    invalid(
                        &format!("mapping[{i}].internal"),
                        &format_args!("{:?}: {e}", m.internal),
                    )
                })?;
                any_https |= base.scheme == http::uri::Scheme::HTTPS;
            }
            entries.push((
                prefix.clone(),
                UrlMapping {
                    prefix,
                    internal_base: m.internal,
                },
            ));
        }
        if entries.is_empty() {
            return Err(invalid("mapping", &"at least one [[mapping]] is required"));
        }
        let mappings = PrefixTable::new(entries).map_err(|e| invalid("mapping", &e))?;

        let roles = role_tls(path, raw.roles, any_https)?;
        let timing = timing(path, raw.timing)?;
        let channel_client = CertKey {
            cert: cert.clone(),
            key: key.clone(),
        };
        let site_api = raw
            .site_api
            .map(|r| site_link(path, r, channel_client))
            .transpose()?;
        let settings =
            match (raw.settings, &site_api) {
                (Some(_), Some(_)) => return Err(invalid(
                    "settings",
                    &"[settings] bundle_file and [site_api] are two sources of the same bundle; \
                      keep one (with [site_api], bundles come from the site)",
                )),
                (Some(r), None) => {
                    let bundle_file = resolve(path, &r.bundle_file);
                    // It may carry sealed secrets: refused when others may read it, as
                    // every secret file. Not there yet is fine (written later).
                    if bundle_file.exists() {
                        cmg_core::private_file::check(&bundle_file)
                            .map_err(|e| invalid("settings.bundle_file", &e))?;
                    }
                    Some(SettingsSource::File {
                        bundle_file,
                        poll_interval: r.poll_interval.unwrap_or(Duration::from_secs(5)),
                    })
                }
                (None, Some(_)) => Some(SettingsSource::Site),
                (None, None) => None,
            };

        Ok(Self {
            id,
            site,
            service_name: raw.service_name,
            gateways,
            tls: ChannelTls {
                cert,
                key,
                gateway_ca,
            },
            roles,
            mappings,
            timing,
            settings,
            site_api,
            admin: raw
                .admin
                .map(|a| {
                    a.listen
                        .parse::<SocketAddr>()
                        .map_err(|e| invalid("admin.listen", &format_args!("{:?}: {e}", a.listen)))
                })
                .transpose()?,
            threads: cmg_core::shards::threads_setting(raw.threads)
                .map_err(|e| invalid("threads", &e))?,
            proxy,
        })
    }

    /// The proxy in force: `[proxy]`'s, else the one `env` names (`HTTPS_PROXY`,
    /// `NO_PROXY`; pass `|k| std::env::var(k).ok()`), else none.
    pub fn proxy_from_env(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<std::sync::Arc<cmg_core::proxy::Proxy>>, cmg_core::proxy::ProxyError> {
        match &self.proxy {
            ProxySetting::Direct => Ok(None),
            ProxySetting::Via(p) => Ok(Some(p.clone())),
            ProxySetting::FromEnvironment => {
                Ok(cmg_core::proxy::Proxy::from_env(env)?.map(std::sync::Arc::new))
            }
        }
    }
}

fn load_cas(path: &Path, field: &str, files: &[PathBuf]) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out = Vec::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        let p = resolve(path, f);
        let mut roots = rustls::RootCertStore::empty();
        pem::add_roots(&mut roots, &p)
            .map_err(|e| ConfigError::invalid(path, format!("{field}[{i}]"), e.to_string()))?;
        out.push(p);
    }
    Ok(out)
}

fn role_tls(path: &Path, raw: RawRoleTls, any_https: bool) -> Result<RoleTls, ConfigError> {
    if any_https && raw.ca.is_empty() {
        return Err(ConfigError::invalid(
            path,
            "roles.ca",
            "required: a mapping has an https:// internal URL",
        ));
    }
    let ca = load_cas(path, "roles.ca", &raw.ca)?;
    let client_cert = match (raw.client_cert, raw.client_key) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError::invalid(
                path,
                "roles.client_key",
                "required with roles.client_cert",
            ))
        }
        (None, Some(_)) => {
            return Err(ConfigError::invalid(
                path,
                "roles.client_cert",
                "required with roles.client_key",
            ))
        }
        (Some(cert), Some(key)) => {
            let cert = resolve(path, &cert);
            pem::load_certs(&cert)
                .map_err(|e| ConfigError::invalid(path, "roles.client_cert", e.to_string()))?;
            let key = resolve(path, &key);
            pem::load_key(&key)
                .map_err(|e| ConfigError::invalid(path, "roles.client_key", e.to_string()))?;
            Some(CertKey { cert, key })
        }
    };
    Ok(RoleTls { ca, client_cert })
}

fn site_link(path: &Path, raw: RawSite, channel: CertKey) -> Result<SiteLink, ConfigError> {
    let inv = |field: &str, msg: String| ConfigError::invalid(path, field, msg);
    let mut urls = Vec::new();
    for u in raw.url.list() {
        urls.push(site_url(path, u)?);
    }
    let Some(url) = urls.first().cloned() else {
        return Err(inv("site_api.url", "at least one URL is required".into()));
    };
    let fallback_urls = urls.split_off(1);
    if raw.gateway.is_empty()
        || !raw
            .gateway
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(inv(
            "site_api.gateway",
            format!("{:?}: letters, digits, '-', '_' and '.' only", raw.gateway),
        ));
    }
    if raw.ca.is_empty() {
        return Err(inv(
            "site_api.ca",
            "at least one CA file is required".into(),
        ));
    }
    let ca = load_cas(path, "site_api.ca", &raw.ca)?;
    let client = match (raw.cert, raw.key) {
        (None, None) => channel,
        (Some(cert), Some(key)) => {
            let cert = resolve(path, &cert);
            pem::load_certs(&cert).map_err(|e| inv("site_api.cert", e.to_string()))?;
            let key = resolve(path, &key);
            pem::load_key(&key).map_err(|e| inv("site_api.key", e.to_string()))?;
            CertKey { cert, key }
        }
        (Some(_), None) => return Err(inv("site_api.key", "required with site_api.cert".into())),
        (None, Some(_)) => return Err(inv("site_api.cert", "required with site_api.key".into())),
    };
    let link = SiteLink {
        url,
        fallback_urls,
        gateway: raw.gateway,
        ca,
        client,
        wait: raw.wait.unwrap_or(Duration::from_secs(30)),
        backoff_base: raw.backoff_base.unwrap_or(Duration::from_secs(1)),
        backoff_max: raw.backoff_max.unwrap_or(Duration::from_secs(60)),
        report_interval: raw.report_interval.unwrap_or(Duration::from_secs(300)),
        report_debounce: raw.report_debounce.unwrap_or(Duration::from_secs(1)),
    };
    for (field, value) in [
        ("site_api.wait", link.wait),
        ("site_api.backoff_base", link.backoff_base),
        ("site_api.backoff_max", link.backoff_max),
        ("site_api.report_interval", link.report_interval),
    ] {
        if value.is_zero() {
            return Err(inv(field, "must be greater than zero".into()));
        }
    }
    if link.backoff_max < link.backoff_base {
        return Err(inv(
            "site_api.backoff_max",
            "must not be less than site_api.backoff_base".into(),
        ));
    }
    Ok(link)
}

/// One `[site_api] url`: `https://host[:port]`, nothing else.
fn site_url(path: &Path, raw: &str) -> Result<http::Uri, ConfigError> {
    let inv = |msg: String| ConfigError::invalid(path, "site_api.url", msg);
    let url: http::Uri = raw.parse().map_err(|e| inv(format!("{raw:?}: {e}")))?;
    if url.scheme() != Some(&http::uri::Scheme::HTTPS) {
        return Err(inv(format!("{raw:?}: must be https://")));
    }
    match url.authority() {
        Some(a) if !a.host().is_empty() && !a.as_str().contains('@') => {}
        _ => return Err(inv(format!("{raw:?}: must name a host"))),
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() {
        return Err(inv(format!(
            "{raw:?}: only scheme, host and port (the API paths are fixed)"
        )));
    }
    Ok(url)
}

fn timing(path: &Path, raw: RawTiming) -> Result<Timing, ConfigError> {
    let d = Timing::default();
    let t = Timing {
        ping_interval: raw.ping_interval.unwrap_or(d.ping_interval),
        ping_timeout: raw.ping_timeout.unwrap_or(d.ping_timeout),
        check_interval: raw.check_interval.unwrap_or(d.check_interval),
        handshake_timeout: raw.handshake_timeout.unwrap_or(d.handshake_timeout),
        role_connect_timeout: raw.role_connect_timeout.unwrap_or(d.role_connect_timeout),
        role_timeout: raw.role_timeout.unwrap_or(d.role_timeout),
        backoff_base: raw.backoff_base.unwrap_or(d.backoff_base),
        backoff_max: raw.backoff_max.unwrap_or(d.backoff_max),
        shutdown_grace: raw.shutdown_grace.unwrap_or(d.shutdown_grace),
        fallback_probe: raw.fallback_probe.unwrap_or(d.fallback_probe),
    };
    let fields = [
        ("timing.ping_interval", t.ping_interval),
        ("timing.ping_timeout", t.ping_timeout),
        ("timing.check_interval", t.check_interval),
        ("timing.handshake_timeout", t.handshake_timeout),
        ("timing.role_connect_timeout", t.role_connect_timeout),
        ("timing.role_timeout", t.role_timeout),
        ("timing.backoff_base", t.backoff_base),
        ("timing.backoff_max", t.backoff_max),
        ("timing.shutdown_grace", t.shutdown_grace),
        ("timing.fallback_probe", t.fallback_probe),
    ];
    for (field, value) in fields {
        if value.is_zero() {
            return Err(ConfigError::invalid(
                path,
                field,
                "must be greater than zero",
            ));
        }
    }
    if t.backoff_max < t.backoff_base {
        return Err(ConfigError::invalid(
            path,
            "timing.backoff_max",
            "must not be less than timing.backoff_base",
        ));
    }
    Ok(t)
}

#[cfg(test)]
mod tests;
