//! `[settings]`: where the instance's settings bundles come from and are kept, and the
//! site keys they must be signed with (read and checked here, at load).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cmg_core::config::{resolve, ConfigError};
use cmg_token::{BundleVerifier, InstanceKey, SitePublicKey};

use super::raw::RawSettings;

/// Where settings come from, from the `[settings]` section of the config file.
#[derive(Clone, Debug)]
pub struct SettingsConfig {
    /// The gateway (cloud service) name this instance belongs to; a bundle for another
    /// gateway is refused.
    pub gateway: String,
    /// Site public keys (PEM text) bundles must be signed with.
    pub site_keys_pem: Vec<String>,
    /// The last good bundle, rewritten atomically after each apply.
    pub last_good: PathBuf,
    /// This instance's private key, which opens the secrets a bundle seals to it (the
    /// storage key); written by the site's export (`instance.key`, 0600).
    pub instance_key: Option<Arc<InstanceKey>>,
}

impl SettingsConfig {
    pub fn verifier(&self) -> Result<BundleVerifier, cmg_token::TokenError> {
        BundleVerifier::from_pems(&self.site_keys_pem)
    }
}

pub(super) fn settings_config(
    path: &Path,
    raw: RawSettings,
) -> Result<SettingsConfig, ConfigError> {
    let inv = |field: &str, msg: String| ConfigError::invalid(path, field, msg);
    if raw.gateway.is_empty() {
        return Err(inv("settings.gateway", "must not be empty".into()));
    }
    if raw.site_keys.is_empty() {
        return Err(inv(
            "settings.site_keys",
            "at least one site key file".into(),
        ));
    }
    let site_keys_pem = read_site_keys(path, &raw.site_keys, "settings.site_keys")?;
    let config = SettingsConfig {
        gateway: raw.gateway,
        site_keys_pem,
        last_good: resolve(path, &raw.last_good),
        instance_key: match &raw.instance_key {
            None => None,
            Some(file) => Some(Arc::new(
                InstanceKey::load(&resolve(path, file))
                    .map_err(|e| inv("settings.instance_key", e.to_string()))?,
            )),
        },
    };
    config
        .verifier()
        .map_err(|e| inv("settings.site_keys", e.to_string()))?;
    Ok(config)
}

/// Reads RSA public keys (PEM files), checking each.
pub(super) fn read_site_keys(
    path: &Path,
    files: &[PathBuf],
    field: &str,
) -> Result<Vec<String>, ConfigError> {
    let mut keys_pem = Vec::with_capacity(files.len());
    for (i, p) in files.iter().enumerate() {
        let file = resolve(path, p);
        let bad = |msg: String| {
            ConfigError::invalid(
                path,
                format!("{field}[{i}]"),
                format!("{}: {msg}", file.display()),
            )
        };
        let text = std::fs::read_to_string(&file).map_err(|e| bad(e.to_string()))?;
        SitePublicKey::from_pem(text.as_bytes()).map_err(|e| bad(e.to_string()))?;
        keys_pem.push(text);
    }
    Ok(keys_pem)
}
