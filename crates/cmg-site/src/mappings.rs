//! URL mappings generated for roles that allow gateway traffic (seed 000: "Every endpoint
//! published to the CMG has an URL mapping"; seed 004, "Configure client-facing roles for
//! CMG traffic").
//!
//! Each endpoint of a role is published under `CCM_Proxy_MutualAuth/<role id>/` (PKI
//! clients) and, when the role can serve token clients (Enhanced HTTP or HTTPS, seed 003:
//! "need E-HTTP or HTTPS"), under `CCM_Proxy_ServerAuth/<role id>/` too. Both map to the
//! same internal URL `<internal url>/<endpoint>`, except the site's own services:
//! `CCM_STS`, the token service ([`SITE_STS_BASE`]), and `CCM_Location`, the location
//! service (`cmg-site:/api/v1/location`), which the connection point resolves to the
//! site API it talks to.

use cmg_proto::device::{LOCATION_ENDPOINT, LOCATION_PATH};
use cmg_proto::mapping::{AuthKind, ExternalPrefix, SITE_SCHEME, SITE_STS_BASE};
use cmg_proto::RoleId;
use serde::{Deserialize, Serialize};

const MIB: u64 = 1024 * 1024;
const KIB: u64 = 1024;

/// A site role that clients reach through the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleKind {
    ManagementPoint,
    SoftwareUpdatePoint,
}

/// How clients talk to the role on the intranet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleMode {
    Http,
    EnhancedHttp,
    Https,
}

impl RoleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ManagementPoint => "management_point",
            Self::SoftwareUpdatePoint => "software_update_point",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "management_point" => Some(Self::ManagementPoint),
            "software_update_point" => Some(Self::SoftwareUpdatePoint),
            _ => None,
        }
    }

    /// The published endpoints and their maximum request body. The management point's
    /// first three match `cmg-cluster`'s spec (CCM_System 16 MiB, CCM_Incoming 64 MiB,
    /// SMS_MP 64 KiB).
    pub fn endpoints(self) -> &'static [(&'static str, u64)] {
        match self {
            Self::ManagementPoint => &[
                ("CCM_System", 16 * MIB),
                ("CCM_Incoming", 64 * MIB),
                ("SMS_MP", 64 * KIB),
                ("CCM_STS", 64 * KIB),
                ("ccm_system_tokenauth", 16 * MIB),
                (LOCATION_ENDPOINT, 16 * KIB),
            ],
            Self::SoftwareUpdatePoint => &[
                ("ClientWebService", 4 * MIB),
                ("SimpleAuthWebService", 64 * KIB),
                ("ReportingWebService", 4 * MIB),
                ("ApiRemoting30", 4 * MIB),
                ("Content", 64 * KIB),
                ("selfupdate", 64 * KIB),
            ],
        }
    }
}

impl RoleMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::EnhancedHttp => "enhanced_http",
            Self::Https => "https",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "http" => Some(Self::Http),
            "enhanced_http" => Some(Self::EnhancedHttp),
            "https" => Some(Self::Https),
            _ => None,
        }
    }
    /// Token clients (`CCM_Proxy_ServerAuth`) need Enhanced HTTP or HTTPS.
    pub fn serves_token_clients(self) -> bool {
        !matches!(self, Self::Http)
    }
}

/// One generated mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Mapping {
    pub external: String,
    pub internal: String,
    #[schema(value_type = AuthKindSchema)]
    pub auth: AuthKind,
    pub max_body: u64,
}

/// [`AuthKind`] (cmg-proto's) as the API document shows it.
#[derive(utoipa::ToSchema)]
#[schema(as = AuthKind, rename_all = "snake_case")]
#[allow(dead_code)] // a schema only
enum AuthKindSchema {
    MutualAuth,
    ServerAuth,
}

/// The mappings of one role.
pub fn for_role(
    id: RoleId,
    kind: RoleKind,
    mode: RoleMode,
    internal_url: &str,
) -> Result<Vec<Mapping>, String> {
    let base = internal_url.trim_end_matches('/');
    let mut kinds = vec![AuthKind::MutualAuth];
    if mode.serves_token_clients() {
        kinds.push(AuthKind::ServerAuth);
    }
    let mut out = Vec::new();
    for auth in kinds {
        for (endpoint, max_body) in kind.endpoints() {
            let prefix = ExternalPrefix::for_role(auth, id, endpoint).map_err(|e| e.to_string())?;
            // The token service is the site's own: device tokens are signed with its key.
            let internal = if *endpoint == "CCM_STS" {
                SITE_STS_BASE.to_owned()
            } else if *endpoint == LOCATION_ENDPOINT {
                format!("{SITE_SCHEME}{LOCATION_PATH}")
            } else {
                format!("{base}/{endpoint}")
            };
            out.push(Mapping {
                external: prefix.to_string(),
                internal,
                auth,
                max_body: *max_body,
            });
        }
    }
    Ok(out)
}

/// The internet management point names a client lists for a gateway:
/// `<service>/CCM_Proxy_MutualAuth/<role id>` (and `CCM_Proxy_ServerAuth` when the role
/// serves token clients).
pub fn internet_mp_names(service: &str, id: RoleId, mode: RoleMode) -> Vec<String> {
    let mut names = vec![format!("{service}/CCM_Proxy_MutualAuth/{id}")];
    if mode.serves_token_clients() {
        names.push(format!("{service}/CCM_Proxy_ServerAuth/{id}"));
    }
    names
}

/// Checks an internal URL: `http://` or `https://` with a host, no query or fragment.
pub fn check_internal_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{url:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(format!("{url:?}: must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{url:?}: no host"));
    }
    if uri.query().is_some() || url.contains('#') {
        return Err(format!("{url:?}: no query or fragment allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn management_point_mappings_by_mode() {
        let id = RoleId(72_057_594_037_927_939);
        let http = for_role(
            id,
            RoleKind::ManagementPoint,
            RoleMode::Http,
            "http://mp01/",
        )
        .expect("m");
        assert_eq!(http.len(), 6);
        assert_eq!(
            http[0].external,
            "/CCM_Proxy_MutualAuth/72057594037927939/CCM_System"
        );
        assert_eq!(http[0].internal, "http://mp01/CCM_System");
        assert_eq!(http[0].max_body, 16 << 20);
        assert_eq!(http[1].max_body, 64 << 20);
        assert_eq!(http[2].max_body, 64 << 10);
        let https = for_role(
            id,
            RoleKind::ManagementPoint,
            RoleMode::Https,
            "https://mp01",
        )
        .expect("m");
        assert_eq!(https.len(), 12);
        assert!(https
            .iter()
            .any(|m| m.external == "/CCM_Proxy_ServerAuth/72057594037927939/ccm_system_tokenauth"));
        assert_eq!(
            internet_mp_names("cmg.contoso.com", id, RoleMode::Http),
            vec!["cmg.contoso.com/CCM_Proxy_MutualAuth/72057594037927939"]
        );
        assert!(check_internal_url("https://mp01.corp:443").is_ok());
        assert!(check_internal_url("ftp://mp01").is_err());
        assert!(check_internal_url("http://mp01/?q=1").is_err());
    }
}
