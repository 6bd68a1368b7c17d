//! The demo's devices: `cmg client` agents, a certificate client on the intranet, one
//! whose intranet is unreachable and a token client with `always_internet`, started
//! after the other checks (their requests would otherwise share the round robin those
//! checks count on) and checked from what each agent stored and from the management
//! point's journal:
//! - the connection type it decided is the one expected, and why;
//! - it holds every policy the management point serves, each body's SHA-256 as the
//!   management point's file has it;
//! - the path its policy took, as the answers showed it: the intranet one straight to
//!   the management point (no gateway named the answer, and the journal has a listing
//!   request without the gateway's `cmg-request-id`); the internet ones through a
//!   gateway instance and connection point, named by the answer's `cmg-gateway-instance`
//!   and `cmg-connection-point`, and a listing request in the journal that a gateway
//!   forwarded (`cmg-request-id`, and `cmg-client-auth` of the device's kind:
//!   `certificate` or `token`).

use std::collections::BTreeMap;
use std::time::Duration;

use cmg_agent::{ConnectionKind, PolicyRoute, State};
use cmg_cluster::devices::{DeviceCredential, DeviceNode, DeviceSpec};
use cmg_cluster::layout::POLICY;
use cmg_cluster::Cluster;
use cmg_mp::JournalEntry;
use cmg_proto::device::policy::ASSIGNMENTS_QUERY;
use sha2::{Digest as _, Sha256};

use super::check::Report;

/// Bound on every client's first cycle (decide, location, policy).
const FIRST_POLL: Duration = Duration::from_secs(20);

/// Enrols the demo's devices: their `client.toml` files exist before `demo.json` is
/// written; they start in [`run`].
pub async fn enrol(cluster: &mut Cluster) -> Result<(), String> {
    for spec in DeviceSpec::demo(cluster.gateways.len()) {
        cluster.add_device(spec).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Starts every device, waits for its first policy poll and checks it.
pub async fn run(cluster: &mut Cluster, report: &mut Report) {
    for i in 0..cluster.devices.len() {
        if let Err(e) = cluster.start_device(i) {
            report.add(
                format!("client {}: started", cluster.devices[i].spec.name),
                false,
                e.to_string(),
            );
            return;
        }
    }
    let waited = cluster.wait_devices_polled(FIRST_POLL).await;
    let journal = cmg_mp::read_journal(&cluster.mp_journal).unwrap_or_default();
    let listings: Vec<&JournalEntry> = journal
        .iter()
        .filter(|e| e.path == "/SMS_MP/.sms_pol" && e.query.as_deref() == Some(ASSIGNMENTS_QUERY))
        .collect();
    for d in &cluster.devices {
        check_device(cluster, d, &listings, waited.as_ref().err(), report);
    }
}

fn check_device(
    cluster: &Cluster,
    d: &DeviceNode,
    listings: &[&JournalEntry],
    waited: Option<&cmg_cluster::ClusterError>,
    report: &mut Report,
) {
    let name = &d.spec.name;
    let expect = d.spec.expect();
    let state = match d.state() {
        Ok(Some(s)) => s,
        Ok(None) => {
            let why = waited.map_or("no state saved".to_string(), |e| e.to_string());
            report.add(format!("client {name}: connection {expect}"), false, why);
            return;
        }
        Err(e) => {
            report.add(
                format!("client {name}: connection {expect}"),
                false,
                e.to_string(),
            );
            return;
        }
    };
    let (kind, reason) = state
        .connection
        .as_ref()
        .map_or(("undecided".to_string(), String::new()), |c| {
            (c.kind.to_string(), c.reason.clone())
        });
    report.add(
        format!("client {name}: connection {expect}"),
        kind == expect.to_string(),
        format!("{kind} ({reason})"),
    );
    let (ok, detail) = judge_policy(cluster, &state);
    report.add(format!("client {name}: received policy"), ok, detail);
    let auth = match d.spec.credential {
        DeviceCredential::Certificate => "certificate",
        DeviceCredential::BulkToken => "token",
    };
    let (ok, detail) = judge_path(
        cluster,
        expect,
        auth,
        state.policy.last_route.as_ref(),
        listings,
    );
    let what = match expect {
        ConnectionKind::Intranet => "policy straight from the MP",
        ConnectionKind::Internet => "policy through the gateway",
    };
    report.add(format!("client {name}: {what}"), ok, detail);
}

/// Every policy the management point serves, held with the body's SHA-256.
fn judge_policy(cluster: &Cluster, state: &State) -> (bool, String) {
    let want: BTreeMap<&str, String> = POLICY
        .iter()
        .map(|(id, _)| {
            let body = std::fs::read(cluster.dir().join("policy").join(id)).unwrap_or_default();
            (*id, hex::encode(Sha256::digest(&body)))
        })
        .collect();
    let held = &state.policy.held;
    let mut missing = Vec::new();
    for (id, sha) in &want {
        let ok = held
            .get(*id)
            .is_some_and(|h| h.sha256.eq_ignore_ascii_case(sha));
        if !ok {
            missing.push(*id);
        }
    }
    let got: Vec<String> = held
        .iter()
        .map(|(id, h)| format!("{id} v{}", h.version))
        .collect();
    if missing.is_empty() && held.len() == want.len() {
        (
            true,
            format!("{} (SHA-256 as the MP's files)", got.join(", ")),
        )
    } else {
        (
            false,
            format!(
                "holds [{}], missing or different: {missing:?}",
                got.join(", ")
            ),
        )
    }
}

/// The path the client recorded from the answers, and the journal's side of it.
fn judge_path(
    cluster: &Cluster,
    expect: ConnectionKind,
    auth: &str,
    route: Option<&PolicyRoute>,
    listings: &[&JournalEntry],
) -> (bool, String) {
    let Some(r) = route else {
        return (false, "no policy poll recorded".into());
    };
    let header = |e: &JournalEntry, name: &str| {
        e.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let forwarded = listings
        .iter()
        .filter(|e| {
            header(e, "cmg-request-id").is_some()
                && header(e, "cmg-client-auth").as_deref() == Some(auth)
        })
        .count();
    let direct = listings
        .iter()
        .filter(|e| header(e, "cmg-request-id").is_none())
        .count();
    match expect {
        ConnectionKind::Intranet => {
            let want_url = format!("http://{}", cluster.mp_addr);
            let ok = r.connection == ConnectionKind::Intranet
                && r.url == want_url
                && r.gateway_instance.is_none()
                && direct > 0;
            (
                ok,
                format!(
                    "{} via {} ({}), no gateway; MP journal: {direct} listing request(s) not through a gateway",
                    r.connection, r.management_point, r.url
                ),
            )
        }
        ConnectionKind::Internet => {
            let instance_ok = r
                .gateway_instance
                .as_ref()
                .is_some_and(|i| cluster.gateways.iter().any(|g| &g.name == i));
            let cp_ok = r
                .connection_point
                .as_ref()
                .is_some_and(|c| cluster.connectors.iter().any(|n| n.id.as_str() == c));
            let ok =
                r.connection == ConnectionKind::Internet && instance_ok && cp_ok && forwarded > 0;
            (
                ok,
                format!(
                    "{} via {}: instance {}, connection point {}; MP journal: {forwarded} listing request(s) forwarded by a gateway ({auth})",
                    r.connection,
                    r.url,
                    r.gateway_instance.as_deref().unwrap_or("-"),
                    r.connection_point.as_deref().unwrap_or("-"),
                ),
            )
        }
    }
}
