//! Reloading TLS material without a restart: every `reload_interval` the files the
//! config names (server certificate and key, trusted roots, intermediates, CRLs, trust
//! list, site CA) are checked for a changed size or modification time; on a change the
//! configs are rebuilt and swapped in. A rebuild that fails (a half-written file, a key
//! that does not match) keeps the current material and is retried at the next check.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::TlsManager;
use crate::config::Config;

type Stamp = Vec<(PathBuf, Option<(SystemTime, u64)>)>;

fn files(config: &Config) -> Vec<PathBuf> {
    let mut v = vec![config.tls.cert.clone(), config.tls.key.clone()];
    let a = &config.client_auth;
    for list in [
        &a.trusted_roots,
        &a.trusted_intermediates,
        &a.crl_files,
        &a.trust_list,
        &config.channel.site_ca,
        &config.channel.crl_files,
    ] {
        v.extend(list.iter().cloned());
    }
    v
}

fn stamp(files: &[PathBuf]) -> Stamp {
    files
        .iter()
        .map(|p| {
            let meta = std::fs::metadata(p).ok();
            (
                p.clone(),
                meta.and_then(|m| Some((m.modified().ok()?, m.len()))),
            )
        })
        .collect()
}

/// Watches the files until `stop` is cancelled.
pub async fn watch(manager: Arc<TlsManager>, every: Duration, stop: CancellationToken) {
    let config = manager.config();
    let paths = files(config);
    let mut last = stamp(&paths);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        let now = stamp(&paths);
        if now == last {
            continue;
        }
        match manager.reload() {
            Ok(()) => {
                last = now;
                info!(instance = %config.instance, "TLS material changed on disk; reloaded (live connections keep theirs)");
            }
            Err(e) => {
                warn!(instance = %config.instance, error = %e, "TLS material changed but cannot be loaded; keeping the current material")
            }
        }
    }
}
