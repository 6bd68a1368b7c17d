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
//! the intranet or the internet at this moment: it holds both of the client's lists,
//! each candidate tagged with the list it belongs to ([`CandidateList`]), and the
//! client uses the list of its own connection type. A gateway may be in both lists
//! (an intranet fallback its boundary group references, and an internet candidate),
//! so the candidate's kind (`CandidateKind`: management point or gateway) does not say
//! the list; the tag does.
//!
//! Formats: 2 tags every candidate with its `list`. Format 1 (before the tag) is still
//! read: its lists follow from the order the site wrote them (the intranet list first,
//! then the internet list, whose candidates are every gateway with the site-default
//! locality), see [`LocationAnswer::candidates_in`].
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

/// The answer format this build writes.
pub const LOCATION_FORMAT: u32 = 2;

/// The answer formats this build reads: 1 (candidates untagged) and 2.
pub const LOCATION_FORMATS_READ: [u32; 2] = [1, LOCATION_FORMAT];

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

/// Which of the client's two lists a candidate is in: the one it uses while
/// "Currently intranet", or the one while "Currently Internet" (the product's
/// intranet and internet management point lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CandidateList {
    Intranet,
    Internet,
}

/// One management point candidate, in the order the client should try them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationCandidate {
    /// The list it is in. Set on every candidate from format 2; absent in format 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<CandidateList>,
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
    /// The intranet list in order, then the internet list in order, each candidate
    /// tagged with its list (format 2).
    pub candidates: Vec<LocationCandidate>,
    pub client_settings: ClientSettingsInForce,
    /// Set when the request asked for content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Vec<ContentLocation>>,
    /// The site's token and answer signing keys in force (PEM): a client that trusts
    /// one of them learns the next one during a key rollover.
    pub site_keys_pem: Vec<String>,
}

/// Why an answer's candidate lists are not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("format {format}: candidate {name:?} has no `list`")]
    Untagged { format: u32, name: String },
    #[error("format 1 answers carry no `list` (candidate {name:?} has one)")]
    TaggedInFormat1 { name: String },
    #[error("candidate {name:?} is an intranet management point in the internet list")]
    IntranetInInternetList { name: String },
    #[error("candidate {name:?} in the intranet list after the internet list began")]
    OutOfOrder { name: String },
}

impl LocationAnswer {
    /// The candidates of one kind (management point or gateway), in order, whatever
    /// list they are in.
    pub fn candidates_of(&self, kind: CandidateKind) -> impl Iterator<Item = &LocationCandidate> {
        self.candidates.iter().filter(move |c| c.kind == kind)
    }

    /// The list a candidate is in: its tag (format 2), or in format 1 the rule the
    /// site wrote them by (a gateway with the site-default locality is in the internet
    /// list: the site puts a gateway in the intranet list only when a group the client
    /// is in, or a neighbour, references it, with locality 3 or 2).
    pub fn list_of(&self, c: &LocationCandidate) -> CandidateList {
        match c.list {
            Some(l) => l,
            None if c.kind == CandidateKind::Internet && c.locality == Locality::SiteDefault => {
                CandidateList::Internet
            }
            None => CandidateList::Intranet,
        }
    }

    /// One of the client's lists, in order.
    pub fn candidates_in(&self, list: CandidateList) -> impl Iterator<Item = &LocationCandidate> {
        self.candidates
            .iter()
            .filter(move |c| self.list_of(c) == list)
    }

    /// Checks the lists: in format 2 every candidate is tagged, in format 1 none is; no
    /// intranet management point is in the internet list; the intranet list comes
    /// first.
    pub fn check_lists(&self) -> Result<(), ListError> {
        let mut internet_began = false;
        for c in &self.candidates {
            match (self.format, c.list) {
                (1, Some(_)) => {
                    return Err(ListError::TaggedInFormat1 {
                        name: c.name.clone(),
                    })
                }
                (1, None) => {}
                (format, None) => {
                    return Err(ListError::Untagged {
                        format,
                        name: c.name.clone(),
                    })
                }
                (_, Some(_)) => {}
            }
            match self.list_of(c) {
                CandidateList::Internet if c.kind == CandidateKind::Intranet => {
                    return Err(ListError::IntranetInInternetList {
                        name: c.name.clone(),
                    })
                }
                CandidateList::Internet => internet_began = true,
                CandidateList::Intranet if internet_began => {
                    return Err(ListError::OutOfOrder {
                        name: c.name.clone(),
                    })
                }
                CandidateList::Intranet => {}
            }
        }
        Ok(())
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
                list: Some(CandidateList::Internet),
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
        assert!(json.contains(r#""list":"internet""#), "{json}");
        assert_eq!(back.check_lists(), Ok(()));
    }

    fn cand(list: Option<CandidateList>, kind: CandidateKind, name: &str, l: Locality) -> String {
        let list = list.map_or(String::new(), |l| {
            format!(r#""list":{},"#, serde_json::to_string(&l).expect("list"))
        });
        format!(
            r#"{{{list}"kind":{},"name":"{name}","url":"https://x/{name}","locality":{},"auth":"certificate"}}"#,
            serde_json::to_string(&kind).expect("kind"),
            serde_json::to_string(&l).expect("locality"),
        )
    }

    fn answer(format: u32, candidates: &[String]) -> LocationAnswer {
        serde_json::from_str(&format!(
            r#"{{"format":{format},"site":"PS1","issued_at":1,"expires_at":2,"client":"c","auth":"certificate","via":"intranet","boundary_groups":[],"candidates":[{}],"client_settings":{{"enable_cmg":true,"allow_cloud_dp":true,"policy_interval_secs":60}},"site_keys_pem":[]}}"#,
            candidates.join(",")
        ))
        .expect("answer")
    }

    fn names(a: &LocationAnswer, list: CandidateList) -> Vec<&str> {
        a.candidates_in(list).map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn format_2_lists_come_from_the_tags() {
        use CandidateKind::{Internet as Gw, Intranet as Mp};
        use CandidateList::{Internet, Intranet};
        // A gateway of the client's group is an intranet fallback and, with the same
        // locality tag absent, an internet candidate: only the tag tells them apart.
        let a = answer(
            2,
            &[
                cand(Some(Intranet), Mp, "MP1", Locality::CurrentGroup),
                cand(Some(Intranet), Gw, "cmg1", Locality::SiteDefault),
                cand(Some(Internet), Gw, "cmg1", Locality::SiteDefault),
            ],
        );
        assert_eq!(a.check_lists(), Ok(()));
        assert_eq!(names(&a, Intranet), ["MP1", "cmg1"]);
        assert_eq!(names(&a, Internet), ["cmg1"]);

        let untagged = answer(2, &[cand(None, Mp, "MP1", Locality::CurrentGroup)]);
        assert!(matches!(
            untagged.check_lists(),
            Err(ListError::Untagged { format: 2, .. })
        ));
        let mp_on_internet = answer(2, &[cand(Some(Internet), Mp, "MP1", Locality::SiteDefault)]);
        assert!(matches!(
            mp_on_internet.check_lists(),
            Err(ListError::IntranetInInternetList { .. })
        ));
        let disordered = answer(
            2,
            &[
                cand(Some(Internet), Gw, "cmg1", Locality::SiteDefault),
                cand(Some(Intranet), Mp, "MP1", Locality::CurrentGroup),
            ],
        );
        assert!(matches!(
            disordered.check_lists(),
            Err(ListError::OutOfOrder { .. })
        ));
    }

    #[test]
    fn format_1_answers_still_parse_and_split_by_the_old_rule() {
        use CandidateKind::{Internet as Gw, Intranet as Mp};
        use CandidateList::{Internet, Intranet};
        let a = answer(
            1,
            &[
                cand(None, Mp, "MP1", Locality::CurrentGroup),
                cand(None, Gw, "cmg1", Locality::Neighbour),
                cand(None, Gw, "cmg1", Locality::SiteDefault),
            ],
        );
        assert_eq!(a.check_lists(), Ok(()));
        assert_eq!(names(&a, Intranet), ["MP1", "cmg1"]);
        assert_eq!(names(&a, Internet), ["cmg1"]);
        let tagged = answer(
            1,
            &[cand(Some(Intranet), Mp, "MP1", Locality::CurrentGroup)],
        );
        assert!(matches!(
            tagged.check_lists(),
            Err(ListError::TaggedInFormat1 { .. })
        ));
    }
}
