//! Certificate chain validation: the one routine behind both the gateway's client
//! certificate check (through [`PkiClientVerifier`](crate::client_verifier::PkiClientVerifier))
//! and `cmg cert verify`, so an operator can reproduce a handshake decision offline.
//!
//! Path building, validity periods, signatures, extended key usage and CRLs are
//! checked by rustls-webpki against a [`TrustStore`]. This module does not fetch
//! CRLs, check OCSP, or apply the site's certificate trust list; see
//! 000_8db5ffdeadd64744.txt ("Publish the certificate revocation list").

mod error;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde::{Deserialize, Serialize};
use webpki::{
    EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter, KeyUsage,
    RequiredEkuNotFoundContext, RevocationOptionsBuilder, UnknownStatusPolicy,
};

pub use self::error::VerifyError;
use crate::describe::{describe, CertSummary};
use crate::trust::TrustStore;

/// What the end-entity certificate is checked for (its extended key usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// TLS client authentication (EKU clientAuth, or no EKU extension).
    Client,
    /// TLS server authentication (EKU serverAuth, or no EKU extension).
    Server,
    /// Either of the two.
    Any,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Server => "server",
            Self::Any => "any",
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A purpose other than `client`, `server` or `any`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown certificate purpose {0:?}: expected client, server or any")]
pub struct UnknownPurpose(pub String);

impl FromStr for Purpose {
    type Err = UnknownPurpose;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "client" => Ok(Self::Client),
            "server" => Ok(Self::Server),
            "any" => Ok(Self::Any),
            other => Err(UnknownPurpose(other.to_owned())),
        }
    }
}

/// How one chain is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyOptions<'a> {
    /// The extended key usage the leaf must allow.
    pub purpose: Purpose,
    /// The time validity periods are checked against (the handshake's time in TLS).
    pub now: UnixTime,
    /// A DNS name or IP address the leaf must be valid for; not checked when `None`.
    pub dns_name: Option<&'a str>,
}

impl VerifyOptions<'_> {
    /// Checks `purpose` at the current time, without a name.
    pub fn new(purpose: Purpose) -> Self {
        Self {
            purpose,
            now: UnixTime::now(),
            dns_name: None,
        }
    }
}

const EKU_SERVER_AUTH: &[usize] = KeyUsage::SERVER_AUTH_REPR;
const EKU_CLIENT_AUTH: &[usize] = KeyUsage::CLIENT_AUTH_REPR;

/// Accepts serverAuth or clientAuth (or no EKU extension), for [`Purpose::Any`].
struct ClientOrServer;

impl ExtendedKeyUsageValidator for ClientOrServer {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let mut present = Vec::new();
        for id in iter {
            let oid = id?.to_decoded_oid();
            if oid == EKU_SERVER_AUTH || oid == EKU_CLIENT_AUTH {
                return Ok(());
            }
            present.push(oid);
        }
        if present.is_empty() {
            return Ok(());
        }
        Err(webpki::Error::RequiredEkuNotFoundContext(
            RequiredEkuNotFoundContext {
                required: KeyUsage::client_auth(),
                present,
            },
        ))
    }
}

enum Usage {
    Key(KeyUsage),
    Any(ClientOrServer),
}

impl ExtendedKeyUsageValidator for Usage {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        match self {
            Self::Key(usage) => usage.validate(iter),
            Self::Any(any) => any.validate(iter),
        }
    }
}

/// Validates `leaf` against `store` and returns its summary.
///
/// Intermediates are the ones the peer presented followed by the store's configured
/// ones. When the store holds CRLs, every certificate in the chain below the root is
/// looked up in them (depth [`Chain`](webpki::RevocationCheckDepth::Chain)); a
/// certificate whose issuer published no loaded CRL is **accepted**
/// ([`UnknownStatusPolicy::Allow`]), so that loading the client CA's CRL does not
/// lock out chains from other trusted issuers (the root CA, a site CA) that publish
/// none. A CRL past its nextUpdate is still used. Without CRLs, revocation is not
/// checked at all.
///
/// When `opts.dns_name` is set, the leaf must carry it as a DNS or IP address SAN.
pub fn verify_chain(
    store: &TrustStore,
    leaf: &CertificateDer<'_>,
    presented_intermediates: &[CertificateDer<'_>],
    opts: &VerifyOptions<'_>,
) -> Result<CertSummary, VerifyError> {
    let cert = EndEntityCert::try_from(leaf)
        .map_err(|e| VerifyError::BadEncoding(format!("end-entity certificate: {e:?}")))?;

    let intermediates: Vec<CertificateDer<'_>> = presented_intermediates
        .iter()
        .chain(store.intermediates().iter())
        .map(|der| CertificateDer::from(der.as_ref()))
        .collect();

    let crl_refs: Vec<_> = store.crls().iter().collect();
    let revocation = RevocationOptionsBuilder::new(&crl_refs)
        .ok()
        .map(|builder| {
            builder
                .with_status_policy(UnknownStatusPolicy::Allow)
                .build()
        });

    let usage = match opts.purpose {
        Purpose::Client => Usage::Key(KeyUsage::client_auth()),
        Purpose::Server => Usage::Key(KeyUsage::server_auth()),
        Purpose::Any => Usage::Any(ClientOrServer),
    };

    let algorithms = rustls::crypto::ring::default_provider().signature_verification_algorithms;
    cert.verify_for_usage(
        algorithms.all,
        store.anchors(),
        &intermediates,
        opts.now,
        usage,
        revocation,
        None,
    )
    .map_err(|e| VerifyError::from_webpki(e, opts.purpose))?;

    if let Some(name) = opts.dns_name {
        let server_name = ServerName::try_from(name)
            .map_err(|e| VerifyError::Other(format!("invalid name {name:?}: {e}")))?;
        cert.verify_is_valid_for_subject_name(&server_name)
            .map_err(|_| VerifyError::NameMismatch {
                name: name.to_owned(),
            })?;
    }

    describe(leaf).map_err(|e| VerifyError::BadEncoding(e.to_string()))
}
