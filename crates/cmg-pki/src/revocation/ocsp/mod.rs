//! OCSP (RFC 6960) for certificates that have an OCSP responder and no usable CRL.
//!
//! The revocation check asks a responder only after CRLs failed to give a status (see
//! [`crate::verify`]), and only for certificates of a chain that already verifies to a
//! trusted root, so a client cannot make the gateway post to arbitrary URLs.
//!
//! * [`request`] builds the `CertID` (SHA-1 of the issuer's name and key, the serial)
//!   and a DER `OCSPRequest` with a random nonce.
//! * [`response`] decodes and checks the answer: `successful`, a basic response signed
//!   by the issuing CA itself or by a delegated responder certificate that the CA
//!   issued with the `id-kp-OCSPSigning` extended key usage, a `SingleResponse` for our
//!   `CertID`, `thisUpdate`/`nextUpdate` valid now within [`CLOCK_SKEW`], and the
//!   nonce echoed when the responder echoes one.
//! * [`cache`] keeps the last good answer per `CertID` until its `nextUpdate`, with
//!   the state of the fetches (one in flight per `CertID`, a failed one retried at most
//!   every `retry_after`), like the CRL cache; with a cache directory the DER answers
//!   are kept in its `ocsp/` and checked again when first needed after a restart.
//!
//! The ASN.1 types are RustCrypto's `x509-ocsp` (0.2), used for encoding and decoding
//! only: that crate does not check signatures or responder authority (its verifying
//! support was not ready), so the signatures are checked here with rustls-webpki's
//! signature algorithms, the same ones that verify the certificate chains.
//!
//! Fail closed: an unknown status, an unreachable responder, a bad signature, a stale
//! or mismatched answer all leave the status unknown, which refuses the certificate.

pub mod cache;
pub mod request;
pub mod response;

use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_OCSP;
use x509_parser::prelude::{FromDer, X509Certificate};

use cmg_core::fetch::parse_http_url;

/// Allowed difference between our clock and the responder's for `thisUpdate` and
/// `nextUpdate`.
pub const CLOCK_SKEW: i64 = 300;

/// How long an answer without `nextUpdate` (the responder says newer information is
/// always available) is used after its `thisUpdate`.
pub const NO_NEXT_UPDATE_VALIDITY: i64 = 300;

/// What the responder said about one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    /// Revoked at this Unix time.
    Revoked {
        at: i64,
    },
    /// The responder does not know the certificate.
    Unknown,
}

/// A verified answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspAnswer {
    pub status: CertStatus,
    /// Unix seconds.
    pub this_update: i64,
    /// When the answer stops being usable (its `nextUpdate`, or `thisUpdate` +
    /// [`NO_NEXT_UPDATE_VALIDITY`]), Unix seconds.
    pub valid_until: i64,
}

impl OcspAnswer {
    pub fn is_usable_at(&self, now: i64) -> bool {
        now < self.valid_until + CLOCK_SKEW
    }

    /// When to ask again: three quarters into the validity, like CRLs.
    pub fn refresh_at(&self) -> i64 {
        let span = (self.valid_until - self.this_update).max(0);
        self.this_update + span / 4 * 3
    }
}

/// Why an OCSP answer cannot be used; the text goes into the rejection and the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    #[error("cannot build the OCSP request: {0}")]
    Request(String),
    #[error("malformed OCSP response: {0}")]
    Malformed(String),
    #[error("OCSP responder answered {0}")]
    NotSuccessful(&'static str),
    #[error("OCSP response type is not id-pkix-ocsp-basic")]
    NotBasic,
    #[error(
        "OCSP response signature does not verify against the issuer or an authorized responder"
    )]
    BadSignature,
    #[error("OCSP response does not cover the certificate (no matching CertID)")]
    NoMatchingCertId,
    #[error("OCSP response not valid yet (thisUpdate {0})")]
    NotYetValid(String),
    #[error("OCSP response expired (nextUpdate {0})")]
    Expired(String),
    #[error("OCSP response nonce does not match the request")]
    NonceMismatch,
}

/// The `http://` OCSP responder URLs in a certificate's Authority Information Access
/// extension. Unparseable input gives none.
pub fn ocsp_urls(cert: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(cert) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for ext in cert.extensions() {
        let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() else {
            continue;
        };
        for desc in &aia.accessdescs {
            if desc.access_method != OID_PKIX_ACCESS_DESCRIPTOR_OCSP {
                continue;
            }
            if let GeneralName::URI(uri) = &desc.access_location {
                if parse_http_url(uri).is_ok() && !out.iter().any(|u| u == uri) {
                    out.push((*uri).to_owned());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
