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

use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cmg_agent::testing::FakeSite;
use cmg_agent::{ConnectionKind, State};
use cmg_test_support::eventually;

/// A network namespace joined to this host by a veth pair; removed on drop.
struct Netns {
    name: String,
    host_if: String,
    gateway_ip: IpAddr,
    intranet_ip: IpAddr,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    fn create() -> Self {
        let id = std::process::id() % 200 + 20;
        let name = format!("cmgt-client-{}", std::process::id());
        let host_if = format!("cmgc{id}a");
        let ns_if = format!("cmgc{id}b");
        let gateway_ip: IpAddr = format!("10.232.{id}.1").parse().expect("ip");
        let ns_ip = format!("10.232.{id}.2");
        let intranet_ip: IpAddr = format!("10.233.{id}.1").parse().expect("ip");
        ip(&["netns", "add", &name]);
        let ns = Self {
            name,
            host_if,
            gateway_ip,
            intranet_ip,
        };
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &ns_if,
        ]);
        ip(&["link", "set", &ns_if, "netns", &ns.name]);
        ip(&[
            "addr",
            "add",
            &format!("{gateway_ip}/30"),
            "dev",
            &ns.host_if,
        ]);
        ip(&[
            "addr",
            "add",
            &format!("{intranet_ip}/32"),
            "dev",
            &ns.host_if,
        ]);
        ip(&["link", "set", &ns.host_if, "up"]);
        ns.exec(&["addr", "add", &format!("{ns_ip}/30"), "dev", &ns_if]);
        ns.exec(&["link", "set", &ns_if, "up"]);
        ns.exec(&["link", "set", "lo", "up"]);
        ns.route_intranet();
        ns
    }

    fn exec(&self, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.name, "ip"];
        all.extend_from_slice(args);
        ip(&all);
    }

    fn route_intranet(&self) {
        let to = format!("{}/32", self.intranet_ip);
        let via = self.gateway_ip.to_string();
        self.exec(&["route", "replace", &to, "via", &via]);
    }

    fn cut_intranet(&self) {
        self.exec(&[
            "route",
            "replace",
            "blackhole",
            &format!("{}/32", self.intranet_ip),
        ]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A child process ended (by PID) on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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
    let ns = Netns::create();
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
            &ns.name,
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
