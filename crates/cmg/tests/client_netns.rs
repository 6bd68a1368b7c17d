//! `cmg client run` really losing its intranet: the agent runs as its own process in a
//! network namespace joined to this host by a veth pair. This host answers as the site,
//! the intranet management point (one address) and the gateway (another address) with
//! cmg-agent's fake site. The namespace reaches the intranet address through a route;
//! replacing that route with a blackhole cuts the intranet and nothing else. The agent
//! must notice by itself (netlink, no polling), turn internet and keep getting policy
//! through the gateway; restoring the route must bring it back to the intranet; SIGTERM
//! must stop it cleanly.
//!
//! Needs root (network namespaces), as CI runs; with `CMG_SKIP_NETNS=1` set it says so
//! and passes without checking anything, for a developer's unprivileged run.

mod netns_support;

use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use cmg_agent::testing::FakeSite;
use cmg_agent::{ConnectionKind, State};
use cmg_test_support::eventually;
use netns_support::{ip, Netns, Proc};

/// The client's host: a namespace whose host end is the gateway's address; the
/// intranet is one more address on the host end, reached by a route the test can cut.
struct ClientHost {
    ns: Netns,
    gateway_ip: IpAddr,
    intranet_ip: IpAddr,
}

impl ClientHost {
    fn create() -> Self {
        let ns = Netns::create("client", 'c', 232);
        let intranet_ip: IpAddr = format!("10.233.{}.1", std::process::id() % 200 + 20)
            .parse()
            .expect("ip");
        ip(&[
            "addr",
            "add",
            &format!("{intranet_ip}/32"),
            "dev",
            &ns.host_if,
        ]);
        let host = Self {
            gateway_ip: ns.host_ip,
            ns,
            intranet_ip,
        };
        host.route_intranet();
        host
    }

    fn route_intranet(&self) {
        let to = format!("{}/32", self.intranet_ip);
        let via = self.gateway_ip.to_string();
        self.ns.exec(&["route", "replace", &to, "via", &via]);
    }

    fn cut_intranet(&self) {
        self.ns.exec(&[
            "route",
            "replace",
            "blackhole",
            &format!("{}/32", self.intranet_ip),
        ]);
    }
}

fn state(dir: &Path) -> Option<State> {
    State::load(&dir.join("state"), "DEM").ok().flatten()
}

/// (connection type, path of the last policy, version held of `Apps`).
fn observe(dir: &Path) -> (Option<ConnectionKind>, String, String) {
    let s = state(dir);
    (
        s.as_ref()
            .and_then(|s| s.connection.as_ref().map(|c| c.kind)),
        s.as_ref()
            .and_then(|s| s.policy.last_path.clone())
            .unwrap_or_default(),
        s.as_ref()
            .and_then(|s| s.policy.held.get("Apps").map(|p| p.version.clone()))
            .unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_loses_its_intranet_turns_internet_and_comes_back() {
    if std::env::var_os("CMG_SKIP_NETNS").is_some() {
        eprintln!("CMG_SKIP_NETNS set: network namespace test not run");
        return;
    }
    let ns = ClientHost::create();
    let dir = tempfile::tempdir().expect("tempdir");
    let site = FakeSite::start(dir.path(), ns.intranet_ip, ns.gateway_ip).await;
    // Poll every second, so policy changes show within the test's patience.
    site.fake().settings.policy_interval_secs = 1;
    let q = |p: &Path| format!("{:?}", p.display().to_string());
    let config = format!(
        "site = \"DEM\"\nintranet_mp = \"http://{i}\"\nsite_url = \"http://{i}\"\n\
         state_dir = {state}\nsite_keys = {keys}\ntrusted_roots = [{root}]\n\
         [credential]\ncertificate = {cert}\nkey = {key}\n\
         [resolve]\n\"cmg.demo.test\" = \"{g}\"\n\
         [timing]\nprobe_timeout = \"1s\"\nnetwork_settle = \"300ms\"\nretry_after = \"1s\"\nrequest_timeout = \"3s\"\n",
        i = site.intranet,
        g = site.gateway,
        state = q(&dir.path().join("state")),
        keys = q(&site.site_keys),
        root = q(&site.pki.root_ca),
        cert = q(&site.pki.client_cert),
        key = q(&site.pki.client_key),
    );
    let config_path = dir.path().join("client.toml");
    std::fs::write(&config_path, config).expect("write config");
    let log = std::fs::File::create(dir.path().join("client.log")).expect("log");
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.ns.name,
            env!("CARGO_BIN_EXE_cmg"),
            "client",
            "run",
            "--config",
        ])
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn cmg client run");
    let mut child = Proc(child);
    let within = Duration::from_secs(20);

    let d = dir.path().to_owned();
    eventually("the client to be intranet with policy from its MP")
        .within(within)
        .until(
            || observe(&d),
            |(k, path, _)| {
                *k == Some(ConnectionKind::Intranet) && path.starts_with("intranet via MP1")
            },
        )
        .await;

    ns.cut_intranet();
    site.fake().policies[1] = ("Apps".into(), 4, b"apps v4".to_vec());
    eventually("the client to notice, turn internet and get the new policy through the gateway")
        .within(within)
        .until(
            || observe(&d),
            |(k, path, v)| {
                *k == Some(ConnectionKind::Internet)
                    && path.starts_with("internet via cmg1")
                    && path.contains("instance gw1, connection point cp1")
                    && v == "4"
            },
        )
        .await;
    let reason = state(&d)
        .and_then(|s| s.connection.map(|c| c.reason))
        .unwrap_or_default();
    assert!(reason.contains("unreachable"), "{reason}");

    ns.route_intranet();
    site.fake().policies[1] = ("Apps".into(), 5, b"apps v5".to_vec());
    eventually("the client to return to the intranet and its MP")
        .within(within)
        .until(
            || observe(&d),
            |(k, path, v)| {
                *k == Some(ConnectionKind::Intranet)
                    && path.starts_with("intranet via MP1")
                    && v == "5"
            },
        )
        .await;

    // SIGTERM: a clean stop.
    let pid = child.0.id().to_string();
    let out = Command::new("kill")
        .args(["-TERM", &pid])
        .output()
        .expect("kill");
    assert!(out.status.success());
    let status = tokio::task::spawn_blocking(move || child.0.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(
        status.success(),
        "cmg client run exited with {status}: {}",
        std::fs::read_to_string(dir.path().join("client.log")).unwrap_or_default()
    );
    site.stop().await;
}
