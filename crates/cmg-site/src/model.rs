//! The admin API's request and response bodies (JSON). Requests refuse unknown fields.

use serde::{Deserialize, Serialize};

use crate::mappings::{Mapping, RoleKind, RoleMode};

mod clients;
mod master;
mod traffic;
pub use clients::*;
pub use master::*;
pub use traffic::*;

/// "Enforce TLS 1.2" (seed 004) or stricter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub enum MinTls {
    #[default]
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

impl MinTls {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tls12 => "1.2",
            Self::Tls13 => "1.3",
        }
    }
    pub fn parse(s: &str) -> Self {
        if s == "1.3" {
            Self::Tls13
        } else {
            Self::Tls12
        }
    }
}

/// Strict, unlike [`MinTls::parse`] (which reads the database and falls back to 1.2):
/// for a value an administrator typed.
impl std::str::FromStr for MinTls {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "1.2" => Ok(Self::Tls12),
            "1.3" => Ok(Self::Tls13),
            _ => Err(format!("{s:?} is not a TLS version: 1.2 or 1.3")),
        }
    }
}

/// The 14-day traffic alert (seed 004, step 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    pub enabled: bool,
    /// Threshold over 14 days, GB (at most 10^9, an exabyte).
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub threshold_gb: u64,
    /// Below `critical_pct`.
    #[schema(minimum = 1, maximum = 99)]
    pub warning_pct: u8,
    #[schema(minimum = 2, maximum = 100)]
    pub critical_pct: u8,
    /// Stop the service when the critical level is reached.
    pub stop_at_critical: bool,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            threshold_gb: 10_000,
            warning_pct: 50,
            critical_pct: 90,
            stop_at_critical: false,
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_instances() -> u32 {
    1
}
fn default_region() -> String {
    "default".into()
}

/// `POST /api/v1/gateways`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayCreate {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,63}$")]
    pub name: String,
    /// Server certificate chain, PEM (leaf first).
    pub cert_pem: String,
    /// Its private key, PEM.
    pub key_pem: String,
    /// Needed for a wildcard certificate: the host name replacing `*`.
    #[serde(default)]
    pub service_name: Option<String>,
    #[serde(default = "default_region")]
    pub region: String,
    #[serde(default = "default_instances")]
    #[schema(minimum = 1, maximum = 16)]
    pub instances: u32,
    #[serde(default)]
    pub trusted_roots_pem: Vec<String>,
    #[serde(default)]
    pub intermediates_pem: Vec<String>,
    #[serde(default)]
    pub trust_list_sha256: Option<Vec<String>>,
    #[serde(default = "default_true")]
    pub verify_revocation: bool,
    #[serde(default)]
    pub min_tls: MinTls,
    #[serde(default = "default_true")]
    pub content_enabled: bool,
    #[serde(default)]
    pub alert: AlertSettings,
}

impl GatewayCreate {
    /// A request with the defaults a JSON body gets for every field it leaves out.
    pub fn new(name: impl Into<String>, cert_pem: String, key_pem: String) -> Self {
        Self {
            name: name.into(),
            cert_pem,
            key_pem,
            service_name: None,
            region: default_region(),
            instances: default_instances(),
            trusted_roots_pem: Vec::new(),
            intermediates_pem: Vec::new(),
            trust_list_sha256: None,
            verify_revocation: default_true(),
            min_tls: MinTls::default(),
            content_enabled: default_true(),
            alert: AlertSettings::default(),
        }
    }
}

/// `PATCH /api/v1/gateways/{name}`: the settings that apply without a redeploy.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayModify {
    pub cert_pem: Option<String>,
    pub key_pem: Option<String>,
    #[schema(minimum = 1, maximum = 16)]
    pub instances: Option<u32>,
    pub trusted_roots_pem: Option<Vec<String>>,
    pub intermediates_pem: Option<Vec<String>>,
    /// An empty list turns the trust list off.
    pub trust_list_sha256: Option<Vec<String>>,
    pub verify_revocation: Option<bool>,
    pub min_tls: Option<MinTls>,
    pub content_enabled: Option<bool>,
    pub alert: Option<AlertSettings>,
    /// Each instance's channel addresses (`host:port`, host names allowed), in order of
    /// preference: its channel port first, then fallbacks such as its client port. The
    /// list's length becomes the instance count; connection points follow it live. An
    /// empty list clears it (connection points use their config files' lists).
    #[schema(max_items = 16)]
    pub instance_channels: Option<Vec<Vec<String>>>,
}

/// `POST /api/v1/gateways/{name}/redeploy`: changes that need the service redeployed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayRedeploy {
    pub service_name: Option<String>,
    pub region: Option<String>,
}

/// `POST /api/v1/gateways/{name}/export`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// Instance number, 1 to the gateway's instance count.
    #[schema(minimum = 1, maximum = 16)]
    pub instance: u32,
    /// Addresses written into the instance's `gateway.toml` (defaults `0.0.0.0:443`,
    /// `0.0.0.0:10140`, no admin listener).
    #[serde(default)]
    pub client_listen: Option<String>,
    #[serde(default)]
    pub channel_listen: Option<String>,
    #[serde(default)]
    pub admin_listen: Option<String>,
}

/// Every refusal of the API, one shape: a stable code and a short message (the
/// detail goes to the site's log).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ApiErrorBody {
    /// A stable code, e.g. `not_found`, `bad_name`, `bad_query`.
    pub error: String,
    /// What went wrong, for a person.
    pub message: String,
}

/// A certificate as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CertView {
    pub subject: String,
    pub issuer: String,
    pub sha256: String,
    pub not_after: i64,
}

/// A gateway as the API shows it (never its key).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GatewayView {
    pub name: String,
    pub service_name: String,
    pub region: String,
    pub instances: u32,
    pub certificate: CertView,
    /// The server certificate chain the instances serve (PEM, leaf first; public). Its
    /// last certificate is what connection points and the connection analyzer trust.
    pub chain_pem: String,
    pub trusted_roots: Vec<CertView>,
    pub intermediates: Vec<CertView>,
    pub trust_list_sha256: Option<Vec<String>>,
    pub verify_revocation: bool,
    pub min_tls: MinTls,
    pub content_enabled: bool,
    pub alert: AlertSettings,
    pub service_stopped: Option<String>,
    /// Each instance's channel addresses in order of preference; empty: not set.
    pub instance_channels: Vec<Vec<String>>,
    pub redeploy_required: bool,
    pub settings_version: u64,
    pub connection_points: Vec<String>,
    /// The internet management point names clients list.
    pub internet_mps: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The result of a change that touched one gateway.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Changed {
    pub settings_version: u64,
}

/// `POST /api/v1/roles`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleCreate {
    /// A decimal string: role IDs do not fit a JSON double.
    #[schema(pattern = "^[0-9]{1,19}$")]
    pub role_id: String,
    pub kind: RoleKind,
    pub internal_url: String,
    pub mode: RoleMode,
    #[serde(default)]
    pub allow_gateway_traffic: bool,
}

/// `PATCH /api/v1/roles/{id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleModify {
    pub internal_url: Option<String>,
    pub mode: Option<RoleMode>,
    pub allow_gateway_traffic: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoleView {
    pub role_id: String,
    pub kind: RoleKind,
    pub internal_url: String,
    pub mode: RoleMode,
    pub allow_gateway_traffic: bool,
    /// Generated when gateway traffic is allowed.
    pub mappings: Vec<Mapping>,
}

/// `POST /api/v1/connection-points`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionPointAdd {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,63}$")]
    pub gateway: String,
    /// Generated (`cp-` and 8 hex digits) when absent.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConnectionPointView {
    pub id: String,
    pub gateway: String,
    pub certificate: CertView,
    pub created_at: i64,
}

/// What `connection-point add` hands back once: the key is not kept by the site.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConnectionPointIssued {
    pub id: String,
    pub site: String,
    pub gateway: String,
    pub service_name: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub site_ca_pem: String,
    /// The gateway's server certificate chain; its last certificate is what the
    /// connection point trusts for the gateway.
    pub gateway_chain_pem: String,
    pub mappings: Vec<Mapping>,
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenNew {
    /// Minutes, default 4320 (3 days), at most 10080 (7 days).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10080)]
    pub lifetime_minutes: Option<u64>,
}

/// `POST /api/v1/sts/token`, sent by a client through a gateway with a site token in
/// `Authorization: Bearer`. An empty body is a renewal with the device token alone.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StsTokenRequest {
    /// Required with a bulk registration token; optional (and must match) with a
    /// device token.
    pub device_id: Option<String>,
}

/// A new bulk token: shown once, never stored.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenIssued {
    pub tracking_id: String,
    pub token: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenView {
    pub tracking_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub issued_by: String,
    pub blocked: bool,
}

/// `POST /api/v1/keys/roll`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRoll {
    /// How long the previous key stays valid, hours (default 168), at most 8760.
    #[serde(default)]
    #[schema(maximum = 8760)]
    pub overlap_hours: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyView {
    pub kid: String,
    pub state: String,
    pub created_at: i64,
    pub retire_at: Option<i64>,
    pub public_pem: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SiteView {
    pub code: String,
    pub guid: String,
    pub ca_pem: String,
    pub created_at: i64,
    pub change_seq: i64,
}

/// An instance's deployment package, as files (name → content).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportPackage {
    pub gateway: String,
    pub instance: u32,
    pub settings_version: u64,
    pub files: Vec<ExportFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportFile {
    pub name: String,
    pub content: String,
    /// Private material: write with mode 0600.
    pub secret: bool,
}

/// What a connection point gets from `GET /api/v1/publish/gateways/{name}/mappings`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublishedMappings {
    pub gateway: String,
    pub settings_version: u64,
    pub mappings: Vec<Mapping>,
}

/// `GET /api/v1/traffic`: which traffic to sum.
#[derive(Debug, Clone)]
pub struct TrafficQuery {
    pub gateway: Option<String>,
    /// Unix seconds; hour buckets from the hour holding it are summed.
    pub since: i64,
}

/// One endpoint's traffic over a period.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EndpointTrafficView {
    pub gateway: String,
    pub endpoint: String,
    pub requests: u64,
    pub bytes_in: u64,
    /// Response bytes sent to clients: the estimated egress.
    pub bytes_out: u64,
    /// Responses by class: 1xx, 2xx, 3xx, 4xx, 5xx.
    #[schema(min_items = 5, max_items = 5)]
    pub status_classes: [u64; 5],
    pub mean_latency_ms: f64,
}

/// A gateway's status, as the console's Status column shows it (rules in
/// docs/architecture.md, "Health, traffic and alerts").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum HealthState {
    Ready,
    Warning,
    Error,
    Disconnected,
    Stopped,
}

/// A traffic alert level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(utoipa::ToSchema)]
pub enum AlertLevel {
    Warning,
    Critical,
}

impl AlertLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "warning" => Some(Self::Warning),
            "critical" => Some(Self::Critical),
            _ => None,
        }
    }
}

/// One channel as a connection point last reported it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChannelView {
    pub connection_point: String,
    pub address: String,
    pub instance: Option<String>,
    pub state: String,
    pub since: i64,
    pub connection_id: Option<String>,
    pub last_error: Option<String>,
    pub reported_at: i64,
}

/// A connection point of a gateway and its newest report.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConnectionPointStatus {
    pub id: String,
    /// When the site received its newest report (none yet: `None`).
    pub last_report_at: Option<i64>,
    pub last_reason: Option<String>,
    /// The settings version it said it relays.
    pub settings_version: Option<u64>,
    /// Reported within twice the report interval, and not a shutdown report.
    pub reporting: bool,
    pub channels: Vec<ChannelView>,
}

/// One instance (by the name from its hello, else by channel address) across the
/// gateway's connection points.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstanceStatus {
    pub instance: String,
    /// The reporting connection points with a connected channel to it.
    pub connected_from: Vec<String>,
    pub channels: Vec<ChannelView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GatewayStatus {
    pub gateway: String,
    pub status: HealthState,
    /// Why the status is not Ready.
    pub reasons: Vec<String>,
    pub service_stopped: Option<String>,
    pub alert: Option<AlertLevel>,
    /// Egress over the last 14 days, bytes.
    pub egress_14d_bytes: u64,
    pub instances_expected: u32,
    pub instances: Vec<InstanceStatus>,
    pub connection_points: Vec<ConnectionPointStatus>,
}

/// A traffic alert, active (`cleared_at` none) or past.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertView {
    pub id: i64,
    pub gateway: String,
    pub level: AlertLevel,
    pub raised_at: i64,
    pub cleared_at: Option<i64>,
    pub egress_bytes: u64,
    pub threshold_bytes: u64,
    /// The alert stopped the service.
    pub stopped: bool,
    pub message: String,
}

/// `PUT /api/v1/alert-webhook`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertWebhook {
    /// `http://` or `https://` URL alerts are POSTed to as JSON; `null` turns it off.
    pub url: Option<String>,
}

/// `PUT /api/v1/gateways/{name}/storage`: the storage account content is served from
/// (cloud distribution point), with both of its keys.
///
/// The keys are [`Secret`]s, which are deliberately not `Serialize`: no view, bundle or
/// log line can carry one by accident. This request is the one body whose purpose is to
/// carry them (from the CLI to the site, over the site API's TLS), so its two key fields
/// name `expose_secret` as their serialiser. Serialising a `StorageSet` therefore
/// writes the keys in clear; do it only to send the request.
///
/// [`Secret`]: crate::secret::Secret
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageSet {
    pub account: String,
    /// Blob service URL; none: `https://<account>.blob.core.windows.net`.
    pub endpoint: Option<String>,
    pub container: String,
    #[serde(serialize_with = "expose_secret")]
    #[schema(value_type = String)]
    pub key1: crate::secret::Secret,
    #[serde(serialize_with = "expose_secret")]
    #[schema(value_type = String)]
    pub key2: crate::secret::Secret,
    /// Days between automatic key rotations (default 180).
    #[schema(minimum = 1)]
    pub rotation_days: Option<u32>,
}

/// Writes a secret in clear: only for the fields of a request that exists to carry it
/// (see [`StorageSet`]).
fn expose_secret<S: serde::Serializer>(
    secret: &crate::secret::Secret,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose())
}

/// A gateway's storage account as the API shows it: never a key.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StorageView {
    pub gateway: String,
    pub account: String,
    pub endpoint: Option<String>,
    pub container: String,
    /// `key1` or `key2`: the key in force.
    pub active_key: String,
    pub rotated_at: i64,
    pub rotation_days: u32,
    pub next_rotation_at: i64,
}
