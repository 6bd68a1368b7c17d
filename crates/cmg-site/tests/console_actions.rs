//! The web console's actions in memory: each goes through the store calls of the REST
//! API and lands in the audit log as `web:<name>`; and every free-text value a page
//! shows (names, URLs, filters, messages that echo input) is escaped.

#[path = "console/harness.rs"]
mod harness;
#[allow(unused_macros)]
mod support;

use cmg_proto::report::{
    ChannelState, ChannelStatus, ConnectionPointReport, EndpointTraffic, ReportReason,
    TrafficSnapshot,
};
use harness::{app, Browser};
use http::StatusCode;
use support::{gateway_pki, gateway_request, test_site, Kind};

/// The newest audit entry: (actor, action, target).
async fn last_audit(store: &cmg_site::Store) -> (String, String, String) {
    let e = store.audit(1, None).await.expect("audit").remove(0);
    (e.actor, e.action, e.target)
}

/// The entries of a tar archive: (path, mode, content).
fn untar(bytes: &[u8]) -> Vec<(String, u32, String)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= bytes.len() && bytes[at] != 0 {
        let h = &bytes[at..at + 512];
        let field = |r: std::ops::Range<usize>| {
            String::from_utf8_lossy(&h[r])
                .trim_end_matches(['\0', ' '])
                .to_owned()
        };
        let name = field(0..100);
        let mode = u32::from_str_radix(&field(100..108), 8).expect("mode");
        let size = usize::from_str_radix(&field(124..136), 8).expect("size");
        let content = String::from_utf8_lossy(&bytes[at + 512..at + 512 + size]).into_owned();
        out.push((name, mode, content));
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}

#[tokio::test]
async fn every_action_goes_through_the_store_and_the_audit_log() {
    let (store, _db) = test_site(Kind::Sqlite).await;
    let pki = gateway_pki("gw1.example.test");
    store
        .create_gateway(gateway_request("gw1", &pki), &support::admin())
        .await
        .expect("gateway");
    let mut b = Browser::new(app(&store));
    b.sign_in("alice").await;
    let actor = "web:alice".to_owned();

    // Tokens: created (shown once), blocked, unblocked.
    b.get("/ui/tokens").await;
    let created = b.post("/ui/tokens", &[("lifetime_minutes", "60")]).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let tokens = store.tokens().await.expect("tokens");
    assert_eq!(tokens.len(), 1);
    let id = tokens[0].tracking_id.clone();
    assert!(created.body.contains("shown only this once"));
    assert!(created.body.contains("<textarea readonly"));
    assert_eq!(
        last_audit(&store).await,
        (actor.clone(), "token.new".into(), id.clone())
    );
    let again = b.get("/ui/tokens").await;
    assert!(!again.body.contains("<textarea"), "the token is shown once");
    let blocked = b.post(&format!("/ui/tokens/{id}/block"), &[]).await;
    assert_eq!(blocked.status, StatusCode::OK);
    assert!(blocked.body.contains(&format!("Token {id} blocked.")));
    assert!(store.tokens().await.expect("tokens")[0].blocked);
    assert_eq!(
        last_audit(&store).await,
        (actor.clone(), "token.block".into(), id.clone())
    );
    b.post(&format!("/ui/tokens/{id}/unblock"), &[]).await;
    assert!(!store.tokens().await.expect("tokens")[0].blocked);
    // The store's validation, the API's status code.
    let bad = b.post("/ui/tokens", &[("lifetime_minutes", "99999")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("lifetime_minutes must be 1 to 10080"),
        "{}",
        bad.body
    );
    let missing = b.post("/ui/tokens/nope/block", &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // Roles: add, stop traffic, delete.
    b.get("/ui/roles").await;
    let role = b
        .post(
            "/ui/roles",
            &[
                ("role_id", "72057594037927939"),
                ("kind", "management_point"),
                ("internal_url", "https://mp1.corp.example"),
                ("mode", "https"),
                ("allow_gateway_traffic", "on"),
            ],
        )
        .await;
    assert_eq!(role.status, StatusCode::OK, "{}", role.body);
    assert!(role
        .body
        .contains("/CCM_Proxy_MutualAuth/72057594037927939/CCM_System"));
    assert_eq!(last_audit(&store).await.1, "role.create");
    let stopped = b
        .post("/ui/roles/72057594037927939/traffic", &[("allow", "false")])
        .await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.body);
    assert!(
        !store
            .role("72057594037927939")
            .await
            .expect("role")
            .allow_gateway_traffic
    );
    b.post("/ui/roles/72057594037927939/delete", &[]).await;
    assert!(store.roles().await.expect("roles").is_empty());
    assert_eq!(last_audit(&store).await.0, actor);

    // Connection points: add (the files, as a tar), remove.
    b.get("/ui/connection-points").await;
    let added = b
        .post(
            "/ui/connection-points",
            &[
                ("gateway", "gw1"),
                ("id", "cp9"),
                ("gateways", "gw.example:10140"),
                ("site_url", ""),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert_eq!(added.header("content-type"), "application/x-tar");
    assert!(added.header("content-disposition").contains("cp9.tar"));
    let files = untar(&added.bytes);
    let names: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "cp9/cp.pem",
            "cp9/cp.key",
            "cp9/site-ca.pem",
            "cp9/gateway-ca.pem",
            "cp9/connector.toml"
        ]
    );
    assert_eq!(files[1].1, 0o600, "the key is private");
    assert!(
        files[4].2.contains("url = \"https://site.test:8443\""),
        "{}",
        files[4].2
    );
    assert!(files[4].2.contains("\"gw.example:10140\""));
    assert_eq!(last_audit(&store).await.0, actor);
    b.post("/ui/connection-points/cp9/remove", &[]).await;
    assert!(store.connection_points().await.expect("cps").is_empty());

    // Gateway: settings, export, storage and alert refusals.
    b.get("/ui/gateways/gw1").await;
    let saved = b
        .post(
            "/ui/gateways/gw1/settings",
            &[
                ("instances", "3"),
                ("min_tls", "1.3"),
                ("content_enabled", "on"),
                ("alert_enabled", "on"),
                ("threshold_gb", "5"),
                ("warning_pct", "40"),
                ("critical_pct", "80"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let g = store.gateway("gw1").await.expect("gw1");
    assert_eq!(
        (g.instances, g.verify_revocation, g.alert.threshold_gb),
        (3, false, 5)
    );
    assert_eq!(last_audit(&store).await.0, actor);
    let bad = b
        .post(
            "/ui/gateways/gw1/settings",
            &[
                ("instances", "3"),
                ("min_tls", "1.3"),
                ("threshold_gb", "5"),
                ("warning_pct", "90"),
                ("critical_pct", "80"),
            ],
        )
        .await;
    assert_eq!(
        bad.status,
        StatusCode::BAD_REQUEST,
        "warning above critical: {}",
        bad.body
    );
    let pkg = b
        .post(
            "/ui/gateways/gw1/export",
            &[("instance", "2"), ("client_listen", "")],
        )
        .await;
    assert_eq!(pkg.status, StatusCode::OK, "{}", pkg.body);
    let files = untar(&pkg.bytes);
    assert!(files.iter().any(|f| f.0 == "gw1-2/gateway.toml"));
    assert!(files
        .iter()
        .any(|f| f.0 == "gw1-2/server.key" && f.1 == 0o600));
    let none = b
        .post("/ui/gateways/gw1/export", &[("instance", "9")])
        .await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST);
    let rotate = b.post("/ui/gateways/gw1/storage/rotate", &[]).await;
    assert_eq!(rotate.status, StatusCode::NOT_FOUND, "no storage account");
    let account = cmg_site::model::StorageSet {
        account: "cmgcontent".into(),
        endpoint: None,
        container: "content".into(),
        key1: cmg_site::Secret::new("a2V5MQ=="),
        key2: cmg_site::Secret::new("a2V5Mg=="),
        rotation_days: None,
    };
    store
        .set_storage("gw1", account, &support::admin())
        .await
        .expect("storage");
    let shown = b.get("/ui/gateways/gw1").await;
    assert!(shown.body.contains("cmgcontent") && shown.body.contains("Next rotation"));
    assert!(!shown.body.contains("a2V5"), "a storage key is never shown");
    let rotated = b.post("/ui/gateways/gw1/storage/rotate", &[]).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    assert!(
        rotated.body.contains("Rotated: key2 is in force"),
        "{}",
        rotated.body
    );
    assert_eq!(
        store.storage("gw1").await.expect("storage").active_key,
        "key2"
    );
    assert_eq!(last_audit(&store).await.0, actor);
    let clear = b.post("/ui/gateways/gw1/alert/clear", &[]).await;
    assert_eq!(clear.status, StatusCode::CONFLICT, "not stopped");

    // Keys, boundary groups, client settings.
    b.get("/ui/keys").await;
    let kid_before = store.keys().await.expect("keys").len();
    let rolled = b.post("/ui/keys/roll", &[("overlap_hours", "2")]).await;
    assert_eq!(rolled.status, StatusCode::OK, "{}", rolled.body);
    assert_eq!(store.keys().await.expect("keys").len(), kid_before + 1);
    let too_long = b.post("/ui/keys/roll", &[("overlap_hours", "9000")]).await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST, "the API's bound");
    b.get("/ui/boundary-groups").await;
    let put = b
        .post(
            "/ui/boundary-groups",
            &[
                ("name", "HQ 1"),
                ("boundaries", "10.1.2.3/16 10.9.0.10-10.9.0.99"),
                ("gateway", "gw1"),
                ("prefer_cloud", "on"),
            ],
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let groups = store.boundary_groups().await.expect("groups");
    assert_eq!(groups[0].gateways, vec!["gw1"]);
    assert_eq!(
        groups[0].boundaries,
        vec!["10.1.0.0/16", "10.9.0.10-10.9.0.99"]
    );
    assert!(groups[0].prefer_cloud);
    b.post("/ui/boundary-groups/HQ%201/delete", &[]).await;
    assert!(store.boundary_groups().await.expect("groups").is_empty());
    b.post("/ui/client-settings", &[]).await;
    assert!(
        !store
            .client_settings()
            .await
            .expect("cs")
            .enable_clients_to_use_cmg
    );
    assert_eq!(
        last_audit(&store).await,
        (actor.clone(), "client_settings.set".into(), "site".into())
    );

    // The audit page: filter and paginate.
    let filtered = b.get("/ui/audit?action=token.&actor=alice").await;
    assert!(filtered.body.contains("token.block") && !filtered.body.contains("role.create"));
    for i in 0..60 {
        store
            .put_boundary_group(
                &cmg_site::model::BoundaryGroupSet::default().named(format!("g{i}")),
                &support::admin(),
            )
            .await
            .expect("group");
    }
    let first = b.get("/ui/audit").await;
    assert!(first.body.contains("Older →"));
    let at = first.body.find("before=").expect("older link") + "before=".len();
    let before: String = first.body[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let second = b.get(&format!("/ui/audit?before={before}")).await;
    assert_eq!(second.status, StatusCode::OK);
    assert!(second.body.contains("← Newest") && second.body.contains("token.new"));
}

#[tokio::test]
async fn free_text_is_escaped_everywhere() {
    const X: &str = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>";
    let (store, _db) = test_site(Kind::Sqlite).await;
    let pki = gateway_pki("gw1.example.test");
    store
        .create_gateway(gateway_request("gw1", &pki), &support::admin())
        .await
        .expect("gateway");
    let mut b = Browser::new(app(&store));
    assert_eq!(b.sign_in(X).await.status, StatusCode::SEE_OTHER);
    let raw = |body: &str| body.contains("<script>alert") || body.contains("<img src=x");

    // What connection points report is free text too: channel addresses, instance names,
    // last errors.
    store
        .add_connection_point(
            cmg_site::model::ConnectionPointAdd {
                gateway: "gw1".into(),
                id: Some("cp1".into()),
            },
            &support::admin(),
        )
        .await
        .expect("cp1");
    let report = ConnectionPointReport {
        connection_point: "cp1".into(),
        gateway: "gw1".into(),
        reason: ReportReason::Periodic,
        sent_at: 1_700_000_000,
        settings_version: 1,
        channels: vec![ChannelStatus {
            address: X.into(),
            instance: Some(X.into()),
            state: ChannelState::Connecting,
            since: 1_700_000_000,
            connection_id: None,
            last_error: Some(X.into()),
        }],
        traffic: vec![TrafficSnapshot {
            instance: X.into(),
            boot_id: "b1".into(),
            seq: 1,
            taken_at: 1_700_000_000,
            endpoints: vec![EndpointTraffic {
                // The store refuses a prefix that is not a path.
                prefix: "/CCM_Proxy_MutualAuth/1/CCM_System".into(),
                status_classes: [0, 1, 0, 0, 0],
                bytes_in: 1,
                bytes_out: 1,
                latency_us_sum: 1,
            }],
        }],
    };
    match store.ingest_report("cp1", &report, cmg_site::now()).await {
        Ok(_) => {
            let page = b.get("/ui/gateways/gw1").await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(
                !raw(&page.body),
                "the channel matrix shows reported text unescaped"
            );
            assert!(
                page.body.contains("last error: &lt;script&gt;alert(1)"),
                "{}",
                page.body
            );
            let page = b.get("/ui/gateways/gw1/traffic").await;
            assert!(page.body.contains("CCM_System") && !raw(&page.body));
        }
        // The store's bounds may refuse some of it; then nothing of it is shown.
        Err(e) => panic!("the report was refused ({e}): use a text the store takes"),
    }

    // The name (every page's header, the audit log's actor and target).
    for path in ["/ui/gateways", "/ui/audit", "/ui/tokens"] {
        let page = b.get(path).await;
        assert!(!raw(&page.body), "{path} shows the name unescaped");
        assert!(
            page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}"
        );
    }
    // Every field of every form, with the answers that echo them.
    let attempts: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "/ui/roles",
            vec![
                ("role_id", X),
                ("kind", "management_point"),
                ("internal_url", X),
                ("mode", "https"),
            ],
        ),
        (
            "/ui/roles",
            vec![
                ("role_id", "1"),
                ("kind", X),
                ("internal_url", X),
                ("mode", X),
            ],
        ),
        (
            "/ui/roles",
            vec![
                ("role_id", "1"),
                ("kind", "management_point"),
                ("internal_url", X),
                ("mode", "https"),
            ],
        ),
        (
            "/ui/connection-points",
            vec![("gateway", X), ("id", X), ("gateways", X), ("site_url", X)],
        ),
        ("/ui/connection-points", vec![("gateway", "gw1"), ("id", X)]),
        ("/ui/tokens", vec![("lifetime_minutes", X)]),
        ("/ui/keys/roll", vec![("overlap_hours", X)]),
        (
            "/ui/boundary-groups",
            vec![("name", X), ("gateway", X), ("boundaries", X)],
        ),
        ("/ui/boundary-groups", vec![("name", "ok"), ("gateway", X)]),
        (
            "/ui/gateways/gw1/settings",
            vec![
                ("instances", "1"),
                ("min_tls", X),
                ("threshold_gb", "1"),
                ("warning_pct", "1"),
                ("critical_pct", "2"),
            ],
        ),
        (
            "/ui/gateways/gw1/export",
            vec![("instance", "1"), ("client_listen", X)],
        ),
    ];
    for (path, fields) in &attempts {
        let reply = b.post(path, fields).await;
        if reply.header("content-type") == "application/x-tar" {
            // A download, not a page (the export does not check listen addresses: the
            // API's behaviour, which the console shares).
            assert!(reply
                .header("content-disposition")
                .starts_with("attachment"));
            continue;
        }
        assert!(
            reply.header("content-type").starts_with("text/html"),
            "{path}"
        );
        assert!(
            !raw(&reply.body),
            "{path} {fields:?} echoed input unescaped:\n{}",
            reply.body
        );
        assert!(
            reply.status.is_client_error() || reply.status == StatusCode::OK,
            "{path}: {}",
            reply.status
        );
    }
    // Paths and query strings.
    for path in [
        "/ui/gateways/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/ui/gateways/%3Cscript%3Ealert(1)%3C%2Fscript%3E/traffic",
        "/ui/audit?actor=%3Cscript%3Ealert(1)%3C%2Fscript%3E&target=%22%3E%3Cimg%20src%3Dx%3E",
    ] {
        let page = b.get(path).await;
        assert!(!raw(&page.body), "{path}:\n{}", page.body);
    }
    for path in [
        "/ui/tokens/%3Cscript%3E/block",
        "/ui/roles/%3Cscript%3E/delete",
        "/ui/boundary-groups/%3Cscript%3E/delete",
        "/ui/connection-points/%3Cscript%3E/remove",
    ] {
        let reply = b.post(path, &[]).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!raw(&reply.body), "{path}");
    }
}

#[tokio::test]
async fn clear_stop_lifts_a_stop_by_the_traffic_alert() {
    let (store, _db) = test_site(Kind::Sqlite).await;
    let pki = gateway_pki("gw1.example.test");
    let mut gw = gateway_request("gw1", &pki);
    gw.alert = cmg_site::model::AlertSettings {
        enabled: true,
        threshold_gb: 1,
        warning_pct: 50,
        critical_pct: 90,
        stop_at_critical: true,
    };
    store
        .create_gateway(gw, &support::admin())
        .await
        .expect("gateway");
    store
        .add_connection_point(
            cmg_site::model::ConnectionPointAdd {
                gateway: "gw1".into(),
                id: Some("cp1".into()),
            },
            &support::admin(),
        )
        .await
        .expect("cp1");
    // 2 GB out against a 1 GB threshold: critical, and the service stops.
    let report = ConnectionPointReport {
        connection_point: "cp1".into(),
        gateway: "gw1".into(),
        reason: ReportReason::Periodic,
        sent_at: 1_700_000_000,
        settings_version: 1,
        channels: vec![],
        traffic: vec![TrafficSnapshot {
            instance: "gw1-1".into(),
            boot_id: "b1".into(),
            seq: 1,
            taken_at: 1_700_000_000,
            endpoints: vec![EndpointTraffic {
                prefix: "/CCM_Proxy_MutualAuth/1/CCM_System".into(),
                status_classes: [0, 1, 0, 0, 0],
                bytes_in: 1,
                bytes_out: 2_000_000_000,
                latency_us_sum: 1,
            }],
        }],
    };
    store
        .ingest_report("cp1", &report, cmg_site::now())
        .await
        .expect("report");
    store
        .evaluate_alert("gw1", cmg_site::now())
        .await
        .expect("evaluate");
    assert!(store
        .gateway("gw1")
        .await
        .expect("gw1")
        .service_stopped
        .is_some());

    let mut b = Browser::new(app(&store));
    b.sign_in("alice").await;
    let list = b.get("/ui/gateways").await;
    assert!(
        list.body.contains("Stopped") && list.body.contains("badge critical"),
        "{}",
        list.body
    );
    let detail = b.get("/ui/gateways/gw1").await;
    assert!(detail.body.contains("Clear stop"));
    let cleared = b.post("/ui/gateways/gw1/alert/clear", &[]).await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    assert!(cleared.body.contains("The service stop is cleared"));
    assert!(store
        .gateway("gw1")
        .await
        .expect("gw1")
        .service_stopped
        .is_none());
    assert_eq!(last_audit(&store).await.0, "web:alice");
    assert!(
        !cleared.body.contains("Clear stop"),
        "no stop left to clear"
    );
}
