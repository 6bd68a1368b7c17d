//! Revocation checking that fails closed: CRLs from configured files and from the
//! HTTP distribution points of the certificates being verified, cached in memory and
//! on disk, refreshed in the background before their nextUpdate; and, for certificates
//! no usable CRL covers, OCSP answers from their responders ([`ocsp`]), fetched and
//! cached the same way.
//!
//! # Where the time goes
//!
//! rustls calls the client certificate verifier synchronously, in the middle of the
//! handshake, on a runtime worker thread. So the handshake path never does network
//! I/O itself:
//!
//! * **Cached** (the normal case): the verifier reads an immutable [`Snapshot`] of
//!   parsed CRLs (one `RwLock` read and an `Arc` clone) and webpki looks the serials
//!   up. No parsing, no I/O, no lock held during the check.
//! * **Not cached** (a distribution point never seen, or a CRL past nextUpdate): the
//!   chain is first verified *without* revocation, so only URLs found in certificates
//!   that chain to a trusted root are ever fetched (a client cannot make the gateway
//!   fetch arbitrary URLs). The fetch runs on the checker's own thread and runtime;
//!   the handshake waits for it at most [`RevocationConfig::handshake_wait`] (in
//!   `block_in_place` on a multi-threaded Tokio runtime, so other connections on that
//!   worker move on). If the answer is not in by then, the client is refused with
//!   `revocation_unknown` ("fetch in progress") and the fetch carries on: the client's
//!   next attempt uses the cached CRL.
//! * **Fetches** are bounded (connect timeout, total deadline, maximum size: see
//!   `cmg_core::fetch`; plain `http://` only), one at a time per URL, and a URL that
//!   failed is not asked again before [`RevocationConfig::retry_after`], however many
//!   handshakes need it.
//!   A server that trickles bytes or sends an endless body therefore costs each
//!   affected handshake at most `handshake_wait` and nothing to other clients.
//! * **Refresh**: a background tick fetches each CRL again three quarters into its
//!   validity; the new snapshot replaces the old one atomically. Connections already
//!   established are not affected (their certificate was checked at the handshake).
//! * **Start**: distribution points named in the trusted CA certificates are fetched
//!   at once, and the disk cache (when configured) is loaded, so a restart works
//!   offline until each cached CRL's nextUpdate.
//!
//! A certificate's status is *unknown* when no CRL of its issuer is usable: none
//! obtainable, expired (past nextUpdate), or with a bad signature. Unknown is a
//! rejection, as IIS does (000_8db5ffdeadd64744.txt, "Publish the certificate
//! revocation list").

mod crl_cache;
mod disk;
pub mod ocsp;
pub mod publish;
mod worker;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use self::crl_cache::{unix_now, UrlEntry};
pub use self::crl_cache::{CachedCrl, CrlError, Snapshot};
use self::disk::DiskCache;
use self::ocsp::cache::OcspEntry;
use self::ocsp::request::OcspQuery;
use self::ocsp::OcspAnswer;
use crate::error::PkiError;
pub use cmg_core::fetch::FetchLimits;

/// How revocation data is obtained and how long a handshake may wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationConfig {
    /// Fetch CRLs from the `http://` distribution points of the certificates seen.
    /// Off: only the configured CRLs count.
    pub fetch: bool,
    pub limits: FetchLimits,
    /// Longest a verification waits for a CRL that is not cached yet.
    pub handshake_wait: Duration,
    /// Least time between two fetches of a URL whose last fetch failed.
    pub retry_after: Duration,
    /// Where fetched CRLs (and OCSP answers, in `ocsp/`) are kept across restarts;
    /// memory only when `None`.
    pub cache_dir: Option<PathBuf>,
    /// Most distribution point URLs remembered.
    pub max_urls: usize,
    /// Ask the OCSP responder (AIA) of a certificate that no usable CRL covers.
    pub ocsp: bool,
    /// Send a nonce in OCSP requests (an echoed nonce must match).
    pub ocsp_nonce: bool,
    /// Most certificates whose OCSP status is remembered.
    pub max_ocsp_entries: usize,
}

impl Default for RevocationConfig {
    fn default() -> Self {
        Self {
            fetch: true,
            limits: FetchLimits::default(),
            handshake_wait: Duration::from_secs(2),
            retry_after: Duration::from_secs(30),
            cache_dir: None,
            max_urls: 1024,
            ocsp: true,
            ocsp_nonce: true,
            max_ocsp_entries: 16 * 1024,
        }
    }
}

/// Most CA certificates remembered for checking CRL signatures.
const MAX_KNOWN_CAS: usize = 256;

#[derive(Debug, Default)]
struct State {
    urls: std::collections::HashMap<String, UrlEntry>,
    configured: Vec<Arc<CachedCrl>>,
    /// CA certificates CRL signatures are checked against: the trusted roots and
    /// intermediates, plus intermediates seen in verified chains.
    cas: Vec<CertificateDer<'static>>,
    /// OCSP status per `CertID` (DER).
    ocsp: std::collections::HashMap<Vec<u8>, OcspEntry>,
    /// OCSP answers read from disk at start, per `CertID`: checked (signature, times)
    /// the first time a verification asks about that certificate, as the issuer is
    /// only known then.
    ocsp_disk: std::collections::HashMap<Vec<u8>, Vec<u8>>,
}

#[derive(Debug)]
struct Shared {
    config: RevocationConfig,
    state: Mutex<State>,
    /// Signalled whenever a fetch ends.
    fetched: Condvar,
    snapshot: RwLock<Arc<Snapshot>>,
    disk: Option<DiskCache>,
    ocsp_disk: Option<DiskCache>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, state: &State) {
        let all = state
            .configured
            .iter()
            .chain(state.urls.values().filter_map(|e| e.crl.as_ref()));
        let snap = Arc::new(Snapshot::build(all));
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = snap;
    }
}

/// Shared CRL state for every verification of a role (all handshakes of a gateway,
/// across TLS reloads). Dropping the last handle stops the fetch thread.
#[derive(Debug, Clone)]
pub struct RevocationChecker {
    shared: Arc<Shared>,
    jobs: worker::Jobs,
}

impl RevocationChecker {
    /// Starts a checker trusting CRLs signed by `ca_certs` (the trusted roots and
    /// intermediates), with the hand-configured `crls`. When fetching is on, the
    /// distribution points of `ca_certs` are fetched at once, in the background.
    pub fn new(
        config: RevocationConfig,
        ca_certs: Vec<CertificateDer<'static>>,
        crls: Vec<CertificateRevocationListDer<'static>>,
    ) -> Result<Self, PkiError> {
        let configured = parse_configured(&crls)?;
        let disk = match &config.cache_dir {
            Some(dir) => Some(DiskCache::open(dir).map_err(|source| PkiError::Io {
                path: dir.clone(),
                source,
            })?),
            None => None,
        };
        let ocsp_disk = match (&config.cache_dir, config.ocsp) {
            (Some(dir), true) => {
                let dir = dir.join("ocsp");
                Some(
                    DiskCache::open_ext(&dir, "ocsp")
                        .map_err(|source| PkiError::Io { path: dir, source })?,
                )
            }
            _ => None,
        };
        let mut state = State {
            configured,
            cas: ca_certs,
            ..State::default()
        };
        if let Some(disk) = &ocsp_disk {
            for (key, bytes) in disk.load(config.max_ocsp_entries) {
                if let Ok(key) = hex::decode(&key) {
                    state.ocsp_disk.insert(key, bytes);
                }
            }
        }
        if let Some(disk) = &disk {
            for (url, bytes) in disk.load(config.max_urls) {
                match CachedCrl::parse(&bytes) {
                    Ok(crl) => {
                        state.urls.entry(url).or_default().crl = Some(Arc::new(crl));
                    }
                    Err(e) => {
                        tracing::warn!(target: "cmg_pki", %url, error = %e, "ignoring cached CRL")
                    }
                }
            }
        }
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(State::default()),
            fetched: Condvar::new(),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            disk,
            ocsp_disk,
        });
        shared.publish(&state);
        let prefetch: Vec<String> = if shared.config.fetch {
            let mut urls: Vec<String> = state.cas.iter().flat_map(|c| crl_urls(c)).collect();
            urls.extend(state.urls.keys().cloned());
            urls
        } else {
            Vec::new()
        };
        *shared.lock() = state;
        let jobs = worker::start(shared.clone()).map_err(|source| PkiError::Io {
            path: "<revocation fetch thread>".into(),
            source,
        })?;
        let checker = Self { shared, jobs };
        checker.request(&prefetch);
        Ok(checker)
    }

    pub fn config(&self) -> &RevocationConfig {
        &self.shared.config
    }

    /// The CRLs in use now: what a verification reads.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared
            .snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the hand-configured CRLs (a reload of the files).
    pub fn set_configured(
        &self,
        crls: &[CertificateRevocationListDer<'static>],
    ) -> Result<(), PkiError> {
        let configured = parse_configured(crls)?;
        let mut state = self.shared.lock();
        state.configured = configured;
        self.shared.publish(&state);
        Ok(())
    }

    /// Adds trusted CA certificates (after a reload of the trust material): their CRLs
    /// are accepted, and their own distribution points are fetched in the background.
    pub fn trust_cas(&self, certs: &[CertificateDer<'static>]) {
        self.learn_cas(certs.iter().cloned());
        let urls: Vec<String> = certs.iter().flat_map(|c| crl_urls(c)).collect();
        self.request(&urls);
    }

    /// Remembers CA certificates (from a verified chain) whose CRLs may be fetched.
    pub(crate) fn learn_cas<'a>(&self, certs: impl Iterator<Item = CertificateDer<'a>>) {
        let mut state = self.shared.lock();
        for cert in certs {
            if state.cas.len() >= MAX_KNOWN_CAS {
                break;
            }
            if !state.cas.iter().any(|c| c.as_ref() == cert.as_ref()) {
                state.cas.push(cert.into_owned());
            }
        }
    }

    /// Starts a fetch of each URL that has no usable CRL or whose refresh is due,
    /// unless one is running or the URL failed less than `retry_after` ago.
    pub(crate) fn request(&self, urls: &[String]) {
        if !self.shared.config.fetch {
            return;
        }
        let now = unix_now();
        let mut state = self.shared.lock();
        for url in urls {
            if !state.urls.contains_key(url) && state.urls.len() >= self.shared.config.max_urls {
                tracing::warn!(target: "cmg_pki", %url, "too many CRL distribution points; not fetching");
                continue;
            }
            let entry = state.urls.entry(url.clone()).or_default();
            if entry.wants_fetch(now, self.shared.config.retry_after) {
                entry.fetching = true;
                entry.last_attempt = Some(Instant::now());
                self.jobs.send(worker::Job::Crl(url.clone()));
            }
        }
    }

    /// Whether OCSP responders are asked when no CRL gives a status.
    pub fn ocsp_enabled(&self) -> bool {
        self.shared.config.ocsp
    }

    /// The OCSP status of each query: a usable cached answer, or one fetched now (the
    /// wait is bounded by `handshake_wait` and runs in `block_in_place` like CRL
    /// fetches). `Err` holds why no usable answer is available.
    pub(crate) fn ocsp_statuses(&self, queries: Vec<OcspQuery>) -> Vec<Result<OcspAnswer, String>> {
        let now = unix_now();
        let retry = self.shared.config.retry_after;
        let max = self.shared.config.max_ocsp_entries;
        let mut keys = Vec::with_capacity(queries.len());
        let mut refused = Vec::with_capacity(queries.len());
        {
            let mut state = self.shared.lock();
            for query in queries {
                let key = query.key.clone();
                if !state.ocsp.contains_key(&key) && state.ocsp.len() >= max {
                    state
                        .ocsp
                        .retain(|_, e| e.fetching || e.usable(now).is_some());
                }
                if !state.ocsp.contains_key(&key) && state.ocsp.len() >= max {
                    tracing::warn!(target: "cmg_pki", "too many certificates with an OCSP status; not asking");
                    refused.push(true);
                    keys.push(key);
                    continue;
                }
                refused.push(false);
                if !state.ocsp.contains_key(&key) {
                    let mut entry = OcspEntry::new(Arc::new(query));
                    if let Some(body) = state.ocsp_disk.remove(&key) {
                        match ocsp::response::verify(&body, &entry.query, None, now) {
                            Ok(answer) => entry.answer = Some(answer),
                            Err(e) => {
                                tracing::info!(target: "cmg_pki", error = %e, "cached OCSP answer not usable; asking again")
                            }
                        }
                    }
                    state.ocsp.insert(key.clone(), entry);
                }
                let Some(entry) = state.ocsp.get_mut(&key) else {
                    continue;
                };
                if entry.wants_fetch(now, retry) {
                    entry.fetching = true;
                    entry.last_attempt = Some(Instant::now());
                    self.jobs.send(worker::Job::Ocsp(key.clone()));
                }
                keys.push(key);
            }
        }
        let waiting = |state: &State| {
            keys.iter().any(|k| {
                state
                    .ocsp
                    .get(k)
                    .is_some_and(|e| e.fetching && e.usable(now).is_none())
            })
        };
        let limit = self.shared.config.handshake_wait;
        let wait = || self.wait_while(limit, waiting);
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
            _ => wait(),
        }
        let now = unix_now();
        let state = self.shared.lock();
        keys.iter()
            .zip(refused)
            .map(|(key, refused)| {
                if refused {
                    return Err("too many certificates with an OCSP status".to_owned());
                }
                let Some(entry) = state.ocsp.get(key) else {
                    return Err("no OCSP answer".to_owned());
                };
                match entry.usable(now) {
                    Some(answer) => Ok(answer.clone()),
                    None => Err(format!(
                        "{}: {}",
                        entry.query.urls.join(" "),
                        entry.describe(now)
                    )),
                }
            })
            .collect()
    }

    /// Waits while `busy` holds (re-checked whenever a fetch ends), at most `limit`.
    fn wait_while(&self, limit: Duration, busy: impl Fn(&State) -> bool) {
        let deadline = Instant::now() + limit;
        let mut state = self.shared.lock();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if !busy(&state) || left.is_zero() {
                return;
            }
            state = self
                .shared
                .fetched
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits until no fetch of `urls` is running, or `limit` has passed.
    pub(crate) fn wait(&self, urls: &[String], limit: Duration) {
        self.wait_while(limit, |state| {
            urls.iter()
                .any(|u| state.urls.get(u).is_some_and(|e| e.fetching))
        });
    }

    /// Requests `urls` and waits for them up to `handshake_wait`, without stalling
    /// the other tasks of a multi-threaded Tokio runtime.
    pub(crate) fn fetch_and_wait(&self, urls: &[String]) {
        self.request(urls);
        let limit = self.shared.config.handshake_wait;
        let wait = || self.wait(urls, limit);
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
            _ => wait(),
        }
    }

    /// What is known about each URL, for the rejection reason.
    pub(crate) fn explain(&self, urls: &[String]) -> String {
        if !self.shared.config.fetch {
            return "no configured CRL covers it (fetching is off)".to_owned();
        }
        if urls.is_empty() {
            return "no configured CRL covers it and it names no http:// CRL distribution point"
                .to_owned();
        }
        let now = unix_now();
        let state = self.shared.lock();
        urls.iter()
            .map(|u| {
                let what = state
                    .urls
                    .get(u)
                    .map_or_else(|| "not fetched".to_owned(), |e| e.describe(now));
                format!("{u}: {what}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub(crate) fn rfc3339_unix(t: rustls_pki_types::UnixTime) -> String {
    crl_cache::rfc3339(i64::try_from(t.as_secs()).unwrap_or(i64::MAX))
}

fn parse_configured(
    crls: &[CertificateRevocationListDer<'static>],
) -> Result<Vec<Arc<CachedCrl>>, PkiError> {
    crls.iter()
        .enumerate()
        .map(|(index, der)| {
            CachedCrl::parse(der.as_ref())
                .map(Arc::new)
                .map_err(|e| PkiError::BadCrl {
                    index,
                    reason: e.to_string(),
                })
        })
        .collect()
}

/// The `http://` URLs in a certificate's CRL distribution points extension (other
/// schemes, such as `ldap://`, are not fetched). Unparseable input gives none.
pub fn crl_urls(cert: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(cert) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for ext in cert.extensions() {
        let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() else {
            continue;
        };
        for point in points.iter() {
            let Some(DistributionPointName::FullName(names)) = &point.distribution_point else {
                continue;
            };
            for name in names {
                if let GeneralName::URI(uri) = name {
                    if cmg_core::fetch::parse_http_url(uri).is_ok() && seen.insert(*uri) {
                        out.push((*uri).to_owned());
                    }
                }
            }
        }
    }
    out
}
