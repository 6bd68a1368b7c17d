//! The site's token service (STS): exchanges a site token for a **device token**
//! (seed 003). A bulk registration token plus a device ID registers a device; a device
//! token renews itself (same device, a fresh 90-day token). Clients reach it through
//! the gateway (`CCM_Proxy_ServerAuth/<role>/CCM_STS`, which the gateway only forwards
//! with a valid token); the site checks the token again here, with its own keys and
//! block list, so nothing relies on the path it came by.
//!
//! Device tokens are not stored (like bulk tokens, the bearer value is returned once);
//! each issue is in the audit log with its tracking ID, device and the token it came from.

use std::time::{Duration, SystemTime};

use cmg_token::site::{SiteToken, SiteVerifier, TokenKind, DEVICE_DEFAULT_LIFETIME};
use cmg_token::TokenError;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Actor, Store, StoreError};

/// Longest device ID accepted at registration.
const MAX_DEVICE_ID: usize = 256;

/// Why no device token was issued.
#[derive(Debug, thiserror::Error)]
pub enum StsError {
    /// The presented token is not a valid, unblocked site token: 401.
    #[error("{0}")]
    InvalidToken(TokenError),
    /// No bearer token at all: 401.
    #[error("a site token is required (Authorization: Bearer)")]
    MissingToken,
    /// The request does not fit the token (a bulk token without a device ID, a device
    /// token asking for another device): 400.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A device token issued by the STS. Serialized once into the response (and read
/// back by clients).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceTokenIssued {
    pub token: String,
    pub tracking_id: String,
    pub device_id: String,
    /// Unix seconds.
    pub expires_at: i64,
}

impl Store {
    /// Verifies a bulk registration or device token of this site with the keys in force
    /// and the block list.
    pub async fn verify_site_token(&self, bearer: &str) -> Result<SiteToken, StsError> {
        let now = crate::now();
        let (_, guid) = self.site_ids().await?;
        let keys = self.valid_public_keys(now).await?;
        let verifier = SiteVerifier::from_pems(&keys, &guid).map_err(StoreError::internal)?;
        let blocked: Vec<String> = sqlx::query_scalar(
            "SELECT tracking_id FROM bulk_tokens WHERE blocked = 1 AND expires_at > $1",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::from)?;
        verifier
            .verify(bearer, &|id| blocked.iter().any(|b| b == id))
            .map_err(StsError::InvalidToken)
    }

    /// Issues a device token for `device_id` to a certificate client that registers on
    /// the intranet (its certificate was verified at the TLS handshake; the caller
    /// names it in `certificate`, for the audit log).
    pub async fn register_device(
        &self,
        certificate: &str,
        device_id: &str,
    ) -> Result<DeviceTokenIssued, StsError> {
        let device = check_device_id(device_id)?;
        let signer = self.signer().await?;
        let issued = signer
            .issue_device(&device, DEVICE_DEFAULT_LIFETIME)
            .map_err(|e| StsError::BadRequest {
                code: "bad_device_id",
                message: e.to_string(),
            })?;
        let expires_at = unix(issued.expires_at);
        let mut c = self.begin(&Actor::new("sts")).await?;
        c.audit(
            "token.device_registered_intranet",
            &issued.tracking_id,
            json!({"device_id": device, "expires_at": expires_at, "certificate": certificate}),
        )
        .await?;
        c.commit(self).await?;
        tracing::info!(device = %device, tracking_id = %issued.tracking_id, "device token issued on intranet registration");
        Ok(DeviceTokenIssued {
            token: issued.token,
            tracking_id: issued.tracking_id,
            device_id: device,
            expires_at,
        })
    }

    /// Verifies `bearer` (a bulk registration or device token of this site) and issues a
    /// device token: for `device_id` with a bulk token, for the token's own device with
    /// a device token (a `device_id`, if given, must be the same).
    pub async fn exchange_token(
        &self,
        bearer: &str,
        device_id: Option<&str>,
    ) -> Result<DeviceTokenIssued, StsError> {
        let presented = self.verify_site_token(bearer).await?;

        let device = match (presented.kind, presented.subject.as_deref(), device_id) {
            (TokenKind::BulkRegistration, _, Some(d)) => check_device_id(d)?,
            (TokenKind::BulkRegistration, _, None) => {
                return Err(StsError::BadRequest {
                    code: "device_id_required",
                    message: "registering with a bulk token needs a device_id".into(),
                })
            }
            (TokenKind::Device, Some(sub), None) => sub.to_owned(),
            (TokenKind::Device, Some(sub), Some(d)) if d == sub => sub.to_owned(),
            (TokenKind::Device, Some(sub), Some(d)) => {
                return Err(StsError::BadRequest {
                    code: "device_mismatch",
                    message: format!("a device token for {sub:?} cannot renew {d:?}"),
                })
            }
            (TokenKind::Device, None, _) => {
                return Err(StsError::InvalidToken(TokenError::Malformed(
                    "device token without subject",
                )))
            }
        };

        let signer = self.signer().await?;
        let issued = signer
            .issue_device(&device, DEVICE_DEFAULT_LIFETIME)
            .map_err(|e| StsError::BadRequest {
                code: "bad_device_id",
                message: e.to_string(),
            })?;
        let expires_at = unix(issued.expires_at);
        let action = match presented.kind {
            TokenKind::BulkRegistration => "token.device_registered",
            TokenKind::Device => "token.device_renewed",
        };
        let mut c = self.begin(&Actor::new("sts")).await?;
        c.audit(
            action,
            &issued.tracking_id,
            json!({
                "device_id": device,
                "expires_at": expires_at,
                "from_token": presented.tracking_id,
                "from_kind": presented.kind.as_str(),
            }),
        )
        .await?;
        c.commit(self).await?;
        tracing::info!(
            device = %device,
            tracking_id = %issued.tracking_id,
            from = %presented.tracking_id,
            kind = %presented.kind,
            "device token issued"
        );
        Ok(DeviceTokenIssued {
            token: issued.token,
            tracking_id: issued.tracking_id,
            device_id: device,
            expires_at,
        })
    }
}

fn check_device_id(d: &str) -> Result<String, StsError> {
    if d.is_empty() || d.len() > MAX_DEVICE_ID || d.chars().any(char::is_control) {
        return Err(StsError::BadRequest {
            code: "bad_device_id",
            message: format!("device_id must be 1 to {MAX_DEVICE_ID} printable characters"),
        });
    }
    Ok(d.to_owned())
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64
}
