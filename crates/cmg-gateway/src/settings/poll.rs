//! Receiving bundles: the instance long-polls a connection point over a live channel
//! (`GET /_cmg/settings/bundle?after=<version>`); the connection point answers with a
//! newer signed bundle as soon as it has one from the site, or `204` after its poll
//! window. Any channel will do: every connection point of the gateway relays the same
//! site bundle, so when one goes away the next poll uses another.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cmg_proto::channel::{SETTINGS_LONG_POLL, SETTINGS_PATH};
use cmg_proto::headers;
use cmg_proto::settings::SettingsBundle;
use cmg_token::bundle::MAX_BUNDLE_BYTES;
use cmg_token::BundleVerifier;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{apply, store, SettingsError};
use crate::body::ForwardBody;
use crate::config::SettingsConfig;
use crate::state::Gateway;

/// Pause after a failed poll, before trying again (on any channel).
const RETRY: Duration = Duration::from_secs(1);

/// What became of an offered bundle.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied(u64),
    /// The same version is already in force.
    Unchanged(u64),
}

/// The instance's settings state: the verifier and the bundle in force.
#[derive(Debug)]
pub struct SettingsRuntime {
    config: SettingsConfig,
    verifier: BundleVerifier,
    current: Mutex<Option<SettingsBundle>>,
}

impl SettingsRuntime {
    pub fn new(config: SettingsConfig) -> Result<Self, cmg_token::TokenError> {
        Ok(Self {
            verifier: config.verifier()?,
            config,
            current: Mutex::new(None),
        })
    }

    /// The version in force, 0 before the first bundle.
    pub fn version(&self) -> u64 {
        self.lock().as_ref().map_or(0, |b| b.version)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<SettingsBundle>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// At start: applies the last good bundle from disk, if there is one.
    pub fn restore(&self, gw: &Gateway) -> Result<Option<u64>, SettingsError> {
        let Some(signed) = store::load(&self.config.last_good)? else {
            return Ok(None);
        };
        match self.check_and_apply(gw, &signed)? {
            Outcome::Applied(v) | Outcome::Unchanged(v) => {
                gw.announce_version(v);
                Ok(Some(v))
            }
        }
    }

    /// A signed bundle from a connection point: verify, check gateway and version,
    /// apply, keep on disk.
    pub fn offer(&self, gw: &Gateway, signed: &str) -> Result<Outcome, SettingsError> {
        let outcome = self.check_and_apply(gw, signed)?;
        if let Outcome::Applied(v) = outcome {
            store::save(&self.config.last_good, signed)?;
            gw.announce_version(v);
        }
        Ok(outcome)
    }

    fn check_and_apply(&self, gw: &Gateway, signed: &str) -> Result<Outcome, SettingsError> {
        let bundle = self.verifier.verify(signed)?;
        if bundle.gateway != self.config.gateway {
            return Err(SettingsError::Refused("bundle is for another gateway"));
        }
        let mut current = self.lock();
        if let Some(cur) = current.as_ref() {
            if bundle.version == cur.version && bundle.site == cur.site {
                return Ok(Outcome::Unchanged(bundle.version));
            }
            bundle.may_replace(cur).map_err(SettingsError::Refused)?;
        }
        apply::apply(gw, &bundle)?;
        let v = bundle.version;
        *current = Some(bundle);
        Ok(Outcome::Applied(v))
    }
}

/// Long-polls for bundles until `stop`.
pub async fn run(gw: Arc<Gateway>, rt: Arc<SettingsRuntime>, stop: CancellationToken) {
    let mut channels = gw.registry().subscribe();
    loop {
        let Some(ch) = gw.registry().any() else {
            // No channel yet: wait for one (or for shutdown).
            tokio::select! {
                _ = stop.cancelled() => return,
                r = channels.changed() => if r.is_err() { return },
            }
            continue;
        };
        let after = rt.version();
        let result = tokio::select! {
            _ = stop.cancelled() => return,
            r = tokio::time::timeout(SETTINGS_LONG_POLL + Duration::from_secs(10), fetch(&gw, &ch.sender, after)) => r,
        };
        let pause = match result {
            Ok(Ok(Some(signed))) => {
                match rt.offer(&gw, &signed) {
                    Ok(Outcome::Applied(v)) => {
                        info!(version = v, connector = %ch.connector, "settings bundle received")
                    }
                    Ok(Outcome::Unchanged(v)) => {
                        debug!(version = v, "settings bundle already in force")
                    }
                    Err(e) => {
                        gw.metrics().settings_rejected.inc();
                        warn!(code = e.code(), error = %e, connector = %ch.connector, "settings bundle refused; keeping the one in force");
                    }
                }
                // A refused bundle stays what the connection point has until the site
                // publishes another: do not spin on it.
                RETRY
            }
            Ok(Ok(None)) => Duration::ZERO,
            Ok(Err(e)) => {
                debug!(error = %e, connector = %ch.connector, "settings poll failed");
                RETRY
            }
            Err(_) => {
                debug!(connector = %ch.connector, "settings poll timed out");
                Duration::ZERO
            }
        };
        if !pause.is_zero() {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// One long poll: `Some(bundle)` on 200, `None` on 204.
async fn fetch(
    gw: &Gateway,
    sender: &crate::upstream::ChannelSender,
    after: u64,
) -> Result<Option<String>, String> {
    let req = Request::builder()
        .method(Method::GET)
        .uri(format!(
            "https://{}{SETTINGS_PATH}?after={after}",
            gw.service_name()
        ))
        .header(headers::GATEWAY_INSTANCE, gw.instance_header().clone())
        .body(ForwardBody::empty())
        .map_err(|e| e.to_string())?;
    let resp = sender.send(req).await.map_err(|e| e.to_string())?;
    match resp.status() {
        StatusCode::OK => {
            let body = Limited::new(resp.into_body(), MAX_BUNDLE_BYTES)
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            String::from_utf8(body.to_vec())
                .map(Some)
                .map_err(|_| "bundle is not text".to_string())
        }
        StatusCode::NO_CONTENT => Ok(None),
        other => Err(format!("status {other}")),
    }
}
