//! Applying a verified bundle to a running instance. Everything fallible (the published
//! table, the token verifiers, the TLS configs with the bundle's client trust) is built
//! first; only then is anything swapped, so a bundle is applied whole or not at all.
//! Requests in flight keep the table they started with; live connections keep the TLS
//! session they started with, new handshakes get the bundle's trust.

use std::sync::Arc;

use cmg_proto::mapping::{PrefixTable, PublishedUrl};
use cmg_proto::settings::SettingsBundle;
use tracing::{error, info, warn};

use super::SettingsError;
use crate::state::{Gateway, SettingsSwap};
use crate::tokens::{OidcIssuer, SiteTokens, TokenSettings};

/// Applies `bundle` (already verified and checked against the one in force).
pub fn apply(gw: &Gateway, bundle: &SettingsBundle) -> Result<(), SettingsError> {
    let table = PrefixTable::new(bundle.published.iter().map(|p| {
        (
            p.prefix.clone(),
            Arc::new(gw.endpoint(PublishedUrl {
                prefix: p.prefix.clone(),
                site: bundle.site.clone(),
                auth: p.auth,
                max_body: p.max_body,
            })),
        )
    }))
    .map_err(|e| SettingsError::Content(e.to_string()))?;
    let tokens = token_settings(gw, bundle)?;
    let me = crate::content::config::Recipient {
        gateway: &bundle.gateway,
        instance: gw.instance(),
        key: gw.instance_key(),
    };
    let content = match crate::content::config::bundle_source(
        gw.content_local(),
        &bundle.content,
        me,
    ) {
        Ok(c) => c,
        // A key this instance cannot open turns content off; the rest of the bundle
        // applies, so the instance stays manageable (the fix is to export it again).
        Err(e @ crate::content::source::SourceError::Sealed(_)) => {
            error!(error = %e, "content storage key not usable on this instance: content requests are refused");
            None
        }
        Err(e) => return Err(SettingsError::Content(format!("content: {e}"))),
    };
    if bundle.content.enabled && content.is_none() {
        warn!("content serving is on but no storage account is known (none in the bundle nor in [content]): content requests are refused");
    }
    let mut tls = gw.tls().for_bundle();
    let prepared = tls.prepare(bundle).map_err(SettingsError::Content)?;
    gw.tokens()
        .update(&tokens)
        .map_err(|e| SettingsError::Content(format!("tokens: {e}")))?;
    tls.commit(prepared);

    let content_storage = content
        .as_ref()
        .map(|c| format!("{}/{} ({})", c.account, c.container, c.key_name));
    gw.swap_settings(SettingsSwap {
        published: table,
        content,
        stopped: bundle.service_stopped.clone(),
    });
    info!(
        version = bundle.version,
        published = bundle.published.len(),
        site_keys = bundle.tokens.site_keys_pem.len(),
        blocked_tokens = bundle.tokens.blocked_token_ids.len(),
        oidc_issuers = bundle.tokens.oidc.len(),
        trusted_roots = bundle.client_auth.trusted_roots_pem.len(),
        verify_revocation = bundle.client_auth.verify_revocation,
        min_tls = %bundle.tls.min_version,
        stopped = bundle.service_stopped.is_some(),
        content = bundle.content.enabled,
        content_storage = content_storage.as_deref().unwrap_or("-"),
        "settings bundle applied"
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
                let local = gw.local_oidc().iter().find(|l| l.issuer == o.issuer);
                OidcIssuer {
                    issuer: o.issuer.clone(),
                    audiences: o.audiences.clone(),
                    tenants: o.tenants.clone(),
                    ca: local.map(|l| l.ca.clone()).unwrap_or_default(),
                    allow_http_loopback: local.is_some_and(|l| l.allow_http_loopback),
                }
            })
            .collect(),
        cache_max_age: gw.tokens().cache_max_age(),
    })
}
