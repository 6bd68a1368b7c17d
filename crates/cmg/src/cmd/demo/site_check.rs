//! Checks that the site is in charge: its status view shows every instance connected
//! from every connection point, the demo's requests arrive at the site as traffic
//! (counted once, though every connection point relays every instance's snapshots), and
//! a change made at the site (a second management point role, then its removal) reaches
//! every instance as a new bundle and every connection point as new URL mappings.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cmg_cluster::clients::Cert;
use cmg_cluster::spec::{GATEWAY_NAME, MP_ROLE_ID};
use cmg_cluster::Cluster;
use cmg_site::mappings::{RoleKind, RoleMode};
use cmg_site::model::{EndpointTrafficView, GatewayStatus, HealthState, RoleCreate, RoleView};
use http::{Method, StatusCode};
use serde_json::Value;

use super::check::{ccm_post_to, Report};

/// Bound on each wait for the site or the instances to catch up.
const PATIENCE: Duration = Duration::from_secs(15);

/// A role the demo adds at the site and removes again (same management point).
const SECOND_ROLE_ID: u64 = MP_ROLE_ID + 1;

/// Runs the site checks; `ccm_system_requests` is how many requests the demo sent to
/// the CCM_System endpoint before.
pub async fn run(cluster: &Cluster, ccm_system_requests: u64, report: &mut Report) {
    if cluster.site.is_none() {
        report.add("site", false, "the demo runs without a site");
        return;
    }
    status(cluster, report).await;
    traffic(cluster, ccm_system_requests, report).await;
    change(cluster, report).await;
}

/// An admin call without a body; its JSON answer.
async fn admin(cluster: &Cluster, method: Method, path: &str) -> Result<Value, String> {
    let site = cluster.site().map_err(|e| e.to_string())?;
    site.admin(method, path, None)
        .await
        .map_err(|e| e.to_string())
}

/// An admin `GET`, its answer read as the view type `R`.
async fn admin_get<R: serde::de::DeserializeOwned>(
    cluster: &Cluster,
    path: &str,
) -> Result<R, String> {
    let site = cluster.site().map_err(|e| e.to_string())?;
    site.admin_get(path).await.map_err(|e| e.to_string())
}

/// `cmg site status`: Ready, each instance with a channel from every connection point.
async fn status(cluster: &Cluster, report: &mut Report) {
    let want: BTreeSet<String> = cluster.gateways.iter().map(|g| g.name.clone()).collect();
    let cps = cluster.connectors.len();
    let deadline = Instant::now() + PATIENCE;
    let (ok, detail) = loop {
        let (ok, detail) = match admin_get::<Vec<GatewayStatus>>(cluster, "/api/v1/status").await {
            Ok(v) => judge_status(&v, &want, cps),
            Err(e) => (false, e),
        };
        if ok || Instant::now() >= deadline {
            break (ok, detail);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    report.add(
        "site status: every instance and connection point",
        ok,
        detail,
    );
}

fn judge_status(v: &[GatewayStatus], want: &BTreeSet<String>, cps: usize) -> (bool, String) {
    let Some(g) = v.iter().find(|g| g.gateway == GATEWAY_NAME) else {
        return (false, format!("{GATEWAY_NAME} not in the status view"));
    };
    let mut seen = BTreeSet::new();
    let mut connected = Vec::new();
    for i in &g.instances {
        let from = i.connected_from.len();
        connected.push(format!("{}<-{from}cp", i.instance));
        if from == cps {
            seen.insert(i.instance.clone());
        }
    }
    let reporting = g.connection_points.iter().filter(|c| c.reporting).count();
    let ok = g.status == HealthState::Ready && seen == *want && reporting == cps;
    (
        ok,
        format!(
            "{:?}; {}; {reporting}/{cps} connection points reporting",
            g.status,
            connected.join(" ")
        ),
    )
}

/// `cmg site traffic`: the CCM_System requests counted exactly once.
async fn traffic(cluster: &Cluster, want: u64, report: &mut Report) {
    let name = "site counted the demo's CCM_System traffic once";
    let endpoint = cmg_cluster::spec::external_prefix("CCM_System");
    let path = format!("/api/v1/traffic?gateway={GATEWAY_NAME}&since=1h");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let v: Vec<EndpointTrafficView> = match admin_get(cluster, &path).await {
            Ok(v) => v,
            Err(e) => return report.add(name, false, e),
        };
        let row = v.iter().find(|t| t.endpoint == endpoint);
        let requests = row.map_or(0, |t| t.requests);
        let ok2xx = row.map_or(0, |t| t.status_classes[1]);
        let ok = requests == want && ok2xx == want;
        // More than was sent fails at once (counted twice); fewer may still be on the way.
        if ok || requests > want || Instant::now() >= deadline {
            let detail = format!("{requests} requests, {ok2xx} 2xx (sent {want})");
            return report.add(name, ok, detail);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A second management point role at the site: a new bundle on every instance and a
/// URL that answers through each; then removed again: another bundle, 404 again.
async fn change(cluster: &Cluster, report: &mut Report) {
    let url = format!("/CCM_Proxy_MutualAuth/{SECOND_ROLE_ID}/CCM_System/request");
    // Not published before the change.
    let before = through_each(cluster, &url, StatusCode::NOT_FOUND, Duration::ZERO).await;
    report.add(
        "new role's URL unpublished before the change",
        before.0,
        before.1,
    );

    let role = RoleCreate {
        role_id: SECOND_ROLE_ID.to_string(),
        kind: RoleKind::ManagementPoint,
        internal_url: format!("http://{}", cluster.mp_addr),
        mode: RoleMode::Http,
        allow_gateway_traffic: true,
    };
    // The instances' versions before the change: read after it, a fast bundle would
    // already be there.
    let versions = instance_versions(cluster);
    let step = match cluster.site() {
        Ok(site) => site
            .admin_send::<_, RoleView>(Method::POST, "/api/v1/roles", &role)
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    new_version(cluster, "role added at the site", versions, step, report).await;
    let after = through_each(cluster, &url, StatusCode::OK, PATIENCE).await;
    report.add(
        "new role's URL served through every instance",
        after.0,
        after.1,
    );

    let versions = instance_versions(cluster);
    let step = admin(
        cluster,
        Method::DELETE,
        &format!("/api/v1/roles/{SECOND_ROLE_ID}"),
    )
    .await
    .map(drop);
    new_version(cluster, "role removed at the site", versions, step, report).await;
    let gone = through_each(cluster, &url, StatusCode::NOT_FOUND, PATIENCE).await;
    report.add("removed role's URL refused again", gone.0, gone.1);
}

/// Each instance's settings version in force now.
fn instance_versions(cluster: &Cluster) -> Vec<u64> {
    cluster
        .gateways
        .iter()
        .map(|g| g.settings_version())
        .collect()
}

/// After a change (`step`): the site's new settings version is in force on every
/// instance, each of which was below it `before` the change.
async fn new_version(
    cluster: &Cluster,
    what: &str,
    before: Vec<u64>,
    step: Result<(), String>,
    report: &mut Report,
) {
    let name = format!("{what}: new bundle on every instance");
    if let Err(e) = step {
        report.add(name, false, e);
        return;
    }
    let version = match cluster.site_settings_version().await {
        Ok(v) => v,
        Err(e) => {
            report.add(name, false, e.to_string());
            return;
        }
    };
    let started = Instant::now();
    let waited = cluster.wait_settings(version, PATIENCE).await;
    let now: Vec<String> = cluster
        .gateways
        .iter()
        .zip(&before)
        .map(|(g, b)| format!("{} v{b}->v{}", g.name, g.settings_version()))
        .collect();
    let newer = before.iter().all(|&b| b < version);
    report.add(
        name,
        waited.is_ok() && newer,
        format!(
            "site v{version}: {} in {:?}",
            now.join(", "),
            started.elapsed()
        ),
    );
}

/// `CCM_POST` to `url` through every instance until each answers `want` (bounded by
/// `patience`; zero: one try).
async fn through_each(
    cluster: &Cluster,
    url: &str,
    want: StatusCode,
    patience: Duration,
) -> (bool, String) {
    let deadline = Instant::now() + patience;
    let mut details = Vec::new();
    let mut all = true;
    for (i, g) in cluster.gateways.iter().enumerate() {
        let client = match cluster.client(i, Cert::Valid, true) {
            Ok(c) => c,
            Err(e) => return (false, e.to_string()),
        };
        let got = loop {
            let got = ccm_post_to(&client, url, Bytes::from_static(b"<Msg/>")).await;
            let done = matches!(&got, Ok(e) if e.status == want && (want != StatusCode::OK || e.instance == g.name));
            if done || Instant::now() >= deadline {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        match got {
            Ok(e) => {
                let ok = e.status == want && (want != StatusCode::OK || e.instance == g.name);
                all &= ok;
                details.push(format!("{} {}", g.name, e.status.as_u16()));
            }
            Err(e) => {
                all = false;
                details.push(format!("{} {e}", g.name));
            }
        }
    }
    (
        all,
        format!("{} (want {})", details.join(", "), want.as_u16()),
    )
}
