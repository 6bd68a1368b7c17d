//! The 14-day traffic alert end to end on loopback: raised at warning and critical by
//! reports, the stop at critical published in the next signed bundle and cleared by an
//! admin, cleared by the timer when the threshold is raised and when traffic ages out,
//! every transition POSTed to a real webhook receiver (which may hang without holding
//! up a report), and nothing lost when the site reopens.

#[macro_use]
mod support;

use std::time::{Duration, Instant};

use cmg_proto::report::{
    ChannelState, ChannelStatus, ConnectionPointReport, EndpointTraffic, ReportReason,
    TrafficSnapshot,
};
use cmg_site::client::SiteClient;
use cmg_site::model::{AlertLevel, AlertSettings, GatewayModify};
use cmg_site::Store;
use cmg_token::BundleVerifier;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use support::{admin, gateway_body, gateway_pki, master_key, spawn_site_with, Kind, Site};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A loopback HTTP/1.1 receiver: each POST body (JSON) is sent on the channel and
/// answered 204. With `hang`, it accepts and never answers.
async fn webhook_receiver(hang: bool) -> (String, mpsc::UnboundedReceiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                if hang {
                    let mut sink = Vec::new();
                    let _ = sock.read_to_end(&mut sink).await;
                    return;
                }
                let mut buf = Vec::new();
                loop {
                    // One request: headers, then Content-Length bytes of body.
                    let head_end = loop {
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body: Value =
                        serde_json::from_slice(&buf[head_end..head_end + len]).unwrap_or_default();
                    buf.drain(..head_end + len);
                    let _ = tx.send(body);
                    if sock
                        .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (url, rx)
}

async fn next_event(rx: &mut mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a webhook call within 10 s")
        .expect("receiver open")
}

/// A report from cp1 with instance gw1-1's cumulative egress `out` at `seq`.
fn report(seq: u64, out: u64) -> ConnectionPointReport {
    ConnectionPointReport {
        connection_point: "cp1".into(),
        gateway: "gw1".into(),
        reason: ReportReason::Periodic,
        sent_at: 1_700_000_000,
        settings_version: 1,
        channels: vec![ChannelStatus {
            address: "10.0.0.1:10140".into(),
            instance: Some("gw1-1".into()),
            state: ChannelState::Connected,
            since: 1_700_000_000,
            connection_id: Some("c1".into()),
            last_error: None,
        }],
        traffic: vec![TrafficSnapshot {
            instance: "gw1-1".into(),
            boot_id: "boot".into(),
            seq,
            taken_at: 1_700_000_000,
            endpoints: vec![EndpointTraffic {
                prefix: "/CCM_Proxy_MutualAuth/1/CCM_System".into(),
                status_classes: [0, seq, 0, 0, 0],
                bytes_in: 0,
                bytes_out: out,
                latency_us_sum: 0,
            }],
        }],
    }
}

async fn send(cp: &SiteClient, r: &ConnectionPointReport) {
    let body = serde_json::to_value(r).expect("json");
    let reply = cp
        .call(
            Method::POST,
            "/api/v1/publish/gateways/gw1/report",
            Some(&body),
        )
        .await
        .expect("call");
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
}

async fn active(site: &Site) -> Value {
    let r = site
        .admin()
        .call(Method::GET, "/api/v1/alerts", None)
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::OK);
    r.json()
}

/// The service stop in the newest signed bundle cp1 is given.
async fn published_stop(site: &Site, cp: &SiteClient) -> Option<String> {
    let r = cp
        .call(
            Method::GET,
            "/api/v1/publish/gateways/gw1/bundle?after=0",
            None,
        )
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::OK);
    let keys = site.store.keys().await.expect("keys");
    let pems: Vec<&[u8]> = keys.iter().map(|k| k.public_pem.as_bytes()).collect();
    let bundle = BundleVerifier::from_pems(&pems)
        .expect("verifier")
        .verify(&r.text())
        .expect("verify");
    assert_eq!(
        bundle.version,
        site.store.settings_version("gw1").await.expect("v")
    );
    bundle.service_stopped
}

fn alert(threshold_gb: u64) -> AlertSettings {
    AlertSettings {
        enabled: true,
        threshold_gb,
        warning_pct: 50,
        critical_pct: 90,
        stop_at_critical: true,
    }
}

both!(alerts_raise_stop_clear_and_notify);
async fn alerts_raise_stop_clear_and_notify(kind: Kind) {
    let site = spawn_site_with(kind, |c| {
        c.alert_interval = Duration::from_millis(200);
        c.webhook_timeout = Duration::from_secs(5);
    })
    .await;
    let admin_api = site.admin();
    let pki = gateway_pki("cmg.contoso.test");
    let mut body = gateway_body("gw1", &pki);
    body["alert"] = serde_json::to_value(alert(1)).expect("json");
    let r = admin_api
        .call(Method::POST, "/api/v1/gateways", Some(&body))
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = admin_api
        .call(
            Method::POST,
            "/api/v1/connection-points",
            Some(&json!({"gateway": "gw1", "id": "cp1"})),
        )
        .await
        .expect("call");
    let cp = site.with_cert(
        r.json()["cert_pem"].as_str().expect("cert"),
        r.json()["key_pem"].as_str().expect("key"),
    );

    // The webhook: refused when malformed, set when good.
    let (hook, mut events) = webhook_receiver(false).await;
    for bad in [
        json!({"url": "ftp://x/"}),
        json!({"url": "http://u:p@x/"}),
        json!({"uri": null}),
    ] {
        let r = admin_api
            .call(Method::PUT, "/api/v1/alert-webhook", Some(&bad))
            .await
            .expect("call");
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let r = admin_api
        .call(
            Method::PUT,
            "/api/v1/alert-webhook",
            Some(&json!({"url": hook})),
        )
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = admin_api
        .call(Method::GET, "/api/v1/alert-webhook", None)
        .await
        .expect("call");
    assert_eq!(r.json()["url"].as_str(), Some(hook.as_str()));
    // Webhook URLs may carry a token: the audit log names only the host.
    let entry = &site.store.audit(1, None).await.expect("audit")[0];
    assert_eq!(entry.action, "site.alert_webhook");
    assert!(
        !entry.detail.to_string().contains("/hook"),
        "{}",
        entry.detail
    );

    // 40 %: nothing. 60 %: warning, raised at the report.
    send(&cp, &report(1, 400_000_000)).await;
    assert_eq!(active(&site).await, json!([]));
    send(&cp, &report(2, 600_000_000)).await;
    let a = active(&site).await;
    assert_eq!(a[0]["level"], "warning", "{a}");
    assert_eq!(a[0]["egress_bytes"], 600_000_000u64);
    let e = next_event(&mut events).await;
    assert_eq!(
        (e["event"].as_str(), e["level"].as_str()),
        (Some("raised"), Some("warning"))
    );
    assert_eq!(e["percent"], 60);
    let status = site
        .store
        .gateway_status("gw1", Duration::from_secs(300), cmg_site::now())
        .await
        .expect("status");
    assert!(
        status.reasons.iter().any(|r| r.contains("warning")),
        "{:?}",
        status.reasons
    );
    assert_eq!(published_stop(&site, &cp).await, None);

    // 95 %: critical; the service is stopped in the next signed bundle.
    let before = site.store.settings_version("gw1").await.expect("v");
    send(&cp, &report(3, 950_000_000)).await;
    let a = active(&site).await;
    assert_eq!(
        (a[0]["level"].as_str(), a[0]["stopped"].as_bool()),
        (Some("critical"), Some(true)),
        "{a}"
    );
    let e = next_event(&mut events).await;
    assert_eq!(
        (e["event"].as_str(), e["level"].as_str()),
        (Some("cleared"), Some("warning"))
    );
    let e = next_event(&mut events).await;
    assert_eq!(
        (e["event"].as_str(), e["level"].as_str()),
        (Some("raised"), Some("critical"))
    );
    assert_eq!(e["stopped"], true);
    assert!(site.store.settings_version("gw1").await.expect("v") > before);
    let stop = published_stop(&site, &cp)
        .await
        .expect("stopped in the bundle");
    assert!(stop.contains("95%"), "{stop}");
    let r = admin_api
        .call(Method::GET, "/api/v1/status", None)
        .await
        .expect("call");
    assert_eq!(r.json()[0]["status"], "Stopped");
    let audit = site.store.audit(100, None).await.expect("audit");
    assert!(audit.iter().filter(|e| e.action == "alert.raise").count() >= 2);

    // The admin clears the stop; more reports at critical do not stop it again.
    let r = admin_api
        .call(Method::POST, "/api/v1/gateways/gw1/alert/clear", None)
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(published_stop(&site, &cp).await, None);
    let r = admin_api
        .call(Method::POST, "/api/v1/gateways/gw1/alert/clear", None)
        .await
        .expect("call");
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (StatusCode::CONFLICT, Some("not_stopped"))
    );
    let r = site
        .anonymous()
        .call(Method::POST, "/api/v1/gateways/gw1/alert/clear", None)
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    send(&cp, &report(4, 960_000_000)).await;
    assert_eq!(published_stop(&site, &cp).await, None);
    assert_eq!(active(&site).await[0]["level"], "critical");

    // The threshold raised behind the API's back: the timer clears the alert.
    site.store
        .modify_gateway(
            "gw1",
            GatewayModify {
                alert: Some(alert(100)),
                ..Default::default()
            },
            &admin(),
        )
        .await
        .expect("modify");
    let e = next_event(&mut events).await;
    assert_eq!(
        (e["event"].as_str(), e["level"].as_str()),
        (Some("cleared"), Some("critical"))
    );
    assert_eq!(active(&site).await, json!([]));

    // A webhook that never answers does not hold up a report that raises an alert.
    let (hanging, _never) = webhook_receiver(true).await;
    site.store
        .set_alert_webhook(Some(&hanging), &admin())
        .await
        .expect("webhook");
    let r = admin_api
        .call(
            Method::PATCH,
            "/api/v1/gateways/gw1",
            Some(&json!({"alert": alert(2)})),
        )
        .await
        .expect("call");
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(active(&site).await, json!([]), "48 % of 2 GB");
    let t = Instant::now();
    send(&cp, &report(5, 1_900_000_000)).await;
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(active(&site).await[0]["level"], "critical");
    assert!(published_stop(&site, &cp).await.is_some());

    // Reopened, the site has its alerts and the stop.
    let url = site.db.url.clone();
    site.shutdown.token.cancel();
    site.store.close().await;
    let store = Store::open(&url, master_key()).await.expect("reopen");
    let all = store.alerts(false, 100).await.expect("alerts");
    assert_eq!(all.len(), 3, "warning, critical, critical again: {all:?}");
    assert_eq!(
        all.iter()
            .filter(|a| a.cleared_at.is_none())
            .map(|a| a.level)
            .collect::<Vec<_>>(),
        vec![AlertLevel::Critical]
    );
    assert!(store
        .gateway("gw1")
        .await
        .expect("gw")
        .service_stopped
        .is_some());

    // Fifteen days on, the traffic has aged out of the window: cleared.
    let later = cmg_site::now() + 15 * 86_400;
    let events = store.evaluate_alert("gw1", later).await.expect("evaluate");
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].event.as_str(), events[0].level),
        ("cleared", AlertLevel::Critical)
    );
    assert_eq!(events[0].egress_bytes, 0);
    assert!(store.active_alert("gw1").await.expect("active").is_none());
}
