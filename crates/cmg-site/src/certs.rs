//! Checks on the certificates an administrator uploads: the gateway's server certificate
//! and key (the service name comes from it, seed 004), and trusted root and intermediate
//! CA certificates.

use std::sync::Arc;

use cmg_pki::describe::{describe, CertSummary};
use cmg_pki::pem::{parse_certs, parse_key};
use rustls::sign::CertifiedKey;

use crate::keys::to_pem;
use crate::store::StoreError;

/// A checked server certificate chain (leaf first) with its key.
#[derive(Debug)]
pub struct ServerCert {
    pub chain_pem: String,
    pub leaf: CertSummary,
    /// The names the certificate is valid for (DNS SANs; the subject CN when there are none).
    pub names: Vec<String>,
}

fn invalid(code: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        code,
        message: message.into(),
    }
}

/// Parses a PEM chain and key, checks that they belong together and that the leaf is a
/// server certificate valid now.
pub fn server_cert(chain_pem: &str, key_pem: &str, now: i64) -> Result<ServerCert, StoreError> {
    let certs = parse_certs(chain_pem)
        .map_err(|e| invalid("bad_certificate", format!("server certificate: {e}")))?;
    let Some(first) = certs.first() else {
        return Err(invalid("bad_certificate", "no certificate in the PEM text"));
    };
    let key = parse_key(key_pem).map_err(|e| invalid("bad_key", format!("server key: {e}")))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| invalid("bad_key", format!("server key: {e}")))?;
    CertifiedKey::new(certs.clone(), Arc::clone(&signing))
        .keys_match()
        .map_err(|_| invalid("key_mismatch", "the key does not belong to the certificate"))?;
    let leaf = describe(first).map_err(|e| invalid("bad_certificate", e.to_string()))?;
    if leaf.not_after < now {
        return Err(invalid(
            "certificate_expired",
            "the server certificate has expired",
        ));
    }
    if !leaf.ekus.is_empty() && !leaf.ekus.iter().any(|e| e == "server_auth" || e == "any") {
        return Err(invalid(
            "wrong_key_usage",
            "the certificate is not for server authentication",
        ));
    }
    let mut names = leaf.dns_names.clone();
    if names.is_empty() {
        if let Some(cn) = leaf.subject.split(", ").find_map(|p| p.strip_prefix("CN=")) {
            names.push(cn.to_owned());
        }
    }
    if names.is_empty() {
        return Err(invalid("no_service_name", "the certificate names no host"));
    }
    let chain_pem = certs
        .iter()
        .map(|c| to_pem("CERTIFICATE", c.as_ref()))
        .collect();
    Ok(ServerCert {
        chain_pem,
        leaf,
        names,
    })
}

/// The service FQDN for a certificate (seed 004: "The name from this certificate populates
/// the required Service FQDN"; "If you use a wildcard certificate, replace the asterisk
/// (`*`) in the Service FQDN field with the desired hostname").
///
/// Without `requested`, the first name, which must not be a wildcard. With it, it must be
/// one of the names or fill a wildcard name's `*` with one label.
pub fn service_name(cert: &ServerCert, requested: Option<&str>) -> Result<String, StoreError> {
    match requested {
        None => {
            let first = &cert.names[0];
            if let Some(domain) = first.strip_prefix("*.") {
                return Err(invalid(
                    "service_name_required",
                    format!(
                        "the certificate is a wildcard ({first}): give service_name as <host>.{domain}"
                    ),
                ));
            }
            Ok(first.to_ascii_lowercase())
        }
        Some(req) => {
            let req = req.trim().to_ascii_lowercase();
            let ok = cert.names.iter().any(|n| {
                let n = n.to_ascii_lowercase();
                match n.strip_prefix("*.") {
                    Some(domain) => req.split_once('.').is_some_and(|(label, rest)| {
                        rest == domain
                            && !label.is_empty()
                            && label
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    }),
                    None => n == req,
                }
            });
            if !ok {
                return Err(invalid(
                    "service_name_mismatch",
                    format!(
                        "service name {req:?} is not covered by the certificate (names: {})",
                        cert.names.join(", ")
                    ),
                ));
            }
            Ok(req)
        }
    }
}

/// Splits PEM texts into one PEM per certificate, checking that each is a CA certificate.
pub fn ca_certs(field: &'static str, pems: &[String]) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for (i, text) in pems.iter().enumerate() {
        let certs = parse_certs(text)
            .map_err(|e| invalid("bad_certificate", format!("{field}[{i}]: {e}")))?;
        if certs.is_empty() {
            return Err(invalid(
                "bad_certificate",
                format!("{field}[{i}]: no certificate"),
            ));
        }
        for c in certs {
            let summary = describe(&c)
                .map_err(|e| invalid("bad_certificate", format!("{field}[{i}]: {e}")))?;
            if !summary.is_ca {
                return Err(invalid(
                    "not_a_ca",
                    format!("{field}[{i}]: {} is not a CA certificate", summary.subject),
                ));
            }
            let pem = to_pem("CERTIFICATE", c.as_ref());
            if !out.contains(&pem) {
                out.push(pem);
            }
        }
    }
    Ok(out)
}

/// Checks a trust list: SHA-256 fingerprints, 64 hex digits each (lower-cased).
pub fn trust_list(list: &[String]) -> Result<Vec<String>, StoreError> {
    list.iter()
        .map(|f| {
            let f = f.trim().to_ascii_lowercase().replace(':', "");
            if f.len() == 64 && f.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(f)
            } else {
                Err(invalid(
                    "bad_trust_list",
                    format!("{f:?} is not a SHA-256 fingerprint"),
                ))
            }
        })
        .collect()
}
