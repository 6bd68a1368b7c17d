//! The connection analyzer: checks the whole path a client takes to one gateway, from
//! the client's side, against the real deployment, and reports one [`Step`] per check
//! (pass, warn or fail, with the detail and the remedy):
//!
//! 1. name resolution of each instance address (or of the service name);
//! 2. the client credential, with the gateway's own code (`credential`);
//! 3. per instance: TCP, the server certificate (`server`), `ServiceMetadata` under
//!    both prefixes, and a request to every role that allows gateway traffic (`answer`
//!    reads who answered);
//! 4. the site's location service through the gateway, with the credential, its signed
//!    answer verified as a client verifies it (`location`);
//! 5. every connection point's channels to the instances, from its reports (`channels`).
//!
//! The caller gives it the deployment's view of the gateway ([`Deployment`]); `cmg site
//! analyze` fetches it from the site's admin API. It does not talk to the site itself
//! (the location service is reached through the gateway, as a client reaches it), and
//! does not verify OIDC tokens locally (the requests through the gateway do).

mod answer;
mod channels;
mod credential;
mod deployment;
mod location;
mod net;
mod report;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use cmg_proto::mapping::AuthKind;
use rustls::ClientConfig;
use rustls_pki_types::{CertificateDer, UnixTime};

pub use answer::{connector_remedy, gateway_code, gateway_remedy, metadata_step, role_step};
pub use channels::{channel_steps, step_name as channel_step_name};
pub use credential::{certificate_steps, token_step, CHAIN, REVOCATION, TOKEN};
pub use deployment::{Channel, ConnectionPoint, Credential, Deployment, Role, RoleKind, Targets};
pub use location::{location_request, location_route, location_step, LocationRoute, LOCATION};
pub use net::{Answer, NetError};
pub use report::{Report, Status, Step};
pub use server::server_certificate_step;

/// Runs every step. It never fails: what cannot be checked is a step that says why.
pub async fn analyze(d: &Deployment, credential: &Credential, targets: &Targets) -> Report {
    let mut steps = Vec::new();
    let service = d.bundle.service_name.clone();
    let instances = resolve_targets(&service, targets, &mut steps).await;
    steps.extend(credential_steps(d, credential).await);
    let roots = match server::roots_from_chain(&d.server_chain_pem) {
        Ok(r) => r,
        Err(e) => {
            steps.push(Step::fail(
                "server certificate",
                e,
                "fix the gateway's certificate at the site",
            ));
            steps.extend(channels::channel_steps(
                &d.connection_points,
                d.instances_expected,
            ));
            return Report::new(steps);
        }
    };
    if d.roles.is_empty() {
        steps.push(Step::warn(
            "roles",
            "no role allows gateway traffic: clients can reach nothing through the gateway",
            "allow gateway traffic on a management point (cmg site role modify ID \
             --allow-gateway-traffic true)",
        ));
    }
    let mut trusted = None;
    for addr in instances {
        let (s, ok) = instance_steps(d, credential, &roots, addr).await;
        steps.extend(s);
        if ok && trusted.is_none() {
            trusted = Some(addr);
        }
    }
    steps.push(location(d, credential, &roots, trusted).await);
    steps.extend(channels::channel_steps(
        &d.connection_points,
        d.instances_expected,
    ));
    Report::new(steps)
}

async fn resolve_targets(
    service: &str,
    targets: &Targets,
    steps: &mut Vec<Step>,
) -> Vec<SocketAddr> {
    let wanted: Vec<String> = match targets {
        Targets::ServiceName => vec![format!("{service}:443")],
        Targets::Addresses(a) => a.clone(),
    };
    let mut out = Vec::new();
    for target in wanted {
        let name = format!("name resolution: {target}");
        match net::resolve(&target).await {
            Ok(addrs) if !addrs.is_empty() => {
                let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
                steps.push(Step::pass(name, format!("resolves to {}", list.join(", "))));
                match targets {
                    // Every address of the service name is an instance or a balancer.
                    Targets::ServiceName => out.extend(addrs),
                    Targets::Addresses(_) => out.push(addrs[0]),
                }
            }
            Ok(_) => steps.push(Step::fail(name, "resolves to no address", DNS_REMEDY)),
            Err(e) => steps.push(Step::fail(name, e.to_string(), DNS_REMEDY)),
        }
    }
    out
}

const DNS_REMEDY: &str = "publish the service name in DNS (pointing at the instances' load \
    balancer), or give each instance's address with --instance";

async fn credential_steps(d: &Deployment, credential: &Credential) -> Vec<Step> {
    let bundle = d.bundle.clone();
    let credential = credential.clone();
    let run = tokio::task::spawn_blocking(move || match &credential {
        Credential::Certificate { chain_pem, key_pem } => {
            credential::certificate_steps(&bundle.client_auth, chain_pem, key_pem)
        }
        Credential::Token(t) => vec![credential::token_step(&bundle, t, SystemTime::now())],
    });
    run.await.unwrap_or_else(|e| {
        vec![Step::fail(
            "credential",
            format!("the check failed: {e}"),
            "",
        )]
    })
}

/// The instance's steps, and whether its server certificate is trusted (so requests
/// with the credential may go to it).
async fn instance_steps(
    d: &Deployment,
    credential: &Credential,
    roots: &[CertificateDer<'static>],
    addr: SocketAddr,
) -> (Vec<Step>, bool) {
    let service = d.bundle.service_name.as_str();
    let mut steps = Vec::new();
    let stream = match net::connect(addr).await {
        Ok(s) => {
            steps.push(Step::pass(format!("tcp {addr}"), "connected"));
            s
        }
        Err(e) => {
            steps.push(Step::fail(
                format!("tcp {addr}"),
                e.to_string(),
                "check that the instance runs and that its client port is open from here",
            ));
            return (steps, false);
        }
    };
    let cert_name = format!("server certificate {addr}");
    let cert_step = match net::server_chain(stream, service).await {
        Ok(chain) => {
            server::server_certificate_step(&cert_name, &chain, roots, service, UnixTime::now())
        }
        Err(e) => Step::fail(cert_name, format!("TLS handshake failed: {e}"), ""),
    };
    let trusted = cert_step.status != Status::Fail;
    steps.push(cert_step);
    if !trusted {
        steps.push(Step::fail(
            format!("requests via {addr}"),
            "not sent: the server certificate is not trusted",
            "fix the server certificate first",
        ));
        return (steps, false);
    }
    let anonymous = match net::client_config(roots, None) {
        Ok(c) => c,
        Err(e) => {
            steps.push(Step::fail(
                format!("requests via {addr}"),
                e.to_string(),
                "",
            ));
            return (steps, true);
        }
    };
    for (auth, prefix) in [
        (AuthKind::MutualAuth, "CCM_Proxy_MutualAuth"),
        (AuthKind::ServerAuth, "CCM_Proxy_ServerAuth"),
    ] {
        let name = format!("ServiceMetadata ({prefix}) via {addr}");
        let got = net::get(
            addr,
            service,
            anonymous.clone(),
            &format!("/{prefix}/ServiceMetadata"),
            None,
        )
        .await;
        steps.push(answer::metadata_step(&name, got, service, auth));
    }
    steps.extend(role_requests(d, credential, roots, addr).await);
    (steps, true)
}

async fn role_requests(
    d: &Deployment,
    credential: &Credential,
    roots: &[CertificateDer<'static>],
    addr: SocketAddr,
) -> Vec<Step> {
    let service = d.bundle.service_name.as_str();
    let (config, bearer, prefix) = presented(credential, roots);
    let mut steps = Vec::new();
    for role in &d.roles {
        let name = format!("{} {} via {addr}", role.kind, role.id);
        if bearer.is_some() && !role.serves_tokens {
            steps.push(Step::warn(
                name,
                "not published for token clients: the role's mode is HTTP",
                "set the role to Enhanced HTTP or HTTPS to serve token clients",
            ));
            continue;
        }
        let config = match &config {
            Ok(c) => c.clone(),
            Err(e) => {
                steps.push(Step::fail(
                    name,
                    e.to_string(),
                    "give a certificate and its matching key",
                ));
                continue;
            }
        };
        let path = format!("/{prefix}/{}{}", role.id, role.kind.probe_path());
        let got = net::get(addr, service, config, &path, bearer).await;
        steps.push(answer::role_step(&name, got, role.kind));
    }
    steps
}

/// The TLS config, bearer token and prefix a client with `credential` uses.
fn presented<'c>(
    credential: &'c Credential,
    roots: &[CertificateDer<'static>],
) -> (
    Result<Arc<ClientConfig>, NetError>,
    Option<&'c str>,
    &'static str,
) {
    match credential {
        Credential::Certificate { chain_pem, key_pem } => (
            identity(chain_pem, key_pem).and_then(|id| net::client_config(roots, Some(id))),
            None,
            "CCM_Proxy_MutualAuth",
        ),
        Credential::Token(t) => (
            net::client_config(roots, None),
            Some(t.trim()),
            "CCM_Proxy_ServerAuth",
        ),
    }
}

/// The location service step, through the first instance whose certificate is trusted.
async fn location(
    d: &Deployment,
    credential: &Credential,
    roots: &[CertificateDer<'static>],
    via: Option<SocketAddr>,
) -> Step {
    let token = matches!(credential, Credential::Token(_));
    let route = match location::location_route(&d.bundle, &d.roles, token) {
        Ok(r) => r,
        Err(warning) => return warning,
    };
    let Some(addr) = via else {
        return Step::warn(
            LOCATION,
            "not asked: no instance with a trusted server certificate was reached",
            "fix the instance steps above first",
        );
    };
    let name = format!("{LOCATION} via {addr}");
    let (config, bearer, _) = presented(credential, roots);
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            return Step::fail(
                name,
                e.to_string(),
                "give a certificate and its matching key",
            )
        }
    };
    let body = match serde_json::to_vec(&location::location_request(&d.bundle)) {
        Ok(b) => bytes::Bytes::from(b),
        Err(e) => return Step::fail(name, format!("the request: {e}"), ""),
    };
    let service = d.bundle.service_name.as_str();
    let got = net::post_json(addr, service, config, &route.path, bearer, body).await;
    location::location_step(&name, got, &d.bundle, token, SystemTime::now())
}

fn identity(
    chain_pem: &str,
    key_pem: &str,
) -> Result<
    (
        Vec<CertificateDer<'static>>,
        rustls_pki_types::PrivateKeyDer<'static>,
    ),
    NetError,
> {
    let chain = cmg_pki::pem::parse_certs(chain_pem).map_err(|e| NetError::Tls(e.to_string()))?;
    let key = cmg_pki::pem::parse_key(key_pem).map_err(|e| NetError::Tls(e.to_string()))?;
    Ok((chain, key))
}

#[cfg(test)]
mod tests;
