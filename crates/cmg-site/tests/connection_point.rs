//! The site, a connection point and a gateway instance, all real and in-process on
//! loopback: the instance is started from the deployment package the site exports, the
//! connection point from the files `connection-point add` writes (its `[site_api]`
//! section), and a change made at the site reaches the instance through the connection
//! point's long poll within seconds, also after the site was down for a while; a role
//! moved at the site changes the connection point's URL mappings live.

#[allow(unused_macros)]
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use cmg_core::Shutdown;
use cmg_site::files::{connector_files, write_files, ConnectorOptions};
use cmg_site::model::{ConnectionPointAdd, ExportRequest, GatewayModify, RoleCreate, RoleModify};
use cmg_site::store::ExportListen;
use cmg_site::{server, Secret, Store};
use serde_json::json;
use support::{admin, gateway_pki, gateway_request, test_site, Kind};

/// Bound on every wait.
const PATIENCE: Duration = Duration::from_secs(15);

async fn serve_site(
    store: &Store,
    listen: SocketAddr,
) -> (SocketAddr, Shutdown, tokio::task::JoinHandle<()>) {
    let mut config = server::Config::new(listen, Secret::new("test-admin-token-0123456789"));
    config.long_poll = Duration::from_secs(2);
    let bound = server::bind(store.clone(), &config)
        .await
        .expect("bind site");
    let addr = bound.local_addr().expect("addr");
    let shutdown = Shutdown::new();
    let task = tokio::spawn(bound.run(shutdown.clone()));
    (addr, shutdown, task)
}

/// Waits (bounded) until the instance runs settings `version`.
async fn wait_version(gw: &cmg_gateway::Gateway, version: u64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let v = gw
            .settings_version
            .load(std::sync::atomic::Ordering::Relaxed);
        if v == version {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "gateway still at settings version {v}, expected {version}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn append(path: &Path, text: &str) {
    let mut s = std::fs::read_to_string(path).expect("read");
    s.push_str(text);
    std::fs::write(path, s).expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_changes_reach_the_gateway_through_the_connection_point() {
    let _log = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("cmg_connector=debug,cmg_gateway=info,cmg_site=info")
            .finish(),
    );
    let (store, _db) = test_site(Kind::Sqlite).await;
    let actor = admin();
    let pki = gateway_pki("cmg.contoso.test");
    store
        .create_gateway(gateway_request("gw1", &pki), &actor)
        .await
        .expect("gateway");
    let role: RoleCreate = serde_json::from_value(json!({
        "role_id": "72057594037927939", "kind": "management_point",
        "internal_url": "http://127.0.0.1:9", "mode": "http", "allow_gateway_traffic": true,
    }))
    .expect("role");
    store.create_role(role, &actor).await.expect("role");
    let (site_addr, site_down, site_task) =
        serve_site(&store, "127.0.0.1:0".parse().expect("addr")).await;

    // The instance, from the site's deployment package, told to take bundles from its
    // connection points.
    let dir = tempfile::tempdir().expect("dir");
    let gw_dir = dir.path().join("gw1-1");
    let export: ExportRequest = serde_json::from_value(json!({"instance": 1})).expect("req");
    let listen = ExportListen {
        client: "127.0.0.1:0".into(),
        channel: "127.0.0.1:0".into(),
        admin: None,
    };
    let package = store
        .export("gw1", &export, &listen, &actor)
        .await
        .expect("export");
    write_files(&gw_dir, &package.files).expect("write package");
    append(
        &gw_dir.join("gateway.toml"),
        "\n[settings]\ngateway = \"gw1\"\nsite_keys = [\"site-keys.pem\"]\nlast_good = \"last-good.jws\"\n",
    );
    let gw_config = cmg_gateway::Config::from_file(&gw_dir.join("gateway.toml")).expect("config");
    let gw_bound = cmg_gateway::bind(&gw_config).expect("bind gateway");
    let channel_addr = gw_bound.channel_addr().expect("channel listener");
    let gw = gw_bound.gateway();
    let gw_down = Shutdown::new();
    let gw_task = tokio::spawn(gw_bound.run(gw_down.clone()));

    // The connection point, from the files `cmg site connection-point add` writes.
    let add: ConnectionPointAdd =
        serde_json::from_value(json!({"gateway": "gw1", "id": "cp1"})).expect("add");
    let issued = store.add_connection_point(add, &actor).await.expect("cp");
    let cp_dir = dir.path().join("cp1");
    let files = connector_files(
        &issued,
        &ConnectorOptions {
            gateways: vec![channel_addr.to_string()],
            gateway_ca_pem: None,
            site_url: format!("https://127.0.0.1:{}/", site_addr.port()),
        },
    );
    write_files(&cp_dir, &files).expect("write cp files");
    assert!(
        !files.iter().any(|f| f.name == "site.toml"),
        "the site link is in connector.toml"
    );
    // [site_api] is the file's last section: shorter waits and backoff for the test.
    append(
        &cp_dir.join("connector.toml"),
        "wait = \"2s\"\nbackoff_base = \"100ms\"\nbackoff_max = \"500ms\"\n",
    );
    let cp_config =
        cmg_connector::Config::from_file(&cp_dir.join("connector.toml")).expect("cp config");
    let link = cp_config.site_api.as_ref().expect("[site_api] written");
    assert_eq!(link.gateway, "gw1");
    let cp_bound = cmg_connector::bind(cp_config).await.expect("bind cp");
    let mut cp_status = cp_bound.status();
    let cp_mappings = cp_bound.mappings();
    let cp_down = Shutdown::new();
    let cp_task = tokio::spawn(cp_bound.run(cp_down.clone()));
    cmg_connector::wait_all_up(&mut cp_status, PATIENCE)
        .await
        .expect("channel up");

    // The bundle the site holds now reaches the instance.
    let v1 = store.settings_version("gw1").await.expect("version");
    assert!(v1 >= 1);
    wait_version(&gw, v1).await;

    // A change at the site: the next version, within seconds.
    let change: GatewayModify =
        serde_json::from_value(json!({"verify_revocation": false})).expect("modify");
    store
        .modify_gateway("gw1", change, &actor)
        .await
        .expect("modify");
    let v2 = store.settings_version("gw1").await.expect("version");
    assert_eq!(v2, v1 + 1);
    let t = Instant::now();
    wait_version(&gw, v2).await;
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // The site goes away; a change made meanwhile arrives once it is back.
    site_down.token.cancel();
    tokio::time::timeout(PATIENCE, site_task)
        .await
        .expect("site stopped")
        .expect("join");
    // Its connections drain in the background (an open long poll finishes): wait for
    // them too, so that the site is really gone.
    site_down.tracker.close();
    tokio::time::timeout(PATIENCE, site_down.tracker.wait())
        .await
        .expect("site connections closed");
    let change: GatewayModify =
        serde_json::from_value(json!({"verify_revocation": true})).expect("modify");
    store
        .modify_gateway("gw1", change, &actor)
        .await
        .expect("modify");
    let v3 = store.settings_version("gw1").await.expect("version");
    assert_eq!(v3, v2 + 1);
    // The connection point keeps failing to reach the site; the instance stays at v2
    // (it keeps the bundle it has) while the channel stays up.
    tokio::time::timeout(Duration::from_millis(1500), async {
        loop {
            if gw
                .settings_version
                .load(std::sync::atomic::Ordering::Relaxed)
                != v2
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect_err("no new version while the site is down");
    assert!(
        cp_status.borrow().all_up(),
        "channels do not depend on the site"
    );
    let (again, site_down, _site_task) = serve_site(&store, site_addr).await;
    assert_eq!(again, site_addr);
    wait_version(&gw, v3).await;

    // The role moves: the connection point forwards by the site's new mappings, live.
    let moved: RoleModify =
        serde_json::from_value(json!({"internal_url": "http://127.0.0.1:10"})).expect("modify");
    store
        .modify_role("72057594037927939", moved, &actor)
        .await
        .expect("modify role");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let list = cp_mappings.list();
        if !list.is_empty()
            && list
                .iter()
                .all(|(_, i)| i.starts_with("http://127.0.0.1:10/"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "mappings not updated: {list:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_version(&gw, v3 + 1).await;

    cp_down.token.cancel();
    tokio::time::timeout(PATIENCE, cp_task)
        .await
        .expect("connection point stopped")
        .expect("join")
        .expect("clean stop");
    gw_down.token.cancel();
    tokio::time::timeout(PATIENCE, gw_task)
        .await
        .expect("gateway stopped")
        .expect("join");
    site_down.token.cancel();
}
