//! Applying a verified bundle to a running instance. Everything fallible (the published
//! table, the token verifiers) is built first; only then is anything swapped, so a bundle
//! is applied whole or not at all. Requests in flight keep the table they started with.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use cmg_proto::mapping::{PrefixTable, PublishedUrl};
use cmg_proto::settings::SettingsBundle;
use tracing::info;

use super::SettingsError;
use crate::tokens::{OidcIssuer, SiteTokens, TokenSettings};
use crate::{Endpoint, Gateway};

/// Applies `bundle` (already verified and checked against the one in force).
pub fn apply(gw: &Gateway, bundle: &SettingsBundle) -> Result<(), SettingsError> {
    let table = PrefixTable::new(bundle.published.iter().map(|p| {
        (
            p.prefix.clone(),
            Arc::new(Endpoint {
                url: PublishedUrl {
                    prefix: p.prefix.clone(),
                    site: bundle.site.clone(),
                    auth: p.auth,
                    max_body: p.max_body,
                },
                stats: Arc::new(gw.metrics.endpoint(p.prefix.as_str())),
            }),
        )
    }))
    .map_err(|e| SettingsError::Content(e.to_string()))?;
    let tokens = token_settings(gw, bundle)?;
    gw.tokens
        .update(&tokens)
        .map_err(|e| SettingsError::Content(format!("tokens: {e}")))?;

    gw.published.store(Arc::new(table));
    gw.stopped
        .store(bundle.service_stopped.clone().map(Arc::new));
    gw.settings_version.store(bundle.version, Ordering::Relaxed);
    gw.metrics.settings_version.set(bundle.version as i64);
    info!(
        version = bundle.version,
        published = bundle.published.len(),
        site_keys = bundle.tokens.site_keys_pem.len(),
        blocked_tokens = bundle.tokens.blocked_token_ids.len(),
        oidc_issuers = bundle.tokens.oidc.len(),
        stopped = bundle.service_stopped.is_some(),
        "settings bundle applied (client trust, revocation and TLS policy still come from the config files)"
    );
    Ok(())
}

fn token_settings(gw: &Gateway, b: &SettingsBundle) -> Result<TokenSettings, SettingsError> {
    let site = if b.tokens.site_keys_pem.is_empty() {
        None
    } else {
        Some(SiteTokens {
            guid: b
                .site_guid
                .parse()
                .map_err(|e| SettingsError::Content(format!("site_guid: {e}")))?,
            keys_pem: b.tokens.site_keys_pem.clone(),
        })
    };
    Ok(TokenSettings {
        site,
        blocked: b.tokens.blocked_token_ids.clone(),
        oidc: b
            .tokens
            .oidc
            .iter()
            .map(|o| {
                // Transport settings are local: the same issuer in the config file.
                let local = gw.local_oidc.iter().find(|l| l.issuer == o.issuer);
                OidcIssuer {
                    issuer: o.issuer.clone(),
                    audiences: o.audiences.clone(),
                    tenants: o.tenants.clone(),
                    ca: local.map(|l| l.ca.clone()).unwrap_or_default(),
                    allow_http_loopback: local.is_some_and(|l| l.allow_http_loopback),
                }
            })
            .collect(),
        cache_max_age: gw.tokens.cache_max_age(),
    })
}
