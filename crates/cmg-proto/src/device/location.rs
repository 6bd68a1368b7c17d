//! The location request and the signed location answer (issue 14; seed 004,
//! "Configure clients for CMG" and "Configure boundary groups"; seed 000, the internet
//! management point list).
//!
//! A client sends its site code and its addresses; the site resolves them with
//! [`crate::location::resolve`] and answers, signed with the site key, the boundary
//! groups the addresses fall in, every management point candidate in the order the
//! client should try them (intranet ones by locality, then gateways; internet ones:
//! every gateway, boundary groups ignored), the client settings in force and, on
//! request, content locations. The answer does not depend on whether the client is on
//! the intranet or the internet at this moment: it holds the candidates of both kinds,
//! and the client picks by its own connection type (`CandidateKind`).
//!
//! The answer travels as a compact JWS (RS256, the site key, `typ`
//! [`LOCATION_JWS_TYPE`]), so it cannot be taken for a token or a settings bundle; its
//! payload is a [`LocationAnswer`] with unknown fields refused.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ids::SiteCode;
use crate::location::{CandidateKind, Locality};

/// The JOSE `typ` header of a signed location answer.
pub const LOCATION_JWS_TYPE: &str = "cmg-location+jws";

/// The answer format this build reads and writes.
pub const LOCATION_FORMAT: u32 = 1;

/// Largest location request body the site reads.
pub const MAX_LOCATION_REQUEST_BYTES: usize = 16 * 1024;

/// Largest signed location answer a client accepts (checked before any parsing).
pub const MAX_LOCATION_ANSWER_BYTES: usize = 256 * 1024;

/// Most addresses one request may report.
pub const MAX_ADDRESSES: usize = 64;

/// `POST /api/v1/location` (or `.../CCM_Location` through a gateway).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationRequest {
    /// The site the client is assigned to; the site refuses another code (409).
    pub site: SiteCode,
    /// The client's own addresses (every interface), at most [`MAX_ADDRESSES`].
    pub addresses: Vec<IpAddr>,
    /// A content ID (blob name) to locate: the answer's `content` is then set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub want_content: Option<String>,
}

/// How the client authenticated (decides which gateway URL it is given).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// A client certificate: gateway URLs under `CCM_Proxy_MutualAuth`.
    Certificate,
    /// A device token: gateway URLs under `CCM_Proxy_ServerAuth`.
    Token,
}

/// How the request reached the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// Straight to the site's HTTPS listener.
    Intranet,
    /// Through a gateway (and a connection point).
    Gateway,
}

/// One management point candidate, in the order the client should try them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationCandidate {
    /// `intranet`: an on-premises management point; `internet`: a gateway.
    pub kind: CandidateKind,
    pub name: String,
    /// The base URL the client appends `/SMS_MP/...`, `/CCM_System/...` to: an
    /// intranet MP's own URL, or `https://<service>/CCM_Proxy_MutualAuth/<role id>`
    /// (certificate clients) / `.../CCM_Proxy_ServerAuth/<role id>` (token clients).
    pub url: String,
    /// 3 current group, 2 neighbour, 1 site default (the product's MP locality).
    pub locality: Locality,
    /// How the client authenticates there (its own credential).
    pub auth: ClientAuth,
}

/// The client settings in force for this client (seed 004, "Configure clients for CMG").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSettingsInForce {
    /// "Enable clients to use a cloud management gateway". When `false` the answer holds
    /// no internet candidate and the site refuses location and token requests that come
    /// through a gateway.
    pub enable_cmg: bool,
    /// "Allow access to cloud distribution point".
    pub allow_cloud_dp: bool,
    /// How often the client polls policy.
    pub policy_interval_secs: u64,
}

/// Where content comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentKind {
    /// An on-premises distribution point.
    DistributionPoint,
    /// A gateway serving content from object storage (the cloud distribution point).
    Cloud,
}

/// One place to download the requested content from, in priority order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentLocation {
    /// The full URL of the content (`https://<service>/CCM_Proxy_MutualAuth/CMG_Content/<id>`).
    pub url: String,
    pub kind: ContentKind,
    pub locality: Locality,
    pub auth: ClientAuth,
}

/// The signed answer's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationAnswer {
    /// [`LOCATION_FORMAT`].
    pub format: u32,
    pub site: SiteCode,
    /// Unix seconds; the client refuses an answer from the future (beyond its skew).
    pub issued_at: u64,
    /// Unix seconds; the client refuses an expired answer and keeps its last good one.
    pub expires_at: u64,
    /// How the site identified the client (device ID, or `CN=..; sha256=..`).
    pub client: String,
    pub auth: ClientAuth,
    pub via: Via,
    /// The boundary groups the client's addresses fall in.
    pub boundary_groups: Vec<String>,
    /// Intranet candidates in order, then internet ones in order.
    pub candidates: Vec<LocationCandidate>,
    pub client_settings: ClientSettingsInForce,
    /// Set when the request asked for content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Vec<ContentLocation>>,
    /// The site's token and answer signing keys in force (PEM): a client that trusts
    /// one of them learns the next one during a key rollover.
    pub site_keys_pem: Vec<String>,
}

impl LocationAnswer {
    /// The candidates of one kind, in order.
    pub fn candidates_of(&self, kind: CandidateKind) -> impl Iterator<Item = &LocationCandidate> {
        self.candidates.iter().filter(move |c| c.kind == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_answer_json() {
        let req: LocationRequest =
            serde_json::from_str(r#"{"site":"PS1","addresses":["10.1.0.4","2001:db8::1"]}"#)
                .expect("request");
        assert_eq!(req.addresses.len(), 2);
        assert!(req.want_content.is_none());
        assert!(
            serde_json::from_str::<LocationRequest>(r#"{"site":"PS1","addresses":[],"id":"x"}"#)
                .is_err(),
            "identity never travels in the body"
        );
        let answer = LocationAnswer {
            format: LOCATION_FORMAT,
            site: SiteCode::new("PS1").expect("site"),
            issued_at: 1,
            expires_at: 2,
            client: "dev-1".into(),
            auth: ClientAuth::Token,
            via: Via::Gateway,
            boundary_groups: vec![],
            candidates: vec![LocationCandidate {
                kind: CandidateKind::Internet,
                name: "cmg1".into(),
                url: "https://cmg.example/CCM_Proxy_ServerAuth/1".into(),
                locality: Locality::SiteDefault,
                auth: ClientAuth::Token,
            }],
            client_settings: ClientSettingsInForce {
                enable_cmg: true,
                allow_cloud_dp: true,
                policy_interval_secs: 3600,
            },
            content: None,
            site_keys_pem: vec![],
        };
        let json = serde_json::to_string(&answer).expect("json");
        assert!(
            json.contains(r#""kind":"internet""#) && json.contains(r#""locality":"site_default""#)
        );
        let back: LocationAnswer = serde_json::from_str(&json).expect("back");
        assert_eq!(back, answer);
        assert_eq!(back.candidates_of(CandidateKind::Intranet).count(), 0);
    }
}
