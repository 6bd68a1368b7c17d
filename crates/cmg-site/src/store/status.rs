//! Each gateway's status from its connection points' newest reports and its alert.
//!
//! The rules, first match wins (also in docs/architecture.md):
//! - **Stopped**: the service is stopped (`service_stopped` set).
//! - **Disconnected**: no connection point is *reporting* (a report received within twice
//!   the report interval, not a shutdown report).
//! - **Error**: reporting connection points, but none has a connected channel; or a
//!   critical alert.
//! - **Warning**: a warning alert; a connection point of the gateway is not reporting; or
//!   a reporting one has fewer connected channels than the gateway has instances.
//! - **Ready**: otherwise.

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::Row as _;

use super::alerts::ALERT_WINDOW_SECS;
use super::{Result, Store};
use crate::model::{
    AlertLevel, ChannelView, ConnectionPointStatus, GatewayStatus, HealthState, InstanceStatus,
};

impl Store {
    /// Every gateway's status at `now`, with reports older than twice `report_interval`
    /// counted as stale.
    pub async fn gateway_statuses(
        &self,
        report_interval: Duration,
        now: i64,
    ) -> Result<Vec<GatewayStatus>> {
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM gateways ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        let mut out = Vec::new();
        for name in names {
            match self.gateway_status(&name, report_interval, now).await {
                Ok(s) => out.push(s),
                Err(super::StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// One gateway's status (module docs).
    pub async fn gateway_status(
        &self,
        gateway: &str,
        report_interval: Duration,
        now: i64,
    ) -> Result<GatewayStatus> {
        let g = self.gateway_row(gateway).await?;
        let stale_after = i64::try_from(report_interval.as_secs().saturating_mul(2))
            .unwrap_or(i64::MAX)
            .max(1);
        let cp_ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM connection_points WHERE gateway = $1 ORDER BY id")
                .bind(gateway)
                .fetch_all(self.pool())
                .await?;
        let reports = sqlx::query(
            "SELECT connection_point, reason, received_at, settings_version FROM cp_reports WHERE gateway = $1",
        )
        .bind(gateway)
        .fetch_all(self.pool())
        .await?;
        let mut last: BTreeMap<String, (String, i64, i64)> = BTreeMap::new();
        for r in &reports {
            last.insert(
                r.try_get("connection_point")?,
                (
                    r.try_get("reason")?,
                    r.try_get("received_at")?,
                    r.try_get("settings_version")?,
                ),
            );
        }
        let rows = sqlx::query(
            "SELECT * FROM channel_status WHERE gateway = $1 ORDER BY connection_point, address",
        )
        .bind(gateway)
        .fetch_all(self.pool())
        .await?;
        let mut channels: BTreeMap<String, Vec<ChannelView>> = BTreeMap::new();
        for r in &rows {
            let c = ChannelView {
                connection_point: r.try_get("connection_point")?,
                address: r.try_get("address")?,
                instance: r.try_get("instance")?,
                state: r.try_get("state")?,
                since: r.try_get("since")?,
                connection_id: r.try_get("connection_id")?,
                last_error: r.try_get("last_error")?,
                reported_at: r.try_get("reported_at")?,
            };
            channels
                .entry(c.connection_point.clone())
                .or_default()
                .push(c);
        }
        let mut cps = Vec::new();
        for id in cp_ids {
            let report = last.get(&id);
            let reporting = report.is_some_and(|(reason, at, _)| {
                reason != "shutdown" && now.saturating_sub(*at) <= stale_after
            });
            cps.push(ConnectionPointStatus {
                last_report_at: report.map(|r| r.1),
                last_reason: report.map(|r| r.0.clone()),
                settings_version: report.map(|r| r.2 as u64),
                reporting,
                channels: channels.remove(&id).unwrap_or_default(),
                id,
            });
        }
        let mut instances: BTreeMap<String, InstanceStatus> = BTreeMap::new();
        for cp in &cps {
            for c in &cp.channels {
                let key = c.instance.clone().unwrap_or_else(|| c.address.clone());
                let entry = instances
                    .entry(key.clone())
                    .or_insert_with(|| InstanceStatus {
                        instance: key,
                        connected_from: Vec::new(),
                        channels: Vec::new(),
                    });
                if cp.reporting && c.state == "connected" {
                    entry.connected_from.push(cp.id.clone());
                }
                entry.channels.push(c.clone());
            }
        }
        let alert = self.active_alert(gateway).await?.map(|a| a.level);
        let egress = self.egress_since(gateway, now - ALERT_WINDOW_SECS).await?;

        let connected = |cp: &ConnectionPointStatus| {
            cp.channels
                .iter()
                .filter(|c| c.state == "connected")
                .count()
        };
        let reporting: Vec<&ConnectionPointStatus> = cps.iter().filter(|c| c.reporting).collect();
        let mut reasons = Vec::new();
        let status = if let Some(why) = &g.service_stopped {
            reasons.push(format!("service stopped: {why}"));
            HealthState::Stopped
        } else if reporting.is_empty() {
            reasons.push(if cps.is_empty() {
                "the gateway has no connection point".to_owned()
            } else {
                format!(
                    "no connection point has reported within {stale_after} s (twice the report interval)"
                )
            });
            HealthState::Disconnected
        } else if reporting.iter().all(|c| connected(c) == 0) {
            reasons.push("no connection point has a connected channel".to_owned());
            HealthState::Error
        } else if alert == Some(AlertLevel::Critical) {
            reasons.push("the traffic alert is critical".to_owned());
            HealthState::Error
        } else {
            if alert == Some(AlertLevel::Warning) {
                reasons.push("the traffic alert is at warning".to_owned());
            }
            for cp in &cps {
                if !cp.reporting {
                    reasons.push(format!("connection point {} is not reporting", cp.id));
                } else if connected(cp) < g.instances as usize {
                    reasons.push(format!(
                        "connection point {} has {} of {} channels connected",
                        cp.id,
                        connected(cp),
                        g.instances
                    ));
                }
            }
            if reasons.is_empty() {
                HealthState::Ready
            } else {
                HealthState::Warning
            }
        };
        Ok(GatewayStatus {
            gateway: g.name,
            status,
            reasons,
            service_stopped: g.service_stopped,
            alert,
            egress_14d_bytes: egress,
            instances_expected: g.instances,
            instances: instances.into_values().collect(),
            connection_points: cps,
        })
    }
}
