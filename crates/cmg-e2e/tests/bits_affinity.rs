//! BITS sessions stick: with two connection points (which plain requests alternate
//! between), every fragment of one upload session goes through the same connection
//! point, whichever gateway instance the client reaches, and the upload reassembles.

use std::collections::BTreeSet;

use bytes::Bytes;
use cmg_client::collect_body;
use cmg_e2e::{
    bits_post, ccm_post, header_str, pattern, spec, system_request, tag, tagged, Cert, TestCluster,
};
use http::{Method, Request, StatusCode};
use http_body_util::Empty;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragments_of_one_session_take_one_connection_point() -> anyhow::Result<()> {
    let tc = TestCluster::start().await?;
    let clients = [
        tc.client(0, Cert::Valid, true)?,
        tc.client(1, Cert::Valid, false)?,
    ];

    // Without a session, requests alternate between the two connection points.
    let mut seen = BTreeSet::new();
    for _ in 0..16 {
        let resp = clients[0]
            .request(tagged(ccm_post(), &system_request(), &tag("rr"), "rr"))
            .await?;
        assert_eq!(resp.status(), StatusCode::OK);
        seen.insert(header_str(&resp, "cmg-connection-point").to_string());
        collect_body(resp).await?;
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen.len(), 2, "round robin over both: {seen:?}");

    let url = format!(
        "{}/e2e-bits-sticky.bin",
        spec::external_prefix("CCM_Incoming")
    );
    let data = pattern(240_000, 11);
    let total = data.len();
    let mut req = tagged(bits_post(), &url, &tag("bits-create"), Bytes::new());
    req.headers_mut()
        .insert("bits-packet-type", "Create-Session".parse()?);
    req.headers_mut()
        .insert("bits-supported-protocols", cmg_mp::BITS_PROTOCOL.parse()?);
    let resp = clients[0].request(req).await?;
    assert_eq!(resp.status(), StatusCode::OK, "Create-Session");
    let session = header_str(&resp, "bits-session-id").to_string();
    assert!(!session.is_empty(), "no BITS-Session-Id");
    collect_body(resp).await?;

    // Eight fragments, alternating the gateway instance the client reaches.
    let step = total / 8;
    let mut through = BTreeSet::new();
    for (i, first) in (0..total).step_by(step).enumerate() {
        let last = (first + step).min(total) - 1;
        let mut req = tagged(
            bits_post(),
            &url,
            &tag("bits-fragment"),
            data.slice(first..=last),
        );
        let h = req.headers_mut();
        h.insert("bits-packet-type", "Fragment".parse()?);
        h.insert("bits-session-id", session.parse()?);
        h.insert(
            "content-range",
            format!("bytes {first}-{last}/{total}").parse()?,
        );
        let resp = clients[i % 2].request(req).await?;
        assert_eq!(resp.status(), StatusCode::OK, "Fragment {first}-{last}");
        through.insert(header_str(&resp, "cmg-connection-point").to_string());
        collect_body(resp).await?;
    }
    assert_eq!(through.len(), 1, "fragments went through {through:?}");

    let mut req = tagged(bits_post(), &url, &tag("bits-close"), Bytes::new());
    req.headers_mut()
        .insert("bits-packet-type", "Close-Session".parse()?);
    req.headers_mut()
        .insert("bits-session-id", session.parse()?);
    let resp = clients[1].request(req).await?;
    assert_eq!(resp.status(), StatusCode::OK, "Close-Session");
    assert_eq!(
        header_str(&resp, "cmg-connection-point"),
        through.first().map(String::as_str).unwrap_or_default(),
        "the close too"
    );
    collect_body(resp).await?;

    let get = Request::builder()
        .method(Method::GET)
        .uri(&url)
        .body(Empty::<Bytes>::new())?;
    let resp = clients[0].request(get).await?;
    assert_eq!(resp.status(), StatusCode::OK);
    let back = collect_body(resp).await?;
    assert!(back == data, "reassembled upload differs");
    tc.shutdown().await;
    Ok(())
}
