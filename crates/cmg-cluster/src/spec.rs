//! What a cluster looks like: names, the management point's role ID, published URLs
//! and their body limits. The demo and the tests share these values.

use std::path::PathBuf;
use std::time::Duration;

/// The demo's service name. Not in DNS: clients dial 127.0.0.1 and send this name as
/// SNI and `Host` (curl: `--resolve`).
pub const SERVICE_NAME: &str = "cmg.demo.test";
/// The site code of the demo site.
pub const SITE: &str = "DEM";
/// Role ID of the reference management point (a large integer, as ConfigMgr's are).
pub const MP_ROLE_ID: u64 = 72_057_594_037_927_939;

/// Maximum request bodies of the three published endpoints.
pub const MAX_BODY_CCM_SYSTEM: u64 = 16 * 1024 * 1024;
pub const MAX_BODY_CCM_INCOMING: u64 = 64 * 1024 * 1024;
pub const MAX_BODY_SMS_MP: u64 = 64 * 1024;

/// The published endpoints of the management point: name in `demo.json`, the segment
/// after `/CCM_Proxy_MutualAuth/<role id>/`, the maximum body.
pub const ENDPOINTS: [(&str, &str, u64); 3] = [
    ("ccm_system", "CCM_System", MAX_BODY_CCM_SYSTEM),
    ("ccm_incoming", "CCM_Incoming", MAX_BODY_CCM_INCOMING),
    ("sms_mp", "SMS_MP", MAX_BODY_SMS_MP),
];

/// The external prefix of an endpoint, e.g. `/CCM_Proxy_MutualAuth/7205…/CCM_System`.
pub fn external_prefix(segment: &str) -> String {
    format!("/CCM_Proxy_MutualAuth/{MP_ROLE_ID}/{segment}")
}

/// The demo gateway's name in the site (every instance belongs to it).
pub const GATEWAY_NAME: &str = "cmg1";
/// The demo site's GUID: site tokens carry `iss = urn:sccm:oauth2:<guid>`.
pub const SITE_GUID: &str = "6f1c3a7e-0b5d-4c2a-9e8f-1a2b3c4d5e6f";
/// The device the demo's token client is (the `sub` of its device token).
pub const DEMO_DEVICE: &str = "demo-device-0001";

/// Token clients' endpoints: name in `demo.json`, segment after
/// `/CCM_Proxy_ServerAuth/<role id>/`, maximum body.
pub const TOKEN_ENDPOINTS: [(&str, &str, u64); 1] = [(
    "ccm_system_tokenauth",
    "ccm_system_tokenauth",
    MAX_BODY_CCM_SYSTEM,
)];

/// The external prefix of a token endpoint, e.g. `/CCM_Proxy_ServerAuth/7205…/ccm_system_tokenauth`.
pub fn token_prefix(segment: &str) -> String {
    format!("/CCM_Proxy_ServerAuth/{MP_ROLE_ID}/{segment}")
}

/// How many of each role, and where the state lives.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub dir: PathBuf,
    pub gateways: usize,
    pub connectors: usize,
    /// Gateway answers carry `cmg-gateway-instance` and `cmg-connection-point`.
    pub route_headers: bool,
    /// HTTP/2 PING interval and timeout on channels (both sides).
    pub ping: Duration,
    /// Data-path threads of each gateway instance.
    pub gateway_threads: usize,
    /// Data-path threads of each connection point (and so its channels per instance).
    pub connector_threads: usize,
    /// How often each gateway posts its traffic snapshot to its connection points.
    pub report_interval: Duration,
    /// TOML appended to every gateway config file (tests: e.g. a `[[tokens.oidc]]`
    /// issuer's local transport settings); empty in the demo.
    pub gateway_extra: String,
    /// Build everything from a site (`cmg demo`): the site serves its API, the gateway,
    /// role and connection points are created through it, instances start from its
    /// exports and connection points take bundles and mappings from it. Off: config
    /// files written directly and a bundle file (the end-to-end tests).
    pub site: bool,
}

impl ClusterSpec {
    /// Two gateways, two connection points, route headers on, fast PINGs.
    pub fn demo(dir: PathBuf) -> Self {
        Self {
            dir,
            gateways: 2,
            connectors: 2,
            route_headers: true,
            ping: Duration::from_secs(2),
            gateway_threads: 2,
            connector_threads: 2,
            report_interval: Duration::from_secs(1),
            gateway_extra: String::new(),
            site: false,
        }
    }
}
