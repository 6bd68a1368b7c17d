//! The connection analyzer's view of one gateway (`cmg_analyze::Deployment`), built from
//! the site's records in one place for both callers: `cmg site analyze` fills it from
//! the admin API's answers ([`deployment`]), the web console from its store
//! ([`from_store`], the same four reads the API's handlers make). It does not run the
//! analyzer and keeps no credential.

use std::time::Duration;

use cmg_analyze::{Channel, ConnectionPoint, Deployment, Role, RoleKind};
use cmg_proto::settings::SettingsBundle;

use crate::mappings::{RoleKind as SiteRoleKind, RoleMode};
use crate::model::{GatewayStatus, GatewayView, RoleView};
use crate::store::{Store, StoreError};

/// The view from the gateway's record (with its server chain), the bundle it runs, the
/// site's roles (those that allow gateway traffic are kept) and its status; `now` in
/// Unix seconds gives each report's age.
pub fn deployment(
    gateway: GatewayView,
    bundle: SettingsBundle,
    roles: Vec<RoleView>,
    status: GatewayStatus,
    now: i64,
) -> Deployment {
    Deployment {
        gateway: gateway.name,
        server_chain_pem: gateway.chain_pem,
        bundle,
        roles: roles
            .into_iter()
            .filter(|r| r.allow_gateway_traffic)
            .map(|r| Role {
                id: r.role_id,
                kind: match r.kind {
                    SiteRoleKind::ManagementPoint => RoleKind::ManagementPoint,
                    SiteRoleKind::SoftwareUpdatePoint => RoleKind::SoftwareUpdatePoint,
                },
                serves_tokens: r.mode != RoleMode::Http,
            })
            .collect(),
        instances_expected: gateway.instances,
        connection_points: status
            .connection_points
            .into_iter()
            .map(|cp| ConnectionPoint {
                id: cp.id,
                reporting: cp.reporting,
                last_reason: cp.last_reason,
                last_report_age: cp.last_report_at.map(|at| now - at),
                channels: cp
                    .channels
                    .into_iter()
                    .map(|c| Channel {
                        address: c.address,
                        instance: c.instance,
                        state: c.state,
                        last_error: c.last_error,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// The view of gateway `name` from the store, as the admin API would answer it.
pub async fn from_store(
    store: &Store,
    name: &str,
    report_interval: Duration,
    now: i64,
) -> Result<Deployment, StoreError> {
    let gateway = store.gateway(name).await?;
    let bundle = store.bundle(name).await?;
    let roles = store.roles().await?;
    let status = store.gateway_status(name, report_interval, now).await?;
    Ok(deployment(gateway, bundle, roles, status, now))
}
