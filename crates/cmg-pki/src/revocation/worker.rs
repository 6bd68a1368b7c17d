//! The checker's fetch thread: its own single-threaded Tokio runtime, so fetches make
//! progress whatever runtime (or none: `cmg cert verify`) the verifying code runs on,
//! and a handshake can wait for one without deadlocking its own runtime.
//!
//! It runs each requested fetch (a CRL by URL, an OCSP status by `CertID`) as a task
//! (at most [`MAX_PARALLEL`] at once), and every [`TICK`] starts the refreshes that
//! are due. It stops when the last [`Jobs`] handle is dropped.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, Semaphore};

use super::crl_cache::{rfc3339, unix_now, CachedCrl, CrlError};
use super::ocsp::{response, OcspAnswer};
use super::Shared;
use cmg_core::fetch::{FetchLimits, HttpFetcher};

const MAX_PARALLEL: usize = 8;
const TICK: Duration = Duration::from_secs(1);
/// Largest OCSP response accepted (they are a few KiB), below the CRL limit.
const OCSP_MAX_BYTES: usize = 1024 * 1024;

/// What the worker fetches.
#[derive(Debug, Clone)]
pub enum Job {
    /// A CRL, by distribution point URL.
    Crl(String),
    /// An OCSP status, by `CertID` (DER); the query is in the state.
    Ocsp(Vec<u8>),
}

/// Sends jobs to the worker.
#[derive(Debug, Clone)]
pub struct Jobs(mpsc::UnboundedSender<Job>);

impl Jobs {
    pub fn send(&self, url: Job) {
        // The worker only stops once every sender is gone, so this cannot fail while
        // `self` exists; if the thread died, the URL simply stays "fetch in progress"
        // until retry_after, and the status is unknown (fail closed).
        let _ = self.0.send(url);
    }
}

pub fn start(shared: Arc<Shared>) -> std::io::Result<Jobs> {
    let (tx, rx) = mpsc::unbounded_channel::<Job>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The thread holds the state weakly: it must not keep the checker alive.
    let weak = Arc::downgrade(&shared);
    drop(shared);
    std::thread::Builder::new()
        .name("cmg-crl-fetch".into())
        .spawn(move || runtime.block_on(run(weak, rx)))?;
    Ok(Jobs(tx))
}

async fn run(shared: Weak<Shared>, mut rx: mpsc::UnboundedReceiver<Job>) {
    let Some(limits) = shared.upgrade().map(|s| s.config.limits) else {
        return;
    };
    let client = HttpFetcher::http(&limits).with_user_agent("cmg-revocation");
    let slots = Arc::new(Semaphore::new(MAX_PARALLEL));
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            job = rx.recv() => {
                let Some(job) = job else { return };
                let (client, shared, slots) = (client.clone(), shared.clone(), slots.clone());
                tokio::spawn(async move {
                    let Ok(_permit) = slots.acquire_owned().await else { return };
                    match job {
                        Job::Crl(url) => fetch_one(&client, &shared, url).await,
                        Job::Ocsp(key) => fetch_ocsp(&client, &shared, key).await,
                    }
                });
            }
            _ = tick.tick() => {
                let Some(strong) = shared.upgrade() else { return };
                let due = due_refreshes(&strong);
                let due_ocsp = due_ocsp_refreshes(&strong);
                drop(strong);
                for key in due_ocsp {
                    let (client, shared, slots) = (client.clone(), shared.clone(), slots.clone());
                    tokio::spawn(async move {
                        let Ok(_permit) = slots.acquire_owned().await else { return };
                        fetch_ocsp(&client, &shared, key).await;
                    });
                }
                for url in due {
                    let (client, shared, slots) = (client.clone(), shared.clone(), slots.clone());
                    tokio::spawn(async move {
                        let Ok(_permit) = slots.acquire_owned().await else { return };
                        fetch_one(&client, &shared, url).await;
                    });
                }
            }
        }
    }
}

/// URLs whose cached CRL is due for a refresh; marks them as fetching.
fn due_refreshes(shared: &Shared) -> Vec<String> {
    let now = unix_now();
    let retry = shared.config.retry_after;
    let mut state = shared.lock();
    let mut due = Vec::new();
    for (url, entry) in state.urls.iter_mut() {
        if entry.crl.is_some() && entry.wants_fetch(now, retry) {
            entry.fetching = true;
            entry.last_attempt = Some(Instant::now());
            due.push(url.clone());
        }
    }
    due
}

/// `CertID`s whose cached OCSP answer is due for a refresh; marks them as fetching.
fn due_ocsp_refreshes(shared: &Shared) -> Vec<Vec<u8>> {
    let now = unix_now();
    let retry = shared.config.retry_after;
    let mut state = shared.lock();
    let mut due = Vec::new();
    for (key, entry) in state.ocsp.iter_mut() {
        if entry.usable(now).is_some() && entry.wants_fetch(now, retry) {
            entry.fetching = true;
            entry.last_attempt = Some(Instant::now());
            due.push(key.clone());
        }
    }
    due
}

/// Asks the certificate's responders in turn until one gives a verified answer.
async fn fetch_ocsp(client: &HttpFetcher, shared: &Weak<Shared>, key: Vec<u8>) {
    let Some((limits, nonce_on, query)) = shared.upgrade().and_then(|s| {
        let query = s.lock().ocsp.get(&key).map(|e| e.query.clone())?;
        Some((s.config.limits, s.config.ocsp_nonce, query))
    }) else {
        return;
    };
    let limits = FetchLimits {
        max_bytes: limits.max_bytes.min(OCSP_MAX_BYTES),
        ..limits
    };
    let started = Instant::now();
    let mut outcome: Result<(OcspAnswer, Bytes), String> = Err("no OCSP responder URL".to_owned());
    for url in &query.urls {
        let nonce = nonce_on.then(random_nonce);
        let result = match query.encode(nonce.as_deref()) {
            Ok(body) => client
                .post(url, "application/ocsp-request", body.into(), &limits)
                .await
                .map_err(|e| e.to_string())
                .and_then(|resp| {
                    response::verify(&resp, &query, nonce.as_deref(), unix_now())
                        .map(|answer| (answer, resp))
                        .map_err(|e| e.to_string())
                }),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(answer) => {
                outcome = Ok(answer);
                break;
            }
            Err(e) => {
                tracing::warn!(target: "cmg_pki", %url, error = %e, "OCSP request failed");
                outcome = Err(format!("{url}: {e}"));
            }
        }
    }
    let Some(shared) = shared.upgrade() else {
        return;
    };
    // On disk before the answer is published (and waiters woken), so what a
    // verification saw survives a restart right after it; never an older answer.
    if let (Some(disk), Ok((answer, der))) = (&shared.ocsp_disk, &outcome) {
        let newer = shared
            .lock()
            .ocsp
            .get(&key)
            .and_then(|e| e.answer.as_ref())
            .is_none_or(|have| have.this_update <= answer.this_update);
        if newer {
            if let Err(e) = disk.store(&hex::encode(&key), der) {
                tracing::warn!(target: "cmg_pki", error = %e, "cannot write the OCSP cache");
            }
        }
    }
    let mut state = shared.lock();
    let Some(entry) = state.ocsp.get_mut(&key) else {
        return;
    };
    entry.fetching = false;
    match outcome {
        Ok((answer, _))
            if entry
                .answer
                .as_ref()
                .is_some_and(|have| have.this_update > answer.this_update) =>
        {
            let error = CrlError::Older(rfc3339(answer.this_update)).to_string();
            tracing::warn!(target: "cmg_pki", %error, "OCSP answer refused; keeping the newer one");
            entry.last_error = Some(format!("OCSP answer {error}"));
        }
        Ok((answer, _)) => {
            tracing::info!(
                target: "cmg_pki",
                status = ?answer.status,
                valid_until = %rfc3339(answer.valid_until),
                took_ms = started.elapsed().as_millis() as u64,
                "OCSP status received"
            );
            entry.answer = Some(answer);
            entry.last_error = None;
        }
        Err(error) => entry.last_error = Some(error),
    }
    drop(state);
    shared.fetched.notify_all();
}

fn random_nonce() -> Vec<u8> {
    use ring::rand::SecureRandom;
    let mut bytes = vec![0u8; 16];
    // A failed RNG leaves a zero nonce: harmless (the nonce only adds replay
    // protection on top of the time checks).
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    bytes
}

async fn fetch_one(client: &HttpFetcher, shared: &Weak<Shared>, url: String) {
    let Some(limits) = shared.upgrade().map(|s| s.config.limits) else {
        return;
    };
    let started = Instant::now();
    let result = client.get(&url, &limits).await;
    let Some(shared) = shared.upgrade() else {
        return;
    };
    let outcome = match result {
        Ok(body) => accept(&shared, &url, &body),
        Err(e) => Err(e.to_string()),
    };
    let mut state = shared.lock();
    let Some(entry) = state.urls.get_mut(&url) else {
        return;
    };
    entry.fetching = false;
    match outcome {
        Ok(crl) => {
            tracing::info!(
                target: "cmg_pki",
                %url,
                next_update = %rfc3339(crl.next_update),
                took_ms = started.elapsed().as_millis() as u64,
                "CRL fetched"
            );
            entry.crl = Some(crl);
            entry.last_error = None;
            shared.publish(&state);
        }
        Err(error) => {
            tracing::warn!(target: "cmg_pki", %url, %error, "CRL fetch failed; keeping the previous CRL, if any");
            entry.last_error = Some(error);
        }
    }
    drop(state);
    shared.fetched.notify_all();
}

/// Parses and checks a received CRL; stores it on disk when it is good and not older
/// than the one cached (an old CRL replayed by the network is refused).
fn accept(shared: &Shared, url: &str, body: &[u8]) -> Result<Arc<CachedCrl>, String> {
    let crl = CachedCrl::parse(body).map_err(|e| e.to_string())?;
    let (cas, newest) = {
        let state = shared.lock();
        let newest = state.urls.get(url).and_then(|e| e.crl.as_ref());
        (state.cas.clone(), newest.map(|c| c.this_update))
    };
    crl.check_signature(&cas).map_err(|e| e.to_string())?;
    if newest.is_some_and(|have| have > crl.this_update) {
        return Err(CrlError::Older(rfc3339(crl.this_update)).to_string());
    }
    if crl.is_expired_at(unix_now()) {
        return Err(CrlError::Expired(rfc3339(crl.next_update)).to_string());
    }
    if let Some(disk) = &shared.disk {
        if let Err(e) = disk.store(url, &crl.der) {
            tracing::warn!(target: "cmg_pki", %url, error = %e, "cannot write the CRL cache");
        }
    }
    Ok(Arc::new(crl))
}
