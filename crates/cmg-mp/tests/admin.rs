//! The management point's admin listener (`[admin] listen`): request counters on
//! `/metrics` with the common families, `/ready` and `/live`.

mod support;

use support::{empty, full, header, request, send_to, Mp};

#[tokio::test]
async fn admin_listener_counts_requests_and_says_ready() {
    let mp = Mp::start_with(|c| c.admin = Some("127.0.0.1:0".parse().expect("addr"))).await;
    let admin = mp.admin.expect("admin listener");
    let (parts, _) = mp
        .send(request("POST", "/CCM_System/request", full("hello")))
        .await;
    assert_eq!(parts.status, 200);
    let (parts, _) = mp.send(request("GET", "/nowhere", empty())).await;
    assert_eq!(parts.status, 404);

    let (parts, body) = send_to(admin, request("GET", "/metrics", empty())).await;
    assert_eq!(parts.status, 200);
    assert_eq!(
        header(&parts, "content-type"),
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let body = String::from_utf8(body.to_vec()).expect("utf-8");
    let build = format!(
        "cmg_build_info{{version=\"{}\",role=\"mp\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    for want in [
        "cmg_mp_requests_total{class=\"2xx\"} 1\n",
        "cmg_mp_requests_total{class=\"4xx\"} 1\n",
        "cmg_mp_request_body_bytes_total 5\n",
        &build,
    ] {
        assert!(body.contains(want), "{want} missing from:\n{body}");
    }
    assert!(body.ends_with("# EOF\n"), "{body}");

    let (parts, body) = send_to(admin, request("GET", "/ready", empty())).await;
    assert_eq!(parts.status, 200);
    assert_eq!(body, format!("ready: serving on {}\n", mp.addr));
    let (parts, body) = send_to(admin, request("GET", "/live", empty())).await;
    assert_eq!((parts.status.as_u16(), &body[..]), (200, &b"live\n"[..]));
    mp.stop().await;
}
