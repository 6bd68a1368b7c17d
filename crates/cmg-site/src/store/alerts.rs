//! The 14-day traffic alert (seed 004, "Alerts"): a gateway's egress over the last 14
//! days against its threshold, at the warning and critical percentages.
//!
//! Evaluation compares the level the traffic is at with the gateway's active alert (at
//! most one, `cleared_at` unset) and changes something only on a transition: the active
//! alert is cleared, the new level raised, both in one audited change. Reaching critical
//! with "stop the service at critical" also sets the gateway's `service_stopped` reason
//! and bumps its settings version, so the stop is published; only an admin clears the
//! stop ([`Store::clear_alert_stop`]), and it is not set again until the traffic has left
//! the critical level and reaches it anew.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row as _;

use super::{b, get_bool, Actor, Result, Store, StoreError};
use crate::model::{AlertLevel, AlertSettings, AlertView, Changed};

/// The associated data of the sealed webhook URL.
pub(crate) const WEBHOOK_PURPOSE: &str = "alert-webhook";

/// The alert's period.
pub const ALERT_WINDOW_SECS: i64 = 14 * 86_400;
/// Bytes in a GB (decimal, as egress is billed).
pub const GB: u64 = 1_000_000_000;

/// A transition, for the log and the webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub gateway: String,
    /// `raised` or `cleared`.
    pub event: String,
    pub level: AlertLevel,
    pub egress_bytes: u64,
    pub threshold_bytes: u64,
    pub percent: u64,
    pub at: i64,
    /// The raise stopped the service.
    pub stopped: bool,
    pub message: String,
}

/// The level `egress` is at under `a`, if any.
pub fn level_for(a: &AlertSettings, egress: u64) -> Option<AlertLevel> {
    if !a.enabled {
        return None;
    }
    let threshold = u128::from(a.threshold_gb) * u128::from(GB);
    let e = u128::from(egress) * 100;
    if e >= threshold * u128::from(a.critical_pct) {
        Some(AlertLevel::Critical)
    } else if e >= threshold * u128::from(a.warning_pct) {
        Some(AlertLevel::Warning)
    } else {
        None
    }
}

fn percent(egress: u64, threshold: u64) -> u64 {
    if threshold == 0 {
        0
    } else {
        (u128::from(egress) * 100 / u128::from(threshold)) as u64
    }
}

fn alert_from_row(r: &sqlx::any::AnyRow) -> Result<AlertView> {
    let level: String = r.try_get("level")?;
    Ok(AlertView {
        id: r.try_get("id")?,
        gateway: r.try_get("gateway")?,
        level: AlertLevel::parse(&level)
            .ok_or_else(|| StoreError::internal(format!("alert level {level:?}")))?,
        raised_at: r.try_get("raised_at")?,
        cleared_at: r.try_get("cleared_at")?,
        egress_bytes: r.try_get::<i64, _>("egress_bytes")? as u64,
        threshold_bytes: r.try_get::<i64, _>("threshold_bytes")? as u64,
        stopped: get_bool(r, "stopped")?,
        message: r.try_get("message")?,
    })
}

/// Checks a webhook URL: `http://` or `https://` with a host, no credentials.
pub fn check_webhook(url: &str) -> Result<()> {
    let bad = |m: &str| StoreError::invalid("bad_webhook", m.to_owned());
    if url.len() > 2048 || url.chars().any(char::is_control) {
        return Err(bad("the webhook URL is at most 2048 characters"));
    }
    let uri: http::Uri = url
        .parse()
        .map_err(|_| bad("the webhook URL does not parse"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(bad("the webhook URL must be http:// or https://"));
    }
    match uri.authority() {
        Some(a) if !a.host().is_empty() && !a.as_str().contains('@') => Ok(()),
        _ => Err(bad("the webhook URL needs a host and no user:password")),
    }
}

impl Store {
    /// The active alert of a gateway.
    pub async fn active_alert(&self, gateway: &str) -> Result<Option<AlertView>> {
        let row = sqlx::query(
            "SELECT * FROM alerts WHERE gateway = $1 AND cleared_at IS NULL ORDER BY id DESC",
        )
        .bind(gateway)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(alert_from_row).transpose()
    }

    /// Alerts, newest first: active ones only, or the whole history up to `limit`.
    pub async fn alerts(&self, active_only: bool, limit: u32) -> Result<Vec<AlertView>> {
        let sql = if active_only {
            "SELECT * FROM alerts WHERE cleared_at IS NULL ORDER BY id DESC LIMIT $1"
        } else {
            "SELECT * FROM alerts ORDER BY id DESC LIMIT $1"
        };
        let rows = sqlx::query(sql)
            .bind(i64::from(limit.clamp(1, 1000)))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(alert_from_row).collect()
    }

    /// Evaluates every gateway's alert at `now`.
    pub async fn evaluate_all_alerts(&self, now: i64) -> Result<Vec<AlertEvent>> {
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM gateways ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        let mut events = Vec::new();
        for name in names {
            match self.evaluate_alert(&name, now).await {
                Ok(mut e) => events.append(&mut e),
                // Deleted meanwhile.
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(events)
    }

    /// Evaluates one gateway's alert at `now` (module docs); returns the transitions.
    pub async fn evaluate_alert(&self, gateway: &str, now: i64) -> Result<Vec<AlertEvent>> {
        let g = self.gateway_row(gateway).await?;
        let egress = self.egress_since(gateway, now - ALERT_WINDOW_SECS).await?;
        let want = level_for(&g.alert, egress);
        let active = self.active_alert(gateway).await?;
        if active.as_ref().map(|a| a.level) == want {
            return Ok(Vec::new());
        }
        let system = Actor::new("system");
        let mut c = self.begin(&system).await?;
        // Re-read under the change lock: another evaluation may have won.
        let g = super::gateway::load(&mut c.tx, gateway).await?;
        let want = level_for(&g.alert, egress);
        let active = sqlx::query(
            "SELECT * FROM alerts WHERE gateway = $1 AND cleared_at IS NULL ORDER BY id DESC",
        )
        .bind(gateway)
        .fetch_optional(&mut *c.tx)
        .await?
        .as_ref()
        .map(alert_from_row)
        .transpose()?;
        if active.as_ref().map(|a| a.level) == want {
            return Ok(Vec::new());
        }
        let threshold = g.alert.threshold_gb.saturating_mul(GB);
        let pct = percent(egress, threshold);
        let mut events = Vec::new();
        if let Some(a) = &active {
            sqlx::query("UPDATE alerts SET cleared_at = $2 WHERE id = $1")
                .bind(a.id)
                .bind(c.now)
                .execute(&mut *c.tx)
                .await?;
            events.push(AlertEvent {
                gateway: gateway.to_owned(),
                event: "cleared".into(),
                level: a.level,
                egress_bytes: egress,
                threshold_bytes: threshold,
                percent: pct,
                at: c.now,
                stopped: false,
                message: format!(
                    "{gateway}: 14-day egress is {pct}% of the {} GB threshold; the {} alert is cleared",
                    g.alert.threshold_gb,
                    a.level.as_str()
                ),
            });
        }
        if let Some(level) = want {
            let message = format!(
                "{gateway}: 14-day egress {:.3} GB is {pct}% of the {} GB threshold ({} at {}%)",
                egress as f64 / GB as f64,
                g.alert.threshold_gb,
                level.as_str(),
                match level {
                    AlertLevel::Warning => g.alert.warning_pct,
                    AlertLevel::Critical => g.alert.critical_pct,
                }
            );
            let stop = level == AlertLevel::Critical
                && g.alert.stop_at_critical
                && g.service_stopped.is_none();
            sqlx::query(
                "INSERT INTO alerts (id, gateway, level, raised_at, cleared_at, egress_bytes, \
                 threshold_bytes, stopped, message) VALUES ($1, $2, $3, $4, NULL, $5, $6, $7, $8)",
            )
            .bind(c.seq)
            .bind(gateway)
            .bind(level.as_str())
            .bind(c.now)
            .bind(i64::try_from(egress).unwrap_or(i64::MAX))
            .bind(i64::try_from(threshold).unwrap_or(i64::MAX))
            .bind(b(stop))
            .bind(message.as_str())
            .execute(&mut *c.tx)
            .await?;
            if stop {
                sqlx::query("UPDATE gateways SET service_stopped = $2 WHERE name = $1")
                    .bind(gateway)
                    .bind(format!("stopped by the traffic alert: {message}"))
                    .execute(&mut *c.tx)
                    .await?;
                c.bump(gateway).await?;
            }
            events.push(AlertEvent {
                gateway: gateway.to_owned(),
                event: "raised".into(),
                level,
                egress_bytes: egress,
                threshold_bytes: threshold,
                percent: pct,
                at: c.now,
                stopped: stop,
                message,
            });
        }
        let action = if want.is_some() {
            "alert.raise"
        } else {
            "alert.clear"
        };
        c.audit(action, gateway, json!({"events": events})).await?;
        c.commit(self).await?;
        for e in &events {
            if e.event == "raised" {
                tracing::warn!(target: "cmg_site::alerts", gateway, level = e.level.as_str(),
                    percent = e.percent, stopped = e.stopped, "traffic alert raised: {}", e.message);
            } else {
                tracing::info!(target: "cmg_site::alerts", gateway, level = e.level.as_str(),
                    percent = e.percent, "traffic alert cleared: {}", e.message);
            }
        }
        Ok(events)
    }

    /// Clears a gateway's service stop (new settings version, published). The alert
    /// itself stays active while the traffic is at its level.
    pub async fn clear_alert_stop(&self, gateway: &str, actor: &Actor) -> Result<Changed> {
        let mut c = self.begin(actor).await?;
        let g = super::gateway::load(&mut c.tx, gateway).await?;
        let Some(reason) = g.service_stopped else {
            return Err(StoreError::Refused {
                code: "not_stopped",
                message: format!("{gateway} is not stopped"),
            });
        };
        sqlx::query("UPDATE gateways SET service_stopped = NULL WHERE name = $1")
            .bind(gateway)
            .execute(&mut *c.tx)
            .await?;
        let version = c.bump(gateway).await?;
        c.audit(
            "alert.clear_stop",
            gateway,
            json!({"was": reason, "settings_version": version}),
        )
        .await?;
        c.commit(self).await?;
        tracing::info!(target: "cmg_site::alerts", gateway, version, "service stop cleared by an admin");
        Ok(Changed {
            settings_version: version,
        })
    }

    /// The URL alerts are POSTed to, if set. Stored sealed: such URLs often carry a
    /// token.
    pub async fn alert_webhook(&self) -> Result<Option<String>> {
        let v: Option<Option<String>> =
            sqlx::query_scalar("SELECT alert_webhook FROM site WHERE id = 1")
                .fetch_optional(self.pool())
                .await?;
        match v.ok_or(StoreError::NotInitialised)? {
            Some(sealed) => Ok(Some(
                self.key()
                    .open(WEBHOOK_PURPOSE, &sealed)?
                    .expose()
                    .to_owned(),
            )),
            None => Ok(None),
        }
    }

    /// Sets or (with `None`) removes the alert webhook. The audit log records only its
    /// host.
    pub async fn set_alert_webhook(&self, url: Option<&str>, actor: &Actor) -> Result<()> {
        let mut host = None;
        if let Some(u) = url {
            check_webhook(u)?;
            host = u
                .parse::<http::Uri>()
                .ok()
                .and_then(|p| p.host().map(str::to_owned));
        }
        let sealed = url
            .map(|u| self.key().seal(WEBHOOK_PURPOSE, u.as_bytes()))
            .transpose()?;
        let mut c = self.begin(actor).await?;
        sqlx::query("UPDATE site SET alert_webhook = $1 WHERE id = 1")
            .bind(sealed)
            .execute(&mut *c.tx)
            .await?;
        c.audit(
            "site.alert_webhook",
            "site",
            json!({"set": url.is_some(), "host": host}),
        )
        .await?;
        c.commit(self).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_webhook_urls() {
        let mut a = AlertSettings {
            enabled: true,
            threshold_gb: 1,
            warning_pct: 50,
            critical_pct: 90,
            stop_at_critical: false,
        };
        assert_eq!(level_for(&a, 499_999_999), None);
        assert_eq!(level_for(&a, 500_000_000), Some(AlertLevel::Warning));
        assert_eq!(level_for(&a, 900_000_000), Some(AlertLevel::Critical));
        assert_eq!(level_for(&a, u64::MAX), Some(AlertLevel::Critical));
        a.enabled = false;
        assert_eq!(level_for(&a, u64::MAX), None);
        assert!(check_webhook("http://127.0.0.1:9/hook").is_ok());
        assert!(check_webhook("https://alerts.example/x").is_ok());
        for bad in [
            "ftp://x/",
            "http://u:p@x/",
            "/relative",
            "http://",
            "http://x/\n",
        ] {
            assert!(check_webhook(bad).is_err(), "{bad}");
        }
    }
}
