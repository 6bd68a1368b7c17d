//! The OCSP answers a checker holds, per `CertID`, with the state of their fetches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::request::OcspQuery;
use super::{CertStatus, OcspAnswer};
use crate::revocation::crl_cache::rfc3339;

/// The state of one certificate's OCSP status.
#[derive(Debug)]
pub struct OcspEntry {
    /// What to ask (kept for refreshes).
    pub query: Arc<OcspQuery>,
    /// The newest verified answer.
    pub answer: Option<OcspAnswer>,
    pub fetching: bool,
    pub last_attempt: Option<Instant>,
    /// Why the last fetch failed; cleared by a success.
    pub last_error: Option<String>,
}

impl OcspEntry {
    pub fn new(query: Arc<OcspQuery>) -> Self {
        Self {
            query,
            answer: None,
            fetching: false,
            last_attempt: None,
            last_error: None,
        }
    }

    /// The answer, if it is still usable at `now`.
    pub fn usable(&self, now: i64) -> Option<&OcspAnswer> {
        self.answer.as_ref().filter(|a| a.is_usable_at(now))
    }

    /// Whether a fetch should start now: none running, nothing usable or a refresh
    /// due, and the last attempt older than `retry_after`.
    pub fn wants_fetch(&self, now: i64, retry_after: Duration) -> bool {
        if self.fetching {
            return false;
        }
        let due = match self.usable(now) {
            None => true,
            Some(answer) => now >= answer.refresh_at(),
        };
        due && self
            .last_attempt
            .is_none_or(|at| at.elapsed() >= retry_after)
    }

    /// One line for logs and errors.
    pub fn describe(&self, now: i64) -> String {
        let mut parts = Vec::new();
        if self.fetching {
            parts.push("OCSP request in progress".to_owned());
        }
        if let Some(err) = &self.last_error {
            parts.push(format!("last OCSP request failed: {err}"));
        }
        match &self.answer {
            Some(a) if !a.is_usable_at(now) => parts.push(format!(
                "cached OCSP answer expired at {}",
                rfc3339(a.valid_until)
            )),
            Some(a) if a.status == CertStatus::Unknown => {
                parts.push("the OCSP responder does not know the certificate".to_owned())
            }
            Some(_) => {}
            None if parts.is_empty() => parts.push("no OCSP answer yet".to_owned()),
            None => {}
        }
        parts.join("; ")
    }
}
