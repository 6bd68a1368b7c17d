//! The server certificate an instance presents: checked with `cmg_pki::verify_chain`
//! for server authentication under the service name, against the root the site hands
//! connection points (the last certificate of the gateway's chain).

use cmg_pki::describe::describe;
use cmg_pki::trust::TrustStore;
use cmg_pki::verify::{verify_chain, Purpose, VerifyOptions};
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::report::Step;

/// A certificate expiring within this many days is a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// The roots the analyzer trusts for the instances: the last certificate of the
/// gateway's chain, as a connection point does.
pub fn roots_from_chain(chain_pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = cmg_pki::pem::parse_certs(chain_pem).map_err(|e| e.to_string())?;
    chain
        .last()
        .map(|root| vec![root.clone()])
        .ok_or_else(|| "the gateway's certificate chain is empty".to_owned())
}

/// The step for the chain an instance sent.
pub fn server_certificate_step(
    name: &str,
    chain: &[CertificateDer<'static>],
    roots: &[CertificateDer<'static>],
    service_name: &str,
    now: UnixTime,
) -> Step {
    let Some((leaf, presented)) = chain.split_first() else {
        return Step::fail(name, "the instance sent no certificate", "");
    };
    let store = match TrustStore::new(roots.to_vec(), Vec::new()) {
        Ok(s) => s,
        Err(e) => return Step::fail(name, format!("the gateway's root: {e}"), ""),
    };
    let opts = VerifyOptions {
        purpose: Purpose::Server,
        now,
        dns_name: Some(service_name),
    };
    let subject = describe(leaf)
        .map(|d| d.subject)
        .unwrap_or_else(|_| "?".into());
    match verify_chain(&store, leaf, presented, &opts) {
        Ok(summary) => {
            let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
            let days = (summary.not_after - now_secs) / 86_400;
            let detail = format!(
                "{subject:?} chains to the gateway's root, is valid for {service_name}, \
                 expires in {days} days"
            );
            if days < EXPIRY_WARNING_DAYS {
                Step::warn(
                    name,
                    detail,
                    "renew the server certificate and update the gateway \
                     (cmg site gateway modify --cert --key), then redeploy the instances",
                )
            } else {
                Step::pass(name, detail)
            }
        }
        Err(e) => {
            let remedy = match e.code() {
                "name_mismatch" => {
                    "the certificate does not name the service: reach the instance under the \
                     service name, or issue a certificate for it"
                }
                "expired" | "not_yet_valid" => {
                    "renew the server certificate (cmg site gateway modify --cert --key) and \
                     redeploy the instances"
                }
                _ => {
                    "the instance serves a certificate other than the gateway's on record: \
                     redeploy it with the site's export"
                }
            };
            Step::fail(name, format!("{subject:?}: {e} ({})", e.code()), remedy)
        }
    }
}
