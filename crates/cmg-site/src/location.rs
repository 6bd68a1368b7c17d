//! The location service's answer (issue 14, item 1): from a client's reported
//! addresses and the site's boundary groups, management points, gateways and client
//! settings, the signed [`LocationAnswer`] (see `cmg_proto::device::location` and
//! docs/architecture.md, "The client").
//!
//! Who the caller is and how the request came (intranet or gateway) is decided by the
//! HTTP handler (`api::location`) from the request's authentication; this module takes
//! that as a [`Caller`] and never looks at HTTP. It records the client and which
//! groups it fell in.

use std::net::IpAddr;

use cmg_proto::device::{
    CandidateList, ClientAuth, ClientSettingsInForce, ContentKind, ContentLocation, ListedMp,
    LocationAnswer, LocationCandidate, LocationRequest, ManagementPointList, Via, LOCATION_FORMAT,
    MAX_ADDRESSES,
};
use cmg_proto::location::{self, Candidate, CandidateKind, Locality, LocationPolicy};

use crate::model::ClientView;
use crate::store::clients::LocationInputs;
use crate::{Store, StoreError};

/// How long a signed answer is valid.
const ANSWER_LIFETIME_SECS: u64 = cmg_token::location::ANSWER_LIFETIME.as_secs();

/// The authenticated client and the way its request came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Device ID (token) or `<subject>; sha256=<hex>` (certificate).
    pub id: String,
    pub auth: ClientAuth,
    pub via: Via,
}

/// Why no answer was given.
#[derive(Debug, thiserror::Error)]
pub enum LocationRefusal {
    /// The request names another site: 409.
    #[error("this is site {ours}, the client asked for site {asked}")]
    OtherSite { ours: String, asked: String },
    /// A request the site does not take (too many addresses, bad content ID): 400.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// "Enable clients to use a CMG = No" and the request came through a gateway: 403.
    #[error("clients may not use a cloud management gateway (client settings)")]
    CmgDisabled,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Answers `req` for `caller`: resolves, records the client, signs.
pub async fn answer(
    store: &Store,
    caller: &Caller,
    req: &LocationRequest,
) -> Result<String, LocationRefusal> {
    let site = store.site().await?;
    if req.site.as_str() != site.code {
        return Err(LocationRefusal::OtherSite {
            ours: site.code,
            asked: req.site.to_string(),
        });
    }
    if req.addresses.len() > MAX_ADDRESSES {
        return Err(LocationRefusal::BadRequest {
            code: "too_many_addresses",
            message: format!("at most {MAX_ADDRESSES} addresses"),
        });
    }
    if let Some(id) = &req.want_content {
        if !is_content_id(id) {
            return Err(LocationRefusal::BadRequest {
                code: "bad_content_id",
                message:
                    "a content ID is 1 to 1024 of A-Za-z0-9 . _ - / without empty or dot segments"
                        .into(),
            });
        }
    }
    let inputs = store.location_inputs().await?;
    let use_cmg = inputs.settings.enable_clients_to_use_cmg;
    if caller.via == Via::Gateway && !use_cmg {
        return Err(LocationRefusal::CmgDisabled);
    }
    let now = crate::now();
    let built = build(&inputs, caller, req, site.code.clone(), now);
    store
        .record_client(&ClientView {
            id: caller.id.clone(),
            auth: auth_name(caller.auth).into(),
            via: via_name(caller.via).into(),
            addresses: req.addresses.iter().map(IpAddr::to_string).collect(),
            boundary_groups: built.boundary_groups.clone(),
            first_seen: now,
            last_location_at: now,
        })
        .await?;
    let mut built = built;
    built.site_keys_pem = store.public_keys_in_force().await?;
    let signed = store
        .signer()
        .await?
        .sign_location(&built)
        .map_err(StoreError::internal)?;
    tracing::info!(
        client = %caller.id,
        auth = auth_name(caller.auth),
        via = via_name(caller.via),
        groups = ?built.boundary_groups,
        candidates = built.candidates.len(),
        "location answered"
    );
    Ok(signed)
}

/// The site's management point list (what management points answer `MPLIST` with).
pub async fn mp_list(store: &Store) -> Result<ManagementPointList, StoreError> {
    let site = store.site().await?;
    let inputs = store.location_inputs().await?;
    let intranet = inputs
        .intranet_mps()
        .into_iter()
        .map(|mp| ListedMp {
            fqdn: mp
                .url
                .parse::<http::Uri>()
                .ok()
                .and_then(|u| u.host().map(str::to_owned))
                .unwrap_or_default(),
            name: mp.name,
            url: mp.url,
        })
        .collect();
    let internet = inputs
        .gateway_mps()
        .into_iter()
        .map(|gw| ListedMp {
            name: gw
                .certificate_url
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned(),
            fqdn: gw.certificate_url.trim_start_matches("https://").to_owned(),
            url: gw.certificate_url,
        })
        .collect();
    Ok(ManagementPointList {
        site: cmg_proto::SiteCode::new(site.code).map_err(StoreError::internal)?,
        intranet,
        internet,
    })
}

/// The answer's content (unsigned, without the keys): pure, for the tests.
pub fn build(
    inputs: &LocationInputs,
    caller: &Caller,
    req: &LocationRequest,
    site: String,
    now: i64,
) -> LocationAnswer {
    let settings = &inputs.settings;
    let use_cmg = settings.enable_clients_to_use_cmg;
    let resolution = location::resolve(
        &req.addresses,
        &inputs.groups,
        &inputs.intranet_mps(),
        &inputs.gateway_mps(),
        LocationPolicy { use_cmg },
    );
    let candidates = resolution
        .intranet
        .iter()
        .map(|c| (CandidateList::Intranet, c))
        .chain(
            resolution
                .internet
                .iter()
                .map(|c| (CandidateList::Internet, c)),
        )
        .filter_map(|(list, c)| candidate(list, c, caller.auth))
        .collect();
    let content = req.want_content.as_deref().map(|id| {
        if !(use_cmg && settings.allow_cloud_distribution_point) {
            return Vec::new();
        }
        // The cloud distribution point: each gateway that serves content, nearer ones
        // (referenced by the client's groups or their neighbours) first. No
        // on-premises distribution point is on record at a cmg site, so the gateway
        // locations are the whole list (they would come after them otherwise, unless a
        // current group prefers cloud-based sources).
        let mut out: Vec<ContentLocation> = inputs
            .gateways
            .iter()
            .filter(|g| g.content_enabled)
            .map(|g| {
                let locality = resolution
                    .intranet
                    .iter()
                    .filter(|c| c.kind == CandidateKind::Internet && c.name == g.name)
                    .map(|c| c.locality)
                    .max()
                    .unwrap_or(Locality::SiteDefault);
                let segment = match caller.auth {
                    ClientAuth::Certificate => "CCM_Proxy_MutualAuth",
                    ClientAuth::Token => "CCM_Proxy_ServerAuth",
                };
                ContentLocation {
                    url: format!("https://{}/{segment}/CMG_Content/{id}", g.service_name),
                    kind: ContentKind::Cloud,
                    locality,
                    auth: caller.auth,
                }
            })
            .collect();
        out.sort_by_key(|c| std::cmp::Reverse(c.locality));
        out
    });
    let issued_at = u64::try_from(now).unwrap_or(0);
    LocationAnswer {
        format: LOCATION_FORMAT,
        site: cmg_proto::SiteCode::new(site).unwrap_or_else(|_| req.site.clone()),
        issued_at,
        expires_at: issued_at + ANSWER_LIFETIME_SECS,
        client: caller.id.clone(),
        auth: caller.auth,
        via: caller.via,
        boundary_groups: resolution.groups,
        candidates,
        client_settings: ClientSettingsInForce {
            enable_cmg: use_cmg,
            allow_cloud_dp: settings.allow_cloud_distribution_point,
            policy_interval_secs: u64::from(settings.policy_interval_minutes) * 60,
        },
        content,
        site_keys_pem: Vec::new(),
    }
}

/// The wire candidate of `list` for a client authenticating with `auth`; `None` for a
/// gateway that does not serve token clients, when the client has a token.
fn candidate(list: CandidateList, c: &Candidate, auth: ClientAuth) -> Option<LocationCandidate> {
    let url = match (c.kind, auth) {
        (CandidateKind::Internet, ClientAuth::Token) => c.token_url.clone()?,
        _ => c.url.clone(),
    };
    Some(LocationCandidate {
        list: Some(list),
        kind: c.kind,
        name: c.name.clone(),
        url,
        locality: c.locality,
        auth,
    })
}

fn is_content_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
        && id
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

pub fn auth_name(a: ClientAuth) -> &'static str {
    match a {
        ClientAuth::Certificate => "certificate",
        ClientAuth::Token => "token",
    }
}

pub fn via_name(v: Via) -> &'static str {
    match v {
        Via::Intranet => "intranet",
        Via::Gateway => "gateway",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ids() {
        assert!(is_content_id("pkg/PS100001/file.bin"));
        for bad in ["", "/a", "a//b", "a/../b", "a b", "a?b", "./a"] {
            assert!(!is_content_id(bad), "{bad:?}");
        }
    }
}
