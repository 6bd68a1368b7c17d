//! The site, a connection point and a gateway instance, all real and in-process on
//! loopback: the instance is started from the deployment package the site exports, the
//! connection point from the files `connection-point add` writes (its `[site_api]`
//! section), and a change made at the site reaches the instance through the connection
//! point's long poll within seconds, also after the site was down for a while; a role
//! moved at the site changes the connection point's URL mappings live. Device tokens
//! are registered and renewed through the gateway, and the traffic the connection point
//! reports is counted by the site exactly once; a stopped connection point shows as
//! Disconnected.

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
use cmg_test_support::{eventually, patience};
use serde_json::json;
use support::{admin, gateway_pki, gateway_request, test_site, Kind};

/// Bound on every wait in these tests, before `CMG_TEST_PATIENCE` scales it.
const WAIT: Duration = Duration::from_secs(15);

async fn serve_site(
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
async fn wait_version(gw: &tokio::sync::watch::Receiver<u64>, version: u64) {
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

fn append(path: &Path, text: &str) {
    let mut s = std::fs::read_to_string(path).expect("read");
    s.push_str(text);
    std::fs::write(path, s).expect("write");
}

/// A site with gateway `gw1` (one instance, from its deployment package) and connection
/// point `cp1` (from the files `connection-point add` writes), all running, channel up.
struct Deployed {
    store: Store,
    _db: support::TestDb,
    pki: support::GatewayPki,
    dir: tempfile::TempDir,
    site_addr: SocketAddr,
    site_down: Shutdown,
    site_task: tokio::task::JoinHandle<()>,
    gw: tokio::sync::watch::Receiver<u64>,
    gw_client: SocketAddr,
    gw_down: Shutdown,
    gw_task: tokio::task::JoinHandle<()>,
    cp_status: tokio::sync::watch::Receiver<cmg_connector::ConnectorStatus>,
    cp_mappings: cmg_connector::MappingsInForce,
    cp_down: Shutdown,
    cp_task: tokio::task::JoinHandle<()>,
}

async fn deploy(role_mode: &str) -> Deployed {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_changes_reach_the_gateway_through_the_connection_point() {
    let _log = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("cmg_connector=debug,cmg_gateway=info,cmg_site=info")
            .finish(),
    );
    let Deployed {
        store,
        _db,
        pki: _pki,
        dir: _dir,
        site_addr,
        site_down,
        site_task,
        gw,
        gw_client: _,
        gw_down,
        gw_task,
        cp_status,
        cp_mappings,
        cp_down,
        cp_task,
    } = deploy("http").await;
    let actor = admin();
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
    tokio::time::timeout(patience(WAIT), site_task)
        .await
        .expect("site stopped")
        .expect("join");
    // Its connections drain in the background (an open long poll finishes): wait for
    // them too, so that the site is really gone.
    site_down.tracker.close();
    tokio::time::timeout(patience(WAIT), site_down.tracker.wait())
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
    let mut version = gw.clone();
    tokio::time::timeout(Duration::from_millis(1500), version.wait_for(|v| *v != v2))
        .await
        .map(|r| r.map(|v| *v))
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
    eventually("the connection point's mappings to the moved role")
        .within(WAIT)
        .every(Duration::from_millis(50))
        .until(
            || cp_mappings.list(),
            |list| {
                !list.is_empty()
                    && list
                        .iter()
                        // The site's own services stay the site's.
                        .filter(|(p, _)| !p.ends_with("/CCM_STS") && !p.ends_with("/CCM_Location"))
                        .all(|(_, i)| i.starts_with("http://127.0.0.1:10/"))
            },
        )
        .await;
    wait_version(&gw, v3 + 1).await;

    cp_down.token.cancel();
    tokio::time::timeout(patience(WAIT), cp_task)
        .await
        .expect("connection point stopped")
        .expect("clean stop");
    gw_down.token.cancel();
    tokio::time::timeout(patience(WAIT), gw_task)
        .await
        .expect("gateway stopped")
        .expect("join");
    site_down.token.cancel();
}

/// Device tokens through the gateway (issue 3, "renewable through the gateway"): a client
/// with a bulk registration token registers at `CCM_Proxy_ServerAuth/<role>/CCM_STS`,
/// which the site maps to its own token service; the device token it gets renews itself
/// the same way. The gateway checks each token before forwarding; the site checks it
/// again and signs the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_tokens_are_issued_and_renewed_through_the_gateway() {
    let d = deploy("enhanced_http").await;
    let actor = admin();
    let v = d.store.settings_version("gw1").await.expect("version");
    wait_version(&d.gw, v).await;
    // The connection point maps CCM_STS to the site API it talks to.
    let sts = format!("https://127.0.0.1:{}/api/v1/sts", d.site_addr.port());
    eventually(format!("the connection point's mapping to {sts}"))
        .within(WAIT)
        .every(Duration::from_millis(50))
        .until(
            || d.cp_mappings.list(),
            |list| list.iter().any(|(_, i)| *i == sts),
        )
        .await;

    let bulk = d
        .store
        .new_token(Some(60), &actor)
        .await
        .expect("bulk token");
    let client = cmg_client::HttpsClient::new(
        &cmg_client::ClientTls {
            ca: vec![d.pki.dir.path().join("root-ca.pem")],
            identity: None,
        },
        d.gw_client,
        "cmg.contoso.test",
        true,
    )
    .expect("client");
    let url = "https://cmg.contoso.test/CCM_Proxy_ServerAuth/72057594037927939/CCM_STS/token";
    let post = |token: &str, body: &'static str| {
        http::Request::post(url)
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                body.as_bytes(),
            )))
            .expect("request")
    };
    let call = |req| async {
        let resp = client.request(req).await.expect("exchange");
        let status = resp.status();
        let body = cmg_client::collect_body(resp).await.expect("body");
        (
            status,
            serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default(),
        )
    };

    let (status, body) = call(post(&bulk.token, r#"{"device_id":"device-7"}"#)).await;
    assert_eq!(status, http::StatusCode::OK, "{body}");
    let device = body["token"].as_str().expect("token").to_owned();
    let (status, body) = call(post(&device, "")).await;
    assert_eq!(status, http::StatusCode::OK, "{body}");
    assert_eq!(body["device_id"], "device-7");
    let renewed = body["token"].as_str().expect("token").to_owned();
    assert_ne!(renewed, device);

    // Both verify as device-7 device tokens with the site's keys.
    let verifier = support::site_token_verifier(&d.store).await;
    for t in [&device, &renewed] {
        let v = verifier.verify(t, &|_| false).expect("valid device token");
        assert_eq!(v.subject.as_deref(), Some("device-7"));
    }

    // A forged token never reaches the site: the gateway answers 401 itself.
    let audit = d.store.audit(1000, None).await.expect("audit").len();
    let (status, _) = call(post("not-a-token", r#"{"device_id":"x"}"#)).await;
    assert_eq!(status, http::StatusCode::UNAUTHORIZED);
    assert_eq!(d.store.audit(1000, None).await.expect("audit").len(), audit);

    // The site counted exactly these three requests (two issued, one refused) from the
    // reports the connection point relayed, and shows the connection point's channel.
    let sts_endpoint = "/CCM_Proxy_ServerAuth/72057594037927939/CCM_STS";
    let query = cmg_site::model::TrafficQuery {
        gateway: Some("gw1".into()),
        since: 0,
    };
    let (store, q) = (&d.store, &query);
    let sts_only = |traffic: &[cmg_site::model::EndpointTrafficView]| -> Vec<cmg_site::model::EndpointTrafficView> {
        traffic
            .iter()
            .filter(|t| t.endpoint == sts_endpoint)
            .cloned()
            .collect()
    };
    let traffic = eventually("the site to count the three STS requests")
        .within(WAIT)
        .every(Duration::from_millis(100))
        .until_async(
            move || async move { store.traffic(q).await.expect("traffic") },
            |traffic| {
                let sts = sts_only(traffic);
                sts.len() == 1 && sts[0].requests == 3
            },
        )
        .await;
    let sts = sts_only(&traffic);
    assert_eq!(sts[0].status_classes, [0, 2, 0, 1, 0], "{traffic:?}");
    assert!(sts[0].bytes_out > 0);
    let status_now = |store: Store| async move {
        let interval = Duration::from_secs(300);
        store
            .gateway_status("gw1", interval, cmg_site::now())
            .await
            .expect("status")
    };
    let status = status_now(d.store.clone()).await;
    assert_ne!(
        status.status,
        cmg_site::model::HealthState::Disconnected,
        "{status:?}"
    );
    let cp = &status.connection_points[0];
    assert!(
        cp.channels.iter().any(|c| c.state == "connected"),
        "{status:?}"
    );
    // Still exact after later reports (each relays the same cumulative snapshot again):
    // wait until the site has received one in a later second than the one above.
    let seen = cp.last_report_at.expect("a report");
    eventually("a report in a later second")
        .within(WAIT)
        .every(Duration::from_millis(100))
        .until_async(
            || status_now(d.store.clone()),
            |status| {
                status.connection_points[0]
                    .last_report_at
                    .is_some_and(|t| t > seen)
            },
        )
        .await;
    let traffic = d.store.traffic(&query).await.expect("traffic");
    let sts = traffic
        .iter()
        .find(|t| t.endpoint == sts_endpoint)
        .expect("sts");
    assert_eq!(sts.requests, 3, "{traffic:?}");

    // The connection point stops: its shutdown report makes the gateway Disconnected.
    d.cp_down.token.cancel();
    let _ = tokio::time::timeout(patience(WAIT), d.cp_task).await;
    let status = status_now(d.store.clone()).await;
    assert_eq!(
        status.status,
        cmg_site::model::HealthState::Disconnected,
        "{status:?}"
    );
    d.gw_down.token.cancel();
    let _ = tokio::time::timeout(patience(WAIT), d.gw_task).await;
    d.site_down.token.cancel();
    let _ = tokio::time::timeout(patience(WAIT), d.site_task).await;
    drop(d.dir);
}
