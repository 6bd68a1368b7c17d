//! The site as the source of settings (`[site_api]`): a task long-polls
//! `GET /api/v1/publish/gateways/{name}/bundle?after=V&wait=S` with `V` the version the
//! feed holds, and offers each bundle to the [`SettingsFeed`]. A failed poll (site down,
//! refused certificate, oversized or malformed answer) is logged with its reason and
//! retried after a jittered exponential backoff; the bundle already held stays and keeps
//! being relayed.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::SettingsFeed;
use crate::backoff::Backoff;
use crate::site::SiteClient;

/// Long-polls the site until `stop`.
pub(crate) async fn run(
    site: SiteClient,
    wait: Duration,
    mut backoff: Backoff,
    feed: Arc<SettingsFeed>,
    stop: CancellationToken,
) {
    let gateway = site.gateway().to_owned();
    let mut failing = false;
    loop {
        let after = feed.version();
        let result = tokio::select! {
            _ = stop.cancelled() => return,
            r = site.bundle(after, wait) => r,
        };
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
