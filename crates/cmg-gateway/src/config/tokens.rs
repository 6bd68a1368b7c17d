//! `[tokens]`: the site's token keys and the OIDC issuers, read and checked at load.

use std::path::Path;
use std::time::Duration;

use cmg_core::config::{resolve, ConfigError};
use cmg_token::SiteGuid;

use super::raw::RawTokens;
use super::settings::read_site_keys;
use crate::tokens::{OidcIssuer, SiteTokens, TokenSettings};

pub(super) fn token_settings(path: &Path, raw: RawTokens) -> Result<TokenSettings, ConfigError> {
    let inv = |field: &str, msg: String| ConfigError::invalid(path, field, msg);
    let site = match (raw.site_guid, raw.site_keys.is_empty()) {
        (None, true) => None,
        (None, false) => {
            return Err(inv(
                "tokens.site_guid",
                "required with tokens.site_keys".into(),
            ))
        }
        (Some(_), true) => {
            return Err(inv(
                "tokens.site_keys",
                "at least one site key file is required with tokens.site_guid".into(),
            ))
        }
        (Some(guid), false) => {
            let guid: SiteGuid = guid
                .parse()
                .map_err(|e| inv("tokens.site_guid", format!("{e}")))?;
            let keys_pem = read_site_keys(path, &raw.site_keys, "tokens.site_keys")?;
            Some(SiteTokens { guid, keys_pem })
        }
    };
    let oidc = raw
        .oidc
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            if o.issuer.is_empty() || o.audiences.is_empty() {
                return Err(inv(
                    &format!("tokens.oidc[{i}]"),
                    "issuer and at least one audience are required".into(),
                ));
            }
            Ok(OidcIssuer {
                issuer: o.issuer,
                audiences: o.audiences,
                tenants: o.tenants,
                ca: o.ca.iter().map(|p| resolve(path, p)).collect(),
                allow_http_loopback: o.allow_http_loopback,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let settings = TokenSettings {
        site,
        blocked: raw.blocked_token_ids,
        oidc,
        cache_max_age: raw.cache_max_age.unwrap_or(Duration::from_secs(300)),
    };
    // A bad key, issuer URL or issuer CA file fails here, with the file named.
    settings.check().map_err(|e| inv("tokens", e.to_string()))?;
    Ok(settings)
}
