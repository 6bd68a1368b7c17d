//! The agent against the real site (its location service and intranet registration)
//! and the real reference management point (the intranet probe), on loopback: a
//! certificate client decides intranet, registers and gets a device token, verifies
//! the site's signed answer and takes its candidates; "use CMG = No" at the site leaves
//! it no gateway; policy comes from the management point's `[policy]` directory.

use std::sync::Arc;

use cmg_agent::{Agent, Config, ConnectionKind, SystemClock};
use cmg_core::shutdown::Shutdown;
use cmg_pki::demo::{DemoPki, DemoPkiSpec};
use cmg_proto::SiteCode;
use cmg_site::model::{ClientSettings, GatewayCreate, RoleCreate};
use cmg_site::store::InitParams;
use cmg_site::{server, Actor, MasterKey, Secret, Store};

const ROLE: &str = "72057594037927939";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_client_registers_and_follows_the_real_site() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let admin = Actor::new("test-admin");

    // The reference management point (the probe's MPLIST).
    std::fs::create_dir_all(d.join("policy")).expect("policy dir");
    std::fs::write(d.join("policy/CMG-Baseline"), b"<Policy id='baseline'/>").expect("policy");
    let mp_config = cmg_mp::Config::from_toml(
        &d.join("mp.toml"),
        "listen = \"127.0.0.1:0\"\ndata_dir = \"mp\"\n[policy]\ndir = \"policy\"\n",
    )
    .expect("mp config");
    let mp = cmg_mp::bind(mp_config).await.expect("mp");
    let mp_addr = mp.local_addr();
    let mp_stop = Shutdown::new();
    let mp_task = tokio::spawn(mp.run(mp_stop.clone()));

    // The site: gateway gw1 trusting the demo root, the management point role.
    let db = cmg_site::db::sqlite_url(&d.join("site.db"));
    let key = MasterKey::parse("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
        .expect("key");
    let store = Store::open(&db, key).await.expect("store");
    let init = InitParams {
        site_code: SiteCode::new("DEM").expect("site"),
        api_names: vec!["127.0.0.1".into()],
    };
    store.init(&init, &admin).await.expect("init");
    let pki = DemoPki::generate(&DemoPkiSpec {
        service_name: "cmg.demo.test".into(),
        site: SiteCode::new("DEM").expect("site"),
        connectors: vec![],
        crl_url: None,
    })
    .expect("pki")
    .write(&d.join("pki"))
    .expect("write pki");
    let read = |p: &std::path::Path| std::fs::read_to_string(p).expect("read");
    let gw: GatewayCreate = serde_json::from_value(serde_json::json!({
        "name": "gw1", "cert_pem": read(&pki.server_cert), "key_pem": read(&pki.server_key),
        "trusted_roots_pem": [read(&pki.root_ca)], "instances": 1,
    }))
    .expect("gateway");
    store
        .create_gateway(gw, &admin)
        .await
        .expect("create gateway");
    let role: RoleCreate = serde_json::from_value(serde_json::json!({
        "role_id": ROLE, "kind": "management_point", "internal_url": format!("http://{mp_addr}"),
        "mode": "http", "allow_gateway_traffic": true,
    }))
    .expect("role");
    store.create_role(role, &admin).await.expect("create role");
    let bound = server::bind(
        store.clone(),
        server::Config::new(
            "127.0.0.1:0".parse().expect("addr"),
            Secret::new("admin-token-0123456789"),
        ),
    )
    .await
    .expect("bind site");
    let site_port = bound.local_addr().expect("addr").port();
    let site_stop = Shutdown::new();
    let site_task = tokio::spawn(bound.run(site_stop.clone()));
    std::fs::write(
        d.join("site-keys.pem"),
        store.public_keys_in_force().await.expect("keys").concat(),
    )
    .expect("keys");
    std::fs::write(
        d.join("site-ca.pem"),
        store.site().await.expect("site").ca_pem,
    )
    .expect("ca");

    let q = |p: &std::path::Path| format!("{:?}", p.display().to_string());
    let text = format!(
        "site = \"DEM\"\nintranet_mp = \"http://{mp_addr}\"\nsite_url = \"https://127.0.0.1:{site_port}\"\n\
         state_dir = \"state\"\nsite_keys = \"site-keys.pem\"\ntrusted_roots = [\"site-ca.pem\", {root}]\n\
         device_id = \"laptop-1\"\n[credential]\ncertificate = {cert}\nkey = {key}\n",
        root = q(&pki.root_ca),
        cert = q(&pki.client_cert),
        key = q(&pki.client_key),
    );
    std::fs::write(d.join("client.toml"), text).expect("config");
    let config = Config::from_file(&d.join("client.toml")).expect("client config");
    let mut agent = Agent::open(config.clone(), Arc::new(SystemClock)).expect("agent");

    agent.evaluate().await;
    assert_eq!(
        agent.kind(),
        ConnectionKind::Intranet,
        "{:?}",
        agent.state().connection
    );
    agent
        .ensure_token()
        .await
        .expect("registration on the intranet");
    assert!(agent.state().device_token.is_some());
    let answer = agent
        .refresh_location(None)
        .await
        .expect("a verified answer from the site");
    assert_eq!(answer.site.as_str(), "DEM");
    let s = agent.state();
    let intranet: Vec<&str> = s
        .intranet
        .candidates
        .iter()
        .map(|t| t.candidate.url.as_str())
        .collect();
    assert_eq!(intranet, [format!("http://{mp_addr}")]);
    let internet: Vec<&str> = s
        .internet
        .candidates
        .iter()
        .map(|t| t.candidate.url.as_str())
        .collect();
    assert_eq!(
        internet,
        [format!("https://cmg.demo.test/CCM_Proxy_MutualAuth/{ROLE}")]
    );
    assert_eq!(s.use_cmg, Some(true));
    assert_eq!(s.policy_interval_secs, Some(3600));

    // Policy from the real management point: listed, downloaded, checked; a changed
    // body is downloaded again, an unchanged one not.
    let polled = agent.poll_policy().await.expect("policy");
    assert_eq!(polled.downloaded, ["CMG-Baseline"]);
    std::fs::write(
        d.join("policy/CMG-Baseline"),
        b"<Policy id='baseline' v='2'/>",
    )
    .expect("policy");
    let polled = agent.poll_policy().await.expect("policy");
    assert_eq!(polled.downloaded, ["CMG-Baseline"]);
    assert_eq!(agent.state().policy.held["CMG-Baseline"].version, "2");
    let polled = agent.poll_policy().await.expect("policy");
    assert!(polled.downloaded.is_empty() && polled.unchanged == 1);
    assert_eq!(
        std::fs::read(d.join("state/policy/CMG-Baseline")).expect("body"),
        b"<Policy id='baseline' v='2'/>"
    );

    // "Use CMG = No": the next answer names no gateway.
    let settings = ClientSettings {
        enable_clients_to_use_cmg: false,
        allow_cloud_distribution_point: true,
        policy_interval_minutes: 30,
    };
    store
        .set_client_settings(&settings, &admin)
        .await
        .expect("settings");
    agent.refresh_location(None).await.expect("answer");
    assert!(agent.state().internet.candidates.is_empty());
    assert_eq!(
        (agent.state().use_cmg, agent.state().policy_interval_secs),
        (Some(false), Some(1800))
    );

    site_stop.token.cancel();
    mp_stop.token.cancel();
    let _ = site_task.await;
    let _ = mp_task.await;
}
