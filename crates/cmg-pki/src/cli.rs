//! `cmg cert verify`: load PEM files, run [`verify_chain`], and print one line.
//!
//! The binary only parses arguments into a [`VerifyRequest`]; everything else,
//! including the wording of the result, lives here so tests can check it.

use std::path::PathBuf;
use std::time::Duration;

use rustls_pki_types::UnixTime;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::pem::load_certs;
use crate::trust::TrustStore;
use crate::verify::{verify_chain, Purpose, VerifyOptions};

/// The arguments of `cmg cert verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRequest {
    /// Trusted root files (each may be a bundle). At least one.
    pub trust: Vec<PathBuf>,
    /// Extra intermediate certificate files.
    pub intermediates: Vec<PathBuf>,
    /// CRL files; revocation is checked only when at least one is given.
    pub crls: Vec<PathBuf>,
    /// RFC 3339 time to verify at instead of now, e.g. `2030-01-01T00:00:00Z`.
    pub time: Option<String>,
    pub purpose: Purpose,
    /// DNS name or IP address the certificate must be valid for.
    pub name: Option<String>,
    /// The certificate file: the leaf first, then any intermediates it presents.
    pub leaf: PathBuf,
}

fn parse_time(text: &str) -> Result<UnixTime, String> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| format!("ERROR invalid time {text:?} (want RFC 3339): {e}"))?;
    let secs = u64::try_from(parsed.unix_timestamp())
        .map_err(|_| format!("ERROR time {text:?} is before 1970"))?;
    Ok(UnixTime::since_unix_epoch(Duration::from_secs(secs)))
}

fn rfc3339(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("@{secs}"))
}

/// Verifies the leaf file as `cmg cert verify` does.
///
/// `Ok` is a line starting `OK`; `Err` is a line starting `REJECTED <code>:` for a
/// certificate that fails, or `ERROR` when a file or argument cannot be used.
pub fn verify_files(req: &VerifyRequest) -> Result<String, String> {
    let now = match &req.time {
        Some(text) => parse_time(text)?,
        None => UnixTime::now(),
    };
    let store = TrustStore::from_pem_files(&req.trust, &req.intermediates, &req.crls)
        .map_err(|e| format!("ERROR {e}"))?;
    let certs = load_certs(&req.leaf).map_err(|e| format!("ERROR {e}"))?;
    let (leaf, presented) = certs
        .split_first()
        .ok_or_else(|| format!("ERROR {}: no certificate found", req.leaf.display()))?;
    let opts = VerifyOptions {
        purpose: req.purpose,
        now,
        dns_name: req.name.as_deref(),
    };
    match verify_chain(&store, leaf, presented, &opts) {
        Ok(summary) => {
            let mut line = format!(
                "OK subject={:?} issuer={:?} not_after={} purpose={}",
                summary.subject,
                summary.issuer,
                rfc3339(summary.not_after),
                req.purpose
            );
            if let Some(name) = &req.name {
                line.push_str(&format!(" name={name:?}"));
            }
            if store.checks_revocation() {
                line.push_str(" revocation=checked");
            }
            Ok(line)
        }
        Err(err) => Err(format!("REJECTED {}: {err}", err.code())),
    }
}
