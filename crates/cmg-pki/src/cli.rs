//! `cmg cert verify`: load PEM files, run [`verify_chain`], and print one line, or
//! one JSON object with `--json`.
//!
//! The binary only parses arguments into a [`VerifyRequest`]; everything else,
//! including the wording of the result, lives here so tests can check it.
//!
//! JSON output is a stable contract: `{"ok":true,"subject":..,"issuer":..,
//! "not_after":..,"purpose":..,"revocation":"checked"|"not_checked"}` or
//! `{"ok":false,"check":..,"code":..,"detail":..}` where `check` is `time`, `chain`,
//! `usage`, `revocation`, `name`, `encoding` or `input` (a file or argument that
//! cannot be used; `code` is then `bad_input`) and `code` is
//! [`VerifyError::code`](crate::verify::VerifyError::code).

use std::path::PathBuf;
use std::time::Duration;

use rustls_pki_types::UnixTime;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::pem::{load_certs, load_crls};
use crate::revocation::{RevocationChecker, RevocationConfig};
use crate::trust::TrustStore;
use crate::verify::{verify_chain, Purpose, VerifyError, VerifyOptions};

/// The arguments of `cmg cert verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRequest {
    /// Trusted root files (each may be a bundle). At least one.
    pub trust: Vec<PathBuf>,
    /// Extra intermediate certificate files.
    pub intermediates: Vec<PathBuf>,
    /// CRL files. With at least one, or with `crl_fetch`, revocation is checked and
    /// fails closed, as in the gateway.
    pub crls: Vec<PathBuf>,
    /// Also fetch CRLs from the chain's `http://` distribution points.
    pub crl_fetch: bool,
    /// Ask the OCSP responder (AIA) of each certificate no usable CRL covers; with it,
    /// revocation is checked and fails closed.
    pub ocsp: bool,
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

/// The verdict of `cmg cert verify`.
#[derive(Debug)]
pub enum Verdict {
    Ok {
        summary: crate::describe::CertSummary,
        revocation_checked: bool,
    },
    Rejected(VerifyError),
    /// A file or argument cannot be used.
    Input(String),
}

fn load_store(req: &VerifyRequest) -> Result<TrustStore, String> {
    if !req.crl_fetch && !req.ocsp {
        return TrustStore::from_pem_files(&req.trust, &req.intermediates, &req.crls)
            .map_err(|e| e.to_string());
    }
    let mut roots = Vec::new();
    for path in &req.trust {
        roots.extend(load_certs(path).map_err(|e| e.to_string())?);
    }
    let mut inter = Vec::new();
    for path in &req.intermediates {
        inter.extend(load_certs(path).map_err(|e| e.to_string())?);
    }
    let mut crls = Vec::new();
    for path in &req.crls {
        crls.extend(load_crls(path).map_err(|e| e.to_string())?);
    }
    let defaults = RevocationConfig::default();
    // Offline use: wait for the whole fetch, not just a handshake's share.
    let config = RevocationConfig {
        fetch: req.crl_fetch,
        ocsp: req.ocsp,
        handshake_wait: defaults.limits.timeout + Duration::from_secs(1),
        ..defaults
    };
    let cas: Vec<_> = roots.iter().chain(&inter).cloned().collect();
    let checker = RevocationChecker::new(config, cas, crls).map_err(|e| e.to_string())?;
    Ok(TrustStore::new(roots, inter)
        .map_err(|e| e.to_string())?
        .with_revocation(checker))
}

/// Runs the check `cmg cert verify` runs.
pub fn verify_request(req: &VerifyRequest) -> Verdict {
    let now = match &req.time {
        Some(text) => match parse_time(text) {
            Ok(t) => t,
            Err(e) => return Verdict::Input(e.trim_start_matches("ERROR ").to_owned()),
        },
        None => UnixTime::now(),
    };
    let store = match load_store(req) {
        Ok(s) => s,
        Err(e) => return Verdict::Input(e),
    };
    let certs = match load_certs(&req.leaf) {
        Ok(c) => c,
        Err(e) => return Verdict::Input(e.to_string()),
    };
    let Some((leaf, presented)) = certs.split_first() else {
        return Verdict::Input(format!("{}: no certificate found", req.leaf.display()));
    };
    let opts = VerifyOptions {
        purpose: req.purpose,
        now,
        dns_name: req.name.as_deref(),
    };
    match verify_chain(&store, leaf, presented, &opts) {
        Ok(summary) => Verdict::Ok {
            summary,
            revocation_checked: store.checks_revocation(),
        },
        Err(err) => Verdict::Rejected(err),
    }
}

impl Verdict {
    /// The one-line text output: `OK ...`, `REJECTED <code>: ...` or `ERROR ...`.
    pub fn line(&self, req: &VerifyRequest) -> String {
        match self {
            Self::Ok {
                summary,
                revocation_checked,
            } => {
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
                if *revocation_checked {
                    line.push_str(" revocation=checked");
                }
                line
            }
            Self::Rejected(err) => format!("REJECTED {}: {err}", err.code()),
            Self::Input(e) => format!("ERROR {e}"),
        }
    }

    /// The JSON output (one line; see the module documentation).
    pub fn json(&self, req: &VerifyRequest) -> String {
        let value = match self {
            Self::Ok {
                summary,
                revocation_checked,
            } => serde_json::json!({
                "ok": true,
                "subject": summary.subject,
                "issuer": summary.issuer,
                "not_after": rfc3339(summary.not_after),
                "purpose": req.purpose.as_str(),
                "revocation": if *revocation_checked { "checked" } else { "not_checked" },
            }),
            Self::Rejected(err) => serde_json::json!({
                "ok": false,
                "check": err.check(),
                "code": err.code(),
                "detail": err.to_string(),
            }),
            Self::Input(e) => serde_json::json!({
                "ok": false,
                "check": "input",
                "code": "bad_input",
                "detail": e,
            }),
        };
        value.to_string()
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok { .. })
    }
}

/// Verifies the leaf file as `cmg cert verify` does.
///
/// `Ok` is a line starting `OK`; `Err` is a line starting `REJECTED <code>:` for a
/// certificate that fails, or `ERROR` when a file or argument cannot be used.
pub fn verify_files(req: &VerifyRequest) -> Result<String, String> {
    let verdict = verify_request(req);
    let line = verdict.line(req);
    if verdict.is_ok() {
        Ok(line)
    } else {
        Err(line)
    }
}
