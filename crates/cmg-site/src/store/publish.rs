//! Publishing: a gateway's settings bundle built from the database and signed with the
//! site key, the URL mappings its connection points forward by, and an instance's
//! deployment package.

use cmg_proto::mapping::{AuthKind, ExternalPrefix};
use cmg_proto::settings::{
    ClientAuthSettings, ContentSettings, PublishedEndpoint, SettingsBundle, TlsSettings,
    TokenSettings, BUNDLE_FORMAT,
};
use cmg_token::InstanceKey;
use serde_json::json;

use super::{Actor, Result, Store, StoreError};
use crate::model::{ExportFile, ExportPackage, ExportRequest, PublishedMappings};

/// A signed bundle and the version inside it.
#[derive(Debug, Clone)]
pub struct SignedBundle {
    pub version: u64,
    pub jws: String,
}

/// Where an instance listens, for its generated config file.
#[derive(Debug, Clone)]
pub struct ExportListen {
    pub client: String,
    pub channel: String,
    pub admin: Option<String>,
}

impl Default for ExportListen {
    fn default() -> Self {
        Self {
            client: "0.0.0.0:443".into(),
            channel: "0.0.0.0:10140".into(),
            admin: None,
        }
    }
}

impl Store {
    /// The gateway's current settings version.
    pub async fn settings_version(&self, gateway: &str) -> Result<u64> {
        let v: i64 = sqlx::query_scalar("SELECT settings_version FROM gateways WHERE name = $1")
            .bind(gateway)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::not_found("gateway", gateway))?;
        Ok(v as u64)
    }

    /// Builds the gateway's bundle from the database. The version is read first: what
    /// follows is at least as new as it, and any later change bumps the version again.
    pub async fn bundle(&self, gateway: &str) -> Result<SettingsBundle> {
        let g = self.gateway_row(gateway).await?;
        let (site, guid) = self.site_ids().await?;
        let now = crate::now();
        let mut published = Vec::new();
        for m in self.all_mappings().await? {
            published.push(PublishedEndpoint {
                prefix: ExternalPrefix::new(m.external).map_err(StoreError::internal)?,
                auth: m.auth,
                max_body: m.max_body,
            });
        }
        let blocked: Vec<String> = sqlx::query_scalar(
            "SELECT tracking_id FROM bulk_tokens WHERE blocked = 1 AND expires_at > $1 ORDER BY tracking_id",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        let storage_account = self.storage_account(&g.name, g.instances).await?;
        let instances = super::instances::for_bundle(&g.name, &g.instance_channels);
        Ok(SettingsBundle {
            format: BUNDLE_FORMAT,
            site,
            site_guid: guid.to_string(),
            gateway: g.name,
            version: g.settings_version,
            issued_at: now as u64,
            service_name: g.service_name,
            published,
            client_auth: ClientAuthSettings {
                trusted_roots_pem: g.trusted_roots,
                intermediates_pem: g.intermediates,
                trust_list_sha256: g.trust_list,
                verify_revocation: g.verify_revocation,
            },
            tls: TlsSettings {
                min_version: g.min_tls.as_str().to_owned(),
            },
            tokens: TokenSettings {
                oidc: Vec::new(),
                site_keys_pem: self.valid_public_keys(now).await?,
                blocked_token_ids: blocked,
            },
            content: ContentSettings {
                enabled: g.content_enabled,
                storage: storage_account,
            },
            service_stopped: g.service_stopped,
            instances,
        })
    }

    /// The bundle, signed with the active site key.
    pub async fn signed_bundle(&self, gateway: &str) -> Result<SignedBundle> {
        let bundle = self.bundle(gateway).await?;
        let signer = self.signer().await?;
        let jws = signer.sign_bundle(&bundle).map_err(StoreError::internal)?;
        Ok(SignedBundle {
            version: bundle.version,
            jws,
        })
    }

    /// What the gateway's connection points forward by.
    pub async fn published_mappings(&self, gateway: &str) -> Result<PublishedMappings> {
        let version = self.settings_version(gateway).await?;
        Ok(PublishedMappings {
            gateway: gateway.to_owned(),
            settings_version: version,
            mappings: self.all_mappings().await?,
        })
    }

    /// An instance's deployment package (seed 002: "For troubleshooting deployment, use
    /// CloudMgr.log and CMGSetup.log"). Clears the gateway's redeploy mark.
    pub async fn export(
        &self,
        gateway: &str,
        req: &ExportRequest,
        listen: &ExportListen,
        actor: &Actor,
    ) -> Result<ExportPackage> {
        let g = self.gateway_row(gateway).await?;
        if req.instance == 0 || req.instance > g.instances {
            return Err(StoreError::invalid(
                "bad_instance",
                format!("{gateway} has instances 1 to {}", g.instances),
            ));
        }
        let key = self.open_gateway_key(&g)?;
        let site = self.site().await?;
        // The instance's own key pair, made here: the site must know the public half
        // before it seals anything to the instance, and the package is the one channel
        // that already carries the instance's secrets (its server key) from the site.
        // Exporting again replaces it (the old package's key no longer opens anything).
        let (instance_key, instance_key_text) = InstanceKey::generate();
        let mut c = self.begin(actor).await?;
        sqlx::query(
            "INSERT INTO instance_keys (gateway, instance, public_key, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (gateway, instance) DO UPDATE \
             SET public_key = excluded.public_key, created_at = excluded.created_at",
        )
        .bind(gateway)
        .bind(i64::from(req.instance))
        .bind(instance_key.public().to_base64())
        .bind(c.now)
        .execute(&mut *c.tx)
        .await?;
        // A sealed storage key in the bundle changes with the instance's key: publish.
        let has_storage: Option<String> =
            sqlx::query_scalar("SELECT gateway FROM storage_credentials WHERE gateway = $1")
                .bind(gateway)
                .fetch_optional(&mut *c.tx)
                .await?;
        let version: i64 = if has_storage.is_some() {
            c.bump(gateway).await? as i64
        } else {
            sqlx::query_scalar("SELECT settings_version FROM gateways WHERE name = $1")
                .bind(gateway)
                .fetch_one(&mut *c.tx)
                .await?
        };
        sqlx::query("UPDATE gateways SET redeploy_required = 0 WHERE name = $1")
            .bind(gateway)
            .execute(&mut *c.tx)
            .await?;
        c.audit(
            "gateway.export",
            gateway,
            json!({"instance": req.instance, "settings_version": version,
                   "instance_key": instance_key.public().key_id()}),
        )
        .await?;
        c.commit(self).await?;
        let signed = self.signed_bundle(gateway).await?;
        let keys = self.valid_public_keys(crate::now()).await?;
        let instance_name = format!("{}-{}", g.name, req.instance);
        let mut files = vec![
            file("server.pem", g.cert_pem.clone(), false),
            file("server.key", key.expose().to_owned(), true),
            file("site-ca.pem", site.ca_pem.clone(), false),
            file("site-keys.pem", keys.concat(), false),
            file("bundle.jws", format!("{}\n", signed.jws), true),
            file("instance.key", instance_key_text.to_string(), true),
        ];
        let mut toml = format!(
            "# Generated by `cmg site gateway export` for {gateway} instance {n} (settings version {v}).\n\
             # The signed bundle.jws carries the full settings; this file is what the instance starts from.\n\
             instance = {instance_name:?}\n\
             service_name = {service:?}\n\n\
             [listen]\nclient = {client:?}\nchannel = {channel:?}\n",
            n = req.instance,
            v = signed.version,
            service = g.service_name,
            client = listen.client,
            channel = listen.channel,
        );
        if let Some(a) = &listen.admin {
            toml.push_str(&format!("admin = {a:?}\n"));
        }
        toml.push_str(&format!(
            "\n[tls]\ncert = \"server.pem\"\nkey = \"server.key\"\nmin_version = {:?}\n",
            g.min_tls.as_str()
        ));
        toml.push_str("\n[client_auth]\n");
        if !g.trusted_roots.is_empty() {
            files.push(file("trusted-roots.pem", g.trusted_roots.concat(), false));
            toml.push_str("trusted_roots = [\"trusted-roots.pem\"]\n");
        }
        if !g.intermediates.is_empty() {
            files.push(file("intermediates.pem", g.intermediates.concat(), false));
            toml.push_str("trusted_intermediates = [\"intermediates.pem\"]\n");
        }
        toml.push_str("\n[channel]\nsite_ca = [\"site-ca.pem\"]\n");
        // The config file format does not take token URLs yet; the bundle carries them.
        for m in self.all_mappings().await? {
            if m.auth == AuthKind::MutualAuth {
                toml.push_str(&format!(
                    "\n[[published_url]]\nprefix = {:?}\nsite = {:?}\nmax_body_bytes = {}\n",
                    m.external, site.code, m.max_body
                ));
            }
        }
        // Settings come from the site: bundles are verified with the site keys, and the
        // exported first bundle is the last good one, so the instance starts with every
        // published URL (token URLs too) and its trust before any connection point is up.
        toml.push_str(&format!(
            "\n[settings]\ngateway = {gateway:?}\nsite_keys = [\"site-keys.pem\"]\nlast_good = \"bundle.jws\"\ninstance_key = \"instance.key\"\n"
        ));
        files.push(file("gateway.toml", toml, false));
        tracing::info!(target: "cmg_site::setup", gateway, instance = req.instance, version = signed.version, "deployment package built");
        Ok(ExportPackage {
            gateway: gateway.to_owned(),
            instance: req.instance,
            settings_version: signed.version,
            files,
        })
    }
}

fn file(name: &str, content: String, secret: bool) -> ExportFile {
    ExportFile {
        name: name.to_owned(),
        content,
        secret,
    }
}
