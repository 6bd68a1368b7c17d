//! The connection point keeps the traffic snapshots gateway instances post on their
//! channels: bounded, checked, the newest per instance kept, shown on the admin
//! listener (against the fake gateway of `support`).

mod support;

use anyhow::{ensure, Result};
use bytes::Bytes;
use http::{Method, Response, StatusCode};

use cmg_connector::wait_all_up;
use cmg_test_support::patience;

use support::*;

/// Traffic snapshots posted on a channel: the fake gateway sends what a broken or hostile
/// instance could (the real gateway's posts are covered by cmg-e2e's reports test).
#[tokio::test]
async fn traffic_snapshots_are_checked_and_the_newest_kept() -> Result<()> {
    use cmg_proto::report::{MAX_REPORT_BYTES, TRAFFIC_PATH};

    let _t = tracing_guard();
    let pki = Pki::new()?;
    let mut gw = FakeGateway::start(&pki, NORMAL).await?;
    let mut cp = start_connector(&pki, &[gw.addr]).await?;
    let mut ch = gw.next_channel().await?;
    wait_all_up(&mut cp.status, patience(WAIT)).await?;

    let snapshot = |instance: &str, seq: u64, ok: u64| {
        serde_json::json!({
            "instance": instance, "boot_id": "b1", "seq": seq, "taken_at": 1_700_000_000u64,
            "endpoints": [{"prefix": MP_PREFIX, "status_classes": [0, ok, 0, 0, 0],
                           "bytes_in": 1, "bytes_out": 2, "latency_us_sum": 3}],
        })
        .to_string()
    };
    let refused = |resp: &Response<Bytes>, status: StatusCode, code: &str| -> Result<()> {
        ensure!(resp.status() == status, "{:?}", resp);
        ensure!(resp.headers()["cmg-error"] == code, "{:?}", resp.headers());
        Ok(())
    };
    let post = Method::POST;

    // Not JSON; unknown fields; another instance than the hello's; too large.
    let resp = ch
        .send(post.clone(), TRAFFIC_PATH, Bytes::from_static(b"{not json"))
        .await?;
    refused(&resp, StatusCode::BAD_REQUEST, "CMGConnector_BadReport")?;
    let mut extra: serde_json::Value = serde_json::from_str(&snapshot("gw-test-0", 1, 1))?;
    extra["extra"] = serde_json::json!(true);
    let resp = ch
        .send(post.clone(), TRAFFIC_PATH, Bytes::from(extra.to_string()))
        .await?;
    refused(&resp, StatusCode::BAD_REQUEST, "CMGConnector_BadReport")?;
    let resp = ch
        .send(
            post.clone(),
            TRAFFIC_PATH,
            Bytes::from(snapshot("gw-other", 1, 1)),
        )
        .await?;
    refused(&resp, StatusCode::BAD_REQUEST, "CMGConnector_BadReport")?;
    let big = Bytes::from(vec![b' '; MAX_REPORT_BYTES + 1]);
    let resp = ch.send(post.clone(), TRAFFIC_PATH, big).await?;
    refused(
        &resp,
        StatusCode::PAYLOAD_TOO_LARGE,
        "CMGConnector_ReportTooLarge",
    )?;
    assert!(cp.traffic.newest().is_empty(), "nothing stored");

    // A good one is kept; an older seq of the same boot does not replace it.
    let resp = ch
        .send(
            post.clone(),
            TRAFFIC_PATH,
            Bytes::from(snapshot("gw-test-0", 2, 7)),
        )
        .await?;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = ch
        .send(
            post.clone(),
            TRAFFIC_PATH,
            Bytes::from(snapshot("gw-test-0", 1, 1)),
        )
        .await?;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let held = cp.traffic.newest();
    assert_eq!(held.len(), 1);
    assert_eq!(
        (held[0].seq, held[0].endpoints[0].status_classes[1]),
        (2, 7)
    );

    // The channel is still usable after the refusals.
    let resp = ch
        .send(Method::GET, &format!("{MP_PREFIX}/x"), Bytes::new())
        .await?;
    assert_eq!(resp.status(), StatusCode::OK);

    // The admin listener counts them and says the connection point is ready.
    let metrics = admin_get(cp.admin, "/metrics").await?;
    let line = |name: &str, outcome: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l.contains(&format!("outcome=\"{outcome}\"")))
            .map(|l| l.rsplit(' ').next().unwrap_or_default().to_owned())
    };
    let snapshots = "cmg_connector_traffic_snapshots_total";
    assert_eq!(line(snapshots, "failed").as_deref(), Some("4"), "{metrics}");
    assert_eq!(line(snapshots, "ok").as_deref(), Some("2"), "{metrics}");
    assert!(
        metrics.contains("cmg_connector_channels_up{connection_point=\"cp1\"} 1"),
        "{metrics}"
    );
    // The shared listener's additions: OpenMetrics content type, build info, /live.
    assert!(
        metrics.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{metrics}"
    );
    let build = format!(
        "cmg_build_info{{version=\"{}\",role=\"connector\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    assert!(metrics.contains(&build), "{metrics}");
    assert!(metrics.ends_with("# EOF\n"), "{metrics}");
    let ready = admin_get(cp.admin, "/ready").await?;
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let live = admin_get(cp.admin, "/live").await?;
    assert!(live.starts_with("HTTP/1.1 200"), "{live}");
    let channels = admin_get(cp.admin, "/channels").await?;
    assert!(channels.contains("up instance=gw-test-0"), "{channels}");
    cp.stop().await
}
