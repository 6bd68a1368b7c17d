//! The site itself: creation, its CA and API certificate, signing keys and their
//! rollover and bulk tokens.

use std::time::Duration;

use cmg_pki::site_ca::SiteCa;
use cmg_proto::SiteCode;
use cmg_token::{SiteGuid, SiteSigner};
use serde_json::json;
use sqlx::Row as _;

use super::{b, get_bool, Actor, Result, Store, StoreError};
use crate::keys;
use crate::model::{KeyView, SiteView, TokenIssued, TokenView};
use crate::secret::Secret;

pub(crate) const KEY_CHECK_PURPOSE: &str = "key-check";
pub(crate) const CA_KEY: &str = "ca-key";
pub(crate) const API_KEY: &str = "api-key";

/// Default lifetime of a bulk token, minutes (3 days).
pub const TOKEN_DEFAULT_MINUTES: u64 = 3 * 24 * 60;
/// Longest bulk token, minutes (7 days).
pub const TOKEN_MAX_MINUTES: u64 = 7 * 24 * 60;
/// Default signing key overlap, hours.
pub const KEY_OVERLAP_DEFAULT_HOURS: u64 = 7 * 24;

pub(crate) fn signing_purpose(kid: &str) -> String {
    format!("signing-key:{kid}")
}

/// What `cmg site init` decides.
#[derive(Debug, Clone)]
pub struct InitParams {
    pub site_code: SiteCode,
    /// Names (DNS or IP) in the site API's server certificate.
    pub api_names: Vec<String>,
}

/// The site API's TLS material.
#[derive(Debug)]
pub struct ApiTls {
    pub cert_pem: String,
    pub key_pem: Secret,
    pub ca_pem: String,
}

fn new_guid() -> Result<SiteGuid> {
    cmg_token::site::new_uuid_v4()
        .parse()
        .map_err(StoreError::internal)
}

impl Store {
    /// Creates the site: code, GUID, CA, API certificate, first signing key.
    pub async fn init(&self, params: &InitParams, actor: &Actor) -> Result<SiteView> {
        let exists: Option<String> = sqlx::query_scalar("SELECT code FROM site WHERE id = 1")
            .fetch_optional(self.pool())
            .await?;
        if let Some(code) = exists {
            return Err(StoreError::Conflict {
                what: "site",
                name: code,
            });
        }
        let guid = new_guid()?;
        let ca = SiteCa::generate(&params.site_code).map_err(StoreError::internal)?;
        let loaded = SiteCa::from_pem(&ca.cert_pem, &ca.key_pem).map_err(StoreError::internal)?;
        let api = loaded
            .issue_server(&params.api_names)
            .map_err(StoreError::internal)?;
        let key = keys::generate(&guid).map_err(StoreError::Internal)?;
        let now = crate::now();
        let k = self.key();
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO site (id, code, guid, created_at, change_seq, key_check, ca_cert_pem, \
             ca_key_sealed, api_cert_pem, api_key_sealed, clients_use_cmg) \
             VALUES (1, $1, $2, $3, 1, $4, $5, $6, $7, $8, 1)",
        )
        .bind(params.site_code.as_str())
        .bind(guid.as_str())
        .bind(now)
        .bind(k.seal(KEY_CHECK_PURPOSE, b"cmg site")?)
        .bind(ca.cert_pem.as_str())
        .bind(k.seal(CA_KEY, ca.key_pem.as_bytes())?)
        .bind(api.cert_pem.as_str())
        .bind(k.seal(API_KEY, api.key_pem.as_bytes())?)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, public_pem, private_sealed, created_at, state, retire_at) \
             VALUES ($1, $2, $3, $4, 'active', NULL)",
        )
        .bind(key.kid.as_str())
        .bind(key.public_pem.as_str())
        .bind(k.seal(&signing_purpose(&key.kid), key.private_pem.expose().as_bytes())?)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor, action, target, detail) VALUES (1, $1, $2, 'site.init', $3, $4)",
        )
        .bind(now)
        .bind(actor.0.as_str())
        .bind(params.site_code.as_str())
        .bind(json!({"guid": guid.as_str(), "signing_kid": key.kid, "api_names": params.api_names}).to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(site = %params.site_code, guid = %guid, kid = %key.kid, "site created");
        self.site().await
    }

    pub async fn site(&self) -> Result<SiteView> {
        let row = sqlx::query(
            "SELECT code, guid, ca_cert_pem, created_at, change_seq FROM site WHERE id = 1",
        )
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotInitialised)?;
        Ok(SiteView {
            code: row.try_get("code")?,
            guid: row.try_get("guid")?,
            ca_pem: row.try_get("ca_cert_pem")?,
            created_at: row.try_get("created_at")?,
            change_seq: row.try_get("change_seq")?,
        })
    }

    pub(crate) async fn site_ids(&self) -> Result<(SiteCode, SiteGuid)> {
        let s = self.site().await?;
        Ok((
            SiteCode::new(s.code).map_err(StoreError::internal)?,
            s.guid.parse().map_err(StoreError::internal)?,
        ))
    }

    /// The site CA with its key, to issue certificates.
    pub(crate) async fn site_ca(&self) -> Result<SiteCa> {
        let row = sqlx::query("SELECT ca_cert_pem, ca_key_sealed FROM site WHERE id = 1")
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotInitialised)?;
        let cert: String = row.try_get("ca_cert_pem")?;
        let key = self
            .key()
            .open(CA_KEY, &row.try_get::<String, _>("ca_key_sealed")?)?;
        SiteCa::from_pem(&cert, key.expose()).map_err(StoreError::internal)
    }

    /// The site API's server certificate, key and the site CA.
    pub async fn api_tls(&self) -> Result<ApiTls> {
        let row =
            sqlx::query("SELECT ca_cert_pem, api_cert_pem, api_key_sealed FROM site WHERE id = 1")
                .fetch_optional(self.pool())
                .await?
                .ok_or(StoreError::NotInitialised)?;
        Ok(ApiTls {
            cert_pem: row.try_get("api_cert_pem")?,
            key_pem: self
                .key()
                .open(API_KEY, &row.try_get::<String, _>("api_key_sealed")?)?,
            ca_pem: row.try_get("ca_cert_pem")?,
        })
    }

    /// A signer with the active signing key.
    pub async fn signer(&self) -> Result<SiteSigner> {
        let (_, guid) = self.site_ids().await?;
        let row =
            sqlx::query("SELECT kid, private_sealed FROM signing_keys WHERE state = 'active'")
                .fetch_optional(self.pool())
                .await?
                .ok_or_else(|| StoreError::internal("no active signing key"))?;
        let kid: String = row.try_get("kid")?;
        let pem = self.key().open(
            &signing_purpose(&kid),
            &row.try_get::<String, _>("private_sealed")?,
        )?;
        SiteSigner::from_pem(pem.expose().as_bytes(), &guid).map_err(StoreError::internal)
    }

    /// Public keys a gateway must accept now: the active key and keys in their overlap.
    /// The token and answer signing keys in force (PEM), newest first.
    pub async fn public_keys_in_force(&self) -> Result<Vec<String>> {
        self.valid_public_keys(crate::now()).await
    }

    pub(crate) async fn valid_public_keys(&self, now: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT public_pem FROM signing_keys WHERE state = 'active' \
             OR (state = 'retiring' AND retire_at > $1) ORDER BY created_at DESC, kid",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn keys(&self) -> Result<Vec<KeyView>> {
        let rows = sqlx::query(
            "SELECT kid, state, created_at, retire_at, public_pem FROM signing_keys ORDER BY created_at DESC, kid",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(KeyView {
                    kid: r.try_get("kid")?,
                    state: r.try_get("state")?,
                    created_at: r.try_get("created_at")?,
                    retire_at: r.try_get("retire_at")?,
                    public_pem: r.try_get("public_pem")?,
                })
            })
            .collect()
    }

    /// Rolls the signing key: a new active key; the previous one stays valid (published
    /// to gateways) for `overlap`, then retires.
    pub async fn roll_key(&self, overlap: Duration, actor: &Actor) -> Result<KeyView> {
        let (_, guid) = self.site_ids().await?;
        let key = keys::generate(&guid).map_err(StoreError::Internal)?;
        let mut c = self.begin(actor).await?;
        let retire_at = c.now + overlap.as_secs() as i64;
        let old: Option<String> =
            sqlx::query_scalar("SELECT kid FROM signing_keys WHERE state = 'active'")
                .fetch_optional(&mut *c.tx)
                .await?;
        sqlx::query(
            "UPDATE signing_keys SET state = 'retiring', retire_at = $1 WHERE state = 'active'",
        )
        .bind(retire_at)
        .execute(&mut *c.tx)
        .await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, public_pem, private_sealed, created_at, state, retire_at) \
             VALUES ($1, $2, $3, $4, 'active', NULL)",
        )
        .bind(key.kid.as_str())
        .bind(key.public_pem.as_str())
        .bind(self.key().seal(&signing_purpose(&key.kid), key.private_pem.expose().as_bytes())?)
        .bind(c.now)
        .execute(&mut *c.tx)
        .await?;
        c.bump_all().await?;
        c.audit(
            "key.roll",
            &key.kid,
            json!({"previous": old, "overlap_secs": overlap.as_secs(), "previous_retires_at": retire_at}),
        )
        .await?;
        let now = c.now;
        c.commit(self).await?;
        tracing::info!(kid = %key.kid, previous = ?old, overlap_secs = overlap.as_secs(), "signing key rolled");
        Ok(KeyView {
            kid: key.kid,
            state: "active".into(),
            created_at: now,
            retire_at: None,
            public_pem: key.public_pem,
        })
    }

    /// Retires keys whose overlap ended, publishing new bundles without them. Returns how
    /// many keys were retired.
    pub async fn retire_expired_keys(&self, actor: &Actor) -> Result<usize> {
        let now = crate::now();
        let due: Vec<String> = sqlx::query_scalar(
            "SELECT kid FROM signing_keys WHERE state = 'retiring' AND retire_at <= $1",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut c = self.begin(actor).await?;
        let n = sqlx::query(
            "UPDATE signing_keys SET state = 'retired' WHERE state = 'retiring' AND retire_at <= $1",
        )
        .bind(c.now)
        .execute(&mut *c.tx)
        .await?
        .rows_affected();
        c.bump_all().await?;
        c.audit("key.retire", "signing_keys", json!({"kids": due}))
            .await?;
        c.commit(self).await?;
        tracing::info!(kids = ?due, "signing keys retired after their overlap");
        Ok(n as usize)
    }

    /// Issues a bulk registration token. The token is returned once and never stored.
    pub async fn new_token(
        &self,
        lifetime_minutes: Option<u64>,
        actor: &Actor,
    ) -> Result<TokenIssued> {
        let minutes = lifetime_minutes.unwrap_or(TOKEN_DEFAULT_MINUTES);
        if minutes == 0 || minutes > TOKEN_MAX_MINUTES {
            return Err(StoreError::invalid(
                "bad_lifetime",
                format!("lifetime_minutes must be 1 to {TOKEN_MAX_MINUTES} (7 days)"),
            ));
        }
        let signer = self.signer().await?;
        let issued = signer
            .issue_bulk(Duration::from_secs(minutes * 60))
            .map_err(|e| StoreError::invalid("bad_lifetime", e.to_string()))?;
        let expires_at = issued
            .expires_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(StoreError::internal)?
            .as_secs() as i64;
        let mut c = self.begin(actor).await?;
        sqlx::query(
            "INSERT INTO bulk_tokens (tracking_id, signing_kid, issued_at, expires_at, issued_by, blocked, blocked_at) \
             VALUES ($1, $2, $3, $4, $5, 0, NULL)",
        )
        .bind(issued.tracking_id.as_str())
        .bind(signer.public_key().kid())
        .bind(c.now)
        .bind(expires_at)
        .bind(actor.0.as_str())
        .execute(&mut *c.tx)
        .await?;
        c.audit(
            "token.new",
            &issued.tracking_id,
            json!({"expires_at": expires_at}),
        )
        .await?;
        c.commit(self).await?;
        Ok(TokenIssued {
            tracking_id: issued.tracking_id,
            token: issued.token,
            expires_at,
        })
    }

    pub async fn tokens(&self) -> Result<Vec<TokenView>> {
        let rows = sqlx::query(
            "SELECT tracking_id, issued_at, expires_at, issued_by, blocked FROM bulk_tokens ORDER BY issued_at, tracking_id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenView {
                    tracking_id: r.try_get("tracking_id")?,
                    issued_at: r.try_get("issued_at")?,
                    expires_at: r.try_get("expires_at")?,
                    issued_by: r.try_get("issued_by")?,
                    blocked: get_bool(r, "blocked")?,
                })
            })
            .collect()
    }

    /// Blocks or unblocks a bulk token; every gateway gets the new blocked list.
    pub async fn set_token_blocked(
        &self,
        tracking_id: &str,
        blocked: bool,
        actor: &Actor,
    ) -> Result<()> {
        let mut c = self.begin(actor).await?;
        let n = sqlx::query(
            "UPDATE bulk_tokens SET blocked = $1, blocked_at = $2 WHERE tracking_id = $3",
        )
        .bind(b(blocked))
        .bind(blocked.then_some(c.now))
        .bind(tracking_id)
        .execute(&mut *c.tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::not_found("token", tracking_id));
        }
        c.bump_all().await?;
        c.audit(
            if blocked {
                "token.block"
            } else {
                "token.unblock"
            },
            tracking_id,
            json!({}),
        )
        .await?;
        c.commit(self).await
    }
}
