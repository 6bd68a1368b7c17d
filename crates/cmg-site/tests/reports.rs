//! Connection point reports at the site, over HTTPS on loopback with real connection
//! point certificates: traffic counted exactly once, forged reports refused with nothing
//! stored, gateway status from channels and silence, and the site reopened losing nothing.

#[macro_use]
mod support;

use std::time::Duration;

use cmg_proto::report::{
    ChannelState, ChannelStatus, ConnectionPointReport, EndpointTraffic, ReportReason,
    TrafficSnapshot,
};
use cmg_site::client::SiteClient;
use cmg_site::model::{HealthState, TrafficQuery};
use cmg_site::Store;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use support::{gateway_body, gateway_pki, master_key, spawn_site, spawn_site_with, Kind, Site};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const PREFIX: &str = "/CCM_Proxy_MutualAuth/72057594037927939/CCM_System";

/// Creates gateways and connection points; returns each connection point's client.
async fn setup(site: &Site, gateways: &[&str], cps: &[(&str, &str)]) -> Vec<SiteClient> {
    let pki = gateway_pki("cmg.contoso.test");
    let admin = site.admin();
    for g in gateways {
        let r = admin
            .call(
                Method::POST,
                "/api/v1/gateways",
                Some(&gateway_body(g, &pki)),
            )
            .await
            .expect("call");
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
    let mut out = Vec::new();
    for (gw, id) in cps {
        let r = admin
            .call(
                Method::POST,
                "/api/v1/connection-points",
                Some(&json!({"gateway": gw, "id": id})),
            )
            .await
            .expect("call");
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let v = r.json();
        out.push(site.with_cert(
            v["cert_pem"].as_str().expect("cert"),
            v["key_pem"].as_str().expect("key"),
        ));
    }
    out
}

fn channel(address: &str, instance: &str, state: ChannelState) -> ChannelStatus {
    ChannelStatus {
        address: address.into(),
        instance: Some(instance.into()),
        state,
        since: 1_700_000_000,
        connection_id: (state == ChannelState::Connected).then(|| format!("c-{instance}")),
        last_error: (state != ChannelState::Connected).then(|| "connection refused".into()),
    }
}

fn connected_both() -> Vec<ChannelStatus> {
    vec![
        channel("10.0.0.1:10140", "gw1-1", ChannelState::Connected),
        channel("10.0.0.2:10140", "gw1-2", ChannelState::Connected),
    ]
}

/// A snapshot of instance `gw1-1` whose cumulative counters are `n` requests of
/// 100 bytes in and `out` bytes out, 2 ms each.
fn snapshot(boot: &str, seq: u64, n: u64, out: u64) -> TrafficSnapshot {
    TrafficSnapshot {
        instance: "gw1-1".into(),
        boot_id: boot.into(),
        seq,
        taken_at: 1_700_000_000 + seq,
        endpoints: vec![EndpointTraffic {
            prefix: PREFIX.into(),
            status_classes: [0, n, 0, 0, 0],
            bytes_in: 100 * n,
            bytes_out: out,
            latency_us_sum: 2000 * n,
        }],
    }
}

fn report(
    cp: &str,
    gw: &str,
    channels: Vec<ChannelStatus>,
    traffic: Vec<TrafficSnapshot>,
) -> ConnectionPointReport {
    ConnectionPointReport {
        connection_point: cp.into(),
        gateway: gw.into(),
        reason: ReportReason::Periodic,
        sent_at: 1_700_000_000,
        settings_version: 1,
        channels,
        traffic,
    }
}

async fn post(client: &SiteClient, gw: &str, body: &Value) -> (StatusCode, Value) {
    let r = client
        .call(
            Method::POST,
            &format!("/api/v1/publish/gateways/{gw}/report"),
            Some(body),
        )
        .await
        .expect("call");
    (r.status, r.json())
}

async fn send(client: &SiteClient, r: &ConnectionPointReport) {
    let (status, body) = post(client, &r.gateway, &serde_json::to_value(r).expect("json")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

/// (requests, bytes_out) of gateway gw1 over the last day, from the store.
async fn totals(store: &Store) -> (u64, u64) {
    let t = store
        .traffic(&TrafficQuery {
            gateway: Some("gw1".into()),
            since: cmg_site::now() - 86_400,
        })
        .await
        .expect("traffic");
    t.iter()
        .fold((0, 0), |(r, b), e| (r + e.requests, b + e.bytes_out))
}

both!(traffic_is_counted_exactly_once);
async fn traffic_is_counted_exactly_once(kind: Kind) {
    let site = spawn_site(kind).await;
    let cps = setup(&site, &["gw1"], &[("gw1", "cp1"), ("gw1", "cp2")]).await;
    let (cp1, cp2) = (&cps[0], &cps[1]);

    // The same snapshot relayed by both connection points counts once.
    let s1 = snapshot("boot-a", 1, 10, 1000);
    send(
        cp1,
        &report("cp1", "gw1", connected_both(), vec![s1.clone()]),
    )
    .await;
    send(cp2, &report("cp2", "gw1", connected_both(), vec![s1])).await;
    assert_eq!(totals(&site.store).await, (10, 1000));

    // A newer one adds its difference; an older one relayed late adds nothing.
    send(
        cp1,
        &report(
            "cp1",
            "gw1",
            connected_both(),
            vec![snapshot("boot-a", 3, 30, 3000)],
        ),
    )
    .await;
    send(
        cp2,
        &report(
            "cp2",
            "gw1",
            connected_both(),
            vec![snapshot("boot-a", 2, 20, 2000)],
        ),
    )
    .await;
    assert_eq!(totals(&site.store).await, (30, 3000));

    // The instance restarted: the new boot counts from zero.
    send(
        cp2,
        &report(
            "cp2",
            "gw1",
            connected_both(),
            vec![snapshot("boot-b", 1, 5, 500)],
        ),
    )
    .await;
    assert_eq!(totals(&site.store).await, (35, 3500));

    // The admin view: per endpoint, with mean latency (2 ms each).
    let r = site
        .admin()
        .call(Method::GET, "/api/v1/traffic?gateway=gw1&since=1h", None)
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v.as_array().expect("list").len(), 1);
    assert_eq!(v[0]["endpoint"], PREFIX);
    assert_eq!(v[0]["requests"], 35);
    assert_eq!(v[0]["bytes_in"], 3500);
    assert_eq!(v[0]["bytes_out"], 3500);
    assert_eq!(v[0]["status_classes"], json!([0, 35, 0, 0, 0]));
    assert_eq!(v[0]["mean_latency_ms"], 2.0);
    for bad in [
        "since=3",
        "since=91d",
        "since=1w",
        "gateway=nope",
        "surprise=1",
    ] {
        let r = site
            .admin()
            .call(Method::GET, &format!("/api/v1/traffic?{bad}"), None)
            .await
            .expect("call");
        assert!(r.status.is_client_error(), "{bad}: {}", r.status);
    }
    let r = site
        .anonymous()
        .call(Method::GET, "/api/v1/traffic", None)
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Relayed by both connection points at the same moment, several times: still once.
    for seq in 1..=5 {
        let s = snapshot("boot-c", seq, seq, 100 * seq);
        let r1 = report("cp1", "gw1", connected_both(), vec![s.clone()]);
        let r2 = report("cp2", "gw1", connected_both(), vec![s]);
        tokio::join!(send(cp1, &r1), send(cp2, &r2));
    }
    assert_eq!(totals(&site.store).await, (40, 4000));

    // Reopened, the site has the traffic and the marks: a replay still counts nothing.
    let url = site.db.url.clone();
    site.shutdown.token.cancel();
    site.store.close().await;
    let store = Store::open(&url, master_key()).await.expect("reopen");
    let st = store
        .gateway_status("gw1", Duration::from_secs(300), cmg_site::now())
        .await
        .expect("status");
    assert_eq!(st.status, HealthState::Ready, "{:?}", st.reasons);
    assert!(st.connection_points.iter().all(|c| c.channels.len() == 2));
    assert_eq!(totals(&store).await, (40, 4000));
    let again = report("cp1", "gw1", vec![], vec![snapshot("boot-a", 3, 30, 3000)]);
    let got = store
        .ingest_report("cp1", &again, cmg_site::now())
        .await
        .expect("ingest");
    assert_eq!((got.counted, got.ignored), (0, 1));
    assert_eq!(totals(&store).await, (40, 4000));

    // Pruning keeps 90 days of buckets: nothing goes at once, all of it 91 days on.
    let all = |store: Store| async move {
        store
            .traffic(&TrafficQuery {
                gateway: None,
                since: 0,
            })
            .await
            .expect("traffic")
            .len()
    };
    store.prune_reports(cmg_site::now()).await.expect("prune");
    assert_eq!(all(store.clone()).await, 1);
    store
        .prune_reports(cmg_site::now() + 91 * 86_400)
        .await
        .expect("prune");
    assert_eq!(all(store.clone()).await, 0);
}

both!(forged_reports_are_refused_and_store_nothing);
async fn forged_reports_are_refused_and_store_nothing(kind: Kind) {
    let site = spawn_site(kind).await;
    let cps = setup(&site, &["gw1", "gw2"], &[("gw1", "cp1"), ("gw2", "cp3")]).await;
    let (cp1, cp3) = (&cps[0], &cps[1]);
    let good = report(
        "cp1",
        "gw1",
        connected_both(),
        vec![snapshot("a", 1, 1, 10)],
    );
    let good_json = serde_json::to_value(&good).expect("json");
    let path = "/api/v1/publish/gateways/gw1/report";
    let audit_before = site.store.audit(1000, None).await.expect("audit").len();

    let r = site
        .anonymous()
        .call(Method::POST, path, Some(&good_json))
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"], "client_certificate_required");

    // A connection point of another gateway, at this gateway's path.
    let mut as_cp3 = good_json.clone();
    as_cp3["connection_point"] = json!("cp3");
    let (s, v) = post(cp3, "gw1", &as_cp3).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("wrong_gateway"))
    );
    // Another connection point's name in the body.
    let mut claims_cp3 = good_json.clone();
    claims_cp3["connection_point"] = json!("cp3");
    let (s, v) = post(cp1, "gw1", &claims_cp3).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("identity_mismatch"))
    );
    // Another gateway in the body, or at the path.
    let mut other_gw = good_json.clone();
    other_gw["gateway"] = json!("gw2");
    let (s, v) = post(cp1, "gw1", &other_gw).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("wrong_gateway"))
    );
    let (s, _) = post(cp1, "gw2", &other_gw).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Unknown fields, at the top and deep inside.
    let mut unknown = good_json.clone();
    unknown["extra"] = json!(1);
    let (s, v) = post(cp1, "gw1", &unknown).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_body"))
    );
    let mut deep = good_json.clone();
    deep["traffic"][0]["endpoints"][0]["bytes_sideways"] = json!(1);
    let (s, _) = post(cp1, "gw1", &deep).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Out of bounds: a relative prefix, a repeated boot, counters over i64.
    let mut relative = good.clone();
    relative.traffic[0].endpoints[0].prefix = "CCM_System".into();
    let mut twice = good.clone();
    twice.traffic.push(twice.traffic[0].clone());
    let mut huge = good.clone();
    huge.traffic[0].endpoints[0].bytes_out = u64::MAX;
    for bad in [relative, twice, huge] {
        let (s, v) = post(cp1, "gw1", &serde_json::to_value(&bad).expect("json")).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_report")),
            "{v}"
        );
    }
    // Bad JSON, wrong content type, oversized.
    let r = cp1
        .raw(
            Method::POST,
            path,
            Some("application/json"),
            b"{\"connection_point\":".to_vec(),
        )
        .await
        .expect("call");
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_json"))
    );
    let r = cp1
        .raw(
            Method::POST,
            path,
            Some("text/plain"),
            good_json.to_string().into_bytes(),
        )
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let mut big = good.clone();
    big.channels[0].last_error = Some("x".repeat(cmg_proto::report::MAX_REPORT_BYTES));
    let r = cp1
        .call(
            Method::POST,
            path,
            Some(&serde_json::to_value(&big).expect("json")),
        )
        .await
        .expect("call");
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large"))
    );

    // Nothing was stored: no traffic, no report, no channel, no audit entry.
    assert_eq!(totals(&site.store).await, (0, 0));
    let status = site
        .store
        .gateway_status("gw1", Duration::from_secs(300), cmg_site::now())
        .await
        .expect("status");
    assert!(status
        .connection_points
        .iter()
        .all(|c| c.last_report_at.is_none()));
    assert!(status.instances.is_empty());
    assert_eq!(
        site.store.audit(1000, None).await.expect("audit").len(),
        audit_before
    );

    // And the good one is taken.
    send(cp1, &good).await;
    assert_eq!(totals(&site.store).await, (1, 10));
}

both!(status_follows_channels_and_silence);
async fn status_follows_channels_and_silence(kind: Kind) {
    let site = spawn_site(kind).await;
    let cps = setup(&site, &["gw1"], &[("gw1", "cp1"), ("gw1", "cp2")]).await;
    let store = &site.store;
    let interval = Duration::from_secs(300);
    let t0 = cmg_site::now();
    let status = |at: i64| async move {
        store
            .gateway_status("gw1", interval, at)
            .await
            .expect("status")
    };
    let s = status(t0).await;
    assert_eq!(s.status, HealthState::Disconnected, "{:?}", s.reasons);

    // Both connection points see both instances: Ready.
    send(&cps[0], &report("cp1", "gw1", connected_both(), vec![])).await;
    send(&cps[1], &report("cp2", "gw1", connected_both(), vec![])).await;
    let r = site
        .admin()
        .call(Method::GET, "/api/v1/status", None)
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()[0]["gateway"], "gw1");
    assert_eq!(r.json()[0]["status"], "Ready", "{}", r.text());
    assert_eq!(r.json()[0]["instances"].as_array().expect("list").len(), 2);

    // cp2 lost its channel to gw1-2: Warning, with the error shown on the instance.
    let mut half = connected_both();
    half[1] = channel("10.0.0.2:10140", "gw1-2", ChannelState::Disconnected);
    send(&cps[1], &report("cp2", "gw1", half, vec![])).await;
    let s = status(cmg_site::now()).await;
    assert_eq!(s.status, HealthState::Warning);
    assert!(
        s.reasons.iter().any(|r| r.contains("cp2 has 1 of 2")),
        "{:?}",
        s.reasons
    );
    let i2 = s
        .instances
        .iter()
        .find(|i| i.instance == "gw1-2")
        .expect("gw1-2");
    assert_eq!(i2.connected_from, vec!["cp1".to_owned()]);
    assert!(i2
        .channels
        .iter()
        .any(|c| c.connection_point == "cp2"
            && c.last_error.as_deref() == Some("connection refused")));

    // cp2 falls silent while cp1 goes on reporting: Warning, "not reporting".
    let later = t0 + 1000;
    store
        .ingest_report(
            "cp1",
            &report("cp1", "gw1", connected_both(), vec![]),
            later,
        )
        .await
        .expect("ingest");
    let s = status(later).await;
    assert_eq!(s.status, HealthState::Warning);
    assert!(
        s.reasons.iter().any(|r| r.contains("cp2 is not reporting")),
        "{:?}",
        s.reasons
    );
    // cp1 reports no connected channel: Error.
    let down = vec![
        channel("10.0.0.1:10140", "gw1-1", ChannelState::Disconnected),
        channel("10.0.0.2:10140", "gw1-2", ChannelState::Connecting),
    ];
    store
        .ingest_report("cp1", &report("cp1", "gw1", down, vec![]), later)
        .await
        .expect("ingest");
    assert_eq!(status(later).await.status, HealthState::Error);
    // Both silent: Disconnected. A shutdown report counts as silence at once.
    assert_eq!(status(later + 601).await.status, HealthState::Disconnected);
    let mut bye = report("cp1", "gw1", connected_both(), vec![]);
    bye.reason = ReportReason::Shutdown;
    store
        .ingest_report("cp1", &bye, later)
        .await
        .expect("ingest");
    assert_eq!(status(later).await.status, HealthState::Disconnected);
}

/// GET on the plain HTTP admin listener: (status line, body).
async fn admin_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let (head, body) = admin_call(addr, "GET", path).await;
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

/// Any method on the plain HTTP admin listener: (head with lower-case names, body).
async fn admin_call(addr: std::net::SocketAddr, method: &str, path: &str) -> (String, String) {
    let mut sock = tokio::net::TcpStream::connect(addr).await.expect("connect");
    sock.write_all(
        format!("{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), sock.read_to_string(&mut out))
        .await
        .expect("answer within 10 s")
        .expect("read");
    let (head, body) = out.split_once("\r\n\r\n").expect("http answer");
    (head.to_ascii_lowercase(), body.to_owned())
}

both!(metrics_and_ready_on_the_admin_listener);
async fn metrics_and_ready_on_the_admin_listener(kind: Kind) {
    let site = spawn_site_with(kind, |c| {
        c.admin_listen = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    let addr = site.admin_addr.expect("admin listener");
    let cps = setup(&site, &["gw1"], &[("gw1", "cp1"), ("gw1", "cp2")]).await;
    let s = snapshot("a", 1, 3, 700);
    send(
        &cps[0],
        &report("cp1", "gw1", connected_both(), vec![s.clone()]),
    )
    .await;
    send(&cps[1], &report("cp2", "gw1", connected_both(), vec![s])).await;
    let forged = report("cp2", "gw1", vec![], vec![]);
    let (status, _) = post(
        &cps[0],
        "gw1",
        &serde_json::to_value(&forged).expect("json"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (line, body) = admin_get(addr, "/metrics").await;
    assert!(line.contains("200"), "{line}");
    for want in [
        "cmg_site_reports_stored_total 2",
        "cmg_site_reports_refused_total{code=\"identity_mismatch\"} 1",
        "cmg_site_snapshots_counted_total 1",
        "cmg_site_snapshots_ignored_total 1",
        "cmg_site_egress_bytes_total 700",
        "cmg_site_gateway_status{gateway=\"gw1\",status=\"Ready\"} 1",
    ] {
        assert!(body.contains(want), "{want} missing from:\n{body}");
    }
    let (line, body) = admin_get(addr, "/ready").await;
    assert!(
        line.contains("200") && body.contains("PS1"),
        "{line} {body}"
    );
    let (line, _) = admin_get(addr, "/nope").await;
    assert!(line.contains("404"), "{line}");

    // The shared listener: build info, OpenMetrics content type, /live, HEAD, 405.
    let (_, body) = admin_get(addr, "/metrics").await;
    let build = format!(
        "cmg_build_info{{version=\"{}\",role=\"site\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    assert!(body.contains(&build), "{body}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    let (head, body) = admin_call(addr, "HEAD", "/metrics").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{head}"
    );
    assert_eq!(body, "");
    let (line, body) = admin_get(addr, "/live").await;
    assert!(line.contains("200") && body == "live\n", "{line} {body}");
    let (head, _) = admin_call(addr, "POST", "/ready").await;
    assert!(
        head.starts_with("http/1.1 405") && head.contains("allow: get, head"),
        "{head}"
    );
}
