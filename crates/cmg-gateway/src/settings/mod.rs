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

mod apply;
mod poll;
mod store;

use std::path::PathBuf;
use std::sync::Arc;

use cmg_token::BundleError;
use tracing::{info, warn};

use crate::config::SettingsConfig;
use crate::error::SetupError;
use crate::state::Gateway;

pub(crate) use poll::{run, SettingsRuntime};

/// Why a bundle was not applied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SettingsError {
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
    #[error("last good bundle: {0}")]
    Private(cmg_core::private_file::PrivateFileError),
}

impl SettingsError {
    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Verify(e) => e.code(),
            Self::Refused(_) => "refused",
            Self::Content(_) => "bad_content",
            Self::Store { .. } | Self::Private(_) => "store_failed",
        }
    }
}

/// At start: the settings runtime, with the last good bundle applied when there is a
/// usable one, so the instance serves as the site last said even when the site (or
/// every connection point) is unreachable.
pub(crate) fn restore(
    gw: &Gateway,
    sc: &SettingsConfig,
) -> Result<Arc<SettingsRuntime>, SetupError> {
    let rt = SettingsRuntime::new(sc.clone()).map_err(|e| SetupError::File {
        path: "<config>".into(),
        message: format!("settings.site_keys: {e}"),
    })?;
    match rt.restore(gw) {
        Ok(Some(v)) => {
            info!(version = v, path = %sc.last_good.display(), "last good settings bundle applied")
        }
        Ok(None) => {
            info!(path = %sc.last_good.display(), "no settings bundle yet; serving the config file's settings until one arrives")
        }
        // A bundle others may read: refuse to start, as with a key file (the fix is named).
        Err(SettingsError::Private(e)) => {
            return Err(SetupError::File {
                path: sc.last_good.clone(),
                message: e.to_string(),
            })
        }
        Err(e) => {
            warn!(code = e.code(), error = %e, "last good settings bundle not usable; serving the config file's settings until a bundle arrives")
        }
    }
    Ok(Arc::new(rt))
}
