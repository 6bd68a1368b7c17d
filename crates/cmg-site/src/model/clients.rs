//! The API's shapes for what clients and the location service read: boundary groups,
//! the client settings in force, and the clients the site has seen.

use serde::{Deserialize, Serialize};

/// A boundary group (seed 004, "Configure boundary groups"): the network locations it
/// covers, the site systems it references, its neighbours. See
/// `cmg_proto::location::resolve` for how clients are placed by it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BoundaryGroup {
    pub name: String,
    /// Subnets (`10.1.0.0/16`), IPv6 prefixes (`2001:db8::/48`) or inclusive ranges
    /// (`10.1.0.10-10.1.0.99`).
    #[serde(default)]
    pub boundaries: Vec<String>,
    /// Role IDs of the management points the group references.
    #[serde(default)]
    pub management_points: Vec<String>,
    /// Names of the gateways the group references (intranet cloud sources).
    #[serde(default)]
    pub gateways: Vec<String>,
    /// One-way relationships to neighbour groups.
    #[serde(default)]
    pub neighbours: Vec<BoundaryNeighbour>,
    /// "Prefer cloud-based sources over on-premises sources".
    #[serde(default)]
    pub prefer_cloud: bool,
}

/// A relationship from a group to a neighbour group.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BoundaryNeighbour {
    pub group: String,
    /// Whether clients fall back to the neighbour's management points (default yes;
    /// `false` is "never fall back").
    #[serde(default = "yes")]
    pub management_points: bool,
    /// Minutes before content falls back to the neighbour; `null`: never. Default 120.
    #[serde(default = "content_fallback_default")]
    #[schema(minimum = 0, maximum = 100000)]
    pub content_after_minutes: Option<u32>,
}

fn yes() -> bool {
    true
}

fn content_fallback_default() -> Option<u32> {
    Some(120)
}

/// `PUT /api/v1/boundary-groups/{name}`: a [`BoundaryGroup`] without its name, which
/// is in the path.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BoundaryGroupSet {
    #[serde(default)]
    pub boundaries: Vec<String>,
    #[serde(default)]
    pub management_points: Vec<String>,
    #[serde(default)]
    pub gateways: Vec<String>,
    #[serde(default)]
    pub neighbours: Vec<BoundaryNeighbour>,
    #[serde(default)]
    pub prefer_cloud: bool,
}

impl BoundaryGroupSet {
    /// The group this request sets under `name`.
    pub fn named(self, name: String) -> BoundaryGroup {
        BoundaryGroup {
            name,
            boundaries: self.boundaries,
            management_points: self.management_points,
            gateways: self.gateways,
            neighbours: self.neighbours,
            prefer_cloud: self.prefer_cloud,
        }
    }
}

/// `GET` and `PUT /api/v1/client-settings` (seed 004, "Configure clients for CMG").
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    /// "Enable clients to use a cloud management gateway". `false` keeps certificate
    /// and token clients off every gateway.
    pub enable_clients_to_use_cmg: bool,
    /// "Allow access to cloud distribution point" (default yes).
    #[serde(default = "yes")]
    pub allow_cloud_distribution_point: bool,
    /// Client policy polling interval in minutes, 1 to 1440 (default 60).
    #[serde(default = "policy_interval_default")]
    #[schema(minimum = 1, maximum = 1440)]
    pub policy_interval_minutes: u32,
}

fn policy_interval_default() -> u32 {
    60
}

/// A client as the site last saw it (`GET /api/v1/clients`, `cmg site client list`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClientView {
    /// The device ID (token clients) or `<subject>; sha256=<hex>` (certificate clients).
    pub id: String,
    /// `certificate` or `token`.
    pub auth: String,
    /// How its last location request came: `intranet` or `gateway`.
    pub via: String,
    /// The addresses it reported.
    pub addresses: Vec<String>,
    /// The boundary groups those addresses fell in.
    pub boundary_groups: Vec<String>,
    /// Unix seconds.
    pub first_seen: i64,
    /// Unix seconds of its last location request.
    pub last_location_at: i64,
}
