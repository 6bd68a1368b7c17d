//! What a certificate says about itself: a serialisable summary for logs and the
//! `cmg cert verify` output, and the connection point identity carried in a URI SAN.
//!
//! Nothing here checks trust; see [`verify_chain`](crate::verify::verify_chain).

use cmg_proto::channel::CONNECTOR_URI_PREFIX;
use cmg_proto::{ConnectorId, SiteCode};
use rustls_pki_types::CertificateDer;
use serde::Serialize;
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use crate::error::PkiError;

/// The fields of a certificate an operator needs to recognise it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertSummary {
    /// Subject DN, e.g. `CN=client1.demo, O=cmg demo`.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial number, lowercase hex.
    pub serial_hex: String,
    /// SHA-256 of the DER encoding (the "thumbprint"), lowercase hex.
    pub sha256_hex: String,
    /// notBefore, seconds since the Unix epoch.
    pub not_before: i64,
    /// notAfter, seconds since the Unix epoch.
    pub not_after: i64,
    /// DNS names from the subject alternative names.
    pub dns_names: Vec<String>,
    /// URIs from the subject alternative names.
    pub uris: Vec<String>,
    /// IP addresses from the subject alternative names.
    pub ip_addresses: Vec<String>,
    /// Extended key usages: `server_auth`, `client_auth`, `any`, other well-known
    /// names, or a dotted OID. Empty when the certificate has no EKU extension.
    pub ekus: Vec<String>,
    /// Whether the certificate is a CA (basicConstraints cA).
    pub is_ca: bool,
}

pub(crate) fn parse<'a>(cert: &'a CertificateDer<'_>) -> Result<X509Certificate<'a>, PkiError> {
    let (rest, parsed) =
        x509_parser::parse_x509_certificate(cert).map_err(|e| PkiError::Parse(e.to_string()))?;
    if !rest.is_empty() {
        return Err(PkiError::Parse("trailing data after certificate".into()));
    }
    Ok(parsed)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ip_string(raw: &[u8]) -> String {
    match raw.len() {
        4 => {
            let octets: [u8; 4] = [raw[0], raw[1], raw[2], raw[3]];
            std::net::Ipv4Addr::from(octets).to_string()
        }
        16 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(raw);
            std::net::Ipv6Addr::from(octets).to_string()
        }
        _ => format!("invalid:{}", hex(raw)),
    }
}

fn eku_names(x509: &X509Certificate<'_>) -> Result<Vec<String>, PkiError> {
    let Some(ext) = x509
        .extended_key_usage()
        .map_err(|e| PkiError::Parse(format!("extended key usage: {e}")))?
    else {
        return Ok(Vec::new());
    };
    let eku = ext.value;
    let known = [
        (eku.server_auth, "server_auth"),
        (eku.client_auth, "client_auth"),
        (eku.any, "any"),
        (eku.code_signing, "code_signing"),
        (eku.email_protection, "email_protection"),
        (eku.time_stamping, "time_stamping"),
        (eku.ocsp_signing, "ocsp_signing"),
    ];
    let mut names: Vec<String> = known
        .iter()
        .filter(|(present, _)| *present)
        .map(|(_, name)| (*name).to_owned())
        .collect();
    names.extend(eku.other.iter().map(|oid| oid.to_id_string()));
    Ok(names)
}

/// Summarises a certificate. Fails only when it cannot be parsed.
pub fn describe(cert: &CertificateDer<'_>) -> Result<CertSummary, PkiError> {
    let x509 = parse(cert)?;
    let mut summary = CertSummary {
        subject: x509.subject().to_string(),
        issuer: x509.issuer().to_string(),
        serial_hex: hex(x509.raw_serial()),
        sha256_hex: hex(&Sha256::digest(cert.as_ref())),
        not_before: x509.validity().not_before.timestamp(),
        not_after: x509.validity().not_after.timestamp(),
        dns_names: Vec::new(),
        uris: Vec::new(),
        ip_addresses: Vec::new(),
        ekus: eku_names(&x509)?,
        is_ca: x509.is_ca(),
    };
    let san = x509
        .subject_alternative_name()
        .map_err(|e| PkiError::Parse(format!("subject alternative name: {e}")))?;
    if let Some(san) = san {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => summary.dns_names.push((*dns).to_owned()),
                GeneralName::URI(uri) => summary.uris.push((*uri).to_owned()),
                GeneralName::IPAddress(raw) => summary.ip_addresses.push(ip_string(raw)),
                _ => {}
            }
        }
    }
    Ok(summary)
}

/// Parses `urn:cmg:connection-point:<site>:<id>` into its parts.
pub fn parse_connector_uri(uri: &str) -> Result<(SiteCode, ConnectorId), PkiError> {
    let bad = |reason: String| PkiError::ConnectorIdentity(format!("{uri:?}: {reason}"));
    let rest = uri
        .strip_prefix(CONNECTOR_URI_PREFIX)
        .ok_or_else(|| bad(format!("does not start with {CONNECTOR_URI_PREFIX}")))?;
    let (site, id) = rest
        .split_once(':')
        .ok_or_else(|| bad("expected <site>:<connection point id>".into()))?;
    let site = SiteCode::new(site).map_err(|e| bad(e.to_string()))?;
    let id = ConnectorId::new(id).map_err(|e| bad(e.to_string()))?;
    Ok((site, id))
}

/// The site and connection point a certificate names: its one URI SAN of the form
/// `urn:cmg:connection-point:<site>:<id>`. None, several, or a malformed one is an
/// error. This reads the certificate only; verify its chain first.
pub fn connector_identity(cert: &CertificateDer<'_>) -> Result<(SiteCode, ConnectorId), PkiError> {
    let summary = describe(cert)?;
    let mut found = summary
        .uris
        .iter()
        .filter(|uri| uri.starts_with(CONNECTOR_URI_PREFIX));
    let first = found.next().ok_or_else(|| {
        PkiError::ConnectorIdentity(format!(
            "certificate {:?} has no {CONNECTOR_URI_PREFIX}<site>:<id> URI SAN",
            summary.subject
        ))
    })?;
    if found.next().is_some() {
        return Err(PkiError::ConnectorIdentity(format!(
            "certificate {:?} names more than one connection point",
            summary.subject
        )));
    }
    parse_connector_uri(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connector_uri_parses() {
        let (site, id) = parse_connector_uri("urn:cmg:connection-point:PS1:cp-1").expect("parse");
        assert_eq!(site.as_str(), "PS1");
        assert_eq!(id.as_str(), "cp-1");
    }

    #[test]
    fn connector_uri_rejects_bad_shapes() {
        for uri in [
            "urn:cmg:connection-point:PS1",
            "urn:cmg:connection-point::cp1",
            "urn:cmg:connection-point:PS1:",
            "urn:cmg:connection-point:PS1:cp1:extra",
            "urn:cmg:connection-point:P S1:cp1",
            "urn:other:PS1:cp1",
        ] {
            assert!(parse_connector_uri(uri).is_err(), "{uri}");
        }
    }

    #[test]
    fn ip_addresses_render() {
        assert_eq!(ip_string(&[127, 0, 0, 1]), "127.0.0.1");
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(ip_string(&v6), "::1");
        assert_eq!(ip_string(&[1, 2]), "invalid:0102");
    }

    #[test]
    fn garbage_is_a_parse_error() {
        let junk = CertificateDer::from(vec![1, 2, 3]);
        assert!(matches!(describe(&junk), Err(PkiError::Parse(_))));
        assert!(connector_identity(&junk).is_err());
    }
}
