//! Publishing settings to the demo's gateways: a [`SettingsBundle`] mirroring the config
//! files, signed with the demo site key and written to the bundle file the connection
//! points relay (`settings.jws` in the cluster directory). This stands in for the site's
//! publishing in a cluster without a site (the end-to-end tests forge and replay bundles
//! with it); the gateways' side (long poll over the channel, verification, apply, last
//! good bundle) is the real one. With a site, the site publishes.

use std::path::{Path, PathBuf};

use cmg_proto::mapping::{AuthKind, ExternalPrefix};
use cmg_proto::settings::{
    ClientAuthSettings, ContentSettings, PublishedEndpoint, SettingsBundle, StorageAccount,
    TlsSettings, TokenSettings, BUNDLE_FORMAT,
};
use cmg_proto::SiteCode;
use cmg_token::{SiteGuid, SiteSigner};

use crate::spec::{
    external_prefix, token_prefix, ENDPOINTS, GATEWAY_NAME, SERVICE_NAME, SITE, SITE_GUID,
    TOKEN_ENDPOINTS,
};
use crate::{step, Cluster, ClusterError};

/// The bundle file the connection points watch.
pub fn bundle_file(dir: &Path) -> PathBuf {
    dir.join("settings.jws")
}

/// The private key file of gateway instance `name` (no site: the cluster makes it).
pub fn instance_key_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}-instance.key"))
}

impl Cluster {
    /// A bundle with exactly what the config files say, at `version`.
    pub fn base_bundle(&self, version: u64) -> Result<SettingsBundle, ClusterError> {
        let prefix = |p: String| ExternalPrefix::new(p).map_err(step("published prefix"));
        let mut published = Vec::new();
        for (_, segment, max) in ENDPOINTS {
            published.push(PublishedEndpoint {
                prefix: prefix(external_prefix(segment))?,
                auth: AuthKind::MutualAuth,
                max_body: max,
            });
        }
        for (_, segment, max) in TOKEN_ENDPOINTS {
            published.push(PublishedEndpoint {
                prefix: prefix(token_prefix(segment))?,
                auth: AuthKind::ServerAuth,
                max_body: max,
            });
        }
        let pem =
            |p: &Path| std::fs::read_to_string(p).map_err(step(format!("read {}", p.display())));
        Ok(SettingsBundle {
            format: BUNDLE_FORMAT,
            site: SiteCode::new(SITE).map_err(step("site code"))?,
            site_guid: SITE_GUID.into(),
            gateway: GATEWAY_NAME.into(),
            version,
            issued_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            service_name: SERVICE_NAME.into(),
            published,
            client_auth: ClientAuthSettings {
                trusted_roots_pem: vec![pem(&self.pki.root_ca)?],
                intermediates_pem: vec![pem(&self.pki.intermediate_ca)?],
                trust_list_sha256: None,
                verify_revocation: true,
            },
            tls: TlsSettings {
                min_version: "1.2".into(),
            },
            tokens: TokenSettings {
                oidc: vec![],
                site_keys_pem: vec![pem(&self.tokens.public_key)?],
                blocked_token_ids: vec![],
            },
            content: ContentSettings::default(),
            service_stopped: None,
            instances: Vec::new(),
        })
    }

    /// `account` with `key` sealed to every gateway instance of the cluster, as the site
    /// seals it (no site: the instances' key files are the cluster's).
    pub fn seal_storage(
        &self,
        mut account: StorageAccount,
        key: &str,
    ) -> Result<StorageAccount, ClusterError> {
        let purpose = account.seal_purpose(GATEWAY_NAME);
        account.sealed_keys.clear();
        for g in &self.gateways {
            let file = instance_key_file(self.dir(), &g.name);
            let pair = cmg_token::InstanceKey::load(&file).map_err(step("instance key"))?;
            account.sealed_keys.push(
                pair.public()
                    .seal(&g.name, &purpose, key.as_bytes())
                    .map_err(step("seal the storage key"))?,
            );
        }
        Ok(account)
    }

    /// Signs `bundle` with the demo site key and hands it to the connection points.
    pub fn publish(&self, bundle: &SettingsBundle) -> Result<(), ClusterError> {
        let guid: SiteGuid = SITE_GUID.parse().map_err(step("site GUID"))?;
        let key_file = self
            .tokens
            .signing_key
            .as_ref()
            .ok_or_else(|| ClusterError::Step {
                step: "publish".into(),
                message: "the site holds the signing key and publishes the bundles".into(),
            })?;
        let key = std::fs::read(key_file).map_err(step("read site key"))?;
        let signer = SiteSigner::from_pem(&key, &guid).map_err(step("site key"))?;
        let signed = signer.sign_bundle(bundle).map_err(step("sign bundle"))?;
        self.publish_signed(&signed)
    }

    /// Writes an already signed (or forged) bundle for the connection points.
    pub fn publish_signed(&self, signed: &str) -> Result<(), ClusterError> {
        if self.site.is_some() {
            return Err(ClusterError::Step {
                step: "publish".into(),
                message: "connection points take bundles from the site, not a file".into(),
            });
        }
        let path = bundle_file(&self.spec.dir);
        // Owner only and atomic, as every bundle (it may carry sealed secrets).
        cmg_core::private_file::write(&path, signed.as_bytes()).map_err(step("publish bundle"))
    }

    /// Waits until every running gateway runs settings `version`.
    pub async fn wait_settings(
        &self,
        version: u64,
        timeout: std::time::Duration,
    ) -> Result<(), ClusterError> {
        let mut watches: Vec<_> = self
            .gateways
            .iter()
            .filter(|g| g.is_running())
            .map(|g| g.watch_settings())
            .collect();
        // One after the other: each waits only for what its gateway has not reached.
        let all = async {
            for w in &mut watches {
                if w.wait_for(|v| *v == version).await.is_err() {
                    return false;
                }
            }
            true
        };
        match tokio::time::timeout(timeout, all).await {
            Ok(true) => Ok(()),
            _ => Err(ClusterError::Timeout {
                what: format!("settings version {version} on every gateway"),
                after: timeout,
            }),
        }
    }
}
