//! The config file's format: serde types mirroring the TOML, every table with
//! `deny_unknown_fields`, nothing validated or resolved yet ([`super::Config`] does that).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use cmg_proto::mapping::AuthKind;
use serde::Deserialize;

use super::MinTls;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub instance: String,
    pub service_name: String,
    pub listen: RawListen,
    pub tls: RawTls,
    #[serde(default)]
    pub client_auth: RawClientAuth,
    pub channel: RawChannel,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default, rename = "published_url")]
    pub published_urls: Vec<RawPublishedUrl>,
    #[serde(default)]
    pub tokens: RawTokens,
    pub settings: Option<RawSettings>,
    #[serde(default)]
    pub route_headers: bool,
    #[serde(default)]
    pub reports: RawReports,
    #[serde(default)]
    pub content: crate::content::config::RawContent,
    pub threads: Option<usize>,
    #[serde(default)]
    pub shutdown: RawShutdown,
    pub proxy_protocol: Option<RawProxyProtocol>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProxyProtocol {
    /// `client`, `channel`: the listeners that require the header.
    #[serde(default = "default_proxy_listeners")]
    pub listeners: Vec<String>,
    /// Networks (`10.0.0.0/24`) or addresses allowed to send it.
    #[serde(default)]
    pub trusted_sources: Vec<String>,
    #[serde(default, with = "humantime_serde")]
    pub header_timeout: Option<Duration>,
}

fn default_proxy_listeners() -> Vec<String> {
    vec!["client".into()]
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawShutdown {
    /// How long in-flight client requests may take to finish after a stop signal.
    #[serde(default, with = "humantime_serde")]
    pub grace: Option<Duration>,
    /// How long the instance goes on accepting, with `/ready` already 503, before the
    /// drain starts.
    #[serde(default, with = "humantime_serde")]
    pub delay: Option<Duration>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReports {
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSettings {
    /// The gateway (cloud service) name in the site.
    pub gateway: String,
    /// Site public keys (PEM files) that sign settings bundles.
    pub site_keys: Vec<PathBuf>,
    /// Where the last good bundle is kept.
    pub last_good: PathBuf,
    /// This instance's private key file (secrets sealed to the instance).
    pub instance_key: Option<PathBuf>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTokens {
    /// The site GUID whose tokens are accepted (issuer `urn:sccm:oauth2:<guid>`).
    pub site_guid: Option<String>,
    /// The site's token verification keys (RSA public keys, PEM files).
    #[serde(default)]
    pub site_keys: Vec<PathBuf>,
    /// Tracking IDs of blocked site tokens.
    #[serde(default)]
    pub blocked_token_ids: Vec<String>,
    #[serde(default, with = "humantime_serde")]
    pub cache_max_age: Option<Duration>,
    #[serde(default)]
    pub oidc: Vec<RawOidc>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOidc {
    pub issuer: String,
    pub audiences: Vec<String>,
    #[serde(default)]
    pub tenants: Vec<String>,
    #[serde(default)]
    pub ca: Vec<PathBuf>,
    #[serde(default)]
    pub allow_http_loopback: bool,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListen {
    pub client: SocketAddr,
    pub channel: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    #[serde(default = "default_min_tls")]
    pub min_version: MinTls,
    /// `"0s"` turns reloading off.
    #[serde(default, with = "humantime_serde")]
    pub reload_interval: Option<Duration>,
}

pub(super) fn default_min_tls() -> MinTls {
    MinTls::Tls12
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClientAuth {
    #[serde(default)]
    pub trusted_roots: Vec<PathBuf>,
    #[serde(default)]
    pub trusted_intermediates: Vec<PathBuf>,
    #[serde(default)]
    pub crl_files: Vec<PathBuf>,
    #[serde(default)]
    pub trust_list: Vec<PathBuf>,
    // Revocation (serde's `flatten` would defeat deny_unknown_fields, so flat here).
    /// Default true.
    pub verify_revocation: Option<bool>,
    /// Fetch CRLs from the certificates' http:// distribution points; default true.
    pub crl_fetch: Option<bool>,
    pub crl_cache_dir: Option<PathBuf>,
    #[serde(default, with = "humantime_serde")]
    pub crl_fetch_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub crl_connect_timeout: Option<Duration>,
    pub crl_max_bytes: Option<usize>,
    /// How long a handshake may wait for a CRL not cached yet.
    #[serde(default, with = "humantime_serde")]
    pub crl_handshake_wait: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub crl_retry_after: Option<Duration>,
    /// Ask a certificate's OCSP responder (AIA) when no usable CRL covers it;
    /// default true.
    pub ocsp: Option<bool>,
    /// Send a nonce in OCSP requests (an echoed nonce must match); default true.
    pub ocsp_nonce: Option<bool>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChannel {
    pub site_ca: Vec<PathBuf>,
    /// CRLs of the site CA(s) (PEM or DER).
    #[serde(default)]
    pub crl_files: Vec<PathBuf>,
    /// Check connection point certificates' revocation (default: when `crl_files` are
    /// given).
    pub verify_revocation: Option<bool>,
    #[serde(default, with = "humantime_serde")]
    pub ping_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub ping_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub response_timeout: Option<Duration>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    #[serde(default, with = "humantime_serde")]
    pub handshake_timeout: Option<Duration>,
    pub max_header_bytes: Option<usize>,
    pub max_headers: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    pub header_read_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
    pub max_concurrent_streams: Option<u32>,
    pub max_connections: Option<usize>,
    pub max_connections_per_source: Option<usize>,
    pub max_handshakes_per_source: Option<usize>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPublishedUrl {
    pub prefix: String,
    pub site: String,
    pub max_body_bytes: u64,
    pub auth: Option<AuthKind>,
}
