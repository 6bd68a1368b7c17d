//! The config file's format: serde types mirroring the TOML (unknown fields refused),
//! checked and resolved into [`super::Config`].

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// `[settings]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    pub bundle_file: PathBuf,
    #[serde(default, with = "humantime_serde")]
    pub poll_interval: Option<Duration>,
}

/// The TOML file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub id: String,
    pub site: String,
    pub service_name: String,
    /// The bootstrap list of gateway instances; the site's bundle replaces it when it
    /// lists instances. May be empty when a settings source is configured.
    #[serde(default)]
    pub gateways: Vec<RawInstance>,
    pub tls: RawChannelTls,
    #[serde(default)]
    pub roles: RawRoleTls,
    #[serde(default)]
    pub mapping: Vec<RawMapping>,
    #[serde(default)]
    pub timing: RawTiming,
    pub settings: Option<RawSettings>,
    pub site_api: Option<RawSite>,
    pub admin: Option<RawAdmin>,
    pub threads: Option<usize>,
    pub proxy: Option<RawProxy>,
}

/// One entry of `gateways`: an address, or `{ channel = [preferred, fallback...] }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawInstance {
    Addr(String),
    Addrs(RawInstanceAddrs),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInstanceAddrs {
    pub channel: Vec<String>,
}

/// `[proxy]`: the HTTP CONNECT proxy for channels and site calls (wins over
/// `HTTPS_PROXY`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProxy {
    /// `http://[user:password@]host:port`; `"none"`: no proxy, whatever the environment says.
    pub url: String,
    #[serde(default)]
    pub no_proxy: Vec<String>,
}

/// `[admin]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: String,
}

/// `[site_api] url`: a string (comma-separated URLs allowed) or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawUrls {
    One(String),
    Many(Vec<String>),
}

impl RawUrls {
    /// Every URL, in order.
    pub fn list(&self) -> Vec<&str> {
        let all: Vec<&str> = match self {
            Self::One(s) => vec![s.as_str()],
            Self::Many(v) => v.iter().map(String::as_str).collect(),
        };
        all.into_iter()
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .collect()
    }
}

/// `[site_api]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    /// One URL, several comma-separated, or a list: site servers sharing one database.
    pub url: RawUrls,
    pub gateway: String,
    pub ca: Vec<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    #[serde(default, with = "humantime_serde")]
    pub wait: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub backoff_base: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub backoff_max: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub report_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub report_debounce: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChannelTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub gateway_ca: Vec<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoleTls {
    #[serde(default)]
    pub ca: Vec<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMapping {
    pub external: String,
    pub internal: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTiming {
    #[serde(default, with = "humantime_serde")]
    pub ping_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub ping_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub check_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub handshake_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub role_connect_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub role_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub backoff_base: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub backoff_max: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub shutdown_grace: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub fallback_probe: Option<Duration>,
}
