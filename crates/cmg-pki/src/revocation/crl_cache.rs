//! The CRLs a [`RevocationChecker`](super::RevocationChecker) knows: configured files
//! and, per distribution point URL, the last good CRL fetched from it with the state of
//! its fetches. Parsing and signature checks happen here, once per CRL received; the
//! handshake path only reads the [`Snapshot`] built from it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls_pki_types::CertificateDer;
use webpki::{CertRevocationList, OwnedCertRevocationList};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::verify::memo::{Memo, SignedMemo};
use x509_parser::revocation_list::CertificateRevocationList;

/// A parsed CRL with the fields the cache needs.
#[derive(Debug)]
pub struct CachedCrl {
    /// DER, as received (kept for the disk cache).
    pub der: Vec<u8>,
    pub parsed: CertRevocationList<'static>,
    /// DER of the issuer name.
    pub issuer: Vec<u8>,
    /// Unix seconds.
    pub this_update: i64,
    pub next_update: i64,
    /// Its remembered signature checks, for the handshakes that consult it.
    pub memo: SignedMemo,
}

/// Why a received CRL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrlError {
    #[error("not a CRL: {0}")]
    Malformed(String),
    #[error("unsupported CRL: {0}")]
    Unsupported(String),
    #[error("CRL signature does not verify against any known issuer certificate")]
    BadSignature,
    #[error("CRL issuer is not a known CA certificate")]
    UnknownIssuer,
    #[error("CRL expired at {0} (nextUpdate)")]
    Expired(String),
    #[error("older than the CRL already cached (thisUpdate {0})")]
    Older(String),
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub(crate) fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("@{secs}"))
}

impl CachedCrl {
    /// Parses a CRL in DER, or in PEM (some servers publish that).
    pub fn parse(bytes: &[u8]) -> Result<Self, CrlError> {
        let der = if bytes.starts_with(b"-----BEGIN") {
            let text =
                std::str::from_utf8(bytes).map_err(|e| CrlError::Malformed(e.to_string()))?;
            let mut crls =
                crate::pem::parse_crls(text).map_err(|e| CrlError::Malformed(e.to_string()))?;
            crls.swap_remove(0).as_ref().to_vec()
        } else {
            bytes.to_vec()
        };
        let owned = OwnedCertRevocationList::from_der(&der).map_err(|e| match e {
            webpki::Error::UnsupportedCrlVersion
            | webpki::Error::UnsupportedDeltaCrl
            | webpki::Error::UnsupportedIndirectCrl
            | webpki::Error::UnsupportedCriticalExtension => {
                CrlError::Unsupported(format!("{e:?}"))
            }
            other => CrlError::Malformed(format!("{other:?}")),
        })?;
        crate::verify::strict::check_crl(&der).map_err(CrlError::Unsupported)?;
        let (_, crl) = CertificateRevocationList::from_der(&der)
            .map_err(|e| CrlError::Malformed(e.to_string()))?;
        let this_update = crl.last_update().timestamp();
        let next_update = crl
            .next_update()
            .map(|t| t.timestamp())
            .ok_or_else(|| CrlError::Unsupported("no nextUpdate".into()))?;
        let issuer = crl.issuer().as_raw().to_vec();
        let memo = SignedMemo::for_crl(&der).unwrap_or_default();
        Ok(Self {
            memo,
            parsed: CertRevocationList::from(owned),
            issuer,
            this_update,
            next_update,
            der,
        })
    }

    /// Checks the signature against the CA certificates whose subject is the CRL's
    /// issuer. A CRL from an issuer not among `cas` is refused: it could not be used
    /// for any verified chain anyway.
    pub fn check_signature(&self, cas: &[CertificateDer<'static>]) -> Result<(), CrlError> {
        let (_, crl) = CertificateRevocationList::from_der(&self.der)
            .map_err(|e| CrlError::Malformed(e.to_string()))?;
        let mut candidates = 0;
        for ca in cas {
            let Ok((_, cert)) = X509Certificate::from_der(ca) else {
                continue;
            };
            if cert.subject().as_raw() != self.issuer.as_slice() {
                continue;
            }
            candidates += 1;
            if crl.verify_signature(cert.public_key()).is_ok() {
                return Ok(());
            }
        }
        Err(if candidates == 0 {
            CrlError::UnknownIssuer
        } else {
            CrlError::BadSignature
        })
    }

    pub fn is_expired_at(&self, unix_secs: i64) -> bool {
        unix_secs >= self.next_update
    }

    /// When to fetch a fresh copy: three quarters into the validity period, so a
    /// refresh has time to fail and be retried before nextUpdate.
    pub fn refresh_at(&self) -> i64 {
        let span = (self.next_update - self.this_update).max(0);
        self.this_update + span / 4 * 3
    }
}

/// The state of one distribution point URL.
#[derive(Debug, Default)]
pub struct UrlEntry {
    /// The newest good CRL received (from the network or the disk cache).
    pub crl: Option<Arc<CachedCrl>>,
    pub fetching: bool,
    pub last_attempt: Option<Instant>,
    /// Why the last fetch failed; cleared by a success.
    pub last_error: Option<String>,
}

impl UrlEntry {
    /// Whether a fetch should start now: none running, and either nothing usable or a
    /// refresh due, and the last attempt older than `retry_after` (so a dead or
    /// hostile server is asked at most once per `retry_after`, not once per handshake).
    pub fn wants_fetch(&self, now: i64, retry_after: Duration) -> bool {
        if self.fetching {
            return false;
        }
        let due = match &self.crl {
            None => true,
            Some(crl) => now >= crl.refresh_at(),
        };
        due && self
            .last_attempt
            .is_none_or(|at| at.elapsed() >= retry_after)
    }

    /// One line for logs and errors.
    pub fn describe(&self, now: i64) -> String {
        let mut parts = Vec::new();
        if self.fetching {
            parts.push("fetch in progress".to_owned());
        }
        if let Some(err) = &self.last_error {
            parts.push(format!("last fetch failed: {err}"));
        }
        match &self.crl {
            Some(crl) if crl.is_expired_at(now) => parts.push(format!(
                "cached CRL expired at {}",
                rfc3339(crl.next_update)
            )),
            Some(crl) => parts.push(format!("CRL valid until {}", rfc3339(crl.next_update))),
            None if parts.is_empty() => parts.push("no CRL yet".to_owned()),
            None => {}
        }
        parts.join("; ")
    }
}

/// A CRL's issuer name and issuing distribution point (DER): what it covers.
type ScopeKey = (Vec<u8>, Option<Vec<u8>>);

/// Every CRL in use, newest per issuer; what a handshake reads.
#[derive(Debug, Default)]
pub struct Snapshot {
    crls: Vec<Arc<CachedCrl>>,
}

impl Snapshot {
    /// Builds the snapshot from configured and fetched CRLs. When several CRLs share
    /// an issuer and scope, only the newest (by thisUpdate) is kept, because webpki
    /// uses the first CRL that matches a certificate's issuer.
    pub fn build<'a>(all: impl Iterator<Item = &'a Arc<CachedCrl>>) -> Self {
        let mut best: HashMap<ScopeKey, Arc<CachedCrl>> = HashMap::new();
        for crl in all {
            let key = (
                crl.issuer.clone(),
                crl.parsed.issuing_distribution_point().map(<[u8]>::to_vec),
            );
            match best.get(&key) {
                Some(have) if have.this_update >= crl.this_update => {}
                _ => {
                    best.insert(key, crl.clone());
                }
            }
        }
        Self {
            crls: best.into_values().collect(),
        }
    }

    /// The CRLs with their remembered signature checks.
    pub fn memos(&self) -> Vec<Memo<'_>> {
        self.crls
            .iter()
            .map(|c| Memo {
                der: &c.der,
                signed: &c.memo,
            })
            .collect()
    }

    /// The CRLs in DER.
    pub fn ders(&self) -> Vec<&[u8]> {
        self.crls.iter().map(|c| c.der.as_slice()).collect()
    }

    pub fn refs(&self) -> Vec<&CertRevocationList<'static>> {
        self.crls.iter().map(|c| &c.parsed).collect()
    }

    /// The CRLs not expired at `now` (Unix seconds).
    pub fn usable_refs(&self, now: i64) -> Vec<&CertRevocationList<'static>> {
        self.crls
            .iter()
            .filter(|c| !c.is_expired_at(now))
            .map(|c| &c.parsed)
            .collect()
    }

    /// Whether an unexpired full CRL (no issuing distribution point) of the issuer
    /// named `issuer` (DER) is held: webpki then checks every certificate of that
    /// issuer against it.
    pub fn covers(&self, issuer: &[u8], now: i64) -> bool {
        self.crls.iter().any(|c| {
            c.issuer == issuer
                && !c.is_expired_at(now)
                && c.parsed.issuing_distribution_point().is_none()
        })
    }

    pub fn len(&self) -> usize {
        self.crls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.crls.is_empty()
    }
}
