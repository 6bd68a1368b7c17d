//! Hostile requests: unpublished URLs, traversal and encoding tricks, foreign
//! authorities, bodies over the limit, HTTP/1.1 smuggling shapes, forged internal
//! headers, oversized and stalled heads. None of them may reach the management point,
//! and the gateway keeps serving honest clients afterwards.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cmg_client::collect_body;
use cmg_e2e::raw::{self, RawResponse};
use cmg_e2e::{
    ccm_post, client_subject, header_str, journal, pattern, spec, streamed, system_request, tag,
    tagged, Cert, TestCluster, TAG,
};
use cmg_test_support::eventually;
use http::{Method, Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An honest request on a fresh connection to `gw` still succeeds and reaches the MP.
async fn honest_request_succeeds(tc: &TestCluster, gw: usize) -> anyhow::Result<()> {
    let t = tag("honest");
    let client = tc.client(gw, Cert::Valid, false)?;
    let resp = client
        .request(tagged(ccm_post(), &system_request(), &t, "still here"))
        .await?;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "honest request after hostile ones"
    );
    assert_eq!(collect_body(resp).await?, "still here");
    assert_eq!(journal::tagged(tc, &t).len(), 1);
    Ok(())
}

/// Sends `request` raw and returns the response; panics with `what` if none came.
/// The journal entries tagged `tag` once there is one, or none after a bounded wait
/// (500 ms, scaled): for requests that may have reached the MP with a cut-off body; the
/// MP journals once it has read the body to its end or failure, which can be after the
/// client's answer.
async fn journal_eventually(tc: &TestCluster, tag: &str) -> Vec<cmg_mp::JournalEntry> {
    eventually(format!("a journal entry tagged {tag}"))
        .within(Duration::from_millis(500))
        .try_until(|| journal::tagged(tc, tag), |found| !found.is_empty())
        .await
        .unwrap_or_else(|none| none)
}

async fn raw_status(tc: &TestCluster, what: &str, request: &[u8]) -> RawResponse {
    match raw::exchange(tc, 0, request).await {
        Ok(resp) => resp,
        Err(e) => panic!("{what}: no response: {e:#}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpublished_and_path_tricks_are_refused_and_never_forwarded() -> anyhow::Result<()> {
    let tc = TestCluster::start().await?;
    let sys = spec::external_prefix("CCM_System");
    let sms = spec::external_prefix("SMS_MP");
    let role = spec::MP_ROLE_ID;
    // (name, target, allowed statuses)
    let cases: Vec<(&str, String, &[u16])> = vec![
        (
            "unpublished segment",
            format!("/CCM_Proxy_MutualAuth/{role}/Other/request"),
            &[404],
        ),
        (
            "unpublished role id",
            "/CCM_Proxy_MutualAuth/1/CCM_System/request".into(),
            &[404],
        ),
        ("internal path", "/CCM_System/request".into(), &[404]),
        ("root", "/".into(), &[404]),
        ("prefix without boundary", format!("{sys}X/request"), &[404]),
        (
            "dot-dot",
            format!("{sms}/../CCM_System/request"),
            &[400, 404],
        ),
        (
            "dot-dot out of the prefix",
            format!("{sys}/../../../CCM_System/request"),
            &[400, 404],
        ),
        (
            "encoded dot-dot",
            format!("{sys}/%2e%2e/CCM_System/request"),
            &[400, 404],
        ),
        (
            "mixed-case encoded dot-dot",
            format!("{sys}/%2E%2e/CCM_System/request"),
            &[400, 404],
        ),
        ("encoded slash", format!("{sys}%2frequest"), &[400, 404]),
        (
            "encoded backslash",
            format!("{sys}/x%5c..%5crequest"),
            &[400, 404],
        ),
        ("backslash", format!("{sys}\\request"), &[400, 404]),
        (
            "backslash dot-dot",
            format!("{sys}\\..\\request"),
            &[400, 404],
        ),
        ("encoded NUL", format!("{sys}/request%00"), &[400, 404]),
        ("NUL in query", format!("{sys}/request?a=%00"), &[400, 404]),
        ("control byte", format!("{sys}/req\x01uest"), &[400, 404]),
        ("DEL byte", format!("{sys}/req\x7fuest"), &[400, 404]),
        (
            "double encoding",
            format!("{sys}/%252e%252e/request"),
            &[400, 404],
        ),
        (
            "dot segment with parameter",
            format!("{sys}/..;x/request"),
            &[400, 404],
        ),
        ("empty segment", format!("{sys}//request"), &[400, 404]),
    ];
    let mut tags = Vec::new();
    for (name, target, allowed) in &cases {
        let t = tag("trick");
        let req = raw::request("CCM_POST", target, &t, "Content-Length: 2\r\n", b"hi");
        let resp = raw_status(&tc, name, &req).await;
        assert!(
            allowed.contains(&resp.status),
            "{name} ({target:?}): got {} {:?}",
            resp.status,
            String::from_utf8_lossy(&resp.body)
        );
        tags.push((name, t));
    }
    // Prefixes match case-insensitively, as IIS does: a case variant IS published.
    let t = tag("case-variant");
    let lower = format!("/ccm_proxy_mutualauth/{role}/ccm_system/request");
    let resp = raw_status(
        &tc,
        "case variant",
        &raw::request("CCM_POST", &lower, &t, "Content-Length: 2\r\n", b"hi"),
    )
    .await;
    assert_eq!(resp.status, 200, "{:?}", resp.head);
    assert_eq!(resp.body, b"hi");
    assert_eq!(
        journal::tagged(&tc, &t).len(),
        1,
        "the case variant reached the MP"
    );
    // And through the client library, over HTTP/2.
    let t = tag("case-variant-h2");
    let upper = format!("/CCM_PROXY_MUTUALAUTH/{role}/CCM_SYSTEM/request");
    let resp = tc
        .client(1, Cert::Valid, true)?
        .request(tagged(ccm_post(), &upper, &t, "hi"))
        .await?;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(collect_body(resp).await?, "hi");

    honest_request_succeeds(&tc, 0).await?;
    for (name, t) in &tags {
        assert!(journal::tagged(&tc, t).is_empty(), "{name} reached the MP");
    }
    tc.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_authorities_are_refused() -> anyhow::Result<()> {
    let tc = TestCluster::start().await?;
    let target = system_request();
    let mut tags = Vec::new();
    let cases: Vec<(&str, Vec<u8>)> = {
        let mut v = Vec::new();
        let t = tag("absolute-form");
        v.push((
            "absolute form for another host",
            raw::request(
                "CCM_POST",
                &format!("https://evil.example{target}"),
                &t,
                "Content-Length: 0\r\n",
                b"",
            ),
        ));
        tags.push(t);
        let t = tag("host-mismatch");
        v.push((
            "Host mismatch",
            format!("CCM_POST {target} HTTP/1.1\r\nHost: evil.example\r\n{TAG}: {t}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").into_bytes(),
        ));
        tags.push(t);
        let t = tag("two-hosts");
        v.push((
            "two Host headers",
            raw::request(
                "CCM_POST",
                &target,
                &t,
                "Host: evil.example\r\nContent-Length: 0\r\n",
                b"",
            ),
        ));
        tags.push(t);
        let t = tag("absolute-vs-host");
        v.push((
            "absolute form naming us, Host naming another",
            format!("CCM_POST https://{}{target} HTTP/1.1\r\nHost: evil.example\r\n{TAG}: {t}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", spec::SERVICE_NAME).into_bytes(),
        ));
        tags.push(t);
        v
    };
    for (name, req) in &cases {
        let resp = raw_status(&tc, name, req).await;
        assert_eq!(
            resp.status,
            400,
            "{name}: {:?}",
            String::from_utf8_lossy(&resp.body)
        );
    }
    honest_request_succeeds(&tc, 0).await?;
    for t in &tags {
        assert!(journal::tagged(&tc, t).is_empty(), "{t} reached the MP");
    }
    tc.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_are_refused() -> anyhow::Result<()> {
    let tc = TestCluster::start().await?;
    let sms = format!("{}/.sms_aut?MPLIST2", spec::external_prefix("SMS_MP"));

    // A declared length over the limit: 413 at once, before any body byte was sent.
    let t_declared = tag("declared-over");
    let over = spec::MAX_BODY_CCM_SYSTEM + 1;
    let req = raw::request(
        "CCM_POST",
        &system_request(),
        &t_declared,
        &format!("Content-Length: {over}\r\n"),
        b"",
    );
    let resp = raw_status(&tc, "declared over the limit", &req).await;
    assert_eq!(resp.status, 413, "{:?}", resp.head);

    // The same through the client library with the whole body (64 KiB + 1 on SMS_MP).
    let t_full = tag("full-over");
    let body = pattern(spec::MAX_BODY_SMS_MP as usize + 1, 3);
    let resp = tc
        .client(0, Cert::Valid, true)?
        .request(tagged(Method::POST, &sms, &t_full, body))
        .await?;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    collect_body(resp).await?;

    // Exactly at the limit is fine (the MP answers 405 for POST, but it got it whole).
    let t_at = tag("at-limit");
    let body = pattern(spec::MAX_BODY_SMS_MP as usize, 4);
    let resp = tc
        .client(0, Cert::Valid, true)?
        .request(tagged(Method::POST, &sms, &t_at, body))
        .await?;
    assert_ne!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    collect_body(resp).await?;
    let at = journal::tagged(&tc, &t_at);
    assert!(
        at.len() == 1 && at[0].complete && at[0].body_bytes == spec::MAX_BODY_SMS_MP,
        "{at:?}"
    );

    // A streamed body that passes the limit: 413 or a failed request, and whatever
    // reached the MP was never complete.
    let mut streamed_tags = Vec::new();
    for (gw, http2) in [(0, false), (1, true)] {
        let t = tag("streamed-over");
        let data = pattern(4 * spec::MAX_BODY_SMS_MP as usize, 5);
        let req = Request::builder()
            .method(Method::POST)
            .uri(&sms)
            .header(TAG, &t)
            .body(streamed(&data, 16 * 1024))?;
        match tc.client(gw, Cert::Valid, http2)?.request(req).await {
            Ok(resp) => {
                assert_eq!(
                    resp.status(),
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "streamed over the limit, h2={http2}"
                );
                let _ = collect_body(resp).await;
            }
            Err(e) => {
                eprintln!("streamed over the limit, h2={http2}: request failed ({e}), accepted")
            }
        }
        streamed_tags.push(t);
    }

    honest_request_succeeds(&tc, 0).await?;
    for t in [&t_declared, &t_full] {
        assert!(journal::tagged(&tc, t).is_empty(), "{t} reached the MP");
    }
    for t in &streamed_tags {
        // If the head got through, the MP journals the cut-off body once it fails.
        let entries = journal_eventually(&tc, t).await;
        assert!(
            entries.iter().all(|e| !e.complete),
            "a cut-off body looked complete: {entries:?}"
        );
        assert!(
            entries
                .iter()
                .all(|e| e.body_bytes <= spec::MAX_BODY_SMS_MP),
            "more than the limit reached the MP: {entries:?}"
        );
    }
    tc.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_shapes_are_400_and_never_forwarded() -> anyhow::Result<()> {
    let tc = TestCluster::start().await?;
    let target = system_request();
    let cases: [(&str, &str, &[u8]); 8] = [
        (
            "CL then TE",
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            b"0\r\n\r\n",
        ),
        (
            "TE then CL",
            "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
            b"0\r\n\r\n",
        ),
        (
            "CL with TE chunked after identity",
            "Content-Length: 5\r\nTransfer-Encoding: identity, chunked\r\n",
            b"0\r\n\r\n",
        ),
        (
            "differing Content-Length",
            "Content-Length: 5\r\nContent-Length: 6\r\n",
            b"hello!",
        ),
        ("Content-Length list", "Content-Length: 5, 6\r\n", b"hello!"),
        (
            "bad chunk size",
            "Transfer-Encoding: chunked\r\n",
            b"zz\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "obs-fold",
            "X-Folded: a\r\n  b\r\nContent-Length: 0\r\n",
            b"",
        ),
        (
            "Transfer-Encoding gzip",
            "Transfer-Encoding: gzip\r\n",
            b"hello",
        ),
    ];
    let mut tags = Vec::new();
    for (name, extra, body) in cases {
        let t = tag("smuggle");
        let resp = raw_status(
            &tc,
            name,
            &raw::request("CCM_POST", &target, &t, extra, body),
        )
        .await;
        assert_eq!(
            resp.status,
            400,
            "{name}: {:?} {:?}",
            resp.head,
            String::from_utf8_lossy(&resp.body)
        );
        tags.push((name, t));
    }
    // A smuggled second request hidden in a CL+TE body is never served either.
    let t = tag("smuggle-pipelined");
    let hidden = format!(
        "CCM_POST {target} HTTP/1.1\r\nHost: {}\r\n{TAG}: {t}\r\nContent-Length: 0\r\n\r\n",
        spec::SERVICE_NAME
    );
    let body = format!("0\r\n\r\n{hidden}");
    let extra = format!(
        "Content-Length: {}\r\nTransfer-Encoding: chunked\r\n",
        body.len()
    );
    let resp = raw_status(
        &tc,
        "CL+TE with a pipelined request",
        &raw::request("CCM_POST", &target, &t, &extra, body.as_bytes()),
    )
    .await;
    assert_eq!(resp.status, 400);
    tags.push(("pipelined", t));

    honest_request_succeeds(&tc, 0).await?;
    for (name, t) in &tags {
        let entries = journal::tagged(&tc, t);
        assert!(entries.is_empty(), "{name} reached the MP: {entries:?}");
    }
    tc.shutdown().await;
    Ok(())
}

/// A bad first chunk size is refused before the request head goes up a channel: the
/// gateway reads the first body frame before forwarding (`LimitedBody::read_first`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_chunk_size_never_reaches_the_mp() -> anyhow::Result<()> {
    let tc = TestCluster::start().await?;
    let t = tag("bad-chunk");
    let req = raw::request(
        "CCM_POST",
        &system_request(),
        &t,
        "Transfer-Encoding: chunked\r\n",
        b"zz\r\nhello\r\n0\r\n\r\n",
    );
    let resp = raw_status(&tc, "bad chunk size", &req).await;
    assert_eq!(resp.status, 400);
    honest_request_succeeds(&tc, 0).await?;
    let entries = journal_eventually(&tc, &t).await;
    assert!(
        entries.is_empty(),
        "bad chunk size reached the MP: {entries:?}"
    );
    tc.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_supplied_internal_headers_never_reach_the_mp() -> anyhow::Result<()> {
    let tc = TestCluster::start().await?;
    let subject = client_subject(&tc)?;
    for (gw, http2) in [(0, false), (1, true)] {
        let t = tag("internal-headers");
        let mut req = tagged(ccm_post(), &system_request(), &t, "forged?");
        let h = req.headers_mut();
        h.insert("cmg-client-identity", "forged".parse()?);
        h.append("Cmg-Client-Identity", "subject=\"CN=admin\"".parse()?);
        h.insert("Cmg-Request-Id", "forged-request-id".parse()?);
        h.insert("cmg-client-auth", "forged".parse()?);
        h.insert("cmg-anything", "forged".parse()?);
        h.insert("x-forwarded-for", "203.0.113.9".parse()?);
        let resp = tc.client(gw, Cert::Valid, http2)?.request(req).await?;
        assert_eq!(resp.status(), StatusCode::OK);
        let echoed = header_str(&resp, "x-mp-client-identity").to_string();
        assert!(
            echoed.contains(&subject) && !echoed.contains("forged"),
            "{echoed}"
        );
        collect_body(resp).await?;

        let entries = journal::tagged(&tc, &t);
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        let identity = journal::header(e, "cmg-client-identity");
        assert_eq!(identity.len(), 1, "{:?}", e.headers);
        assert!(identity[0].contains(&subject), "{identity:?}");
        let request_id = journal::header(e, "cmg-request-id");
        assert!(
            request_id.len() == 1 && request_id[0] != "forged-request-id",
            "{request_id:?}"
        );
        assert_eq!(journal::header(e, "cmg-client-auth"), ["certificate"]);
        assert!(journal::header(e, "cmg-anything").is_empty());
        assert_eq!(journal::header(e, "x-forwarded-for"), ["127.0.0.1"]);
        assert!(
            e.headers
                .iter()
                .all(|(_, v)| !v.contains("forged") && !v.contains("CN=admin")),
            "a forged value reached the MP: {:?}",
            e.headers
        );
    }
    tc.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_are_refused() -> anyhow::Result<()> {
    let tc = TestCluster::start().await?;
    let mut tags = Vec::new();
    // One 64 KiB header, then 200 small headers (the limit is 100).
    let big = format!("X-Big: {}\r\nContent-Length: 0\r\n", "a".repeat(64 * 1024));
    let many: String = (0..200)
        .map(|i| format!("X-H{i}: v\r\n"))
        .collect::<String>()
        + "Content-Length: 0\r\n";
    for (name, extra) in [("64 KiB header", big), ("200 headers", many)] {
        let t = tag("oversized");
        let req = raw::request("CCM_POST", &system_request(), &t, &extra, b"");
        match raw::exchange(&tc, 0, &req).await {
            Ok(resp) => assert!([431, 400].contains(&resp.status), "{name}: {}", resp.head),
            // The gateway answers before reading the rest of the head; the unread bytes
            // can turn its close into a reset that discards the answer on our side.
            Err(e) => eprintln!("{name}: connection ended without a readable answer: {e:#}"),
        }
        tags.push(t);
    }
    // Over HTTP/2 the header list limit applies too.
    let t = tag("oversized-h2");
    let mut req = tagged(ccm_post(), &system_request(), &t, Bytes::new());
    req.headers_mut()
        .insert("x-big", "a".repeat(64 * 1024).parse()?);
    match tc.client(0, Cert::Valid, true)?.request(req).await {
        Ok(resp) => assert!(
            [431, 400].contains(&resp.status().as_u16()),
            "h2: {}",
            resp.status()
        ),
        Err(e) => eprintln!("h2 64 KiB header: request failed ({e}), accepted"),
    }
    tags.push(t);
    honest_request_succeeds(&tc, 0).await?;
    for t in &tags {
        assert!(journal::tagged(&tc, t).is_empty(), "{t} reached the MP");
    }
    tc.shutdown().await;
    Ok(())
}

/// A client that sends half a request head and stalls does not hold up anyone else,
/// and is disconnected after the header read timeout (default 10 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_head_is_cut_off_and_blocks_nobody() -> anyhow::Result<()> {
    let tc = TestCluster::start().await?;
    let t = tag("stalled");
    let mut slow = raw::connect(&tc, 0, Cert::Valid).await?;
    let half = format!(
        "CCM_POST {} HTTP/1.1\r\nHost: {}\r\n{TAG}: {t}\r\nX-Half",
        system_request(),
        spec::SERVICE_NAME
    );
    slow.write_all(half.as_bytes()).await?;
    slow.flush().await?;
    let stalled_at = Instant::now();

    // Others are served meanwhile, on both protocols.
    for http2 in [false, true] {
        let client = tc.client(0, Cert::Valid, http2)?;
        for _ in 0..3 {
            let honest = tag("honest");
            let resp = client
                .request(tagged(ccm_post(), &system_request(), &honest, "x"))
                .await?;
            assert_eq!(resp.status(), StatusCode::OK);
            collect_body(resp).await?;
        }
    }
    assert!(
        stalled_at.elapsed() < Duration::from_secs(5),
        "honest requests waited on the stalled one"
    );

    // The stalled connection is closed (with or without a 408) after the timeout.
    let mut buf = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(20), slow.read_to_end(&mut buf)).await;
    let waited = stalled_at.elapsed();
    assert!(
        ended.is_ok(),
        "stalled connection still open after {waited:?}"
    );
    assert!(
        waited >= Duration::from_secs(9),
        "cut off after only {waited:?}"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        buf.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text:?}"
    );
    assert!(journal::tagged(&tc, &t).is_empty());
    tc.shutdown().await;
    Ok(())
}
