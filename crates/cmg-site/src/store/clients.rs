//! Clients and where they are: boundary groups, the client settings, the inputs of a
//! location answer, and the record of each client's last location request.
//!
//! Boundary groups and client settings are admin changes (audited, one transaction like
//! every change) that touch no bundle: gateways never see them, only the location
//! service does. A client's record is written on each location request outside the
//! change machinery (no audit entry, no change sequence, no long poll woken), as
//! connection point reports are.

use cmg_proto::location::{self, Boundary, GatewayMp, ManagementPoint};
use serde_json::json;
use sqlx::Row as _;

use super::{b, get_bool, Actor, Result, Store, StoreError};
use crate::mappings::{RoleKind, RoleMode};
use crate::model::{BoundaryGroup, BoundaryNeighbour, ClientSettings, ClientView};

/// Most boundaries, references or neighbours in one group.
const MAX_GROUP_LIST: usize = 1000;

/// A gateway as the location service sees it.
#[derive(Debug, Clone)]
pub struct LocationGateway {
    pub name: String,
    pub service_name: String,
    pub content_enabled: bool,
}

/// A management point role as the location service sees it.
#[derive(Debug, Clone)]
pub struct LocationRole {
    pub role_id: String,
    pub internal_url: String,
    pub mode: RoleMode,
    pub allow_gateway_traffic: bool,
}

/// Everything a location answer is computed from, read in one go.
#[derive(Debug, Clone)]
pub struct LocationInputs {
    pub groups: Vec<location::BoundaryGroup>,
    pub management_points: Vec<LocationRole>,
    pub gateways: Vec<LocationGateway>,
    pub settings: ClientSettings,
}

impl LocationInputs {
    /// The intranet management points, in the site's order (role ID).
    pub fn intranet_mps(&self) -> Vec<ManagementPoint> {
        self.management_points
            .iter()
            .map(|r| ManagementPoint {
                name: r.role_id.clone(),
                url: r.internal_url.trim_end_matches('/').to_owned(),
            })
            .collect()
    }

    /// Every gateway × every management point role that allows gateway traffic, as an
    /// internet management point (`<service>/CCM_Proxy_MutualAuth/<role id>`, and
    /// `CCM_Proxy_ServerAuth` when the role serves token clients).
    pub fn gateway_mps(&self) -> Vec<GatewayMp> {
        let mut out = Vec::new();
        for gw in &self.gateways {
            for role in self
                .management_points
                .iter()
                .filter(|r| r.allow_gateway_traffic)
            {
                let base = format!("https://{}", gw.service_name);
                out.push(GatewayMp {
                    name: gw.name.clone(),
                    certificate_url: format!("{base}/CCM_Proxy_MutualAuth/{}", role.role_id),
                    token_url: role
                        .mode
                        .serves_token_clients()
                        .then(|| format!("{base}/CCM_Proxy_ServerAuth/{}", role.role_id)),
                });
            }
        }
        out
    }
}

fn list(row: &sqlx::any::AnyRow, col: &str) -> Result<Vec<String>> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text).map_err(StoreError::internal)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(StoreError::internal)
}

fn group_from_row(r: &sqlx::any::AnyRow) -> Result<BoundaryGroup> {
    let neighbours: String = r.try_get("neighbours")?;
    Ok(BoundaryGroup {
        name: r.try_get("name")?,
        boundaries: list(r, "boundaries")?,
        management_points: list(r, "management_points")?,
        gateways: list(r, "gateways")?,
        neighbours: serde_json::from_str(&neighbours).map_err(StoreError::internal)?,
        prefer_cloud: get_bool(r, "prefer_cloud")?,
    })
}

/// The rules' form of a stored group (its boundaries were checked when it was stored).
fn to_rules(g: &BoundaryGroup) -> Result<location::BoundaryGroup> {
    Ok(location::BoundaryGroup {
        name: g.name.clone(),
        boundaries: g
            .boundaries
            .iter()
            .map(|b| b.parse::<Boundary>().map_err(StoreError::internal))
            .collect::<Result<_>>()?,
        management_points: g.management_points.clone(),
        gateways: g.gateways.clone(),
        neighbours: g
            .neighbours
            .iter()
            .map(|n| location::Neighbour {
                group: n.group.clone(),
                management_points: n.management_points,
                content_after_minutes: n.content_after_minutes,
            })
            .collect(),
        prefer_cloud: g.prefer_cloud,
    })
}

fn invalid(code: &'static str, message: String) -> StoreError {
    StoreError::Invalid { code, message }
}

impl Store {
    pub async fn client_settings(&self) -> Result<ClientSettings> {
        let row = sqlx::query(
            "SELECT clients_use_cmg, allow_cloud_dp, policy_interval_minutes FROM site WHERE id = 1",
        )
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotInitialised)?;
        Ok(ClientSettings {
            enable_clients_to_use_cmg: get_bool(&row, "clients_use_cmg")?,
            allow_cloud_distribution_point: get_bool(&row, "allow_cloud_dp")?,
            policy_interval_minutes: u32::try_from(
                row.try_get::<i64, _>("policy_interval_minutes")?,
            )
            .map_err(StoreError::internal)?,
        })
    }

    pub async fn set_client_settings(&self, s: &ClientSettings, actor: &Actor) -> Result<()> {
        if !(1..=1440).contains(&s.policy_interval_minutes) {
            return Err(invalid(
                "bad_interval",
                "policy_interval_minutes is 1 to 1440".into(),
            ));
        }
        let mut c = self.begin(actor).await?;
        sqlx::query(
            "UPDATE site SET clients_use_cmg = $1, allow_cloud_dp = $2, \
             policy_interval_minutes = $3 WHERE id = 1",
        )
        .bind(b(s.enable_clients_to_use_cmg))
        .bind(b(s.allow_cloud_distribution_point))
        .bind(i64::from(s.policy_interval_minutes))
        .execute(&mut *c.tx)
        .await?;
        c.audit(
            "client_settings.set",
            "site",
            serde_json::to_value(s).map_err(StoreError::internal)?,
        )
        .await?;
        c.commit(self).await
    }

    pub async fn boundary_groups(&self) -> Result<Vec<BoundaryGroup>> {
        let rows = sqlx::query(
            "SELECT name, boundaries, management_points, gateways, neighbours, prefer_cloud \
             FROM boundary_groups ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(group_from_row).collect()
    }

    /// Creates or replaces a boundary group. Its boundaries must parse, and the
    /// management points (role IDs), gateways and neighbour groups it names must exist
    /// (a neighbour may be the group being created, not yet; nor itself).
    pub async fn put_boundary_group(&self, g: &BoundaryGroup, actor: &Actor) -> Result<()> {
        if !crate::names::is_boundary_group_name(&g.name) {
            return Err(StoreError::invalid(
                "bad_name",
                "a boundary group name is 1 to 128 letters, digits, spaces, '.', '-' or '_', \
                 starting with a letter or digit",
            ));
        }
        let too_long = g.boundaries.len() > MAX_GROUP_LIST
            || g.management_points.len() > MAX_GROUP_LIST
            || g.gateways.len() > MAX_GROUP_LIST
            || g.neighbours.len() > MAX_GROUP_LIST;
        if too_long {
            return Err(invalid(
                "too_many",
                format!("at most {MAX_GROUP_LIST} boundaries, references or neighbours"),
            ));
        }
        let mut boundaries = Vec::with_capacity(g.boundaries.len());
        for text in &g.boundaries {
            let parsed: Boundary = text
                .parse()
                .map_err(|e: location::BoundaryError| invalid("bad_boundary", e.to_string()))?;
            // Stored in canonical form (a subnet by its network address).
            boundaries.push(parsed.to_string());
        }
        let mut c = self.begin(actor).await?;
        for gw in &g.gateways {
            let found: Option<String> =
                sqlx::query_scalar("SELECT name FROM gateways WHERE name = $1")
                    .bind(gw.as_str())
                    .fetch_optional(&mut *c.tx)
                    .await?;
            if found.is_none() {
                return Err(StoreError::not_found("gateway", gw.as_str()));
            }
        }
        for mp in &g.management_points {
            let kind: Option<String> =
                sqlx::query_scalar("SELECT kind FROM roles WHERE role_id = $1")
                    .bind(mp.as_str())
                    .fetch_optional(&mut *c.tx)
                    .await?;
            if kind.as_deref() != Some(RoleKind::ManagementPoint.as_str()) {
                return Err(StoreError::not_found("management point", mp.as_str()));
            }
        }
        for n in &g.neighbours {
            if n.group == g.name {
                return Err(invalid(
                    "self_neighbour",
                    "a group cannot be its own neighbour".into(),
                ));
            }
            let found: Option<String> =
                sqlx::query_scalar("SELECT name FROM boundary_groups WHERE name = $1")
                    .bind(n.group.as_str())
                    .fetch_optional(&mut *c.tx)
                    .await?;
            if found.is_none() {
                return Err(StoreError::not_found("boundary group", n.group.as_str()));
            }
        }
        sqlx::query("DELETE FROM boundary_groups WHERE name = $1")
            .bind(g.name.as_str())
            .execute(&mut *c.tx)
            .await?;
        sqlx::query(
            "INSERT INTO boundary_groups (name, boundaries, management_points, gateways, \
             neighbours, prefer_cloud, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(g.name.as_str())
        .bind(to_json(&boundaries)?)
        .bind(to_json(&g.management_points)?)
        .bind(to_json(&g.gateways)?)
        .bind(to_json(&g.neighbours)?)
        .bind(b(g.prefer_cloud))
        .bind(c.now)
        .execute(&mut *c.tx)
        .await?;
        c.audit(
            "boundary_group.put",
            &g.name,
            json!({
                "boundaries": boundaries, "management_points": g.management_points,
                "gateways": g.gateways, "neighbours": g.neighbours, "prefer_cloud": g.prefer_cloud,
            }),
        )
        .await?;
        c.commit(self).await
    }

    pub async fn delete_boundary_group(&self, name: &str, actor: &Actor) -> Result<()> {
        let mut c = self.begin(actor).await?;
        let n = sqlx::query("DELETE FROM boundary_groups WHERE name = $1")
            .bind(name)
            .execute(&mut *c.tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::not_found("boundary group", name));
        }
        // Relationships to it go with it.
        let rows = sqlx::query("SELECT name, neighbours FROM boundary_groups")
            .fetch_all(&mut *c.tx)
            .await?;
        for r in rows {
            let text: String = r.try_get("neighbours")?;
            let mut ns: Vec<BoundaryNeighbour> =
                serde_json::from_str(&text).map_err(StoreError::internal)?;
            let before = ns.len();
            ns.retain(|n| n.group != name);
            if ns.len() != before {
                let group: String = r.try_get("name")?;
                sqlx::query("UPDATE boundary_groups SET neighbours = $2 WHERE name = $1")
                    .bind(group)
                    .bind(to_json(&ns)?)
                    .execute(&mut *c.tx)
                    .await?;
            }
        }
        c.audit("boundary_group.delete", name, json!({})).await?;
        c.commit(self).await
    }

    /// Removes `column`'s references to `value` from every group, inside a change
    /// (a deleted gateway or role).
    pub(crate) async fn unreference(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        column: &'static str,
        value: &str,
    ) -> Result<()> {
        let rows = sqlx::query(&format!("SELECT name, {column} FROM boundary_groups"))
            .fetch_all(&mut **tx)
            .await?;
        for r in rows {
            let mut refs = list(&r, column)?;
            let before = refs.len();
            refs.retain(|v| v != value);
            if refs.len() != before {
                let group: String = r.try_get("name")?;
                sqlx::query(&format!(
                    "UPDATE boundary_groups SET {column} = $2 WHERE name = $1"
                ))
                .bind(group)
                .bind(to_json(&refs)?)
                .execute(&mut **tx)
                .await?;
            }
        }
        Ok(())
    }

    /// The client root CAs of every gateway (PEM, each once): the site's listener
    /// verifies intranet clients' certificates against them.
    pub async fn client_trust_roots(&self) -> Result<Vec<String>> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT trusted_roots FROM gateways ORDER BY name")
                .fetch_all(self.pool())
                .await?;
        let mut out: Vec<String> = Vec::new();
        for text in rows {
            let roots: Vec<String> = serde_json::from_str(&text).map_err(StoreError::internal)?;
            for r in roots {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// What a location answer is computed from.
    pub async fn location_inputs(&self) -> Result<LocationInputs> {
        let groups = self
            .boundary_groups()
            .await?
            .iter()
            .map(to_rules)
            .collect::<Result<Vec<_>>>()?;
        let rows = sqlx::query(
            "SELECT role_id, internal_url, mode, allow_gateway_traffic FROM roles \
             WHERE kind = $1 ORDER BY role_id",
        )
        .bind(RoleKind::ManagementPoint.as_str())
        .fetch_all(self.pool())
        .await?;
        let management_points = rows
            .iter()
            .map(|r| {
                let mode: String = r.try_get("mode")?;
                Ok(LocationRole {
                    role_id: r.try_get("role_id")?,
                    internal_url: r.try_get("internal_url")?,
                    mode: RoleMode::parse(&mode)
                        .ok_or_else(|| StoreError::internal(format!("role mode {mode:?}")))?,
                    allow_gateway_traffic: get_bool(r, "allow_gateway_traffic")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let rows =
            sqlx::query("SELECT name, service_name, content_enabled FROM gateways ORDER BY name")
                .fetch_all(self.pool())
                .await?;
        let gateways = rows
            .iter()
            .map(|r| {
                Ok(LocationGateway {
                    name: r.try_get("name")?,
                    service_name: r.try_get("service_name")?,
                    content_enabled: get_bool(r, "content_enabled")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LocationInputs {
            groups,
            management_points,
            gateways,
            settings: self.client_settings().await?,
        })
    }

    /// Records a client's location request (insert or update, no audit entry).
    pub async fn record_client(&self, c: &ClientView) -> Result<()> {
        sqlx::query(
            "INSERT INTO clients (id, auth, via, addresses, boundary_groups, first_seen, \
             last_location_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (id) DO UPDATE SET auth = $2, via = $3, addresses = $4, \
             boundary_groups = $5, last_location_at = $6",
        )
        .bind(c.id.as_str())
        .bind(c.auth.as_str())
        .bind(c.via.as_str())
        .bind(to_json(&c.addresses)?)
        .bind(to_json(&c.boundary_groups)?)
        .bind(c.last_location_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The clients, most recently seen first, at most `limit`.
    pub async fn clients(&self, limit: u32) -> Result<Vec<ClientView>> {
        let rows = sqlx::query(
            "SELECT id, auth, via, addresses, boundary_groups, first_seen, last_location_at \
             FROM clients ORDER BY last_location_at DESC, id LIMIT $1",
        )
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ClientView {
                    id: r.try_get("id")?,
                    auth: r.try_get("auth")?,
                    via: r.try_get("via")?,
                    addresses: list(r, "addresses")?,
                    boundary_groups: list(r, "boundary_groups")?,
                    first_seen: r.try_get("first_seen")?,
                    last_location_at: r.try_get("last_location_at")?,
                })
            })
            .collect()
    }
}
