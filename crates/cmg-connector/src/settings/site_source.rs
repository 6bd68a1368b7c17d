//! The site as the source of settings (`[site_api]`): a task long-polls
//! `GET /api/v1/publish/gateways/{name}/bundle?after=V&wait=S` with `V` the version the
//! feed holds, and offers each bundle to the [`SettingsFeed`]. A failed poll (site down,
//! refused certificate, oversized or malformed answer) is logged with its reason and
//! retried after a jittered exponential backoff; the bundle already held stays and keeps
//! being relayed.
//!
//! After each poll, when the settings version moved since the URL mappings were last
//! read, the task also reads `GET /api/v1/publish/gateways/{name}/mappings` and swaps
//! the forwarder's mappings for the site's (an empty list: back to the config file's).
//! A list that cannot be read or used is logged and the mappings in force stay.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::forward::Forwarder;
use crate::relay::Relay;
use crate::site::SiteClient;

/// Long-polls the site until `stop`.
pub(crate) async fn run(
    site: SiteClient,
    wait: Duration,
    mut backoff: Backoff,
    relay: Arc<Relay>,
    forwarder: Arc<Forwarder>,
    stop: CancellationToken,
) {
    let feed = &relay.settings;
    let gateway = site.gateway().to_owned();
    let mut failing = false;
    // The settings version the mappings in force were read at.
    let mut mappings_at: Option<u64> = None;
    loop {
        let after = feed.version();
        let result = tokio::select! {
            _ = stop.cancelled() => return,
            r = site.bundle(after, wait) => r,
        };
        relay.metrics.poll(result.is_ok());
        let retry = match result {
            Ok(None) => {
                debug!(%gateway, after, "no newer settings at the site");
                None
            }
            Ok(Some(bundle)) => {
                let version = bundle.version;
                if feed.offer(bundle) {
                    info!(%gateway, version, "settings bundle received from the site");
                    None
                } else {
                    // The site answered a poll for "newer than `after`" with an older or
                    // equal version: do not spin on it.
                    let delay = backoff.next_delay();
                    warn!(%gateway, version, held = after, retry_in = ?delay, "site sent a bundle that is not newer; ignored");
                    Some(delay)
                }
            }
            Err(e) => {
                let delay = backoff.next_delay();
                warn!(%gateway, error = %e, retry_in = ?delay, "settings poll at the site failed; relaying the bundle held");
                Some(delay)
            }
        };
        match retry {
            None => {
                if failing {
                    info!(%gateway, "site reachable again");
                }
                failing = false;
                backoff.reset();
                if mappings_at != Some(feed.version()) {
                    mappings_at = refresh_mappings(&site, &forwarder).await.or(mappings_at);
                }
            }
            Some(delay) => {
                failing = true;
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Reads the site's mappings and puts them in force; the settings version they were
/// read at, `None` when they were not.
async fn refresh_mappings(site: &SiteClient, forwarder: &Forwarder) -> Option<u64> {
    let gateway = site.gateway();
    match site.mappings().await {
        Ok(m) => match forwarder.use_site_mappings(&m.mappings) {
            Ok(n) if m.mappings.is_empty() => {
                info!(%gateway, mappings = n, "the site publishes no URL mappings; using the config file's");
                Some(m.settings_version)
            }
            Ok(n) => {
                info!(%gateway, mappings = n, version = m.settings_version, "URL mappings from the site in force");
                Some(m.settings_version)
            }
            Err(e) => {
                warn!(%gateway, error = %e, "URL mappings from the site not usable; keeping the ones in force");
                // Not retried until the settings change again.
                Some(m.settings_version)
            }
        },
        Err(e) => {
            warn!(%gateway, error = %e, "URL mappings not read from the site; keeping the ones in force");
            None
        }
    }
}
