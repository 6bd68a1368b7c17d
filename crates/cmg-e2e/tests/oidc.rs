//! OIDC access tokens end to end: a real OpenID Connect provider (the npm package
//! `oidc-provider`, `cmg_test_support::oidc`) on loopback, named by the
//! site's settings bundle as an accepted issuer, tokens from its client-credentials
//! grant sent through the gateways to a `CCM_Proxy_ServerAuth` URL.
//!
//! Valid token: 200 and the management point sees the token identity. Wrong audience,
//! another tenant, and a key the provider rotated in after the gateway fetched its JWKS
//! (the refetch on an unknown `kid` is rate-limited to one per 5 minutes): 401 and
//! nothing forwarded. Needs node and npm, like cmg-token's tests (the provider is
//! installed from the committed lock file when missing).

use std::time::Duration;

use bytes::Bytes;
use cmg_client::collect_body;
use cmg_e2e::{header_str, journal, spec, tag, tagged, Cert, TestCluster};
use cmg_proto::settings::OidcIssuer;
use cmg_test_support::oidc::OidcProvider;
use http::{header, Request, StatusCode};
use http_body_util::Full;

const AUDIENCE: &str = "api://cmg-e2e";

fn request(t: &str, token: &str) -> Request<Full<Bytes>> {
    let path = format!("{}/request", spec::token_prefix("ccm_system_tokenauth"));
    let mut req = tagged(cmg_e2e::ccm_post(), &path, t, Bytes::from_static(b"<Msg/>"));
    req.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header"),
    );
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_tokens_through_the_gateway() -> anyhow::Result<()> {
    let provider = OidcProvider::start().await;
    let issuer = provider.issuer();
    // The config file gives the issuer's local transport setting (plain HTTP on
    // loopback); the site's bundle decides that the issuer is accepted.
    let extra = format!(
        "\n[[tokens.oidc]]\nissuer = \"{issuer}\"\naudiences = [\"{AUDIENCE}\"]\nallow_http_loopback = true\n"
    );
    let tc = TestCluster::start_with(|s| s.gateway_extra = extra).await?;
    let mut bundle = tc.base_bundle(2)?;
    bundle.tokens.oidc = vec![OidcIssuer {
        issuer: issuer.clone(),
        audiences: vec![AUDIENCE.into()],
        tenants: vec!["tenant-a".into()],
    }];
    tc.publish(&bundle)?;
    tc.wait_settings(2, Duration::from_secs(20)).await?;

    let good = provider.token('a', AUDIENCE).await;
    for gw in 0..tc.gateways.len() {
        let client = tc.client(gw, Cert::None, gw == 1)?;
        let t = tag("oidc-ok");
        let resp = client.request(request(&t, &good)).await?;
        assert_eq!(resp.status(), StatusCode::OK, "gw{gw}");
        assert_eq!(collect_body(resp).await?, Bytes::from_static(b"<Msg/>"));
        let entries = journal::tagged(&tc, &t);
        assert_eq!(entries.len(), 1, "gw{gw}");
        assert_eq!(journal::header(&entries[0], "cmg-client-auth"), ["token"]);
        let identity = journal::header(&entries[0], "cmg-client-identity");
        assert!(
            identity[0].contains(&format!("issuer=\"{issuer}\""))
                && identity[0].contains("sub=\"cmg-client-a\"")
                && identity[0].contains("tid=\"tenant-a\""),
            "{identity:?}"
        );
    }

    let wrong_audience = provider.token('a', "api://someone-else").await;
    let other_tenant = provider.token('b', AUDIENCE).await;
    provider.rotate().await;
    let rotated = provider.token('a', AUDIENCE).await;
    for (what, token, code) in [
        ("wrong audience", &wrong_audience, "bad_audience"),
        ("tenant not allowed", &other_tenant, "tenant_not_allowed"),
        (
            "key rotated in after the JWKS fetch",
            &rotated,
            "unknown_kid",
        ),
    ] {
        for gw in 0..tc.gateways.len() {
            let client = tc.client(gw, Cert::None, false)?;
            let t = tag("oidc-refused");
            let resp = client.request(request(&t, token)).await?;
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{what} gw{gw}");
            let challenge = header_str(&resp, "www-authenticate");
            assert!(challenge.contains(code), "{what}: {challenge}");
            assert!(journal::tagged(&tc, &t).is_empty(), "{what} was forwarded");
        }
    }
    // The token signed with the previous key still works (cached or not).
    let client = tc.client(0, Cert::None, false)?;
    let t = tag("oidc-again");
    assert_eq!(
        client.request(request(&t, &good)).await?.status(),
        StatusCode::OK
    );
    tc.shutdown().await;
    Ok(())
}
