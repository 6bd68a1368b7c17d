//! `demo.json`: the stable contract a running demo publishes for scripts, tests and
//! benchmarks. Fields are only ever added, never renamed or removed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cmg_agent::ConnectionKind;
use serde::{Deserialize, Serialize};

/// One gateway instance's addresses.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GatewayAddrs {
    /// Client listener (HTTP/1.1 and HTTP/2 over TLS; also channels by ALPN).
    pub client: String,
    /// Dedicated channel listener.
    pub channel: String,
    /// Admin listener (plain HTTP: `/metrics`, `/ready`, `/channels`). Addition to the
    /// original contract.
    pub admin: String,
}

/// PEM files (absolute paths).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContractPki {
    /// The root CA of the gateway's server certificate (clients trust it).
    pub server_ca: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub untrusted_client_cert: PathBuf,
    pub untrusted_client_key: PathBuf,
    pub expired_client_cert: PathBuf,
    pub expired_client_key: PathBuf,
    /// A client certificate listed on the demo CRL. Addition.
    pub revoked_client_cert: PathBuf,
    pub revoked_client_key: PathBuf,
}

/// The whole contract.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DemoContract {
    pub service_name: String,
    pub gateways: Vec<GatewayAddrs>,
    /// Role ID of the management point, as a string (it does not fit a JSON double).
    pub mp_role_id: String,
    /// `ccm_system`, `ccm_incoming`, `sms_mp`, `ccm_system_tokenauth` → external path prefix.
    pub urls: BTreeMap<String, String>,
    /// Same keys → maximum request body in bytes.
    pub max_body: BTreeMap<String, u64>,
    /// The management point's journal: one JSON line per request it received.
    pub mp_journal: PathBuf,
    /// Plain-HTTP address of the management point (for direct baselines). Addition.
    pub mp_direct: String,
    pub pki: ContractPki,
    /// A valid site-issued device token for the `CCM_Proxy_ServerAuth` URLs
    /// (`urls.ccm_system_tokenauth`): `Authorization: Bearer <token>`. Addition.
    pub token: String,
    /// The site that built and runs the system (absent for a cluster without one).
    /// Addition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<ContractSite>,
    /// The devices (`cmg client` agents) the demo runs. Addition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<ContractClient>,
}

/// The site: where an administrator (or `cmg site ... --url`) reaches it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContractSite {
    /// `https://127.0.0.1:P`: the REST admin API (`CMG_SITE_URL`).
    pub api_url: String,
    /// The site CA, PEM (trust it for the API: `--ca-file`).
    pub ca: PathBuf,
    /// The admin token (`--admin-token-file`; `Authorization: Bearer`).
    pub admin_token_file: PathBuf,
    /// The SQLite database.
    pub database: PathBuf,
    /// The demo gateway's name at the site.
    pub gateway: String,
}

/// `demo.json`'s entry for a device.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContractClient {
    pub name: String,
    /// Its `client.toml` (`cmg client status --config <config>`).
    pub config: PathBuf,
    pub state_dir: PathBuf,
    /// `intranet` or `internet`: the connection type it must report.
    pub expect: ConnectionKind,
}
