//! `client.toml`: read in two stages (a `deny_unknown_fields` raw form, then [`Config`]
//! with parsed URLs, durations, the credential checked and the site keys loaded), so an
//! error names the file and the field.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cmg_core::config::{load_toml, parse_toml, resolve, ConfigError};
use cmg_proto::ids::SiteCode;
use serde::Deserialize;

use crate::endpoint::{BaseUrl, GatewayName};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    site: String,
    intranet_mp: String,
    site_url: String,
    #[serde(default)]
    bootstrap_gateways: Vec<String>,
    credential: RawCredential,
    #[serde(default)]
    always_internet: bool,
    state_dir: PathBuf,
    site_keys: PathBuf,
    trusted_roots: Vec<PathBuf>,
    #[serde(default)]
    device_id: Option<String>,
    #[serde(default)]
    resolve: BTreeMap<String, SocketAddr>,
    #[serde(default)]
    timing: RawTiming,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredential {
    #[serde(default)]
    certificate: Option<PathBuf>,
    #[serde(default)]
    key: Option<PathBuf>,
    #[serde(default)]
    bulk_token_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTiming {
    #[serde(default, with = "humantime_serde")]
    probe_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    reevaluate_every: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    network_settle: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    retry_after: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    request_timeout: Option<Duration>,
}

/// How the client proves who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A client authentication certificate (PEM chain) and its key: `CCM_Proxy_MutualAuth`.
    Certificate { chain: PathBuf, key: PathBuf },
    /// A bulk registration token file, traded once for a device token:
    /// `CCM_Proxy_ServerAuth`.
    BulkToken { file: PathBuf },
}

impl Credential {
    pub fn is_token(&self) -> bool {
        matches!(self, Credential::BulkToken { .. })
    }
}

/// The agent's timers and bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Whole bound of the intranet probe (connect, answer, body). Default 3 s.
    pub probe_timeout: Duration,
    /// Re-decide intranet/internet and refresh location this often. Default 24 h
    /// (seed 004: "The polling cycle for location requests is every 24 hours").
    pub reevaluate_every: Duration,
    /// After a netlink change, wait this long for quiet before re-deciding (a DHCP
    /// renewal sends several messages). Default 1 s.
    pub network_settle: Duration,
    /// After a failed cycle, try again this soon. Default 30 s.
    pub retry_after: Duration,
    /// Bound of one request to a management point or the site. Default 30 s.
    pub request_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            probe_timeout: Duration::from_secs(3),
            reevaluate_every: Duration::from_secs(24 * 3600),
            network_settle: Duration::from_secs(1),
            retry_after: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// A validated client configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub site: SiteCode,
    /// The intranet management point: the probe, and policy while on the intranet.
    pub intranet_mp: BaseUrl,
    /// The site's HTTPS API on the intranet: location requests and token registration
    /// while on the intranet.
    pub site_url: BaseUrl,
    /// The product's `CMGFQDNs`: used only while the client knows no gateway yet.
    pub bootstrap_gateways: Vec<GatewayName>,
    pub credential: Credential,
    /// The product's `ClientAlwaysOnInternet = 1`.
    pub always_internet: bool,
    pub state_dir: PathBuf,
    /// The site's signing public keys (one or more PEM blocks), which location answers
    /// must verify with.
    pub site_keys_pem: String,
    /// PEM files of the roots the gateway's and the management point's server
    /// certificates are checked against.
    pub trusted_roots: Vec<PathBuf>,
    /// The device ID a token client registers with; default a random one kept in the
    /// state.
    pub device_id: Option<String>,
    /// Host name → socket address, for names not in DNS (like `curl --resolve`).
    pub resolve: BTreeMap<String, SocketAddr>,
    pub timing: Timing,
}

impl Config {
    /// Reads and validates `path`.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = load_toml(path)?;
        Self::from_raw(path, raw)
    }

    /// Validates `text` as if read from `path` (relative paths resolve next to it).
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = parse_toml(path, text)?;
        Self::from_raw(path, raw)
    }

    fn from_raw(path: &Path, raw: RawConfig) -> Result<Self, ConfigError> {
        let bad =
            |field: &str, msg: &dyn ToString| ConfigError::invalid(path, field, msg.to_string());
        let site = SiteCode::new(raw.site).map_err(|e| bad("site", &e))?;
        let intranet_mp = BaseUrl::parse(&raw.intranet_mp).map_err(|e| bad("intranet_mp", &e))?;
        let site_url = BaseUrl::parse(&raw.site_url).map_err(|e| bad("site_url", &e))?;
        let bootstrap_gateways = raw
            .bootstrap_gateways
            .iter()
            .map(|g| GatewayName::parse(g))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad("bootstrap_gateways", &e))?;
        let file = |p: &Path| resolve(path, p);
        let credential = match raw.credential {
            RawCredential {
                certificate: Some(chain),
                key: Some(key),
                bulk_token_file: None,
            } => Credential::Certificate {
                chain: file(&chain),
                key: file(&key),
            },
            RawCredential {
                certificate: None,
                key: None,
                bulk_token_file: Some(f),
            } => Credential::BulkToken { file: file(&f) },
            _ => {
                return Err(bad(
                    "credential",
                    &"give either `certificate` and `key`, or `bulk_token_file`",
                ))
            }
        };
        let keys_path = file(&raw.site_keys);
        let site_keys_pem = std::fs::read_to_string(&keys_path)
            .map_err(|e| bad("site_keys", &format!("{}: {e}", keys_path.display())))?;
        crate::location::verifier(&site_keys_pem, &site)
            .map_err(|e| bad("site_keys", &format!("{}: {e}", keys_path.display())))?;
        if raw.trusted_roots.is_empty() {
            return Err(bad("trusted_roots", &"at least one root certificate file"));
        }
        if let Some(id) = &raw.device_id {
            if id.is_empty() || id.len() > 256 || id.chars().any(char::is_control) {
                return Err(bad(
                    "device_id",
                    &"1 to 256 characters, no control characters",
                ));
            }
        }
        let t = raw.timing;
        let d = Timing::default();
        let timing = Timing {
            probe_timeout: t.probe_timeout.unwrap_or(d.probe_timeout),
            reevaluate_every: t.reevaluate_every.unwrap_or(d.reevaluate_every),
            network_settle: t.network_settle.unwrap_or(d.network_settle),
            retry_after: t.retry_after.unwrap_or(d.retry_after),
            request_timeout: t.request_timeout.unwrap_or(d.request_timeout),
        };
        for (field, v) in [
            ("timing.probe_timeout", timing.probe_timeout),
            ("timing.reevaluate_every", timing.reevaluate_every),
            ("timing.retry_after", timing.retry_after),
            ("timing.request_timeout", timing.request_timeout),
        ] {
            if v.is_zero() {
                return Err(bad(field, &"must be more than zero"));
            }
        }
        Ok(Self {
            site,
            intranet_mp,
            site_url,
            bootstrap_gateways,
            credential,
            always_internet: raw.always_internet,
            state_dir: file(&raw.state_dir),
            site_keys_pem,
            trusted_roots: raw.trusted_roots.iter().map(|p| file(p)).collect(),
            device_id: raw.device_id,
            resolve: raw.resolve,
            timing,
        })
    }
}
