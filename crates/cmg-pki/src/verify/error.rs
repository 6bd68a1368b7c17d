//! Why a certificate chain was refused, with a stable code for logs and scripts and
//! the matching rustls error for the TLS alert.

use std::sync::Arc;

use rustls::CertificateError;
use rustls_pki_types::UnixTime;

use super::strict::Rule;
use super::Purpose;

/// A certificate chain failed validation.
///
/// [`VerifyError::code`] is stable (logs, metrics and `cmg cert verify` print it);
/// `Display` is the human reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A certificate in the chain is past its notAfter.
    #[error("certificate expired at {} (checked at {})", rfc3339(*not_after), rfc3339(*now))]
    Expired { not_after: UnixTime, now: UnixTime },
    /// A certificate in the chain is before its notBefore.
    #[error("certificate not valid before {} (checked at {})", rfc3339(*not_before), rfc3339(*now))]
    NotYetValid { not_before: UnixTime, now: UnixTime },
    /// No path leads from the certificate to a trusted root.
    #[error("certificate does not chain to a trusted root")]
    UnknownIssuer,
    /// A signature in the chain does not verify, or uses an unsupported algorithm.
    #[error("bad signature in certificate chain: {0}")]
    BadSignature(String),
    /// The certificate (or an issuer) lacks the extended key usage the purpose needs.
    #[error(
        "certificate is not valid for {purpose} authentication (extended key usages: {present})"
    )]
    WrongEku { purpose: Purpose, present: String },
    /// The certificate, or one of its issuers, is listed on its issuer's CRL.
    #[error("certificate has been revoked")]
    Revoked,
    /// Revocation is checked and the status of a certificate in the chain cannot be
    /// determined (no CRL obtainable, CRL expired, bad CRL signature): refused.
    #[error("revocation status unknown: {0}")]
    RevocationUnknown(String),
    /// The certificate's OCSP responder says it is revoked.
    #[error("certificate {subject:?} has been revoked (OCSP, at {at})")]
    RevokedOcsp { subject: String, at: String },
    /// A certificate needed OCSP (no usable CRL) and no usable `good` answer was
    /// obtained: the responder says unknown, cannot be reached, or its answer does not
    /// verify (signature, responder authority, times, CertID, nonce): refused.
    #[error("revocation status unknown: {0}")]
    OcspUnknown(String),
    /// The certificate does not name the expected DNS name or IP address.
    #[error("certificate is not valid for name {name:?}")]
    NameMismatch { name: String },
    /// A certificate (or the requested name) cannot be parsed.
    #[error("malformed certificate: {0}")]
    BadEncoding(String),
    /// A certificate of the path breaks an RFC 5280 rule webpki does not check
    /// ([`strict`](super::strict)): the violation names the certificate and the rule.
    #[error("certificate chain breaks RFC 5280: {0}")]
    Policy(super::strict::Violation),
    /// Any other validation failure (CA used as a leaf, path length, name constraints...).
    #[error("{0}")]
    Other(String),
}

use crate::revocation::rfc3339_unix as rfc3339;

impl VerifyError {
    /// Stable snake-case code: `expired`, `not_yet_valid`, `unknown_issuer`,
    /// `bad_signature`, `wrong_eku`, `revoked`, `revocation_unknown`, `ocsp_revoked`,
    /// `ocsp_unknown`, `name_mismatch`, `bad_encoding`, `other`, and for a
    /// [`Policy`](Self::Policy) refusal its rule's code ([`super::strict::Rule::code`]).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::UnknownIssuer => "unknown_issuer",
            Self::BadSignature(_) => "bad_signature",
            Self::WrongEku { .. } => "wrong_eku",
            Self::Revoked => "revoked",
            Self::RevocationUnknown(_) => "revocation_unknown",
            Self::RevokedOcsp { .. } => "ocsp_revoked",
            Self::OcspUnknown(_) => "ocsp_unknown",
            Self::NameMismatch { .. } => "name_mismatch",
            Self::BadEncoding(_) => "bad_encoding",
            Self::Policy(v) => v.rule.code(),
            Self::Other(_) => "other",
        }
    }

    /// Which check failed, for machine-readable output: `time`, `chain`, `usage`,
    /// `revocation`, `name` or `encoding`.
    pub fn check(&self) -> &'static str {
        match self {
            Self::Expired { .. } | Self::NotYetValid { .. } => "time",
            Self::Policy(v) if v.rule.is_time() => "time",
            Self::Policy(_) => "chain",
            Self::UnknownIssuer | Self::BadSignature(_) | Self::Other(_) => "chain",
            Self::WrongEku { .. } => "usage",
            Self::Revoked
            | Self::RevocationUnknown(_)
            | Self::RevokedOcsp { .. }
            | Self::OcspUnknown(_) => "revocation",
            Self::NameMismatch { .. } => "name",
            Self::BadEncoding(_) => "encoding",
        }
    }

    /// The gateway's log reason code (`CMGService_...`, in the style of the
    /// product's `CMGService_Invalid_Token`).
    pub fn service_code(&self) -> &'static str {
        match self {
            Self::Revoked | Self::RevokedOcsp { .. } => "CMGService_Revocation_Revoked",
            Self::RevocationUnknown(_) | Self::OcspUnknown(_) => "CMGService_Revocation_Unknown",
            Self::Expired { .. } | Self::NotYetValid { .. } => "CMGService_Certificate_Time",
            Self::Policy(v) if v.rule.is_time() => "CMGService_Certificate_Time",
            Self::WrongEku { .. } => "CMGService_Certificate_Usage",
            _ => "CMGService_Certificate_Untrusted",
        }
    }

    /// The rustls error a TLS verifier returns, which picks the alert sent to the peer.
    pub fn to_rustls(&self) -> rustls::Error {
        let cert_error = match self {
            Self::Expired { .. } => CertificateError::Expired,
            Self::NotYetValid { .. } => CertificateError::NotValidYet,
            Self::UnknownIssuer => CertificateError::UnknownIssuer,
            Self::BadSignature(_) => CertificateError::BadSignature,
            Self::WrongEku { .. } => CertificateError::InvalidPurpose,
            Self::Revoked | Self::RevokedOcsp { .. } => CertificateError::Revoked,
            Self::RevocationUnknown(_) | Self::OcspUnknown(_) => {
                CertificateError::UnknownRevocationStatus
            }
            Self::NameMismatch { .. } => CertificateError::NotValidForName,
            Self::BadEncoding(_) => CertificateError::BadEncoding,
            Self::Policy(v) if v.rule == Rule::AnchorExpired => CertificateError::Expired,
            Self::Policy(v) if v.rule == Rule::AnchorNotYetValid => CertificateError::NotValidYet,
            Self::Policy(_) | Self::Other(_) => {
                CertificateError::Other(rustls::OtherError(Arc::new(self.clone())))
            }
        };
        rustls::Error::InvalidCertificate(cert_error)
    }

    /// Maps a webpki path-building error.
    pub(crate) fn from_webpki(err: webpki::Error, purpose: Purpose) -> Self {
        use webpki::Error as E;
        #[allow(deprecated)]
        match err {
            E::CertExpired { time, not_after } => Self::Expired {
                not_after,
                now: time,
            },
            E::CertNotValidYet { time, not_before } => Self::NotYetValid {
                not_before,
                now: time,
            },
            E::UnknownIssuer => Self::UnknownIssuer,
            E::CertRevoked => Self::Revoked,
            E::InvalidSignatureForPublicKey
            | E::UnsupportedSignatureAlgorithm
            | E::UnsupportedSignatureAlgorithmContext(_)
            | E::UnsupportedSignatureAlgorithmForPublicKey
            | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
            | E::SignatureAlgorithmMismatch => Self::BadSignature(format!("{err:?}")),
            E::RequiredEkuNotFoundContext(ctx) => Self::WrongEku {
                purpose,
                present: describe_ekus(&ctx.present),
            },
            E::RequiredEkuNotFound | E::EmptyEkuExtension => Self::WrongEku {
                purpose,
                present: "none usable".into(),
            },
            E::BadDer
            | E::BadDerTime
            | E::TrailingData(_)
            | E::MalformedExtensions
            | E::ExtensionValueInvalid
            | E::InvalidCertValidity
            | E::InvalidSerialNumber
            | E::UnsupportedCertVersion => Self::BadEncoding(format!("{err:?}")),
            // cmg's own path check ([`super::fallback`]) decides these whenever a path
            // links by signature; they remain only when none does.
            E::NameConstraintViolation => Self::Other("a name constraint refuses the chain".into()),
            E::PathLenConstraintViolated => Self::Other("pathLenConstraint exceeded".into()),
            E::CaUsedAsEndEntity => {
                Self::Other("a CA certificate cannot be used as an end-entity certificate".into())
            }
            other => Self::Other(format!("certificate chain rejected: {other:?}")),
        }
    }
}

fn describe_ekus(present: &[Vec<usize>]) -> String {
    if present.is_empty() {
        return "none".into();
    }
    present
        .iter()
        .map(|oid| match oid.as_slice() {
            [1, 3, 6, 1, 5, 5, 7, 3, 1] => "server_auth".to_owned(),
            [1, 3, 6, 1, 5, 5, 7, 3, 2] => "client_auth".to_owned(),
            other => other
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join("."),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
