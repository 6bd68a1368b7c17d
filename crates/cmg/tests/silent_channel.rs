//! A channel that goes silent (packets dropped, no FIN, no RST) across a real network:
//! one connection point runs as its own process in a network namespace of its own,
//! joined to this host by a veth pair; a second runs on this host. Blackhole routes on
//! both ends drop the first one's packets. The gateway must notice within its PING
//! interval and timeout (default 1 s + 1.5 s) and serve every new request through the
//! other connection point.
//!
//! Needs root (network namespaces), as CI runs; with `CMG_SKIP_NETNS=1` set it says so
//! and passes without checking anything, for a developer's unprivileged run.

mod netns_support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cmg_client::{ClientTls, HttpsClient};
use cmg_core::shutdown::Shutdown;
use cmg_pki::demo::{DemoPki, DemoPkiPaths, DemoPkiSpec};
use cmg_proto::{ConnectorId, SiteCode};
use netns_support::{Netns, Proc};

const SERVICE: &str = "cmg.demo.test";
const PREFIX: &str = "/CCM_Proxy_MutualAuth/72057594037927939/CCM_System";

fn q(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

fn pki(dir: &Path) -> DemoPkiPaths {
    DemoPki::generate(&DemoPkiSpec {
        service_name: SERVICE.into(),
        site: SiteCode::new("DEM").expect("site"),
        connectors: ["cp1", "cp2"]
            .iter()
            .map(|c| ConnectorId::new(*c).expect("id"))
            .collect(),
        crl_url: None,
    })
    .expect("generate")
    .write(dir)
    .expect("write")
}

fn connector_toml(p: &DemoPkiPaths, i: usize, gateway: SocketAddr, mp: SocketAddr) -> String {
    let cp = &p.connectors[i];
    format!(
        "id = \"{}\"\nsite = \"DEM\"\nservice_name = \"{SERVICE}\"\ngateways = [\"{gateway}\"]\nthreads = 1\n\
         [tls]\ncert = {}\nkey = {}\ngateway_ca = [{}]\n\
         [timing]\nbackoff_base = \"100ms\"\nbackoff_max = \"1s\"\n\
         [[mapping]]\nexternal = \"{PREFIX}\"\ninternal = \"http://{mp}/CCM_System\"\n",
        cp.id,
        q(&cp.cert),
        q(&cp.key),
        q(&p.root_ca),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_channel_is_dropped_in_seconds_and_requests_move_on() {
    if std::env::var_os("CMG_SKIP_NETNS").is_some() {
        eprintln!("CMG_SKIP_NETNS set: network namespace test not run");
        return;
    }
    let mut ns = Netns::create("silent", 's', 231);
    let dir = tempfile::tempdir().expect("tempdir");
    let p = pki(dir.path());

    // The management point and the gateway's channel port on this host's veth address,
    // reachable from the namespace; the client port on loopback.
    let mp_config = cmg_mp::Config::from_toml(
        &dir.path().join("mp.toml"),
        &format!("listen = \"{}:0\"\ndata_dir = \"mp\"\n", ns.host_ip),
    )
    .expect("mp config");
    let mp = cmg_mp::bind(mp_config).await.expect("mp");
    let mp_addr = mp.local_addr();
    let down = Shutdown::new();
    tokio::spawn(mp.run(down.clone()));

    let gw_toml = format!(
        "instance = \"gw1\"\nservice_name = \"{SERVICE}\"\nroute_headers = true\nthreads = 1\n\
         [listen]\nclient = \"127.0.0.1:0\"\nchannel = \"{}:0\"\n\
         [tls]\ncert = {}\nkey = {}\n\
         [client_auth]\ntrusted_roots = [{}]\ntrusted_intermediates = [{}]\nverify_revocation = false\n\
         [channel]\nsite_ca = [{}]\n\
         [[published_url]]\nprefix = \"{PREFIX}\"\nsite = \"DEM\"\nmax_body_bytes = 1024\n",
        ns.host_ip,
        q(&p.server_cert),
        q(&p.server_key),
        q(&p.root_ca),
        q(&p.intermediate_ca),
        q(&p.site_ca),
    );
    let gw_path = dir.path().join("gw.toml");
    std::fs::write(&gw_path, gw_toml).expect("write");
    let gw_config = cmg_gateway::Config::from_file(&gw_path).expect("gateway config");
    let (ping, timeout) = (
        gw_config.channel.ping_interval,
        gw_config.channel.ping_timeout,
    );
    let bound = cmg_gateway::bind(gw_config).await.expect("bind");
    let (client_addr, channel_addr) = (bound.client_addr(), bound.channel_addr().expect("channel"));
    let registry = bound.registry();
    tokio::spawn(bound.run(down.clone()));

    // cp1 in the namespace, cp2 on this host, both real `cmg connector` processes.
    let mut procs = Vec::new();
    for (i, in_ns) in [(0, true), (1, false)] {
        let path = dir.path().join(format!("cp{}.toml", i + 1));
        std::fs::write(&path, connector_toml(&p, i, channel_addr, mp_addr)).expect("write");
        let bin = env!("CARGO_BIN_EXE_cmg");
        let mut cmd = if in_ns {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &ns.name, bin]);
            c
        } else {
            Command::new(bin)
        };
        cmd.args(["connector", "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        procs.push(Proc(cmd.spawn().expect("start cmg connector")));
    }
    let mut channels = registry.subscribe_channels();
    tokio::time::timeout(Duration::from_secs(30), channels.wait_for(|n| *n == 2))
        .await
        .expect("both connection points connect")
        .expect("registry");
    let from_cp1 = registry
        .snapshot()
        .into_iter()
        .find(|c| c.connector.as_str() == "cp1")
        .expect("cp1's channel");
    assert_eq!(from_cp1.peer.ip(), ns.ns_ip, "cp1 dials from its namespace");

    let client = HttpsClient::new(
        &ClientTls {
            ca: vec![p.root_ca.clone()],
            identity: Some((p.client_cert.clone(), p.client_key.clone())),
        },
        client_addr,
        SERVICE,
        false,
    )
    .expect("client");

    // Drops every packet between the two ends, silently, in both directions.
    let (to_ns, to_host) = (format!("{}/32", ns.ns_ip), format!("{}/32", ns.host_ip));
    ns.host_blackhole(&to_ns);
    ns.exec(&["route", "add", "blackhole", &to_host]);
    let cut = Instant::now();
    tokio::time::timeout(Duration::from_secs(30), channels.wait_for(|n| *n == 1))
        .await
        .expect("the silent channel is dropped")
        .expect("registry");
    let noticed = cut.elapsed();
    eprintln!(
        "silent channel noticed after {noticed:?} (PING every {ping:?}, timeout {timeout:?})"
    );
    // The timers bound it; a loaded machine fires them late, never early.
    assert!(
        noticed >= timeout && noticed <= ping + timeout + Duration::from_secs(2),
        "noticed after {noticed:?}"
    );
    assert_eq!(registry.snapshot()[0].connector.as_str(), "cp2");

    for i in 0..20 {
        let req = http::Request::builder()
            .method("CCM_POST")
            .uri(format!("{PREFIX}/request?n={i}"))
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                b"hello",
            )))
            .expect("request");
        let resp = client
            .request(req)
            .await
            .expect("request after the partition");
        assert_eq!(resp.status(), 200, "request {i}");
        assert_eq!(resp.headers()["cmg-connection-point"], "cp2");
        cmg_client::collect_body(resp).await.expect("body");
    }
    down.token.cancel();
    drop(procs);
}
