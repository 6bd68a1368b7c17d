//! Gateways: create, modify, redeploy, delete (seed 004, "Set up", "Modify a CMG",
//! "Redeploy the service", "Delete the service").

use cmg_pki::describe::describe;
use cmg_pki::pem::parse_certs;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row as _};

use super::{b, get_bool, Actor, Result, Store, StoreError};
use crate::certs;
use crate::model::{
    AlertSettings, CertView, Changed, GatewayCreate, GatewayModify, GatewayRedeploy, GatewayView,
    MinTls,
};
use crate::secret::Secret;

/// Most instances a gateway may have (seed 004: "you can scale up to 16 VMs per CMG").
pub const MAX_INSTANCES: u32 = 16;
/// Largest alert threshold, GB (an exabyte; the database holds it as `i64`).
pub const MAX_THRESHOLD_GB: u64 = 1_000_000_000;

pub(crate) fn key_purpose(name: &str) -> String {
    format!("gateway-key:{name}")
}

/// A gateway row, decoded.
#[derive(Debug, Clone)]
pub(crate) struct GatewayRow {
    pub name: String,
    pub service_name: String,
    pub region: String,
    pub instances: u32,
    pub cert_pem: String,
    pub key_sealed: String,
    pub trusted_roots: Vec<String>,
    pub intermediates: Vec<String>,
    pub trust_list: Option<Vec<String>>,
    pub verify_revocation: bool,
    pub min_tls: MinTls,
    pub content_enabled: bool,
    pub alert: AlertSettings,
    pub service_stopped: Option<String>,
    /// Each instance's channel addresses; empty: not set.
    pub instance_channels: Vec<Vec<String>>,
    pub redeploy_required: bool,
    pub settings_version: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

fn json_list(row: &AnyRow, col: &str) -> Result<Vec<String>> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text).map_err(StoreError::internal)
}

impl GatewayRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        let trust_list: Option<String> = r.try_get("trust_list")?;
        Ok(Self {
            name: r.try_get("name")?,
            service_name: r.try_get("service_name")?,
            region: r.try_get("region")?,
            instances: r.try_get::<i64, _>("instances")? as u32,
            cert_pem: r.try_get("cert_pem")?,
            key_sealed: r.try_get("key_sealed")?,
            trusted_roots: json_list(r, "trusted_roots")?,
            intermediates: json_list(r, "intermediates")?,
            trust_list: trust_list
                .map(|t| serde_json::from_str(&t))
                .transpose()
                .map_err(StoreError::internal)?,
            verify_revocation: get_bool(r, "verify_revocation")?,
            min_tls: MinTls::parse(&r.try_get::<String, _>("min_tls")?),
            content_enabled: get_bool(r, "content_enabled")?,
            alert: AlertSettings {
                enabled: get_bool(r, "alert_enabled")?,
                threshold_gb: r.try_get::<i64, _>("alert_threshold_gb")? as u64,
                warning_pct: r.try_get::<i64, _>("alert_warning_pct")? as u8,
                critical_pct: r.try_get::<i64, _>("alert_critical_pct")? as u8,
                stop_at_critical: get_bool(r, "alert_stop_at_critical")?,
            },
            service_stopped: r.try_get("service_stopped")?,
            instance_channels: r
                .try_get::<Option<String>, _>("instance_channels")?
                .map(|t| serde_json::from_str(&t))
                .transpose()
                .map_err(StoreError::internal)?
                .unwrap_or_default(),
            redeploy_required: get_bool(r, "redeploy_required")?,
            settings_version: r.try_get::<i64, _>("settings_version")? as u64,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

pub(crate) async fn load(conn: &mut AnyConnection, name: &str) -> Result<GatewayRow> {
    let row = sqlx::query("SELECT * FROM gateways WHERE name = $1")
        .bind(name)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::not_found("gateway", name))?;
    GatewayRow::from_row(&row)
}

fn cert_views(pems: &[String]) -> Vec<CertView> {
    pems.iter()
        .filter_map(|p| parse_certs(p).ok())
        .flatten()
        .filter_map(|c| describe(&c).ok())
        .map(|s| CertView {
            subject: s.subject,
            issuer: s.issuer,
            sha256: s.sha256_hex,
            not_after: s.not_after,
        })
        .collect()
}

fn check_name(name: &str) -> Result<()> {
    if crate::names::is_gateway_name(name) {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "bad_name",
            "a gateway name is 1 to 63 letters, digits, '-' or '_'",
        ))
    }
}

fn check_instances(n: u32) -> Result<()> {
    if (1..=MAX_INSTANCES).contains(&n) {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "bad_instances",
            format!("instances must be 1 to {MAX_INSTANCES}"),
        ))
    }
}

fn check_alert(a: &AlertSettings) -> Result<()> {
    if a.threshold_gb == 0
        || a.threshold_gb > MAX_THRESHOLD_GB
        || a.warning_pct == 0
        || a.critical_pct > 100
        || a.warning_pct >= a.critical_pct
    {
        return Err(StoreError::invalid(
            "bad_alert",
            "alert: 0 < threshold_gb <= 10^9 and 0 < warning_pct < critical_pct <= 100",
        ));
    }
    Ok(())
}

fn check_region(region: &str) -> Result<()> {
    if region.is_empty() || region.len() > 64 || region.chars().any(char::is_control) {
        return Err(StoreError::invalid(
            "bad_region",
            "a region label is 1 to 64 characters",
        ));
    }
    Ok(())
}

impl Store {
    /// Creates a gateway from its server certificate and settings; settings version 1.
    pub async fn create_gateway(&self, req: GatewayCreate, actor: &Actor) -> Result<GatewayView> {
        check_name(&req.name)?;
        check_instances(req.instances)?;
        check_region(&req.region)?;
        check_alert(&req.alert)?;
        let now = crate::now();
        let cert = certs::server_cert(&req.cert_pem, &req.key_pem, now)?;
        let service = certs::service_name(&cert, req.service_name.as_deref())?;
        let roots = certs::ca_certs("trusted_roots_pem", &req.trusted_roots_pem)?;
        let inters = certs::ca_certs("intermediates_pem", &req.intermediates_pem)?;
        let trust_list = req
            .trust_list_sha256
            .as_deref()
            .map(certs::trust_list)
            .transpose()?;
        let key_sealed = self
            .key()
            .seal(&key_purpose(&req.name), req.key_pem.as_bytes())?;
        let mut c = self.begin(actor).await?;
        let exists: Option<String> =
            sqlx::query_scalar("SELECT name FROM gateways WHERE name = $1")
                .bind(req.name.as_str())
                .fetch_optional(&mut *c.tx)
                .await?;
        if exists.is_some() {
            return Err(StoreError::Conflict {
                what: "gateway",
                name: req.name,
            });
        }
        sqlx::query(
            "INSERT INTO gateways (name, service_name, region, instances, cert_pem, key_sealed, \
             cert_not_after, trusted_roots, intermediates, trust_list, verify_revocation, min_tls, \
             content_enabled, alert_enabled, alert_threshold_gb, alert_warning_pct, \
             alert_critical_pct, alert_stop_at_critical, service_stopped, redeploy_required, \
             settings_version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, NULL, 0, 1, $19, $19)",
        )
        .bind(req.name.as_str())
        .bind(service.as_str())
        .bind(req.region.as_str())
        .bind(i64::from(req.instances))
        .bind(cert.chain_pem.as_str())
        .bind(key_sealed)
        .bind(cert.leaf.not_after)
        .bind(serde_json::to_string(&roots).map_err(StoreError::internal)?)
        .bind(serde_json::to_string(&inters).map_err(StoreError::internal)?)
        .bind(
            trust_list
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(StoreError::internal)?,
        )
        .bind(b(req.verify_revocation))
        .bind(req.min_tls.as_str())
        .bind(b(req.content_enabled))
        .bind(b(req.alert.enabled))
        .bind(req.alert.threshold_gb as i64)
        .bind(i64::from(req.alert.warning_pct))
        .bind(i64::from(req.alert.critical_pct))
        .bind(b(req.alert.stop_at_critical))
        .bind(c.now)
        .execute(&mut *c.tx)
        .await?;
        c.audit(
            "gateway.create",
            &req.name,
            json!({"service_name": service, "region": req.region, "instances": req.instances,
                   "certificate_sha256": cert.leaf.sha256_hex}),
        )
        .await?;
        c.commit(self).await?;
        tracing::info!(gateway = %req.name, service = %service, instances = req.instances, "gateway created");
        self.gateway(&req.name).await
    }

    pub(crate) async fn gateway_row(&self, name: &str) -> Result<GatewayRow> {
        let mut conn = self.pool().acquire().await?;
        load(&mut conn, name).await
    }

    pub async fn gateway(&self, name: &str) -> Result<GatewayView> {
        let g = self.gateway_row(name).await?;
        self.view(g).await
    }

    pub async fn gateways(&self) -> Result<Vec<GatewayView>> {
        let rows = sqlx::query("SELECT * FROM gateways ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.view(GatewayRow::from_row(r)?).await?);
        }
        Ok(out)
    }

    async fn view(&self, g: GatewayRow) -> Result<GatewayView> {
        let cps: Vec<String> =
            sqlx::query_scalar("SELECT id FROM connection_points WHERE gateway = $1 ORDER BY id")
                .bind(g.name.as_str())
                .fetch_all(self.pool())
                .await?;
        let internet_mps = self.internet_mps(&g.service_name).await?;
        let certificate = cert_views(std::slice::from_ref(&g.cert_pem))
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::internal("stored certificate unreadable"))?;
        Ok(GatewayView {
            certificate,
            chain_pem: g.cert_pem.clone(),
            trusted_roots: cert_views(&g.trusted_roots),
            intermediates: cert_views(&g.intermediates),
            name: g.name,
            service_name: g.service_name,
            region: g.region,
            instances: g.instances,
            trust_list_sha256: g.trust_list,
            verify_revocation: g.verify_revocation,
            min_tls: g.min_tls,
            content_enabled: g.content_enabled,
            alert: g.alert,
            service_stopped: g.service_stopped,
            instance_channels: g.instance_channels,
            redeploy_required: g.redeploy_required,
            settings_version: g.settings_version,
            connection_points: cps,
            internet_mps,
            created_at: g.created_at,
            updated_at: g.updated_at,
        })
    }

    /// Applies the settings that take effect without a redeploy; one new settings version.
    pub async fn modify_gateway(
        &self,
        name: &str,
        req: GatewayModify,
        actor: &Actor,
    ) -> Result<Changed> {
        let now = crate::now();
        let mut detail = serde_json::Map::new();
        let cert = match (&req.cert_pem, &req.key_pem) {
            (Some(c), Some(k)) => Some(certs::server_cert(c, k, now)?),
            (None, None) => None,
            _ => {
                return Err(StoreError::invalid(
                    "certificate_and_key",
                    "give cert_pem and key_pem together",
                ))
            }
        };
        if let Some(n) = req.instances {
            check_instances(n)?;
        }
        let channels = req
            .instance_channels
            .as_deref()
            .map(super::instances::check)
            .transpose()?;
        if let (Some(n), Some(c)) = (req.instances, &channels) {
            if !c.is_empty() && c.len() != n as usize {
                return Err(StoreError::invalid(
                    "bad_instances",
                    format!("instances is {n} but instance_channels lists {}", c.len()),
                ));
            }
        }
        if let Some(a) = &req.alert {
            check_alert(a)?;
        }
        let roots = req
            .trusted_roots_pem
            .as_deref()
            .map(|p| certs::ca_certs("trusted_roots_pem", p))
            .transpose()?;
        let inters = req
            .intermediates_pem
            .as_deref()
            .map(|p| certs::ca_certs("intermediates_pem", p))
            .transpose()?;
        let trust_list = req
            .trust_list_sha256
            .as_deref()
            .map(certs::trust_list)
            .transpose()?;

        let mut c = self.begin(actor).await?;
        let mut g = load(&mut c.tx, name).await?;
        if let Some(cert) = &cert {
            // A new certificate must still cover the service name: a new name is a redeploy.
            certs::service_name(cert, Some(&g.service_name)).map_err(|_| StoreError::Refused {
                code: "requires_redeploy",
                message: format!(
                    "the new certificate does not cover the service name {}; changing the service name needs a redeploy",
                    g.service_name
                ),
            })?;
            g.cert_pem = cert.chain_pem.clone();
            g.key_sealed = self.key().seal(
                &key_purpose(name),
                req.key_pem.as_deref().unwrap_or_default().as_bytes(),
            )?;
            detail.insert("certificate_sha256".into(), json!(cert.leaf.sha256_hex));
        }
        if let Some(n) = req.instances {
            if channels.is_none()
                && !g.instance_channels.is_empty()
                && g.instance_channels.len() != n as usize
            {
                return Err(StoreError::invalid(
                    "bad_instances",
                    format!(
                        "the gateway lists channel addresses for {} instances: give instance_channels for {n}",
                        g.instance_channels.len()
                    ),
                ));
            }
            g.instances = n;
            detail.insert("instances".into(), json!(n));
        }
        if let Some(c) = channels {
            if !c.is_empty() {
                g.instances = c.len() as u32;
                detail.insert("instances".into(), json!(g.instances));
            }
            detail.insert("instance_channels".into(), json!(c));
            g.instance_channels = c;
        }
        if let Some(r) = roots {
            detail.insert("trusted_roots".into(), json!(r.len()));
            g.trusted_roots = r;
        }
        if let Some(i) = inters {
            detail.insert("intermediates".into(), json!(i.len()));
            g.intermediates = i;
        }
        if let Some(t) = trust_list {
            detail.insert("trust_list".into(), json!(t));
            g.trust_list = (!t.is_empty()).then_some(t);
        }
        if let Some(v) = req.verify_revocation {
            g.verify_revocation = v;
            detail.insert("verify_revocation".into(), json!(v));
        }
        if let Some(v) = req.min_tls {
            g.min_tls = v;
            detail.insert("min_tls".into(), json!(v));
        }
        if let Some(v) = req.content_enabled {
            g.content_enabled = v;
            detail.insert("content_enabled".into(), json!(v));
        }
        if let Some(a) = req.alert {
            g.alert = a;
            detail.insert("alert".into(), json!(a));
        }
        if detail.is_empty() {
            return Err(StoreError::invalid(
                "nothing_to_change",
                "the request changes nothing",
            ));
        }
        sqlx::query(
            "UPDATE gateways SET instances = $2, cert_pem = $3, key_sealed = $4, trusted_roots = $5, \
             intermediates = $6, trust_list = $7, verify_revocation = $8, min_tls = $9, \
             content_enabled = $10, alert_enabled = $11, alert_threshold_gb = $12, \
             alert_warning_pct = $13, alert_critical_pct = $14, alert_stop_at_critical = $15, \
             instance_channels = $16 WHERE name = $1",
        )
        .bind(name)
        .bind(i64::from(g.instances))
        .bind(g.cert_pem.as_str())
        .bind(g.key_sealed.as_str())
        .bind(serde_json::to_string(&g.trusted_roots).map_err(StoreError::internal)?)
        .bind(serde_json::to_string(&g.intermediates).map_err(StoreError::internal)?)
        .bind(
            g.trust_list
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(StoreError::internal)?,
        )
        .bind(b(g.verify_revocation))
        .bind(g.min_tls.as_str())
        .bind(b(g.content_enabled))
        .bind(b(g.alert.enabled))
        .bind(g.alert.threshold_gb as i64)
        .bind(i64::from(g.alert.warning_pct))
        .bind(i64::from(g.alert.critical_pct))
        .bind(b(g.alert.stop_at_critical))
        .bind(
            (!g.instance_channels.is_empty())
                .then(|| serde_json::to_string(&g.instance_channels))
                .transpose()
                .map_err(StoreError::internal)?,
        )
        .execute(&mut *c.tx)
        .await?;
        let version = c.bump(name).await?;
        detail.insert("settings_version".into(), json!(version));
        c.audit("gateway.modify", name, serde_json::Value::Object(detail))
            .await?;
        c.commit(self).await?;
        tracing::info!(gateway = %name, version, "gateway modified");
        Ok(Changed {
            settings_version: version,
        })
    }

    /// Records changes that cannot be applied to running instances (service name,
    /// region): the gateway is marked as needing a redeploy (new deployment packages).
    pub async fn redeploy_gateway(
        &self,
        name: &str,
        req: GatewayRedeploy,
        actor: &Actor,
    ) -> Result<Changed> {
        if let Some(r) = &req.region {
            check_region(r)?;
        }
        let mut c = self.begin(actor).await?;
        let mut g = load(&mut c.tx, name).await?;
        let mut detail = serde_json::Map::new();
        if let Some(s) = &req.service_name {
            let sealed = g.key_sealed.clone();
            let key = self.key().open(&key_purpose(name), &sealed)?;
            let cert = certs::server_cert(&g.cert_pem, key.expose(), c.now)?;
            let service = certs::service_name(&cert, Some(s))?;
            detail.insert(
                "service_name".into(),
                json!({"from": g.service_name, "to": service}),
            );
            g.service_name = service;
        }
        if let Some(r) = req.region {
            detail.insert("region".into(), json!({"from": g.region, "to": r}));
            g.region = r;
        }
        sqlx::query("UPDATE gateways SET service_name = $2, region = $3, redeploy_required = 1 WHERE name = $1")
            .bind(name)
            .bind(g.service_name.as_str())
            .bind(g.region.as_str())
            .execute(&mut *c.tx)
            .await?;
        let version = c.bump(name).await?;
        detail.insert("settings_version".into(), json!(version));
        c.audit("gateway.redeploy", name, serde_json::Value::Object(detail))
            .await?;
        c.commit(self).await?;
        tracing::info!(gateway = %name, version, "gateway marked for redeploy");
        Ok(Changed {
            settings_version: version,
        })
    }

    /// Deletes a gateway and its connection points. Refused while it is the last gateway
    /// and clients are told to use one, unless `force` (seed 004: "Always keep at least
    /// one active CMG for internet-based clients to receive updated policy").
    pub async fn delete_gateway(&self, name: &str, force: bool, actor: &Actor) -> Result<()> {
        let mut c = self.begin(actor).await?;
        load(&mut c.tx, name).await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM gateways")
            .fetch_one(&mut *c.tx)
            .await?;
        let clients_use: i64 = sqlx::query_scalar("SELECT clients_use_cmg FROM site WHERE id = 1")
            .fetch_one(&mut *c.tx)
            .await?;
        if count == 1 && clients_use != 0 && !force {
            return Err(StoreError::Refused {
                code: "last_gateway",
                message: format!(
                    "{name} is the last gateway serving internet clients: they cannot reach the site without it \
                     and learn of a new one only back on the intranet. Create another gateway first, or delete with force"
                ),
            });
        }
        let cps: Vec<String> =
            sqlx::query_scalar("SELECT id FROM connection_points WHERE gateway = $1")
                .bind(name)
                .fetch_all(&mut *c.tx)
                .await?;
        for sql in [
            "DELETE FROM connection_points WHERE gateway = $1",
            "DELETE FROM storage_credentials WHERE gateway = $1",
            "DELETE FROM instance_keys WHERE gateway = $1",
            "DELETE FROM cp_reports WHERE gateway = $1",
            "DELETE FROM channel_status WHERE gateway = $1",
            "DELETE FROM traffic_marks WHERE gateway = $1",
            "DELETE FROM traffic_buckets WHERE gateway = $1",
            "DELETE FROM alerts WHERE gateway = $1",
            "DELETE FROM gateways WHERE name = $1",
        ] {
            sqlx::query(sql).bind(name).execute(&mut *c.tx).await?;
        }
        Store::unreference(&mut c.tx, "gateways", name).await?;
        c.audit(
            "gateway.delete",
            name,
            json!({"force": force, "connection_points": cps}),
        )
        .await?;
        c.commit(self).await?;
        tracing::info!(gateway = %name, force, "gateway deleted");
        Ok(())
    }

    /// The gateway's server key, for its deployment package.
    pub(crate) fn open_gateway_key(&self, g: &GatewayRow) -> Result<Secret> {
        Ok(self.key().open(&key_purpose(&g.name), &g.key_sealed)?)
    }
}
