//! The storage account of a gateway's content serving (cloud distribution point) and
//! its key rotation (seed 001: "Configuration Manager rotates the storage account key
//! for the CMG. This process happens automatically every 180 days").
//!
//! An Azure storage account has two keys, key1 and key2. The site keeps both, sealed
//! with the master key, and publishes only the one in force. Rotation switches to the
//! other key and publishes; the gateways sign with it from their next request on.
//!
//! Not implemented: regenerating the retired key at the provider (the Azure
//! `regenerateKey` call), which needs the cloud subscription. After a rotation the
//! administrator regenerates the retired key at Azure and gives it back with
//! `cmg site gateway storage set` before the next rotation.

use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::Row as _;

use super::{Actor, Result, Store, StoreError};
use crate::model::{Changed, StorageSet, StorageView};
use cmg_proto::settings::StorageAccount;
use cmg_token::InstancePublicKey;

/// Days between automatic rotations unless set otherwise (seed 001).
pub const DEFAULT_ROTATION_DAYS: u32 = 180;
const DAY: i64 = 86_400;

pub(crate) fn purpose(gateway: &str, key: u8) -> String {
    format!("storage-key{key}:{gateway}")
}

struct Row {
    gateway: String,
    account: String,
    endpoint: Option<String>,
    container: String,
    key1_sealed: String,
    key2_sealed: String,
    active_key: u8,
    rotated_at: i64,
    rotation_days: u32,
}

impl Row {
    fn from_row(r: &AnyRow) -> Result<Self> {
        let active: i64 = r.try_get("active_key")?;
        Ok(Self {
            gateway: r.try_get("gateway")?,
            account: r.try_get("account")?,
            endpoint: r.try_get("endpoint")?,
            container: r.try_get("container")?,
            key1_sealed: r.try_get("key1_sealed")?,
            key2_sealed: r.try_get("key2_sealed")?,
            active_key: if active == 2 { 2 } else { 1 },
            rotated_at: r.try_get("rotated_at")?,
            rotation_days: u32::try_from(r.try_get::<i64, _>("rotation_days")?)
                .map_err(StoreError::internal)?,
        })
    }

    fn view(&self) -> StorageView {
        StorageView {
            gateway: self.gateway.clone(),
            account: self.account.clone(),
            endpoint: self.endpoint.clone(),
            container: self.container.clone(),
            active_key: format!("key{}", self.active_key),
            rotated_at: self.rotated_at,
            rotation_days: self.rotation_days,
            next_rotation_at: self.rotated_at + i64::from(self.rotation_days) * DAY,
        }
    }
}

fn check(req: &StorageSet) -> Result<()> {
    let bad = |m: &str| Err(StoreError::invalid("invalid_storage", m.to_owned()));
    if req.account.is_empty() || req.account.len() > 24 {
        return bad("account: 1 to 24 characters");
    }
    if !req
        .account
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return bad("account: lowercase letters and digits only");
    }
    if req.container.is_empty() || req.container.len() > 63 || req.container.contains('/') {
        return bad("container: 1 to 63 characters, no '/'");
    }
    if let Some(e) = &req.endpoint {
        if !(e.starts_with("https://") || e.starts_with("http://")) {
            return bad("endpoint: an http(s) URL");
        }
    }
    for (name, k) in [("key1", &req.key1), ("key2", &req.key2)] {
        use base64::Engine as _;
        if base64::engine::general_purpose::STANDARD
            .decode(k.expose())
            .map_or(true, |b| b.is_empty())
        {
            return Err(StoreError::invalid(
                "invalid_storage",
                format!("{name}: base64, as the provider shows it"),
            ));
        }
    }
    if req.rotation_days == Some(0) {
        return bad("rotation_days: at least 1");
    }
    Ok(())
}

impl Store {
    /// Sets (or replaces) the gateway's storage account, both keys sealed; key1 is in
    /// force. Publishes.
    pub async fn set_storage(
        &self,
        gateway: &str,
        req: StorageSet,
        actor: &Actor,
    ) -> Result<StorageView> {
        check(&req)?;
        let mut c = self.begin(actor).await?;
        super::gateway::load(&mut c.tx, gateway).await?;
        let k1 = self
            .key()
            .seal(&purpose(gateway, 1), req.key1.expose().as_bytes())?;
        let k2 = self
            .key()
            .seal(&purpose(gateway, 2), req.key2.expose().as_bytes())?;
        let days = req.rotation_days.unwrap_or(DEFAULT_ROTATION_DAYS);
        sqlx::query("DELETE FROM storage_credentials WHERE gateway = $1")
            .bind(gateway)
            .execute(&mut *c.tx)
            .await?;
        sqlx::query(
            "INSERT INTO storage_credentials (gateway, account, endpoint, container, key1_sealed, \
             key2_sealed, active_key, rotated_at, rotation_days) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8)",
        )
        .bind(gateway)
        .bind(req.account.as_str())
        .bind(req.endpoint.as_deref())
        .bind(req.container.as_str())
        .bind(k1)
        .bind(k2)
        .bind(c.now)
        .bind(i64::from(days))
        .execute(&mut *c.tx)
        .await?;
        let version = c.bump(gateway).await?;
        // Never the keys, in the audit log or anywhere else.
        c.audit(
            "storage.set",
            gateway,
            json!({"account": req.account, "container": req.container,
                   "endpoint": req.endpoint, "active_key": "key1",
                   "rotation_days": days, "settings_version": version}),
        )
        .await?;
        c.commit(self).await?;
        tracing::info!(gateway, version, "storage account set");
        self.storage(gateway).await
    }

    /// The gateway's storage account, without keys.
    pub async fn storage(&self, gateway: &str) -> Result<StorageView> {
        let row = sqlx::query("SELECT * FROM storage_credentials WHERE gateway = $1")
            .bind(gateway)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::not_found("storage account of gateway", gateway))?;
        Ok(Row::from_row(&row)?.view())
    }

    /// What the gateway's bundle carries: the account with the key in force, sealed to
    /// each instance whose public key the site holds (`instances` and below; an
    /// instance not exported yet gets no copy).
    pub(crate) async fn storage_account(
        &self,
        gateway: &str,
        instances: u32,
    ) -> Result<Option<StorageAccount>> {
        let Some(row) = sqlx::query("SELECT * FROM storage_credentials WHERE gateway = $1")
            .bind(gateway)
            .fetch_optional(self.pool())
            .await?
        else {
            return Ok(None);
        };
        let r = Row::from_row(&row)?;
        let sealed = if r.active_key == 2 {
            &r.key2_sealed
        } else {
            &r.key1_sealed
        };
        let key = self.key().open(&purpose(gateway, r.active_key), sealed)?;
        let mut account = StorageAccount {
            account: r.account,
            endpoint: r.endpoint,
            container: r.container,
            key_name: format!("key{}", r.active_key),
            sealed_keys: Vec::new(),
        };
        let seal_purpose = account.seal_purpose(gateway);
        for (instance, public) in self.instance_keys(gateway, instances).await? {
            let name = format!("{gateway}-{instance}");
            account.sealed_keys.push(
                public
                    .seal(&name, &seal_purpose, key.expose().as_bytes())
                    .map_err(StoreError::internal)?,
            );
        }
        Ok(Some(account))
    }

    /// The instances' public keys (instance number, key), instances 1 to `instances`.
    async fn instance_keys(
        &self,
        gateway: &str,
        instances: u32,
    ) -> Result<Vec<(i64, InstancePublicKey)>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT instance, public_key FROM instance_keys \
             WHERE gateway = $1 AND instance <= $2 ORDER BY instance",
        )
        .bind(gateway)
        .bind(i64::from(instances))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(n, text)| {
                InstancePublicKey::from_base64(&text)
                    .map(|k| (n, k))
                    .map_err(StoreError::internal)
            })
            .collect()
    }

    /// Switches the gateway's storage key in force to the other one and publishes
    /// (by hand, or from [`Self::rotate_due_storage_keys`]).
    pub async fn rotate_storage_key(
        &self,
        gateway: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<(StorageView, Changed)> {
        let mut c = self.begin(actor).await?;
        let row = sqlx::query("SELECT * FROM storage_credentials WHERE gateway = $1")
            .bind(gateway)
            .fetch_optional(&mut *c.tx)
            .await?
            .ok_or_else(|| StoreError::not_found("storage account of gateway", gateway))?;
        let r = Row::from_row(&row)?;
        let next: u8 = if r.active_key == 1 { 2 } else { 1 };
        sqlx::query(
            "UPDATE storage_credentials SET active_key = $2, rotated_at = $3 WHERE gateway = $1",
        )
        .bind(gateway)
        .bind(i64::from(next))
        .bind(c.now)
        .execute(&mut *c.tx)
        .await?;
        let version = c.bump(gateway).await?;
        c.audit(
            "storage.rotate",
            gateway,
            json!({"from": format!("key{}", r.active_key), "to": format!("key{next}"),
                   "reason": reason, "settings_version": version,
                   "note": "the retired key is not regenerated at the provider (not implemented)"}),
        )
        .await?;
        c.commit(self).await?;
        tracing::info!(
            gateway,
            from = r.active_key,
            to = next,
            version,
            reason,
            "storage key rotated"
        );
        Ok((
            self.storage(gateway).await?,
            Changed {
                settings_version: version,
            },
        ))
    }

    /// Rotates every storage key whose rotation is due at `now`; returns the gateways.
    pub async fn rotate_due_storage_keys(&self, now: i64, actor: &Actor) -> Result<Vec<String>> {
        let due: Vec<String> = sqlx::query_scalar(
            "SELECT gateway FROM storage_credentials WHERE rotated_at + rotation_days * 86400 <= $1 \
             ORDER BY gateway",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        for g in &due {
            self.rotate_storage_key(g, "scheduled", actor).await?;
        }
        Ok(due)
    }
}
