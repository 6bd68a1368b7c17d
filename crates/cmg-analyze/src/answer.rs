//! Reading an answer through the gateway: who produced it (the gateway, the connection
//! point or the role) and what that means. Pure functions of the status, headers and
//! body, so each decision is tested without a network.

use cmg_proto::mapping::AuthKind;
use http::StatusCode;

use crate::deployment::RoleKind;
use crate::net::{Answer, NetError};
use crate::report::Step;

/// The header a connection point sets on its own refusals.
const CMG_ERROR: &str = "cmg-error";

/// The gateway's own refusal code (its body is `"<status> <reason>: <code>"`).
pub fn gateway_code(a: &Answer) -> Option<String> {
    let text = std::str::from_utf8(&a.body).ok()?.trim();
    let rest = text.strip_prefix(a.status.as_str())?;
    let code = rest.rsplit_once(": ")?.1;
    code.bytes()
        .all(|b| b.is_ascii_lowercase() || b == b'_')
        .then(|| code.to_owned())
}

/// The step for `GET /<prefix>/ServiceMetadata`.
pub fn metadata_step(
    name: &str,
    got: Result<Answer, NetError>,
    service_name: &str,
    auth: AuthKind,
) -> Step {
    let a = match got {
        Ok(a) => a,
        Err(e) => return Step::fail(name, format!("no answer: {e}"), NETWORK_REMEDY),
    };
    let body = String::from_utf8_lossy(&a.body);
    let want_auth = match auth {
        AuthKind::MutualAuth => "MutualAuth",
        AuthKind::ServerAuth => "ServerAuth",
    };
    if a.status != StatusCode::OK {
        return Step::fail(
            name,
            format!("answered {}: {}", a.status, body.trim()),
            "the address is not a cmg gateway instance, or a proxy in front of it \
             answers: check what listens there",
        );
    }
    let field = |tag: &str| {
        body.split_once(&format!("<{tag}>"))
            .and_then(|(_, rest)| rest.split_once(&format!("</{tag}>")))
            .map(|(v, _)| v.to_owned())
    };
    if field("ServiceName").as_deref() != Some(service_name)
        || field("Auth").as_deref() != Some(want_auth)
    {
        return Step::fail(
            name,
            format!("unexpected metadata: {}", body.trim()),
            "the instance runs another gateway's settings: redeploy it from this gateway's \
             export",
        );
    }
    Step::pass(
        name,
        format!(
            "instance {} (version {}) answers for {service_name}",
            field("Instance").unwrap_or_default(),
            field("Version").unwrap_or_default()
        ),
    )
}

const NETWORK_REMEDY: &str =
    "check that the instance runs and that its client port is open from here";

/// The failed step for a request through the gateway that got no answer: a refused
/// handshake points at the client certificate steps, anything else at the network.
pub(crate) fn no_answer(name: &str, e: &NetError) -> Step {
    let detail = e.to_string();
    let remedy = if detail.contains("alert") || detail.contains("Certificate") {
        "the gateway refused the TLS handshake: see the client certificate steps"
    } else {
        NETWORK_REMEDY
    };
    Step::fail(name, format!("no answer: {detail}"), remedy)
}

/// The step for a request to a role through the gateway.
pub fn role_step(name: &str, got: Result<Answer, NetError>, kind: RoleKind) -> Step {
    let a = match got {
        Ok(a) => a,
        Err(e) => return no_answer(name, &e),
    };
    if let Some(code) = a.headers.get(CMG_ERROR).and_then(|v| v.to_str().ok()) {
        return Step::fail(
            name,
            format!("the connection point refused: {} {code}", a.status.as_u16()),
            connector_remedy(code),
        );
    }
    if let Some(code) = gateway_code(&a) {
        return Step::fail(
            name,
            format!("the gateway refused: {} {code}", a.status.as_u16()),
            gateway_remedy(&code),
        );
    }
    let detail = format!(
        "the {kind} answered {} ({} bytes)",
        a.status.as_u16(),
        a.body.len()
    );
    match kind {
        RoleKind::ManagementPoint if a.status == StatusCode::OK => Step::pass(name, detail),
        RoleKind::SoftwareUpdatePoint if !a.status.is_server_error() => Step::pass(name, detail),
        _ => Step::warn(
            name,
            detail,
            "the request reached the role, which did not answer as expected: check the role",
        ),
    }
}

/// What to do about a connection point's `CMGConnector_*` refusal.
pub fn connector_remedy(code: &str) -> &'static str {
    match code {
        "CMGConnector_NoMapping" => {
            "the connection point has no URL mapping for this role: check that it reads the \
             site's mappings ([site_api]) and that the role allows gateway traffic"
        }
        "CMGConnector_RoleUnreachable" => {
            "the connection point cannot reach the role's internal URL: check the role's \
             address and that the role runs"
        }
        "CMGConnector_RoleTimeout" => "the role did not answer in time: check the role's load",
        "CMGConnector_Clientcertificaterequired" => {
            "the role is HTTPS and the connection point has no client certificate for it: \
             configure one ([tls] role_client_cert)"
        }
        "CMGConnector_Forbidden" => "the role refused the connection point: check its access rules",
        _ => "see the connection point's log (SMS_Cloud_ProxyConnector.log)",
    }
}

/// What to do about one of the gateway's refusal codes.
pub fn gateway_remedy(code: &str) -> &'static str {
    match code {
        "client_certificate_required" => "present a client certificate (--cert and --key)",
        "token_required" => "send a token (--token)",
        "url_not_published" => {
            "the gateway has not published this role: check that the role allows gateway \
             traffic and that the instance runs the site's newest settings"
        }
        "no_connection_point" | "channel_failed" | "channel_timeout" => {
            "no working channel from a connection point to this instance: see the channel steps"
        }
        "service_stopped" => {
            "the 14-day traffic alert stopped the service: cmg site alert clear NAME"
        }
        c if c.starts_with("token") || c.contains("invalid") || c.contains("blocked") => {
            "the gateway refused the token: get a new one from the site"
        }
        _ => "see the gateway's log (CMGService.log)",
    }
}
