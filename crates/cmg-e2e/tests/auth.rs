//! Client authentication at the gateway: what is refused at the TLS handshake, what is
//! refused with 403, and that none of it reaches the management point.

use bytes::Bytes;
use cmg_client::collect_body;
use cmg_e2e::{header_str, journal, spec, system_request, tag, tagged, Cert, TestCluster};
use http::{Method, StatusCode};

fn sms_aut() -> String {
    format!("{}/.sms_aut?MPLIST2", spec::external_prefix("SMS_MP"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_certificate_is_403_and_never_forwarded() -> anyhow::Result<()> {
    let tc = TestCluster::start().await?;
    let mut tags = Vec::new();
    for gw in 0..tc.gateways.len() {
        for http2 in [false, true] {
            let client = tc.client(gw, Cert::None, http2)?;
            for (method, path) in [
                (Method::GET, sms_aut()),
                (cmg_e2e::ccm_post(), system_request()),
            ] {
                let t = tag("no-cert");
                let resp = client
                    .request(tagged(method.clone(), &path, &t, Bytes::from_static(b"x")))
                    .await?;
                assert_eq!(
                    resp.status(),
                    StatusCode::FORBIDDEN,
                    "{method} {path} via gw{gw} h2={http2}"
                );
                let body = collect_body(resp).await?;
                assert!(
                    String::from_utf8_lossy(&body).contains("client_certificate_required"),
                    "{body:?}"
                );
                tags.push(t);
            }
        }
    }
    // The same request with a certificate is forwarded: the MP journal works.
    let honest = tag("honest");
    let resp = tc
        .client(0, Cert::Valid, true)?
        .request(tagged(Method::GET, &sms_aut(), &honest, Bytes::new()))
        .await?;
    assert_eq!(resp.status(), StatusCode::OK);
    collect_body(resp).await?;
    assert_eq!(journal::tagged(&tc, &honest).len(), 1);
    for t in &tags {
        assert!(journal::tagged(&tc, t).is_empty(), "{t} reached the MP");
    }
    tc.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_that_fail_verification_are_refused_at_the_handshake() -> anyhow::Result<()> {
    let tc = TestCluster::start().await?;
    let before = journal::entries(&tc).len();
    let mut tags = Vec::new();
    for cert in [Cert::Expired, Cert::NoClientAuthEku, Cert::UntrustedRoot] {
        for gw in 0..tc.gateways.len() {
            for http2 in [false, true] {
                let t = tag("bad-cert");
                let client = tc.client(gw, cert, http2)?;
                let outcome = client
                    .request(tagged(
                        cmg_e2e::ccm_post(),
                        &system_request(),
                        &t,
                        Bytes::from_static(b"hi"),
                    ))
                    .await;
                match outcome {
                    Err(_) => {}
                    Ok(resp) => panic!(
                        "{cert:?} via gw{gw} h2={http2} was answered {}",
                        resp.status()
                    ),
                }
                tags.push(t);
            }
        }
    }
    for t in &tags {
        assert!(journal::tagged(&tc, t).is_empty(), "{t} reached the MP");
    }
    assert_eq!(journal::entries(&tc).len(), before, "the MP saw requests");
    tc.shutdown().await;
    Ok(())
}

/// The cluster's gateways check revocation (on by default) with CRLs fetched from the
/// demo's loopback distribution point: the revoked certificate, otherwise valid, fails
/// the TLS handshake on every instance and nothing reaches the MP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_certificate_is_refused_by_the_fetched_crl() -> anyhow::Result<()> {
    let tc = TestCluster::start().await?;
    let before = journal::entries(&tc).len();
    for gw in 0..tc.gateways.len() {
        let t = tag("revoked");
        let result = tc
            .client(gw, Cert::Revoked, true)?
            .request(tagged(Method::GET, &sms_aut(), &t, Bytes::new()))
            .await;
        assert!(result.is_err(), "gw{gw}: revoked certificate accepted");
        // The same gateway still serves a good certificate.
        let resp = tc
            .client(gw, Cert::Valid, true)?
            .request(tagged(Method::GET, &sms_aut(), &tag("good"), Bytes::new()))
            .await?;
        assert_eq!(resp.status(), StatusCode::OK);
        collect_body(resp).await?;
    }
    assert_eq!(journal::entries(&tc).len(), before + tc.gateways.len());
    tc.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_metadata_probe_answers_locally_without_a_certificate() -> anyhow::Result<()> {
    let tc = TestCluster::start().await?;
    let before = journal::entries(&tc).len();
    for gw in 0..tc.gateways.len() {
        for (cert, http2) in [(Cert::None, false), (Cert::None, true), (Cert::Valid, true)] {
            let t = tag("metadata");
            let client = tc.client(gw, cert, http2)?;
            let resp = client
                .request(tagged(
                    Method::GET,
                    "/CCM_Proxy_MutualAuth/ServiceMetadata",
                    &t,
                    Bytes::new(),
                ))
                .await?;
            assert_eq!(resp.status(), StatusCode::OK, "gw{gw} {cert:?} h2={http2}");
            assert_eq!(
                header_str(&resp, "cmg-gateway-instance"),
                tc.gateways[gw].name
            );
            assert!(
                header_str(&resp, "cmg-connection-point").is_empty(),
                "answered by a CP?"
            );
            let body = String::from_utf8_lossy(&collect_body(resp).await?).into_owned();
            assert!(
                body.contains("<ServiceMetadata>") && body.contains(spec::SERVICE_NAME),
                "{body}"
            );
            assert!(journal::tagged(&tc, &t).is_empty());
        }
    }
    assert_eq!(
        journal::entries(&tc).len(),
        before,
        "the probe reached the MP"
    );
    tc.shutdown().await;
    Ok(())
}
