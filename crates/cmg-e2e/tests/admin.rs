//! The gateway's admin listener (plain HTTP, bound privately): readiness, channels,
//! metrics that count real requests, and a clear refusal of anything else.

use std::time::Duration;

use cmg_cluster::clients::Cert;
use cmg_cluster::{Cluster, ClusterSpec};
use cmg_test_support::eventually;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends raw bytes and reads until the server closes (`Connection: close` is sent).
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect admin");
    s.write_all(request).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("admin answers within 5 s")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reports_readiness_channels_and_counted_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::start(ClusterSpec::demo(dir.path().to_path_buf()))
        .await
        .expect("cluster");
    let admin = cluster.gateways[0].admin;

    let ready = get(admin, "/ready").await;
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let channels = get(admin, "/channels").await;
    assert!(
        channels.contains("cp1 site=DEM") && channels.contains("cp2 site=DEM"),
        "{channels}"
    );

    // Three requests through gw1: the 2xx counter of that endpoint says 3.
    let client = cluster.client(0, Cert::Valid, true).expect("client");
    let mplist = format!(
        "{}/.sms_aut?MPLIST2",
        cmg_cluster::spec::external_prefix("SMS_MP")
    );
    for _ in 0..3 {
        let resp = client.get(&mplist).await.expect("request");
        assert_eq!(resp.status(), 200);
        cmg_client::collect_body(resp).await.expect("body");
    }
    // The gateway counts a request when it drops the response body, which can be just
    // after the client has read it: wait (bounded) for the third.
    let series = move || async move {
        let metrics = get(admin, "/metrics").await;
        metrics
            .lines()
            .find(|l| {
                l.starts_with("cmg_gateway_requests_total{")
                    && l.contains("/SMS_MP\"")
                    && l.contains("class=\"2xx\"")
            })
            .unwrap_or_else(|| panic!("no 2xx series for SMS_MP:\n{metrics}"))
            .to_owned()
    };
    let count = |line: &str| -> u64 {
        line.rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let line = eventually("the 2xx counter of SMS_MP to reach 3")
        .within(Duration::from_secs(5))
        .until_async(series, |line| count(line) >= 3)
        .await;
    assert_eq!(count(&line), 3, "{line}");

    let unknown = get(admin, "/admin/secret").await;
    assert!(unknown.starts_with("HTTP/1.1 404"), "{unknown}");
    let garbage = raw(admin, b"NOT HTTP AT ALL\r\n\r\n").await;
    assert!(
        garbage.is_empty() || garbage.starts_with("HTTP/1.1 400"),
        "{garbage}"
    );

    // Without channels the instance is not ready (a load balancer takes it out).
    let mut cluster = cluster;
    cluster.kill_connector(0);
    cluster.kill_connector(1);
    let mut count = cluster.gateways[0].registry.subscribe();
    tokio::time::timeout(Duration::from_secs(15), count.wait_for(|n| *n == 0))
        .await
        .expect("channels dropped within 15 s")
        .expect("registry alive");
    let ready = get(admin, "/ready").await;
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    cluster.shutdown().await;
}
