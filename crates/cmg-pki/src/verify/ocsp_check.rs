//! The OCSP half of a revocation check: which certificates of a verified path no
//! usable CRL covers, and what their responders say.
//!
//! A certificate counts as covered by a CRL only when an unexpired *full* CRL (no
//! issuing distribution point) of its issuer is cached: webpki then certainly checks
//! it. Everything else (no CRL, expired, only a partitioned CRL) needs a `good` OCSP
//! answer. Being stricter than webpki here costs at most an extra OCSP request; being
//! looser would let a certificate through unchecked.

use rustls_pki_types::CertificateDer;
use webpki::VerifiedPath;

use super::VerifyError;
use crate::describe::describe;
use crate::revocation::ocsp::request::OcspQuery;
use crate::revocation::ocsp::{ocsp_urls, CertStatus};
use crate::revocation::{rfc3339_unix, RevocationChecker, Snapshot};

/// One certificate below the root, with what OCSP needs about its issuer.
pub(super) struct PathCert {
    der: CertificateDer<'static>,
    serial: Vec<u8>,
    /// DER of the issuer name (a full `Name`).
    issuer_name: Vec<u8>,
    /// DER of the issuer's SubjectPublicKeyInfo.
    issuer_spki: Vec<u8>,
}

/// The leaf and the intermediates of `path`, each with its issuer.
pub(super) fn path_certs(path: &VerifiedPath<'_>) -> Vec<PathCert> {
    let mut certs: Vec<&webpki::Cert<'_>> = vec![path.end_entity()];
    certs.extend(path.intermediate_certificates());
    let anchor_spki = sequence(path.anchor().subject_public_key_info.as_ref());
    (0..certs.len())
        .map(|i| {
            let cert = certs[i];
            let issuer_spki = match certs.get(i + 1) {
                Some(issuer) => issuer.subject_public_key_info().as_ref().to_vec(),
                None => anchor_spki.clone(),
            };
            PathCert {
                der: cert.der().into_owned(),
                serial: cert.serial().to_vec(),
                issuer_name: sequence(cert.issuer()),
                issuer_spki,
            }
        })
        .collect()
}

/// Asks OCSP about every certificate of `certs` that `snapshot` does not cover.
pub(super) fn check(
    checker: &RevocationChecker,
    snapshot: &Snapshot,
    certs: Vec<PathCert>,
    now: i64,
    explain_crls: impl FnOnce() -> String,
) -> Result<(), VerifyError> {
    let mut queries = Vec::new();
    let mut subjects = Vec::new();
    for cert in certs {
        if snapshot.covers(&cert.issuer_name, now) {
            continue;
        }
        let subject = describe(&cert.der).map_or_else(|_| "<unparseable>".into(), |s| s.subject);
        let urls = ocsp_urls(cert.der.as_ref());
        if urls.is_empty() {
            return Err(VerifyError::RevocationUnknown(format!(
                "no usable CRL for {subject:?} and it names no http:// OCSP responder; {}",
                explain_crls()
            )));
        }
        let query = OcspQuery::new(cert.issuer_name, cert.issuer_spki, &cert.serial, urls)
            .map_err(|e| VerifyError::RevocationUnknown(format!("{subject:?}: {e}")))?;
        queries.push(query);
        subjects.push(subject);
    }
    for (answer, subject) in checker.ocsp_statuses(queries).into_iter().zip(subjects) {
        match answer {
            Ok(a) => match a.status {
                CertStatus::Good => {}
                CertStatus::Revoked { at } => {
                    tracing::debug!(target: "cmg_pki", %subject, revoked_at = %rfc3339_secs(at), "revoked (OCSP)");
                    return Err(VerifyError::RevokedOcsp {
                        subject,
                        at: rfc3339_secs(at),
                    });
                }
                CertStatus::Unknown => {
                    return Err(VerifyError::OcspUnknown(format!(
                        "the OCSP responder does not know {subject:?}"
                    )))
                }
            },
            Err(reason) => {
                return Err(VerifyError::OcspUnknown(format!(
                    "no usable OCSP answer for {subject:?}: {reason}"
                )))
            }
        }
    }
    Ok(())
}

fn rfc3339_secs(secs: i64) -> String {
    rfc3339_unix(rustls_pki_types::UnixTime::since_unix_epoch(
        std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0)),
    ))
}

/// `contents` wrapped in a DER SEQUENCE header.
fn sequence(contents: &[u8]) -> Vec<u8> {
    let len = contents.len();
    let mut out = vec![0x30];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

#[cfg(test)]
mod tests {
    use super::sequence;

    #[test]
    fn sequence_headers() {
        assert_eq!(sequence(&[1, 2]), vec![0x30, 2, 1, 2]);
        let long = vec![0u8; 300];
        assert_eq!(&sequence(&long)[..4], &[0x30, 0x82, 0x01, 0x2c]);
    }
}
