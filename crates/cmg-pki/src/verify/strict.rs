//! The RFC 5280 checks rustls-webpki leaves out, run on the path webpki built: what
//! IIS (CryptoAPI) and `openssl verify -x509_strict` refuse and webpki lets through.
//! docs/pki.md lists every rule, its source, and where cmg and OpenSSL still differ.
//!
//! webpki has already checked signatures, validity of the leaf and intermediates,
//! basicConstraints cA on issuers, pathLenConstraint, name constraints, EKU and
//! revocation. This module adds, per certificate of the path (root included):
//! - the trust anchor's validity period (webpki never reads it);
//! - every issuer (intermediates and the root): keyUsage present with keyCertSign;
//!   basicConstraints present, cA TRUE, marked critical;
//! - no critical extension cmg does not process (webpki ignores them on the root);
//! - the leaf: no keyCertSign;
//! - authorityKeyIdentifier (keyIdentifier) on every certificate but a self-signed
//!   root, subjectKeyIdentifier on every CA certificate;
//! - the root's pathLenConstraint (webpki never reads it), counted as RFC 5280
//!   section 6.1.4 says (`constraints::path_length`);
//! - name constraints again, by cmg's own evaluation (`constraints::names`),
//!   which also holds a subject's legacy emailAddress to rfc822Name constraints.
//!
//! And for CRLs ([`check_crl`]): a cRLNumber, non-critical. (A CRL signed by a key
//! whose keyUsage lacks cRLSign is refused by webpki itself, `IssuerNotCrlSigner`; an
//! issuer without keyUsage is refused here, by the issuer rule.)
//!
//! It does not build paths or check signatures; it never accepts what webpki refused.

use std::fmt;

use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::{
    Oid, OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER, OID_X509_EXT_BASIC_CONSTRAINTS,
    OID_X509_EXT_CRL_DISTRIBUTION_POINTS, OID_X509_EXT_CRL_NUMBER, OID_X509_EXT_EXTENDED_KEY_USAGE,
    OID_X509_EXT_KEY_USAGE, OID_X509_EXT_NAME_CONSTRAINTS, OID_X509_EXT_SUBJECT_ALT_NAME,
    OID_X509_EXT_SUBJECT_KEY_IDENTIFIER,
};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

/// One RFC 5280 rule a certificate of the chain breaks. [`Rule::code`] is stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The trust anchor is past its notAfter.
    AnchorExpired,
    /// The trust anchor is before its notBefore.
    AnchorNotYetValid,
    /// An issuer without keyUsage, or whose keyUsage lacks keyCertSign (§4.2.1.3).
    IssuerNotCertSigner,
    /// A CA certificate without basicConstraints cA TRUE (§4.2.1.9).
    CaWithoutBasicConstraints,
    /// A CA certificate whose basicConstraints is not critical (§4.2.1.9).
    CaBasicConstraintsNotCritical,
    /// A critical extension cmg does not process (§4.2).
    UnknownCriticalExtension,
    /// An end-entity certificate asserting keyCertSign (§4.2.1.3, §4.2.1.9).
    LeafCertSigner,
    /// No authorityKeyIdentifier keyIdentifier on a certificate that is not a
    /// self-signed root (§4.2.1.1).
    MissingAuthorityKeyId,
    /// No subjectKeyIdentifier on a CA certificate (§4.2.1.2).
    MissingSubjectKeyId,
    /// x509-parser cannot read a certificate (or one of its extensions) that webpki
    /// accepted, so the rules above cannot be checked: refused.
    Unreadable,
    /// More non-self-issued intermediates below a CA than its pathLenConstraint
    /// allows (§6.1.4 (l), (m); the root's constraint included).
    PathLength,
    /// A name outside a CA's permitted subtrees or inside its excluded ones
    /// (§4.2.1.10), as cmg's own check evaluates them (`verify::constraints`).
    NameConstraints,
}

impl Rule {
    /// Stable snake-case code (logs, `cmg cert verify --json`).
    pub fn code(self) -> &'static str {
        match self {
            Self::AnchorExpired => "anchor_expired",
            Self::AnchorNotYetValid => "anchor_not_yet_valid",
            Self::IssuerNotCertSigner => "issuer_not_cert_signer",
            Self::CaWithoutBasicConstraints => "ca_without_basic_constraints",
            Self::CaBasicConstraintsNotCritical => "ca_basic_constraints_not_critical",
            Self::UnknownCriticalExtension => "unknown_critical_extension",
            Self::LeafCertSigner => "leaf_cert_signer",
            Self::MissingAuthorityKeyId => "missing_authority_key_id",
            Self::MissingSubjectKeyId => "missing_subject_key_id",
            Self::Unreadable => "unreadable_certificate",
            Self::PathLength => "path_length_exceeded",
            Self::NameConstraints => "name_constraint_violation",
        }
    }

    /// Whether the rule is about time (the anchor's validity period).
    pub fn is_time(self) -> bool {
        matches!(self, Self::AnchorExpired | Self::AnchorNotYetValid)
    }

    fn text(self) -> &'static str {
        match self {
            Self::AnchorExpired => "the trust anchor has expired",
            Self::AnchorNotYetValid => "the trust anchor is not valid yet",
            Self::IssuerNotCertSigner => {
                "issuer without keyUsage keyCertSign (RFC 5280 section 4.2.1.3)"
            }
            Self::CaWithoutBasicConstraints => {
                "CA certificate without basicConstraints cA=TRUE (RFC 5280 section 4.2.1.9)"
            }
            Self::CaBasicConstraintsNotCritical => {
                "CA certificate with non-critical basicConstraints (RFC 5280 section 4.2.1.9)"
            }
            Self::UnknownCriticalExtension => {
                "unprocessed critical extension (RFC 5280 section 4.2)"
            }
            Self::LeafCertSigner => {
                "end-entity certificate asserting keyCertSign (RFC 5280 section 4.2.1.3)"
            }
            Self::MissingAuthorityKeyId => {
                "no authorityKeyIdentifier keyIdentifier (RFC 5280 section 4.2.1.1)"
            }
            Self::MissingSubjectKeyId => {
                "CA certificate without subjectKeyIdentifier (RFC 5280 section 4.2.1.2)"
            }
            Self::Unreadable => "certificate or extension cmg cannot read for its RFC 5280 checks",
            Self::PathLength => {
                "too many CA certificates below a pathLenConstraint (RFC 5280 section 6.1.4)"
            }
            Self::NameConstraints => {
                "name outside a CA's name constraints (RFC 5280 section 4.2.1.10)"
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// A certificate of a verified path broke a [`Rule`]: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which certificate: `leaf`, `intermediate N` (1 = the leaf's issuer) or `root`,
    /// with its subject.
    pub certificate: String,
    pub rule: Rule,
    /// The detail (an OID, a time).
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.certificate, self.rule)?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

/// The extensions cmg (through webpki and this module) processes; any other one
/// marked critical refuses the certificate.
const PROCESSED: [&Oid<'static>; 8] = [
    &OID_X509_EXT_BASIC_CONSTRAINTS,
    &OID_X509_EXT_KEY_USAGE,
    &OID_X509_EXT_EXTENDED_KEY_USAGE,
    &OID_X509_EXT_SUBJECT_ALT_NAME,
    &OID_X509_EXT_NAME_CONSTRAINTS,
    &OID_X509_EXT_CRL_DISTRIBUTION_POINTS,
    &OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER,
    &OID_X509_EXT_SUBJECT_KEY_IDENTIFIER,
];

/// Where a certificate sits in the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Leaf,
    Intermediate(usize),
    Root,
}

/// Checks a path webpki accepted: `leaf`, then `intermediates` from the leaf's issuer
/// up, then the `root` certificate the anchor came from, at Unix time `now`.
pub(crate) fn check_path(
    leaf: &[u8],
    intermediates: &[&[u8]],
    root: &[u8],
    now: i64,
) -> Result<(), Violation> {
    check_cert(leaf, Place::Leaf, now)?;
    for (i, der) in intermediates.iter().enumerate() {
        check_cert(der, Place::Intermediate(i + 1), now)?;
    }
    check_cert(root, Place::Root, now)?;
    // Every certificate parsed above. webpki has counted pathLenConstraint below the
    // root, but never reads the root's own; it has evaluated name constraints, but not
    // against a subject's legacy emailAddress attributes.
    let path: Vec<X509Certificate<'_>> = std::iter::once(leaf)
        .chain(intermediates.iter().copied())
        .chain(std::iter::once(root))
        .filter_map(|der| X509Certificate::from_der(der).ok().map(|(_, c)| c))
        .collect();
    super::constraints::path_length(&path)?;
    super::constraints::names(&path)
}

/// The unknown-critical-extension rule alone, on a leaf webpki would not even parse
/// (`UnsupportedCriticalExtension`), so that the refusal names it and the OID.
pub(crate) fn unknown_critical(leaf: &[u8]) -> Result<(), Violation> {
    let (_, cert) = X509Certificate::from_der(leaf).map_err(|e| Violation {
        certificate: name(Place::Leaf, "<unparseable>"),
        rule: Rule::Unreadable,
        detail: e.to_string(),
    })?;
    critical_extensions(&cert, Place::Leaf)
}

fn critical_extensions(cert: &X509Certificate<'_>, place: Place) -> Result<(), Violation> {
    match cert
        .extensions()
        .iter()
        .find(|ext| ext.critical && !PROCESSED.contains(&&ext.oid))
    {
        Some(ext) => Err(Violation {
            certificate: name(place, &cert.subject().to_string()),
            rule: Rule::UnknownCriticalExtension,
            detail: ext.oid.to_id_string(),
        }),
        None => Ok(()),
    }
}

fn check_cert(der: &[u8], place: Place, now: i64) -> Result<(), Violation> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| Violation {
        certificate: name(place, "<unparseable>"),
        rule: Rule::Unreadable,
        detail: e.to_string(),
    })?;
    let fail = |rule: Rule, detail: String| Violation {
        certificate: name(place, &cert.subject().to_string()),
        rule,
        detail,
    };
    if place == Place::Root {
        let validity = cert.validity();
        if now > validity.not_after.timestamp() {
            return Err(fail(
                Rule::AnchorExpired,
                format!("notAfter {}", validity.not_after),
            ));
        }
        if now < validity.not_before.timestamp() {
            return Err(fail(
                Rule::AnchorNotYetValid,
                format!("notBefore {}", validity.not_before),
            ));
        }
    }
    critical_extensions(&cert, place)?;
    let key_cert_sign = match cert.key_usage() {
        Ok(ku) => ku.map(|ku| ku.value.key_cert_sign()),
        Err(e) => return Err(fail(Rule::Unreadable, format!("keyUsage: {e}"))),
    };
    let bc = cert
        .basic_constraints()
        .map_err(|e| fail(Rule::Unreadable, format!("basicConstraints: {e}")))?;
    let has = |wanted: fn(&ParsedExtension<'_>) -> bool| {
        cert.extensions()
            .iter()
            .any(|e| wanted(e.parsed_extension()))
    };
    let has_ski = has(|e| matches!(e, ParsedExtension::SubjectKeyIdentifier(_)));
    let has_aki = has(
        |e| matches!(e, ParsedExtension::AuthorityKeyIdentifier(aki) if aki.key_identifier.is_some()),
    );
    match place {
        Place::Leaf => {
            if key_cert_sign == Some(true) {
                return Err(fail(Rule::LeafCertSigner, String::new()));
            }
        }
        Place::Intermediate(_) | Place::Root => {
            match bc {
                Some(bc) if bc.value.ca && !bc.critical => {
                    return Err(fail(Rule::CaBasicConstraintsNotCritical, String::new()))
                }
                Some(bc) if bc.value.ca => {}
                _ => return Err(fail(Rule::CaWithoutBasicConstraints, String::new())),
            }
            if key_cert_sign != Some(true) {
                let detail = if key_cert_sign.is_none() {
                    "no keyUsage extension"
                } else {
                    "keyUsage without keyCertSign"
                };
                return Err(fail(Rule::IssuerNotCertSigner, detail.into()));
            }
            if !has_ski {
                return Err(fail(Rule::MissingSubjectKeyId, String::new()));
            }
        }
    }
    // The one exception is a CA's self-signed certificate (a root); a self-issued
    // intermediate (key rollover) still carries the key identifier of its signer.
    let self_signed_root =
        place == Place::Root && cert.subject().as_raw() == cert.issuer().as_raw();
    if !self_signed_root && !has_aki {
        return Err(fail(Rule::MissingAuthorityKeyId, String::new()));
    }
    Ok(())
}

pub(crate) fn name(place: Place, subject: &str) -> String {
    match place {
        Place::Leaf => format!("leaf {subject:?}"),
        Place::Intermediate(n) => format!("intermediate {n} {subject:?}"),
        Place::Root => format!("root {subject:?}"),
    }
}

/// Checks a CRL before it is used: a cRLNumber extension, marked non-critical
/// (RFC 5280 section 5.2.3: conforming CRL issuers MUST include it, and mark it
/// non-critical). The reason names the rule.
pub fn check_crl(der: &[u8]) -> Result<(), String> {
    let (_, crl) = CertificateRevocationList::from_der(der).map_err(|e| e.to_string())?;
    let number = crl
        .extensions()
        .iter()
        .find(|e| e.oid == OID_X509_EXT_CRL_NUMBER);
    match number {
        None => Err("CRL without cRLNumber (RFC 5280 section 5.2.3)".into()),
        Some(ext) if ext.critical => {
            Err("CRL with a critical cRLNumber (RFC 5280 section 5.2.3)".into())
        }
        Some(_) => Ok(()),
    }
}
