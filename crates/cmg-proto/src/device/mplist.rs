//! The site's management point list, as the reference management point fetches it to
//! answer `.sms_aut?MPLIST` (intranet) and `MPLIST2` (internet) from the site's data
//! (`GET /api/v1/management-points` on the site, no authentication: clients read the
//! same facts unauthenticated from any management point).

use serde::{Deserialize, Serialize};

use crate::ids::SiteCode;

/// The site path of the list.
pub const MP_LIST_PATH: &str = "/api/v1/management-points";

/// A larger list is refused by the management point.
pub const MAX_MP_LIST_BYTES: usize = 1 << 20;

/// One management point as the MP list names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListedMp {
    /// The role ID.
    pub name: String,
    /// `mp01.corp.example` (intranet), or `<service>/CCM_Proxy_MutualAuth/<role id>`
    /// (internet: the product's internet MP name).
    pub fqdn: String,
    /// The base URL a client uses.
    pub url: String,
}

/// `GET /api/v1/management-points`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagementPointList {
    pub site: SiteCode,
    /// The site's management points, by role ID.
    pub intranet: Vec<ListedMp>,
    /// Every gateway × every management point that allows gateway traffic.
    pub internet: Vec<ListedMp>,
}
