//! The location service step: a client asks the site's location service through the
//! gateway (`<prefix>/<mp role id>/CCM_Location`, mapped to the site's
//! `/api/v1/location`) with its own credential, and the answer must verify as the
//! agent verifies it (`cmg_token::LocationVerifier`, with the site keys and site code of
//! the gateway's settings bundle). The step then reports what the client would learn:
//! the internet management points, whether "use CMG" is on for it, its boundary groups.
//!
//! Pure functions of the bundle, the roles and the answer, so each decision is tested
//! without a network; `lib.rs` sends the request. It does not check the intranet half
//! of the answer (that is the site's boundary groups, not the gateway's path).

use std::time::SystemTime;

use cmg_proto::device::{
    CandidateList, ClientAuth, LocationAnswer, LocationRequest, Via, LOCATION_ENDPOINT,
};
use cmg_proto::settings::SettingsBundle;
use cmg_token::LocationVerifier;
use http::StatusCode;

use crate::answer::{connector_remedy, gateway_code, gateway_remedy};
use crate::deployment::{Role, RoleKind};
use crate::net::{Answer, NetError};
use crate::report::Step;

/// The step's name before ` via <addr>`.
pub const LOCATION: &str = "location service";

/// What to run when clients are kept off the gateway.
const ENABLE_REMEDY: &str =
    "let clients use the gateway: cmg site client-settings --enable-cmg true";

/// Where the location request goes: the path under the gateway for this credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationRoute {
    /// `/CCM_Proxy_MutualAuth/<role id>/CCM_Location` (or `CCM_Proxy_ServerAuth`).
    pub path: String,
}

/// The path the location request takes, or the warning that says why the location
/// service is not published for this credential: no management point allows gateway
/// traffic (for a token, none serves token clients), or the gateway's settings publish
/// no `CCM_Location` for it.
pub fn location_route(
    bundle: &SettingsBundle,
    roles: &[Role],
    token: bool,
) -> Result<LocationRoute, Step> {
    let prefix = if token {
        "CCM_Proxy_ServerAuth"
    } else {
        "CCM_Proxy_MutualAuth"
    };
    let mps: Vec<&Role> = roles
        .iter()
        .filter(|r| r.kind == RoleKind::ManagementPoint)
        .collect();
    let usable: Vec<&Role> = mps
        .iter()
        .copied()
        .filter(|r| !token || r.serves_tokens)
        .collect();
    if usable.is_empty() {
        let (detail, remedy) = if mps.is_empty() {
            (
                "not published through the gateway: no management point allows gateway \
                 traffic, so clients on the internet cannot find their management points",
                "allow gateway traffic on a management point (cmg site role modify ID \
                 --allow-gateway-traffic true)",
            )
        } else {
            (
                "not published for token clients: no management point that allows gateway \
                 traffic serves them (its mode is HTTP)",
                "set a management point to Enhanced HTTP or HTTPS",
            )
        };
        return Err(Step::warn(LOCATION, detail, remedy));
    }
    for role in &usable {
        let path = format!("/{prefix}/{}/{LOCATION_ENDPOINT}", role.id);
        if bundle.published.iter().any(|p| p.prefix.as_str() == path) {
            return Ok(LocationRoute { path });
        }
    }
    Err(Step::warn(
        LOCATION,
        format!(
            "not published through the gateway: its settings publish no {LOCATION_ENDPOINT} \
             under {prefix} (the site that generated them predates the location service)"
        ),
        "upgrade the site, then update the gateway's settings (any change to the gateway \
         or its roles publishes new ones)",
    ))
}

/// The request body: the bundle's site code and no address (the analyzer is not a
/// client on any boundary; the internet candidates do not depend on addresses).
pub fn location_request(bundle: &SettingsBundle) -> LocationRequest {
    LocationRequest {
        site: bundle.site.clone(),
        addresses: Vec::new(),
        want_content: None,
    }
}

/// The step for the answer to the location request, judged at `now`.
pub fn location_step(
    name: &str,
    got: Result<Answer, NetError>,
    bundle: &SettingsBundle,
    token: bool,
    now: SystemTime,
) -> Step {
    let a = match got {
        Ok(a) => a,
        Err(e) => return crate::answer::no_answer(name, &e),
    };
    if a.status != StatusCode::OK {
        return refused(name, &a);
    }
    if bundle.tokens.site_keys_pem.is_empty() {
        return Step::fail(
            name,
            "the answer cannot be verified: the gateway's settings hold no site key",
            "create a site key (cmg site key roll), then check again",
        );
    }
    let verifier = match LocationVerifier::from_pem_file_text(
        &bundle.tokens.site_keys_pem.join("\n"),
        bundle.site.clone(),
    ) {
        Ok(v) => v,
        Err(e) => {
            return Step::fail(
                name,
                format!("the site keys in the gateway's settings do not load: {e}"),
                "rotate the site key (cmg site key roll)",
            )
        }
    };
    let signed = String::from_utf8_lossy(&a.body);
    let answer = match verifier.verify_at(&signed, now) {
        Ok(answer) => answer,
        Err(e) => {
            let remedy = match e.code() {
                "other_site" | "unknown_kid" | "bad_signature" => {
                    "the answer is not this site's: check that the connection point's \
                     [site_api] url is this site"
                }
                "expired" | "not_yet_valid" => "check the clocks of the site and of this machine",
                _ => "the site's answer is not one a client accepts: see the site's log",
            };
            return Step::fail(
                name,
                format!(
                    "the answer does not verify ({}): {e}; a client would refuse it and \
                     keep its last good answer",
                    e.code()
                ),
                remedy,
            );
        }
    };
    judge(name, &answer, &bundle.service_name, token)
}

/// A verified answer: what the client would learn, and whether it keeps it off the
/// gateway.
fn judge(name: &str, answer: &LocationAnswer, service_name: &str, token: bool) -> Step {
    let settings = answer.client_settings;
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    // The internet list, as the answer tags it (a gateway in the intranet list, the
    // fallback a boundary group references, is not an internet management point).
    let internet: Vec<&str> = answer
        .candidates_in(CandidateList::Internet)
        .map(|c| c.url.as_str())
        .collect();
    let groups = if answer.boundary_groups.is_empty() {
        "none".to_owned()
    } else {
        answer.boundary_groups.join(", ")
    };
    let detail = format!(
        "signed by site {} for {} ({}, via {}); use CMG: {}, cloud distribution point: {}, \
         policy every {} min; internet management points: {}; boundary groups: {groups}",
        answer.site,
        answer.client,
        match answer.auth {
            ClientAuth::Certificate => "certificate",
            ClientAuth::Token => "token",
        },
        match answer.via {
            Via::Gateway => "gateway",
            Via::Intranet => "intranet",
        },
        yes_no(settings.enable_cmg),
        yes_no(settings.allow_cloud_dp),
        settings.policy_interval_secs / 60,
        if internet.is_empty() {
            "none".to_owned()
        } else {
            internet.join(", ")
        },
    );
    if !settings.enable_cmg {
        return Step::fail(
            name,
            format!("the client settings keep this client off the gateway: {detail}"),
            ENABLE_REMEDY,
        );
    }
    if answer.via != Via::Gateway {
        return Step::warn(
            name,
            format!("the site took the request for an intranet one: {detail}"),
            "check that the gateway and connection point forward the client's identity \
             (see the site's log)",
        );
    }
    let prefix = if token {
        "CCM_Proxy_ServerAuth"
    } else {
        "CCM_Proxy_MutualAuth"
    };
    let ours = format!("https://{service_name}/{prefix}/");
    if !internet.iter().any(|u| u.starts_with(&ours)) {
        return Step::warn(
            name,
            format!("the answer lists no management point on this gateway: {detail}"),
            "allow gateway traffic on a management point (for token clients in Enhanced \
             HTTP or HTTPS mode)",
        );
    }
    Step::pass(name, detail)
}

/// A refusal: the connection point's, the gateway's or the site's (its JSON error).
fn refused(name: &str, a: &Answer) -> Step {
    if let Some(code) = a.headers.get("cmg-error").and_then(|v| v.to_str().ok()) {
        return Step::fail(
            name,
            format!("the connection point refused: {} {code}", a.status.as_u16()),
            connector_remedy(code),
        );
    }
    if let Some(code) = gateway_code(a) {
        if code == "url_not_published" {
            return Step::warn(
                name,
                format!(
                    "the instance does not publish the location service: {} {code}",
                    a.status.as_u16()
                ),
                "the instance runs older settings: check that it follows the site",
            );
        }
        return Step::fail(
            name,
            format!("the gateway refused: {} {code}", a.status.as_u16()),
            gateway_remedy(&code),
        );
    }
    #[derive(serde::Deserialize)]
    struct SiteError {
        error: String,
        #[serde(default)]
        message: String,
    }
    let Ok(e) = serde_json::from_slice::<SiteError>(&a.body) else {
        return Step::fail(
            name,
            format!(
                "answered {}: {}",
                a.status.as_u16(),
                String::from_utf8_lossy(&a.body).trim()
            ),
            "see the connection point's and the site's logs",
        );
    };
    let detail = format!(
        "the site refused: {} {}: {}",
        a.status.as_u16(),
        e.error,
        e.message
    );
    let remedy = match e.error.as_str() {
        "cmg_disabled" => {
            return Step::fail(
                name,
                format!("the client settings keep clients off the gateway ({detail})"),
                ENABLE_REMEDY,
            )
        }
        "forwarded_without_connection_point" => {
            "the site does not know the connection point that forwarded it: check that the \
             connection point is on record and presents its own certificate to the site"
        }
        "other_site" => "the connection point's [site_api] url is another site",
        "wrong_token_type" => {
            "a bulk token only registers a device: analyze with the device token it was \
             traded for"
        }
        c if c.starts_with("token") || c == "bad_signature" || c == "unknown_kid" => {
            "the site refused the token: get a new one from the site"
        }
        _ => "see the site's log",
    };
    Step::fail(name, detail, remedy)
}
