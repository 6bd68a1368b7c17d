//! The demo site's token material: an RSA signing key, its public key (what gateways are
//! given) and a device token for the demo's token client. Without a site the cluster
//! generates the key itself; with one, the site holds the key and registers the device
//! (`deploy.rs`).

use std::path::{Path, PathBuf};

use cmg_token::site::{generate_key_pem, DEVICE_DEFAULT_LIFETIME};
use cmg_token::{SiteGuid, SiteSigner};

use crate::spec::{DEMO_DEVICE, SITE_GUID};

/// Where the key files are, and a token to use.
#[derive(Debug, Clone)]
pub struct DemoTokens {
    /// The private key file; `None` when the site holds the key.
    pub signing_key: Option<PathBuf>,
    pub public_key: PathBuf,
    /// A device token for [`DEMO_DEVICE`], valid 90 days.
    pub device_token: String,
    pub device_token_id: String,
}

/// Why the token material could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DemoTokenError {
    #[error("site token key: {0}")]
    Token(#[from] cmg_token::TokenError),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DemoTokens {
    /// Generates a signing key in `dir` (`site-signing.pem`, `site-signing.pub.pem`) and
    /// issues a device token with it.
    pub fn generate(dir: &Path) -> Result<Self, DemoTokenError> {
        let guid: SiteGuid = SITE_GUID.parse()?;
        let key_pem = generate_key_pem()?;
        let signer = SiteSigner::from_pem(key_pem.as_bytes(), &guid)?;
        let signing_key = dir.join("site-signing.pem");
        let public_key = dir.join("site-signing.pub.pem");
        write(&signing_key, &key_pem)?;
        write(&public_key, &signer.public_key_pem())?;
        let issued = signer.issue_device(DEMO_DEVICE, DEVICE_DEFAULT_LIFETIME)?;
        Ok(Self {
            signing_key: Some(signing_key),
            public_key,
            device_token_id: issued.tracking_id.clone(),
            device_token: issued.token,
        })
    }
}

fn write(path: &Path, text: &str) -> Result<(), DemoTokenError> {
    // Tokens are secrets: owner only, atomically.
    cmg_core::private_file::write(path, text.as_bytes()).map_err(|e| DemoTokenError::Write {
        path: path.to_owned(),
        source: std::io::Error::other(e),
    })
}
