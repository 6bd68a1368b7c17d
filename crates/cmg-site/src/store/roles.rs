//! Roles that clients reach through the gateway, their generated URL mappings, and the
//! connection points.

use cmg_pki::describe::describe;
use cmg_pki::pem::parse_certs;
use cmg_proto::{ConnectorId, RoleId};
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::Row as _;

use super::{b, get_bool, Actor, Result, Store, StoreError};
use crate::mappings::{self, Mapping, RoleKind, RoleMode};
use crate::model::{
    CertView, ConnectionPointAdd, ConnectionPointIssued, ConnectionPointView, RoleCreate,
    RoleModify, RoleView,
};

/// A role ID of [`crate::names::ROLE_ID`]'s shape: 1 to 19 decimal digits.
fn parse_role_id(s: &str) -> Result<RoleId> {
    let bad = || {
        StoreError::invalid(
            "bad_role_id",
            format!("role ID {s:?} is not 1 to 19 decimal digits"),
        )
    };
    if !crate::names::is_role_id(s) {
        return Err(bad());
    }
    s.parse::<u64>().map(RoleId).map_err(|_| bad())
}

fn role_from_row(r: &AnyRow) -> Result<RoleView> {
    let id: String = r.try_get("role_id")?;
    let kind = RoleKind::parse(&r.try_get::<String, _>("kind")?)
        .ok_or_else(|| StoreError::internal("unknown role kind in database"))?;
    let mode = RoleMode::parse(&r.try_get::<String, _>("mode")?)
        .ok_or_else(|| StoreError::internal("unknown role mode in database"))?;
    let internal_url: String = r.try_get("internal_url")?;
    let allow = get_bool(r, "allow_gateway_traffic")?;
    let mappings = if allow {
        mappings::for_role(parse_role_id(&id)?, kind, mode, &internal_url)
            .map_err(StoreError::Internal)?
    } else {
        Vec::new()
    };
    Ok(RoleView {
        role_id: id,
        kind,
        internal_url,
        mode,
        allow_gateway_traffic: allow,
        mappings,
    })
}

impl Store {
    pub async fn roles(&self) -> Result<Vec<RoleView>> {
        let rows = sqlx::query("SELECT * FROM roles ORDER BY role_id")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(role_from_row).collect()
    }

    pub async fn role(&self, id: &str) -> Result<RoleView> {
        let id = parse_role_id(id)?.to_string();
        let row = sqlx::query("SELECT * FROM roles WHERE role_id = $1")
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::not_found("role", id.as_str()))?;
        role_from_row(&row)
    }

    /// Every mapping of every role that allows gateway traffic (site-wide: each gateway
    /// publishes them all).
    pub async fn all_mappings(&self) -> Result<Vec<Mapping>> {
        Ok(self
            .roles()
            .await?
            .into_iter()
            .flat_map(|r| r.mappings)
            .collect())
    }

    pub(crate) async fn internet_mps(&self, service: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for r in self.roles().await? {
            if r.allow_gateway_traffic && r.kind == RoleKind::ManagementPoint {
                out.extend(mappings::internet_mp_names(
                    service,
                    parse_role_id(&r.role_id)?,
                    r.mode,
                ));
            }
        }
        Ok(out)
    }

    pub async fn create_role(&self, req: RoleCreate, actor: &Actor) -> Result<RoleView> {
        let id = parse_role_id(&req.role_id)?.to_string();
        mappings::check_internal_url(&req.internal_url)
            .map_err(|m| StoreError::invalid("bad_internal_url", m))?;
        let mut c = self.begin(actor).await?;
        let exists: Option<String> =
            sqlx::query_scalar("SELECT role_id FROM roles WHERE role_id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *c.tx)
                .await?;
        if exists.is_some() {
            return Err(StoreError::Conflict {
                what: "role",
                name: id,
            });
        }
        sqlx::query(
            "INSERT INTO roles (role_id, kind, internal_url, mode, allow_gateway_traffic, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(id.as_str())
        .bind(req.kind.as_str())
        .bind(req.internal_url.as_str())
        .bind(req.mode.as_str())
        .bind(b(req.allow_gateway_traffic))
        .bind(c.now)
        .execute(&mut *c.tx)
        .await?;
        if req.allow_gateway_traffic {
            c.bump_all().await?;
        }
        c.audit(
            "role.create",
            &id,
            json!({"kind": req.kind, "internal_url": req.internal_url, "mode": req.mode,
                   "allow_gateway_traffic": req.allow_gateway_traffic}),
        )
        .await?;
        c.commit(self).await?;
        self.role(&id).await
    }

    pub async fn modify_role(&self, id: &str, req: RoleModify, actor: &Actor) -> Result<RoleView> {
        let id = parse_role_id(id)?.to_string();
        if let Some(u) = &req.internal_url {
            mappings::check_internal_url(u)
                .map_err(|m| StoreError::invalid("bad_internal_url", m))?;
        }
        let mut c = self.begin(actor).await?;
        let row = sqlx::query("SELECT * FROM roles WHERE role_id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *c.tx)
            .await?
            .ok_or_else(|| StoreError::not_found("role", id.as_str()))?;
        let old = role_from_row(&row)?;
        let url = req.internal_url.clone().unwrap_or(old.internal_url.clone());
        let mode = req.mode.unwrap_or(old.mode);
        let allow = req
            .allow_gateway_traffic
            .unwrap_or(old.allow_gateway_traffic);
        sqlx::query(
            "UPDATE roles SET internal_url = $2, mode = $3, allow_gateway_traffic = $4, updated_at = $5 WHERE role_id = $1",
        )
        .bind(id.as_str())
        .bind(url.as_str())
        .bind(mode.as_str())
        .bind(b(allow))
        .bind(c.now)
        .execute(&mut *c.tx)
        .await?;
        if allow || old.allow_gateway_traffic {
            c.bump_all().await?;
        }
        c.audit(
            "role.modify",
            &id,
            json!({"internal_url": url, "mode": mode, "allow_gateway_traffic": allow}),
        )
        .await?;
        c.commit(self).await?;
        self.role(&id).await
    }

    pub async fn delete_role(&self, id: &str, actor: &Actor) -> Result<()> {
        let id = parse_role_id(id)?.to_string();
        let mut c = self.begin(actor).await?;
        let allowed: Option<i64> =
            sqlx::query_scalar("SELECT allow_gateway_traffic FROM roles WHERE role_id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *c.tx)
                .await?;
        let Some(allowed) = allowed else {
            return Err(StoreError::not_found("role", id));
        };
        sqlx::query("DELETE FROM roles WHERE role_id = $1")
            .bind(id.as_str())
            .execute(&mut *c.tx)
            .await?;
        Store::unreference(&mut c.tx, "management_points", &id).await?;
        if allowed != 0 {
            c.bump_all().await?;
        }
        c.audit("role.delete", &id, json!({})).await?;
        c.commit(self).await
    }

    /// Issues a connection point certificate from the site CA and records the connection
    /// point. The key is in the answer only.
    pub async fn add_connection_point(
        &self,
        req: ConnectionPointAdd,
        actor: &Actor,
    ) -> Result<ConnectionPointIssued> {
        let id = match req.id {
            Some(id) => {
                ConnectorId::new(id).map_err(|e| StoreError::invalid("bad_id", e.to_string()))?
            }
            None => {
                let mut r = [0u8; 4];
                aws_lc_rs::rand::fill(&mut r).map_err(|_| StoreError::internal("no randomness"))?;
                ConnectorId::new(format!("cp-{}", hex::encode(r))).map_err(StoreError::internal)?
            }
        };
        let (site, _) = self.site_ids().await?;
        let ca = self.site_ca().await?;
        let gateway = self.gateway_row(&req.gateway).await?;
        let issued = ca
            .issue_connector(&site, &id)
            .map_err(StoreError::internal)?;
        let certs = parse_certs(&issued.cert_pem).map_err(StoreError::internal)?;
        let first = certs
            .first()
            .ok_or_else(|| StoreError::internal("no certificate issued"))?;
        let sha = describe(first).map_err(StoreError::internal)?.sha256_hex;
        let mut c = self.begin(actor).await?;
        let exists: Option<String> =
            sqlx::query_scalar("SELECT id FROM connection_points WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *c.tx)
                .await?;
        if exists.is_some() {
            return Err(StoreError::Conflict {
                what: "connection point",
                name: id.to_string(),
            });
        }
        super::gateway::load(&mut c.tx, &req.gateway).await?;
        sqlx::query(
            "INSERT INTO connection_points (id, gateway, cert_pem, cert_sha256, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.as_str())
        .bind(req.gateway.as_str())
        .bind(issued.cert_pem.as_str())
        .bind(sha.as_str())
        .bind(c.now)
        .execute(&mut *c.tx)
        .await?;
        c.audit(
            "connection_point.add",
            id.as_str(),
            json!({"gateway": req.gateway, "certificate_sha256": sha}),
        )
        .await?;
        c.commit(self).await?;
        tracing::info!(connection_point = %id, gateway = %req.gateway, "connection point added");
        Ok(ConnectionPointIssued {
            id: id.to_string(),
            site: site.to_string(),
            gateway: gateway.name,
            service_name: gateway.service_name,
            cert_pem: issued.cert_pem,
            key_pem: issued.key_pem,
            site_ca_pem: ca.cert_pem().to_owned(),
            gateway_chain_pem: gateway.cert_pem,
            mappings: self.all_mappings().await?,
        })
    }

    pub async fn connection_points(&self) -> Result<Vec<ConnectionPointView>> {
        let rows = sqlx::query(
            "SELECT id, gateway, cert_pem, created_at FROM connection_points ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let pem: String = r.try_get("cert_pem")?;
                let cert = parse_certs(&pem).map_err(StoreError::internal)?;
                let s = describe(
                    cert.first()
                        .ok_or_else(|| StoreError::internal("empty certificate"))?,
                )
                .map_err(StoreError::internal)?;
                Ok(ConnectionPointView {
                    id: r.try_get("id")?,
                    gateway: r.try_get("gateway")?,
                    certificate: CertView {
                        subject: s.subject,
                        issuer: s.issuer,
                        sha256: s.sha256_hex,
                        not_after: s.not_after,
                    },
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// The gateway a connection point serves, if its certificate is the one on record.
    pub async fn connection_point_gateway(
        &self,
        id: &str,
        cert_sha256: &str,
    ) -> Result<Option<String>> {
        let row = sqlx::query("SELECT gateway, cert_sha256 FROM connection_points WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(r) if r.try_get::<String, _>("cert_sha256")? == cert_sha256 => {
                Ok(Some(r.try_get("gateway")?))
            }
            _ => Ok(None),
        }
    }

    pub async fn remove_connection_point(&self, id: &str, actor: &Actor) -> Result<()> {
        let mut c = self.begin(actor).await?;
        let n = sqlx::query("DELETE FROM connection_points WHERE id = $1")
            .bind(id)
            .execute(&mut *c.tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::not_found("connection point", id));
        }
        for sql in [
            "DELETE FROM cp_reports WHERE connection_point = $1",
            "DELETE FROM channel_status WHERE connection_point = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *c.tx).await?;
        }
        c.audit("connection_point.remove", id, json!({})).await?;
        c.commit(self).await?;
        tracing::info!(connection_point = %id, "connection point removed");
        Ok(())
    }
}
