//! Settings the site publishes: a signed, versioned [`SettingsBundle`] that reaches this
//! instance over a channel ([`poll`]), is verified against the site keys the instance
//! was deployed with, applied at once without a restart or a dropped connection
//! ([`apply`]), and kept on disk as the last good bundle ([`store`]) so the instance
//! serves with it after a restart while the site is unreachable.
//!
//! Applied from a bundle: published URLs (with their body limits), token settings
//! (site keys, block list, OIDC issuers), client certificate trust (roots,
//! intermediates, trust list, revocation on/off), the minimum TLS version and the
//! critical-alert service stop. Always from the config files: the server certificate,
//! the site CA, CRL files and CRL fetch tuning (`crate::tls::manager`).

pub mod apply;
pub mod poll;
pub mod store;

use std::path::PathBuf;

use cmg_token::{BundleError, BundleVerifier};

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
}

impl SettingsConfig {
    pub fn verifier(&self) -> Result<BundleVerifier, cmg_token::TokenError> {
        BundleVerifier::from_pems(&self.site_keys_pem)
    }
}

/// Why a bundle was not applied.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("bundle refused: {0}")]
    Verify(#[from] BundleError),
    #[error("bundle refused: {0}")]
    Refused(&'static str),
    #[error("bundle content not usable: {0}")]
    Content(String),
    #[error("last good bundle {path}: {source}")]
    Store {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl SettingsError {
    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Verify(e) => e.code(),
            Self::Refused(_) => "refused",
            Self::Content(_) => "bad_content",
            Self::Store { .. } => "store_failed",
        }
    }
}
