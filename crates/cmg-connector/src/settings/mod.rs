//! Relaying the site's settings bundle to the gateway instances.
//!
//! The connection point holds the newest signed bundle it has seen in a [`SettingsFeed`]
//! and answers each instance's long poll (`GET /_cmg/settings/bundle?after=V`) with it as
//! soon as its version is above `V`, or `204` after [`SETTINGS_LONG_POLL`] or as soon as
//! the connection point starts stopping (a parked poll must not hold a channel's drain
//! for its whole grace period). It does not
//! verify the signature: the gateway does, with the site keys it was deployed with; a
//! relay that cannot forge bundles need not be trusted with judging them.
//!
//! Sources, one at a time: the site's publishing API (`site_source`, `[site_api]`),
//! long-polled with the connection point's certificate; or a bundle file
//! ([`file_source`], `[settings] bundle_file`: written by `cmg site gateway export`, or by
//! an administrator's tooling) re-read when it changes.

pub mod file_source;
pub(crate) mod site_source;

use std::sync::Arc;

use bytes::Bytes;
use cmg_proto::channel::SETTINGS_LONG_POLL;
use cmg_proto::headers;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{Either, Full};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::respond::ChannelBody;

/// A signed bundle, its (unverified) version and instance list.
#[derive(Debug)]
pub struct SignedBundle {
    pub version: u64,
    pub jws: Bytes,
    /// The gateway instances the bundle lists (empty: none).
    pub instances: Vec<cmg_proto::settings::InstanceAddrs>,
}

impl SignedBundle {
    /// `None` when `jws` does not even carry a version.
    pub fn parse(jws: &str) -> Option<Self> {
        let jws = jws.trim();
        Some(Self {
            version: cmg_token::bundle::peek_version(jws)?,
            jws: Bytes::copy_from_slice(jws.as_bytes()),
            instances: cmg_token::bundle::peek_instances(jws).unwrap_or_default(),
        })
    }
}

/// The newest bundle this connection point can hand out.
#[derive(Debug)]
pub struct SettingsFeed {
    tx: watch::Sender<Option<Arc<SignedBundle>>>,
}

impl Default for SettingsFeed {
    fn default() -> Self {
        Self {
            tx: watch::channel(None).0,
        }
    }
}

impl SettingsFeed {
    /// Offers a bundle; kept only when newer than the one held. Returns whether it was.
    pub fn offer(&self, bundle: SignedBundle) -> bool {
        let bundle = Arc::new(bundle);
        self.tx.send_if_modified(|cur| match cur {
            Some(c) if c.version >= bundle.version => false,
            _ => {
                *cur = Some(bundle.clone());
                true
            }
        })
    }

    /// Follows the bundle held.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<SignedBundle>>> {
        self.tx.subscribe()
    }

    /// The version held, 0 when none.
    pub fn version(&self) -> u64 {
        self.tx.borrow().as_ref().map_or(0, |b| b.version)
    }

    /// Waits (at most [`SETTINGS_LONG_POLL`], and not once `stopping` is cancelled) for
    /// a bundle newer than `after`.
    pub async fn newer_than(
        &self,
        after: u64,
        stopping: &CancellationToken,
    ) -> Option<Arc<SignedBundle>> {
        let mut rx = self.tx.subscribe();
        let wait = async {
            rx.wait_for(|b| b.as_ref().is_some_and(|b| b.version > after))
                .await
                .ok()
                .and_then(|b| b.clone())
        };
        tokio::select! {
            b = tokio::time::timeout(SETTINGS_LONG_POLL, wait) => b.ok().flatten(),
            _ = stopping.cancelled() => None,
        }
    }

    /// The answer to a long poll.
    pub async fn long_poll(
        &self,
        after: u64,
        cp: &HeaderValue,
        stopping: &CancellationToken,
    ) -> Response<ChannelBody> {
        let mut resp = match self.newer_than(after, stopping).await {
            Some(b) => {
                let mut r = Response::new(Either::Right(Full::new(b.jws.clone())));
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/jose"),
                );
                r.headers_mut()
                    .insert(headers::SETTINGS_VERSION, HeaderValue::from(b.version));
                r
            }
            None => {
                let mut r = Response::new(Either::Right(Full::new(Bytes::new())));
                *r.status_mut() = StatusCode::NO_CONTENT;
                r
            }
        };
        resp.headers_mut()
            .insert(headers::CONNECTION_POINT, cp.clone());
        resp
    }
}

/// `after=<n>` from a query string; 0 when absent or malformed.
pub fn after_param(query: Option<&str>) -> u64 {
    query
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("after="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(version: u64) -> SignedBundle {
        SignedBundle {
            version,
            jws: Bytes::from(format!("bundle-{version}")),
            instances: Vec::new(),
        }
    }

    #[tokio::test]
    async fn only_newer_bundles_are_kept_and_long_polls_wake() {
        let feed = Arc::new(SettingsFeed::default());
        assert!(feed.offer(fake(3)));
        assert!(!feed.offer(fake(2)), "older bundle replaced a newer one");
        assert!(!feed.offer(fake(3)));
        assert_eq!(feed.version(), 3);
        let running = CancellationToken::new();
        assert_eq!(
            feed.newer_than(1, &running).await.map(|b| b.version),
            Some(3)
        );
        let waiter = {
            let (feed, running) = (feed.clone(), running.clone());
            tokio::spawn(async move { feed.newer_than(3, &running).await.map(|b| b.version) })
        };
        tokio::task::yield_now().await;
        assert!(feed.offer(fake(4)));
        assert_eq!(waiter.await.expect("join"), Some(4));
    }

    /// A poll parked when the connection point starts stopping is answered "no newer
    /// bundle" at once, not after the long-poll period, so channels drain quickly.
    #[tokio::test(start_paused = true)]
    async fn a_parked_long_poll_ends_when_stopping_begins() {
        let feed = Arc::new(SettingsFeed::default());
        assert!(feed.offer(fake(3)));
        let stopping = CancellationToken::new();
        let waiter = {
            let (feed, stopping) = (feed.clone(), stopping.clone());
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                let resp = feed
                    .long_poll(3, &HeaderValue::from_static("cp1"), &stopping)
                    .await;
                (resp.status(), started.elapsed())
            })
        };
        tokio::task::yield_now().await;
        stopping.cancel();
        let (status, waited) = waiter.await.expect("join");
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(waited < SETTINGS_LONG_POLL, "waited {waited:?}");
    }

    #[test]
    fn after_parameter() {
        assert_eq!(after_param(Some("after=12")), 12);
        assert_eq!(after_param(Some("x=1&after=7")), 7);
        assert_eq!(after_param(Some("after=-1")), 0);
        assert_eq!(after_param(None), 0);
    }
}
