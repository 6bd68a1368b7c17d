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

use std::time::{Duration, Instant};

use cmg_site::model::{GatewayModify, RoleModify};
use cmg_site::Store;
use cmg_test_support::{eventually, patience};
use serde_json::json;
use support::admin;
use support::deploy::{deploy, serve_site, wait_version, Deployed, WAIT};

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
