//! The data path: a request with a valid certificate reaches the management point
//! through each gateway instance and each connection point, over HTTP/1.1 and HTTP/2;
//! bodies arrive byte-identical both ways; BITS uploads reassemble.

use std::collections::BTreeSet;

use bytes::Bytes;
use cmg_client::collect_body;
use cmg_e2e::{
    bits_post, ccm_post, client_subject, header_str, journal, pattern, sha256_hex, spec, streamed,
    system_request, tag, tagged, Cert, TestCluster, TAG,
};
use http::{Method, Request, StatusCode};
use http_body_util::Empty;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_instance_reaches_the_mp_through_each_connection_point() -> anyhow::Result<()> {
    let tc = TestCluster::start().await?;
    let subject = client_subject(&tc)?;
    let mut tags = Vec::new();
    for gw in 0..tc.gateways.len() {
        let instance = tc.gateways[gw].name.clone();
        for http2 in [false, true] {
            let client = tc.client(gw, Cert::Valid, http2)?;
            let mut seen = BTreeSet::new();
            // Round robin over two channels: both show up within a few requests.
            for n in 0..16 {
                let t = tag("route");
                let body = format!("hello {instance} h2={http2} #{n}");
                let resp = client
                    .request(tagged(ccm_post(), &system_request(), &t, body.clone()))
                    .await?;
                assert_eq!(resp.status(), StatusCode::OK, "{instance} h2={http2}");
                assert_eq!(header_str(&resp, "cmg-gateway-instance"), instance);
                let cp = header_str(&resp, "cmg-connection-point").to_string();
                let echoed_identity = header_str(&resp, "x-mp-client-identity").to_string();
                assert!(
                    echoed_identity.contains(&subject),
                    "{echoed_identity:?} lacks {subject:?}"
                );
                assert_eq!(collect_body(resp).await?, body.as_bytes());
                seen.insert(cp);
                tags.push(t);
                if seen.len() == 2 && n >= 3 {
                    break;
                }
            }
            let want: BTreeSet<String> = tc.connectors.iter().map(|c| c.id.to_string()).collect();
            assert_eq!(
                seen, want,
                "connection points seen through {instance}, h2={http2}"
            );
        }
    }
    // What the MP saw: the verified identity and the client's address, from the gateway.
    for t in &tags {
        let entries = journal::tagged(&tc, t);
        assert_eq!(entries.len(), 1, "one journal entry for {t}");
        let e = &entries[0];
        assert_eq!(e.method, "CCM_POST");
        assert!(e.complete);
        let identity = journal::header(e, "cmg-client-identity");
        assert_eq!(identity.len(), 1, "{:?}", e.headers);
        assert!(identity[0].contains(&subject), "{identity:?}");
        assert_eq!(journal::header(e, "x-forwarded-for"), ["127.0.0.1"]);
        assert_eq!(journal::header(e, "cmg-client-auth"), ["certificate"]);
        assert_eq!(journal::header(e, "cmg-request-id").len(), 1);
    }
    tc.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_arrive_byte_identical_both_ways() -> anyhow::Result<()> {
    let tc = TestCluster::start().await?;
    for (gw, http2) in [(0, false), (1, true)] {
        let client = tc.client(gw, Cert::Valid, http2)?;
        for (size, chunked) in [(0usize, false), (1024, false), (10 * 1024 * 1024, true)] {
            let data = pattern(size, size as u64 + u64::from(http2));
            let t = tag(&format!("body-{size}"));
            let resp = if chunked {
                let req = Request::builder()
                    .method(ccm_post())
                    .uri(system_request())
                    .header(TAG, &t)
                    .body(streamed(&data, 64 * 1024))?;
                client.request(req).await?
            } else {
                client
                    .request(tagged(ccm_post(), &system_request(), &t, data.clone()))
                    .await?
            };
            let what = format!("{size} B, h2={http2}, chunked={chunked}");
            assert_eq!(resp.status(), StatusCode::OK, "{what}");
            assert_eq!(
                header_str(&resp, "x-mp-body-sha256"),
                sha256_hex(&data),
                "{what}"
            );
            let echoed = collect_body(resp).await?;
            assert_eq!(echoed.len(), data.len(), "{what}: echoed length");
            assert!(echoed == data, "{what}: echoed bytes differ");

            let entries = journal::tagged(&tc, &t);
            assert_eq!(entries.len(), 1, "{what}: journal entries");
            let e = &entries[0];
            assert!(e.complete, "{what}: journal says incomplete");
            assert_eq!(e.body_bytes, size as u64, "{what}");
            assert_eq!(e.body_sha256, sha256_hex(&data), "{what}");
            assert_eq!(e.status, 200);
            if chunked && !http2 {
                // Streamed end to end: no length was ever declared.
                assert!(
                    journal::header(e, "content-length").is_empty(),
                    "{what}: {:?}",
                    e.headers
                );
            }
        }
    }
    tc.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bits_upload_reassembles_through_the_gateway() -> anyhow::Result<()> {
    let tc = TestCluster::start().await?;
    let incoming = spec::external_prefix("CCM_Incoming");
    for (gw, http2) in [(0, true), (1, false)] {
        let client = tc.client(gw, Cert::Valid, http2)?;
        let name = format!("e2e-bits-{gw}.bin");
        let url = format!("{incoming}/{name}");
        let data = pattern(300_000, 7 + gw as u64);
        let split = 100_000;
        let total = data.len();

        let t = tag("bits-create");
        let mut req = tagged(bits_post(), &url, &t, Bytes::new());
        req.headers_mut()
            .insert("bits-packet-type", "Create-Session".parse()?);
        req.headers_mut()
            .insert("bits-supported-protocols", cmg_mp::BITS_PROTOCOL.parse()?);
        let resp = client.request(req).await?;
        assert_eq!(resp.status(), StatusCode::OK, "Create-Session");
        let session = header_str(&resp, "bits-session-id").to_string();
        assert!(
            !session.is_empty(),
            "no BITS-Session-Id: {:?}",
            resp.headers()
        );
        collect_body(resp).await?;

        for (first, last) in [(0, split - 1), (split, total - 1)] {
            let t = tag("bits-fragment");
            let mut req = tagged(bits_post(), &url, &t, data.slice(first..=last));
            let h = req.headers_mut();
            h.insert("bits-packet-type", "Fragment".parse()?);
            h.insert("bits-session-id", session.parse()?);
            h.insert(
                "content-range",
                format!("bytes {first}-{last}/{total}").parse()?,
            );
            let resp = client.request(req).await?;
            assert_eq!(resp.status(), StatusCode::OK, "Fragment {first}-{last}");
            assert_eq!(
                header_str(&resp, "bits-received-content-range"),
                (last + 1).to_string()
            );
            collect_body(resp).await?;
            let e = journal::tagged(&tc, &t);
            assert_eq!(e.len(), 1);
            assert!(
                e[0].complete && e[0].body_bytes == (last - first + 1) as u64,
                "{:?}",
                e[0]
            );
        }

        let t = tag("bits-close");
        let mut req = tagged(bits_post(), &url, &t, Bytes::new());
        req.headers_mut()
            .insert("bits-packet-type", "Close-Session".parse()?);
        req.headers_mut()
            .insert("bits-session-id", session.parse()?);
        let resp = client.request(req).await?;
        assert_eq!(resp.status(), StatusCode::OK, "Close-Session");
        collect_body(resp).await?;

        let get = Request::builder()
            .method(Method::GET)
            .uri(&url)
            .body(Empty::<Bytes>::new())?;
        let resp = client.request(get).await?;
        assert_eq!(resp.status(), StatusCode::OK, "GET the upload back");
        let back = collect_body(resp).await?;
        assert_eq!(back.len(), total);
        assert!(back == data, "reassembled upload differs (h2={http2})");
    }
    tc.shutdown().await;
    Ok(())
}
