//! What the analyzer is told about one gateway: the deployment's view (the site's
//! record, settings bundle and connection point reports), the credential to test with,
//! and which instances to reach. The caller fills it: `cmg site analyze` from the site's
//! admin API, the console from its store.

use std::fmt;

use cmg_proto::settings::SettingsBundle;

/// The deployment's view of one gateway.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// The gateway's name at the site.
    pub gateway: String,
    /// The server certificate chain the instances serve (PEM). Its last certificate is
    /// the root the analyzer trusts for them, as a connection point does.
    pub server_chain_pem: String,
    /// The settings bundle the instances run: service name, published URLs, client
    /// trust, revocation switch, token settings.
    pub bundle: SettingsBundle,
    /// The roles that allow gateway traffic.
    pub roles: Vec<Role>,
    /// How many instances the gateway has.
    pub instances_expected: u32,
    /// Every connection point on record for the gateway, as it last reported.
    pub connection_points: Vec<ConnectionPoint>,
}

/// A site role clients reach through the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// The role ID (decimal).
    pub id: String,
    pub kind: RoleKind,
    /// Whether its mode serves token clients (Enhanced HTTP or HTTPS): only then is it
    /// published under `CCM_Proxy_ServerAuth`.
    pub serves_tokens: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    ManagementPoint,
    SoftwareUpdatePoint,
}

impl RoleKind {
    /// The anonymous-safe request the analyzer sends, after `/<prefix>/<role id>`.
    pub fn probe_path(self) -> &'static str {
        match self {
            // The location request every client makes first (seed 002: MPLIST).
            Self::ManagementPoint => "/SMS_MP/.sms_aut?MPLIST",
            Self::SoftwareUpdatePoint => "/ClientWebService/client.asmx",
        }
    }
}

impl fmt::Display for RoleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ManagementPoint => "management point",
            Self::SoftwareUpdatePoint => "software update point",
        })
    }
}

/// A connection point and the channels it last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionPoint {
    pub id: String,
    /// Reported within twice the report interval, and not a shutdown report.
    pub reporting: bool,
    /// The reason of its newest report (`shutdown`, `interval`, ...), none if it never
    /// reported.
    pub last_reason: Option<String>,
    /// Seconds since its newest report.
    pub last_report_age: Option<i64>,
    pub channels: Vec<Channel>,
}

/// One channel of a connection point to one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// The instance's channel address the connection point dials.
    pub address: String,
    /// The instance's name from its hello.
    pub instance: Option<String>,
    /// `connected`, `connecting` or `disconnected`.
    pub state: String,
    pub last_error: Option<String>,
}

/// What the client presents.
#[derive(Clone)]
pub enum Credential {
    /// A client certificate chain (leaf first) and its private key, PEM.
    Certificate { chain_pem: String, key_pem: String },
    /// A bearer token (site-issued or from an OIDC issuer).
    Token(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Certificate { .. } => f.write_str("Certificate { .. }"),
            Self::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// Where the instances are reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// The service name on port 443, every address it resolves to.
    ServiceName,
    /// These `host:port` addresses, one per instance (or per load balancer).
    Addresses(Vec<String>),
}
