//! Settings published by the site reach every running gateway instance over the
//! channels and take effect at once, without a restart: a removed URL, a smaller body
//! limit, a blocked token, the critical-alert service stop. Forged bundles are refused
//! (older, replayed versions: `SettingsBundle::may_replace`, unit-tested in cmg-proto);
//! a restarted instance serves its last good bundle even with no connection point to
//! hand it one.
//!
//! The bundle is signed with the demo site key and written to the file the connection
//! points relay (`Cluster::publish`), standing in for the site's publisher.

use std::time::Duration;

use bytes::Bytes;
use cmg_client::collect_body;
use cmg_e2e::{journal, spec, tag, tagged, Cert, TestCluster};
use cmg_test_support::tls::TestClient;
use cmg_test_support::{eventually, patience};
use http::{header, Method, StatusCode};

/// Bound on applying a published bundle (scaled by `CMG_TEST_PATIENCE` at each use).
const APPLY: Duration = Duration::from_secs(10);

async fn status(
    tc: &TestCluster,
    gw: usize,
    cert: Cert,
    method: Method,
    path: &str,
    body: &'static [u8],
    token: Option<&str>,
) -> anyhow::Result<(StatusCode, String)> {
    let mut req = tagged(method, path, &tag("settings"), Bytes::from_static(body));
    if let Some(t) = token {
        req.headers_mut()
            .insert(header::AUTHORIZATION, format!("Bearer {t}").parse()?);
    }
    let resp = tc.client(gw, cert, true)?.request(req).await?;
    let s = resp.status();
    let body = collect_body(resp).await?;
    Ok((s, String::from_utf8_lossy(&body).into_owned()))
}

fn sms_aut() -> String {
    format!("{}/.sms_aut?MPLIST2", spec::external_prefix("SMS_MP"))
}

fn token_request() -> String {
    format!("{}/request", spec::token_prefix("ccm_system_tokenauth"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_changes_are_in_force_on_every_instance_within_seconds() -> anyhow::Result<()> {
    let tc = TestCluster::start().await?;
    let token = tc.tokens.device_token.clone();
    for gw in 0..tc.gateways.len() {
        assert_eq!(
            status(&tc, gw, Cert::Valid, Method::GET, &sms_aut(), b"", None)
                .await?
                .0,
            StatusCode::OK
        );
    }

    // v2: SMS_MP unpublished, CCM_System limited to 8 bytes, the demo token blocked.
    let mut b = tc.base_bundle(2)?;
    b.published
        .retain(|p| !p.prefix.as_str().ends_with("/SMS_MP"));
    for p in &mut b.published {
        if p.prefix.as_str().ends_with("/CCM_System") {
            p.max_body = 8;
        }
    }
    b.tokens.blocked_token_ids = vec![tc.tokens.device_token_id.clone()];
    tc.publish(&b)?;
    tc.wait_settings(2, patience(APPLY)).await?;
    for gw in 0..tc.gateways.len() {
        let (s, body) = status(&tc, gw, Cert::Valid, Method::GET, &sms_aut(), b"", None).await?;
        assert_eq!(s, StatusCode::NOT_FOUND, "gw{gw}: {body}");
        let (s, _) = status(
            &tc,
            gw,
            Cert::Valid,
            cmg_e2e::ccm_post(),
            &cmg_e2e::system_request(),
            b"0123456789",
            None,
        )
        .await?;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "gw{gw}");
        let (s, body) = status(
            &tc,
            gw,
            Cert::None,
            cmg_e2e::ccm_post(),
            &token_request(),
            b"x",
            Some(&token),
        )
        .await?;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "gw{gw}");
        assert!(body.contains("token_blocked"), "{body}");
    }

    // v3: the critical traffic alert stopped the service.
    let mut b3 = tc.base_bundle(3)?;
    b3.service_stopped = Some("14-day traffic at 95 % of the threshold".into());
    tc.publish(&b3)?;
    tc.wait_settings(3, patience(APPLY)).await?;
    for gw in 0..tc.gateways.len() {
        let (s, body) = status(&tc, gw, Cert::Valid, Method::GET, &sms_aut(), b"", None).await?;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "gw{gw}");
        assert!(body.contains("service_stopped"), "{body}");
    }

    // v4: cleared by the administrator; everything as in the config files again.
    tc.publish(&tc.base_bundle(4)?)?;
    tc.wait_settings(4, patience(APPLY)).await?;
    for gw in 0..tc.gateways.len() {
        assert_eq!(
            status(&tc, gw, Cert::Valid, Method::GET, &sms_aut(), b"", None)
                .await?
                .0,
            StatusCode::OK
        );
        assert_eq!(
            status(
                &tc,
                gw,
                Cert::None,
                cmg_e2e::ccm_post(),
                &token_request(),
                b"x",
                Some(&token)
            )
            .await?
            .0,
            StatusCode::OK
        );
    }
    tc.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_bundles_are_refused() -> anyhow::Result<()> {
    let tc = TestCluster::start().await?;
    let mut b = tc.base_bundle(2)?;
    b.published
        .retain(|p| !p.prefix.as_str().ends_with("/SMS_MP"));
    tc.publish(&b)?;
    tc.wait_settings(2, patience(APPLY)).await?;

    // Signed by a key the gateways were not deployed with, at a higher version.
    let guid: cmg_token::SiteGuid = spec::SITE_GUID.parse()?;
    let stranger =
        cmg_token::SiteSigner::from_pem(cmg_token::site::generate_key_pem()?.as_bytes(), &guid)?;
    let mut forged = tc.base_bundle(9)?;
    forged.service_stopped = Some("forged".into());
    tc.publish_signed(&stranger.sign_bundle(&forged)?)?;
    // Readiness: every instance has received the forged bundle and refused it.
    for gw in 0..tc.gateways.len() {
        refused_a_bundle(&tc, gw, "the forged bundle").await;
    }
    for g in &tc.gateways {
        assert_eq!(g.settings_version(), 2, "{} moved off version 2", g.name);
    }
    for gw in 0..tc.gateways.len() {
        let (s, _) = status(&tc, gw, Cert::Valid, Method::GET, &sms_aut(), b"", None).await?;
        assert_eq!(s, StatusCode::NOT_FOUND, "gw{gw} lost version 2");
    }
    tc.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_instance_serves_its_last_good_bundle_without_any_channel() -> anyhow::Result<()>
{
    let mut tc = TestCluster::start().await?;
    let mut b = tc.base_bundle(2)?;
    b.published
        .retain(|p| !p.prefix.as_str().ends_with("/SMS_MP"));
    tc.publish(&b)?;
    tc.wait_settings(2, patience(APPLY)).await?;
    for i in 0..tc.connectors.len() {
        tc.kill_connector(i);
    }
    tc.kill_gateway(0);
    tc.restart_gateway(0).await?;
    assert_eq!(
        tc.gateways[0].settings_version(),
        2,
        "last good bundle not restored"
    );
    // Unpublished in version 2: 404 before any channel is looked for. Still published:
    // 503, no connection point.
    let (s, _) = status(&tc, 0, Cert::Valid, Method::GET, &sms_aut(), b"", None).await?;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let t = tag("no-channel");
    let resp = tc
        .client(0, Cert::Valid, true)?
        .request(tagged(
            cmg_e2e::ccm_post(),
            &cmg_e2e::system_request(),
            &t,
            Bytes::from_static(b"x"),
        ))
        .await?;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    collect_body(resp).await?;
    assert!(journal::tagged(&tc, &t).is_empty());
    // The connection points come back; the instance keeps version 2 (nothing newer).
    for i in 0..tc.connectors.len() {
        tc.start_connector(i).await?;
    }
    tc.wait_all_channels(Duration::from_secs(20)).await?;
    tc.wait_settings(2, patience(APPLY)).await?;
    tc.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_trust_and_tls_policy_come_from_the_bundle() -> anyhow::Result<()> {
    let tc = TestCluster::start().await?;
    tc.wait_settings(1, patience(APPLY)).await?;
    // Version 1 says what the files say: the other root is not trusted, revocation on.
    for gw in 0..tc.gateways.len() {
        assert!(get(&tc, gw, Cert::UntrustedRoot).await.is_err(), "gw{gw}");
        assert!(get(&tc, gw, Cert::Revoked).await.is_err(), "gw{gw}");
        assert!(tls12_handshake(&tc, gw).await.is_ok(), "gw{gw}");
    }

    // v2: the other root uploaded, revocation checking off, TLS 1.3 minimum.
    let other_root = std::fs::read_to_string(&tc.pki.untrusted_root_ca)?;
    let mut b = tc.base_bundle(2)?;
    b.client_auth.trusted_roots_pem.push(other_root.clone());
    b.client_auth.verify_revocation = false;
    b.tls.min_version = "1.3".into();
    tc.publish(&b)?;
    tc.wait_settings(2, patience(APPLY)).await?;
    for gw in 0..tc.gateways.len() {
        assert_eq!(
            get(&tc, gw, Cert::UntrustedRoot).await?,
            StatusCode::OK,
            "gw{gw}"
        );
        assert_eq!(get(&tc, gw, Cert::Revoked).await?, StatusCode::OK, "gw{gw}");
        assert_eq!(get(&tc, gw, Cert::Valid).await?, StatusCode::OK, "gw{gw}");
        assert!(
            tls12_handshake(&tc, gw).await.is_err(),
            "gw{gw}: TLS 1.2 accepted with minimum 1.3"
        );
    }

    // v3: the trust list names only the other root (which publishes no CRL: revocation
    // stays off, or its clients would be refused as "status unknown").
    let other_der = cmg_pki::pem::parse_certs(&other_root)?;
    let fingerprint = cmg_pki::describe::describe(&other_der[0])?.sha256_hex;
    let mut b = tc.base_bundle(3)?;
    b.client_auth.trusted_roots_pem.push(other_root);
    b.client_auth.trust_list_sha256 = Some(vec![fingerprint]);
    b.client_auth.verify_revocation = false;
    tc.publish(&b)?;
    tc.wait_settings(3, patience(APPLY)).await?;
    for gw in 0..tc.gateways.len() {
        assert_eq!(
            get(&tc, gw, Cert::UntrustedRoot).await?,
            StatusCode::OK,
            "gw{gw}"
        );
        assert!(
            get(&tc, gw, Cert::Valid).await.is_err(),
            "gw{gw}: chain to a root outside the trust list accepted"
        );
        assert!(tls12_handshake(&tc, gw).await.is_ok(), "gw{gw}");
    }

    // v4: a trust list that excludes every uploaded root is refused whole; v3 stays.
    let mut b = tc.base_bundle(4)?;
    b.client_auth.verify_revocation = false;
    b.client_auth.trust_list_sha256 = Some(vec!["00".repeat(32)]);
    b.published.clear();
    tc.publish(&b)?;
    for gw in 0..tc.gateways.len() {
        refused_a_bundle(&tc, gw, "bundle 4").await;
        assert_eq!(tc.gateways[gw].settings_version(), 3);
        assert_eq!(
            get(&tc, gw, Cert::UntrustedRoot).await?,
            StatusCode::OK,
            "gw{gw}"
        );
    }

    // v5: back to the base; the revoked client is refused again, the demo client served.
    tc.publish(&tc.base_bundle(5)?)?;
    tc.wait_settings(5, patience(APPLY)).await?;
    for gw in 0..tc.gateways.len() {
        assert_eq!(get(&tc, gw, Cert::Valid).await?, StatusCode::OK, "gw{gw}");
        assert!(get(&tc, gw, Cert::Revoked).await.is_err(), "gw{gw}");
        assert!(get(&tc, gw, Cert::UntrustedRoot).await.is_err(), "gw{gw}");
    }
    tc.shutdown().await;
    Ok(())
}

/// `GET` of the MP list with `cert` on a new connection; `Err` when the handshake or
/// the exchange fails.
async fn get(tc: &TestCluster, gw: usize, cert: Cert) -> anyhow::Result<StatusCode> {
    let resp = tc
        .client(gw, cert, true)?
        .request(tagged(Method::GET, &sms_aut(), &tag("trust"), Bytes::new()))
        .await?;
    let s = resp.status();
    collect_body(resp).await?;
    Ok(s)
}

/// A TLS 1.2-only handshake with gateway `gw`'s client port.
async fn tls12_handshake(tc: &TestCluster, gw: usize) -> anyhow::Result<()> {
    TestClient::trusting_pem([tc.pki.root_ca.as_path()])
        .only(&rustls::version::TLS12)
        .connect(tc.gateways[gw].client, spec::SERVICE_NAME)
        .await?;
    Ok(())
}

/// Waits until gateway `gw` counts a refused bundle (`what` names it).
async fn refused_a_bundle(tc: &TestCluster, gw: usize, what: &str) {
    eventually(format!("gw{gw} to refuse {what}"))
        .within(APPLY)
        .until_async(
            || admin_metrics(tc, gw),
            |m| m.as_ref().is_ok_and(|m| rejected(m) > 0),
        )
        .await
        .expect("the condition holds only for a metrics page");
}

/// The value of `cmg_gateway_settings_rejected_total` in a metrics page.
fn rejected(metrics: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with("cmg_gateway_settings_rejected_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn admin_metrics(tc: &TestCluster, gw: usize) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(tc.gateways[gw].admin).await?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n")
        .await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}
