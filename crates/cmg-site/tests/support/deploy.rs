//! A deployed site: the site serving on loopback, gateway `gw1` (one instance, from its
//! deployment package) and connection point `cp1` (from the files `connection-point
//! add` writes), all real and in-process, channel up. Shared by the tests that need the
//! whole path (connection_point.rs, location_gateway.rs).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use cmg_core::Shutdown;
use cmg_site::files::{connector_files, write_files, ConnectorOptions};
use cmg_site::model::{ConnectionPointAdd, ExportRequest, RoleCreate};
use cmg_site::store::ExportListen;
use cmg_site::{server, Secret, Store};
use cmg_test_support::patience;
use serde_json::json;

use super::{admin, gateway_pki, gateway_request, test_site, GatewayPki, Kind, TestDb};

/// Bound on every wait in these tests, before `CMG_TEST_PATIENCE` scales it.
pub const WAIT: Duration = Duration::from_secs(15);

pub async fn serve_site(
    store: &Store,
    listen: SocketAddr,
) -> (SocketAddr, Shutdown, tokio::task::JoinHandle<()>) {
    let mut config = server::Config::new(listen, Secret::new("test-admin-token-0123456789"));
    config.long_poll = Duration::from_secs(2);
    let bound = server::bind(store.clone(), config.clone())
        .await
        .expect("bind site");
    let addr = bound.local_addr().expect("addr");
    let shutdown = Shutdown::new();
    let task = tokio::spawn(bound.run(shutdown.clone()));
    (addr, shutdown, task)
}

/// Waits (bounded) until the instance runs settings `version`.
pub async fn wait_version(gw: &tokio::sync::watch::Receiver<u64>, version: u64) {
    let mut gw = gw.clone();
    let reached = tokio::time::timeout(patience(WAIT), gw.wait_for(|v| *v == version))
        .await
        .map(|r| r.map(|_| ()));
    assert!(
        matches!(reached, Ok(Ok(_))),
        "gateway still at settings version {}, expected {version}",
        *gw.borrow()
    );
}

pub fn append(path: &Path, text: &str) {
    let mut s = std::fs::read_to_string(path).expect("read");
    s.push_str(text);
    std::fs::write(path, s).expect("write");
}

/// A site with gateway `gw1` (one instance, from its deployment package) and connection
/// point `cp1` (from the files `connection-point add` writes), all running, channel up.
pub struct Deployed {
    pub store: Store,
    pub _db: TestDb,
    pub pki: GatewayPki,
    pub dir: tempfile::TempDir,
    pub site_addr: SocketAddr,
    pub site_down: Shutdown,
    pub site_task: tokio::task::JoinHandle<()>,
    pub gw: tokio::sync::watch::Receiver<u64>,
    pub gw_client: SocketAddr,
    pub gw_down: Shutdown,
    pub gw_task: tokio::task::JoinHandle<()>,
    pub cp_status: tokio::sync::watch::Receiver<cmg_connector::ConnectorStatus>,
    pub cp_mappings: cmg_connector::MappingsInForce,
    pub cp_down: Shutdown,
    pub cp_task: tokio::task::JoinHandle<()>,
}

pub async fn deploy(role_mode: &str) -> Deployed {
    let (store, _db) = test_site(Kind::Sqlite).await;
    let actor = admin();
    let pki = gateway_pki("cmg.contoso.test");
    store
        .create_gateway(gateway_request("gw1", &pki), &actor)
        .await
        .expect("gateway");
    let role: RoleCreate = serde_json::from_value(json!({
        "role_id": "72057594037927939", "kind": "management_point",
        "internal_url": "http://127.0.0.1:9", "mode": role_mode, "allow_gateway_traffic": true,
    }))
    .expect("role");
    store.create_role(role, &actor).await.expect("role");
    let (site_addr, site_down, site_task) =
        serve_site(&store, "127.0.0.1:0".parse().expect("addr")).await;

    // The instance, from the site's deployment package as exported (its `[settings]`
    // takes bundles from the connection points, the exported bundle first).
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
        "\n[reports]\ninterval = \"200ms\"\n",
    );
    let gw_config = cmg_gateway::Config::from_file(&gw_dir.join("gateway.toml")).expect("config");
    let gw_bound = cmg_gateway::bind(gw_config).await.expect("bind gateway");
    assert_eq!(
        *gw_bound.settings_version().borrow(),
        package.settings_version,
        "the exported bundle is in force before any channel"
    );
    let channel_addr = gw_bound.channel_addr().expect("channel listener");
    let gw_client = gw_bound.client_addr();
    let gw = gw_bound.settings_version();
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
        "wait = \"2s\"\nbackoff_base = \"100ms\"\nbackoff_max = \"500ms\"\nreport_interval = \"300ms\"\n",
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
    cmg_connector::wait_all_up(&mut cp_status, patience(WAIT))
        .await
        .expect("channel up");

    Deployed {
        store,
        _db,
        pki,
        dir,
        site_addr,
        site_down,
        site_task,
        gw,
        gw_client,
        gw_down,
        gw_task,
        cp_status,
        cp_mappings,
        cp_down,
        cp_task,
    }
}
