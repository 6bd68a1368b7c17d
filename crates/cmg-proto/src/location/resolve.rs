//! Which management points a client should use, from where it is: the boundary groups
//! its addresses fall in, their references and their neighbours (seed 004, "Configure
//! boundary groups"; the product's MP locality: 3 current group, 2 neighbour, 1 site
//! default, tried in that order). Pure: the site feeds it the stored groups and site
//! systems, the client's reported addresses and the client settings in force.
//!
//! Rules, as the product documents them:
//! - a client is in every group one of whose boundaries holds one of its addresses;
//! - management points referenced by those groups come first (locality 3), then those
//!   of their neighbour groups whose relationship allows management point fallback
//!   (2; management points have no fallback *time*, only "never"), then every other
//!   management point of the site (1): a group with no management point gives the
//!   client the whole list;
//! - a gateway referenced by a client's group (or an allowed neighbour) is a cloud
//!   source for the intranet client too, ranked after every on-premises management
//!   point unless one of its current groups prefers cloud-based sources;
//! - internet clients ignore boundary groups: every gateway of the site;
//! - "Enable clients to use a cloud management gateway = No" removes every gateway.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::boundary::Boundary;

/// A boundary group as the site stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundaryGroup {
    pub name: String,
    #[serde(default)]
    pub boundaries: Vec<Boundary>,
    /// Names of the management points the group references.
    #[serde(default)]
    pub management_points: Vec<String>,
    /// Names of the gateways (cloud management gateways) the group references.
    #[serde(default)]
    pub gateways: Vec<String>,
    /// One-way relationships to neighbour groups.
    #[serde(default)]
    pub neighbours: Vec<Neighbour>,
    /// "Prefer cloud-based sources over on-premises sources".
    #[serde(default)]
    pub prefer_cloud: bool,
}

/// A relationship from a group to a neighbour group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neighbour {
    pub group: String,
    /// Whether clients fall back to the neighbour's management points (and gateways);
    /// `false` is the product's "never fall back" for the management point role.
    #[serde(default = "yes")]
    pub management_points: bool,
    /// Minutes before content falls back to the neighbour (`None`: never); default 120.
    #[serde(default = "content_default")]
    pub content_after_minutes: Option<u32>,
}

fn yes() -> bool {
    true
}
fn content_default() -> Option<u32> {
    Some(120)
}

/// An on-premises management point of the site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagementPoint {
    pub name: String,
    /// Its intranet base URL (`https://mp1.corp.example`).
    pub url: String,
}

/// A gateway of the site, as an internet management point: `<service>/CCM_Proxy_
/// MutualAuth/<role id>` for certificate clients, `.../CCM_Proxy_ServerAuth/...` for
/// token clients (seed 000's internet MP list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayMp {
    pub name: String,
    pub certificate_url: String,
    #[serde(default)]
    pub token_url: Option<String>,
}

/// How near a candidate is (the product's locality numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Locality {
    /// Not from the site (a bootstrap gateway name the client was configured with).
    Unknown = 0,
    SiteDefault = 1,
    Neighbour = 2,
    CurrentGroup = 3,
}

/// Where a candidate is reached from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CandidateKind {
    /// An on-premises management point, reached on the intranet.
    Intranet,
    /// A gateway, reached from anywhere.
    Internet,
}

/// One management point a client may use, in the order it should try them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub kind: CandidateKind,
    pub name: String,
    /// The base URL for a certificate client.
    pub url: String,
    /// The base URL for a token client (gateways that serve them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    pub locality: Locality,
}

/// The client settings that decide what the location answer may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocationPolicy {
    /// "Enable clients to use a cloud management gateway".
    pub use_cmg: bool,
}

/// What the site tells a client about where to go.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Resolution {
    /// The groups the client's addresses fall in, by name.
    pub groups: Vec<String>,
    /// For the client on the intranet, in order: management points, then cloud
    /// sources (first instead, where a current group prefers them).
    pub intranet: Vec<Candidate>,
    /// For the client on the internet: every gateway (boundary groups ignored).
    pub internet: Vec<Candidate>,
}

/// Resolves the candidates for a client with `addresses`.
pub fn resolve(
    addresses: &[IpAddr],
    groups: &[BoundaryGroup],
    mps: &[ManagementPoint],
    gateways: &[GatewayMp],
    policy: LocationPolicy,
) -> Resolution {
    let current: Vec<&BoundaryGroup> = groups
        .iter()
        .filter(|g| {
            g.boundaries
                .iter()
                .any(|b| addresses.iter().any(|a| b.contains(*a)))
        })
        .collect();
    let current_names: BTreeSet<&str> = current.iter().map(|g| g.name.as_str()).collect();
    // Neighbours reachable for the management point role, not already current.
    let neighbours: Vec<&BoundaryGroup> = current
        .iter()
        .flat_map(|g| g.neighbours.iter())
        .filter(|n| n.management_points && !current_names.contains(n.group.as_str()))
        .filter_map(|n| groups.iter().find(|g| g.name == n.group))
        .collect();

    let locality_of = |referenced: &dyn Fn(&BoundaryGroup) -> bool| {
        if current.iter().any(|g| referenced(g)) {
            Locality::CurrentGroup
        } else if neighbours.iter().any(|g| referenced(g)) {
            Locality::Neighbour
        } else {
            Locality::SiteDefault
        }
    };

    let mut intranet: Vec<Candidate> = mps
        .iter()
        .map(|mp| Candidate {
            kind: CandidateKind::Intranet,
            name: mp.name.clone(),
            url: mp.url.clone(),
            token_url: None,
            locality: locality_of(&|g| g.management_points.contains(&mp.name)),
        })
        .collect();
    // Stable: the site's own order within one locality.
    intranet.sort_by_key(|c| std::cmp::Reverse(c.locality));

    let mut internet = Vec::new();
    if policy.use_cmg {
        let mut cloud: Vec<Candidate> = gateways
            .iter()
            .filter_map(|gw| {
                let referenced = |g: &BoundaryGroup| g.gateways.contains(&gw.name);
                let locality = locality_of(&referenced);
                (locality != Locality::SiteDefault).then(|| gateway_candidate(gw, locality))
            })
            .collect();
        cloud.sort_by_key(|c| std::cmp::Reverse(c.locality));
        if current.iter().any(|g| g.prefer_cloud) {
            cloud.extend(intranet);
            intranet = cloud;
        } else {
            intranet.extend(cloud);
        }
        internet = gateways
            .iter()
            .map(|gw| gateway_candidate(gw, Locality::SiteDefault))
            .collect();
    }
    Resolution {
        groups: current.iter().map(|g| g.name.clone()).collect(),
        intranet,
        internet,
    }
}

fn gateway_candidate(gw: &GatewayMp, locality: Locality) -> Candidate {
    Candidate {
        kind: CandidateKind::Internet,
        name: gw.name.clone(),
        url: gw.certificate_url.clone(),
        token_url: gw.token_url.clone(),
        locality,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn group(name: &str, boundary: &str, mps: &[&str], gateways: &[&str]) -> BoundaryGroup {
        BoundaryGroup {
            name: name.into(),
            boundaries: vec![boundary.parse().expect("boundary")],
            management_points: mps.iter().map(|s| s.to_string()).collect(),
            gateways: gateways.iter().map(|s| s.to_string()).collect(),
            neighbours: vec![],
            prefer_cloud: false,
        }
    }

    fn mps() -> Vec<ManagementPoint> {
        ["mp-paris", "mp-lyon", "mp-nice"]
            .iter()
            .map(|n| ManagementPoint {
                name: n.to_string(),
                url: format!("https://{n}.corp.example"),
            })
            .collect()
    }

    fn gateways() -> Vec<GatewayMp> {
        vec![GatewayMp {
            name: "cmg1".into(),
            certificate_url: "https://cmg.example.test/CCM_Proxy_MutualAuth/72057594037927939"
                .into(),
            token_url: Some(
                "https://cmg.example.test/CCM_Proxy_ServerAuth/72057594037927939".into(),
            ),
        }]
    }

    const ON: LocationPolicy = LocationPolicy { use_cmg: true };

    fn names(c: &[Candidate]) -> Vec<(&str, Locality)> {
        c.iter().map(|c| (c.name.as_str(), c.locality)).collect()
    }

    #[test]
    fn current_group_then_neighbour_then_site_default() {
        let mut paris = group("paris", "10.1.0.0/16", &["mp-paris"], &[]);
        paris.neighbours.push(Neighbour {
            group: "lyon".into(),
            management_points: true,
            content_after_minutes: Some(120),
        });
        let lyon = group("lyon", "10.2.0.0/16", &["mp-lyon"], &[]);
        let r = resolve(&[ip("10.1.4.5")], &[paris, lyon], &mps(), &gateways(), ON);
        assert_eq!(r.groups, vec!["paris"]);
        assert_eq!(
            names(&r.intranet),
            vec![
                ("mp-paris", Locality::CurrentGroup),
                ("mp-lyon", Locality::Neighbour),
                ("mp-nice", Locality::SiteDefault),
            ]
        );
        assert_eq!(names(&r.internet), vec![("cmg1", Locality::SiteDefault)]);
        assert!(
            r.intranet.iter().all(|c| c.kind == CandidateKind::Intranet),
            "no group references the gateway: not an intranet source"
        );
    }

    #[test]
    fn never_fall_back_keeps_the_neighbour_out() {
        let mut paris = group("paris", "10.1.0.0/16", &["mp-paris"], &[]);
        paris.neighbours.push(Neighbour {
            group: "lyon".into(),
            management_points: false,
            content_after_minutes: None,
        });
        let lyon = group("lyon", "10.2.0.0/16", &["mp-lyon"], &[]);
        let r = resolve(&[ip("10.1.4.5")], &[paris, lyon], &mps(), &gateways(), ON);
        assert_eq!(r.intranet[1].locality, Locality::SiteDefault);
    }

    #[test]
    fn a_client_in_no_group_gets_the_whole_list_as_site_default() {
        let paris = group("paris", "10.1.0.0/16", &["mp-paris"], &["cmg1"]);
        let r = resolve(&[ip("192.168.1.9")], &[paris], &mps(), &gateways(), ON);
        assert!(r.groups.is_empty());
        assert_eq!(r.intranet.len(), 3);
        assert!(r
            .intranet
            .iter()
            .all(|c| c.locality == Locality::SiteDefault));
        assert_eq!(
            r.internet.len(),
            1,
            "internet clients ignore boundary groups"
        );
    }

    #[test]
    fn a_group_that_references_the_gateway_makes_it_the_intranet_fallback() {
        let paris = group("paris", "10.1.0.0/16", &["mp-paris"], &["cmg1"]);
        let r = resolve(
            &[ip("10.1.0.1")],
            std::slice::from_ref(&paris),
            &mps(),
            &gateways(),
            ON,
        );
        let last = r.intranet.last().expect("candidates");
        assert_eq!(
            (last.kind, last.name.as_str()),
            (CandidateKind::Internet, "cmg1")
        );
        assert_eq!(last.locality, Locality::CurrentGroup);
        assert!(last.token_url.is_some());

        let preferring = BoundaryGroup {
            prefer_cloud: true,
            ..paris
        };
        let r = resolve(&[ip("10.1.0.1")], &[preferring], &mps(), &gateways(), ON);
        assert_eq!(
            r.intranet[0].name, "cmg1",
            "prefer cloud-based sources: first"
        );
    }

    #[test]
    fn use_cmg_no_removes_every_gateway() {
        let paris = group("paris", "10.1.0.0/16", &["mp-paris"], &["cmg1"]);
        let off = LocationPolicy { use_cmg: false };
        let r = resolve(&[ip("10.1.0.1")], &[paris], &mps(), &gateways(), off);
        assert!(r.internet.is_empty());
        assert!(r.intranet.iter().all(|c| c.kind == CandidateKind::Intranet));
    }

    #[test]
    fn any_of_several_addresses_places_the_client() {
        let v6 = group("v6-office", "2001:db8:7::/48", &["mp-nice"], &[]);
        let r = resolve(
            &[ip("172.16.0.4"), ip("2001:db8:7::42")],
            &[v6],
            &mps(),
            &gateways(),
            ON,
        );
        assert_eq!(r.groups, vec!["v6-office"]);
        assert_eq!(r.intranet[0].name, "mp-nice");
    }
}
