//! Bearer tokens on `CCM_Proxy_ServerAuth` URLs, end to end: a site-issued device token
//! is forwarded with the token identity; missing, expired, not-yet-valid, wrong
//! audience, wrong issuer, `alg: none`, HS256 signed with the public key, tampered and
//! unknown-key tokens get 401 with `WWW-Authenticate` and never reach the management
//! point; a token never stands in for a certificate.
//!
//! Forged tokens are signed here with `jsonwebtoken` and the demo site's key (or none):
//! that is the point of a forgery test. OIDC tokens from a real provider, through the
//! gateways, are in `oidc.rs`.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use cmg_client::collect_body;
use cmg_e2e::{header_str, journal, spec, tag, tagged, Cert, TestCluster};
use http::{header, Method, Request, StatusCode};
use http_body_util::Full;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

fn token_request() -> String {
    format!("{}/request", spec::token_prefix("ccm_system_tokenauth"))
}

fn with_token(t: &str, token: Option<&str>) -> Request<Full<Bytes>> {
    let mut req = tagged(
        cmg_e2e::ccm_post(),
        &token_request(),
        t,
        Bytes::from_static(b"<Msg/>"),
    );
    if let Some(token) = token {
        req.headers_mut().insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    req
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A token signed RS256 by the demo site key, with the given claims and the right kid.
fn signed(tc: &TestCluster, claims: &serde_json::Value) -> String {
    let pem = std::fs::read(tc.tokens.signing_key.as_ref().expect("key file")).expect("site key");
    let key = EncodingKey::from_rsa_pem(&pem).expect("rsa key");
    let public = std::fs::read(&tc.tokens.public_key).expect("public key");
    let kid = cmg_token::SitePublicKey::from_pem(&public)
        .expect("public key")
        .kid()
        .to_owned();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid);
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

fn device_claims() -> serde_json::Value {
    let t = now();
    json!({
        "iss": format!("urn:sccm:oauth2:{}", spec::SITE_GUID),
        "aud": "urn:sccm:service",
        "sub": "forged-device",
        "token_type": "Device",
        "jti": "00000000-0000-4000-8000-000000000001",
        "iat": t, "nbf": t, "exp": t + 3600,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_token_is_forwarded_with_its_identity() -> anyhow::Result<()> {
    let tc = TestCluster::start().await?;
    for gw in 0..tc.gateways.len() {
        for http2 in [false, true] {
            // No client certificate at all: the token is the credential.
            let client = tc.client(gw, Cert::None, http2)?;
            let t = tag("token-ok");
            let resp = client
                .request(with_token(&t, Some(&tc.tokens.device_token)))
                .await?;
            assert_eq!(resp.status(), StatusCode::OK, "gw{gw} h2={http2}");
            assert_eq!(collect_body(resp).await?, Bytes::from_static(b"<Msg/>"));
            let entries = journal::tagged(&tc, &t);
            assert_eq!(entries.len(), 1);
            let e = &entries[0];
            assert_eq!(journal::header(e, "cmg-client-auth"), ["token"]);
            let identity = journal::header(e, "cmg-client-identity");
            assert!(
                identity[0].contains(&format!("sub=\"{}\"", spec::DEMO_DEVICE))
                    && identity[0].contains("type=Device"),
                "{identity:?}"
            );
            // The token goes on to the role (the product's MP checks it again).
            assert_eq!(journal::header(e, "authorization").len(), 1);
        }
    }
    tc.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_get_401_and_are_never_forwarded() -> anyhow::Result<()> {
    let tc = TestCluster::start().await?;
    let t0 = now();
    let mut cases: Vec<(&str, Option<String>, &str)> = vec![
        ("missing", None, "token_required"),
        ("garbage", Some("not-a-token".into()), "malformed"),
    ];
    let mut expired = device_claims();
    expired["exp"] = json!(t0 - 3600);
    expired["iat"] = json!(t0 - 7200);
    expired["nbf"] = json!(t0 - 7200);
    cases.push(("expired", Some(signed(&tc, &expired)), "token_expired"));
    let mut early = device_claims();
    early["nbf"] = json!(t0 + 3600);
    early["iat"] = json!(t0 + 3600);
    early["exp"] = json!(t0 + 7200);
    cases.push((
        "not-yet-valid",
        Some(signed(&tc, &early)),
        "token_not_yet_valid",
    ));
    let mut aud = device_claims();
    aud["aud"] = json!("urn:someone:else");
    cases.push(("wrong-audience", Some(signed(&tc, &aud)), "bad_audience"));
    let mut iss = device_claims();
    iss["iss"] = json!("urn:sccm:oauth2:00000000-0000-4000-8000-00000000dead");
    cases.push(("wrong-issuer", Some(signed(&tc, &iss)), "bad_issuer"));

    // alg none: header {"alg":"none"}, empty signature.
    let enc = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"));
    let none = format!(
        "{}.{}.",
        enc(&json!({"alg": "none", "typ": "JWT"})),
        enc(&device_claims())
    );
    cases.push(("alg-none", Some(none), "unsupported_alg"));
    // HS256 keyed with the site's public key PEM (the classic confusion attack).
    let public = std::fs::read(&tc.tokens.public_key)?;
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &device_claims(),
        &EncodingKey::from_secret(&public),
    )?;
    cases.push(("hs256-public-key", Some(hs), "unsupported_alg"));
    // A valid token with its payload swapped for another subject.
    let good = tc.tokens.device_token.clone();
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], enc(&device_claims()), parts[2]);
    cases.push(("tampered", Some(tampered), "bad_signature"));
    // Signed by a key the gateway was never given.
    let other_key = cmg_token::site::generate_key_pem()?;
    let guid: cmg_token::SiteGuid = spec::SITE_GUID.parse()?;
    let stranger = cmg_token::SiteSigner::from_pem(other_key.as_bytes(), &guid)?
        .issue_device("intruder", std::time::Duration::from_secs(3600))?;
    cases.push(("unknown-key", Some(stranger.token), "unknown_kid"));

    let client = tc.client(0, Cert::None, true)?;
    let mut tags = Vec::new();
    for (name, token, code) in &cases {
        let t = tag(name);
        let resp = client.request(with_token(&t, token.as_deref())).await?;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{name}");
        let www = header_str(&resp, "www-authenticate").to_owned();
        assert!(www.starts_with("Bearer realm=\"cmg\""), "{name}: {www}");
        if *code == "token_required" {
            assert!(!www.contains("error="), "{name}: {www}");
        } else {
            assert!(
                www.contains("error=\"invalid_token\"") && www.contains(code),
                "{name}: {www}"
            );
        }
        let body = collect_body(resp).await?;
        assert!(
            String::from_utf8_lossy(&body).contains(code),
            "{name}: {body:?}"
        );
        tags.push(t);
    }
    // The honest token client beside them still gets through.
    let honest = tag("honest-token");
    let resp = client
        .request(with_token(&honest, Some(&tc.tokens.device_token)))
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
async fn tokens_and_certificates_do_not_stand_in_for_each_other() -> anyhow::Result<()> {
    let tc = TestCluster::start().await?;
    // A token on a MutualAuth URL without a certificate: 403.
    let t = tag("token-on-mutualauth");
    let mut req = tagged(
        cmg_e2e::ccm_post(),
        &cmg_e2e::system_request(),
        &t,
        Bytes::from_static(b"x"),
    );
    req.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {}", tc.tokens.device_token).parse()?,
    );
    let resp = tc.client(0, Cert::None, false)?.request(req).await?;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    collect_body(resp).await?;
    // A certificate on a ServerAuth URL without a token: 401.
    let t2 = tag("cert-on-serverauth");
    let resp = tc
        .client(1, Cert::Valid, true)?
        .request(with_token(&t2, None))
        .await?;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    collect_body(resp).await?;
    // Two Authorization headers are refused outright.
    let t3 = tag("two-authorization");
    let mut req = with_token(&t3, Some(&tc.tokens.device_token));
    req.headers_mut()
        .append(header::AUTHORIZATION, "Bearer x.y.z".parse()?);
    let resp = tc.client(0, Cert::None, false)?.request(req).await?;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    collect_body(resp).await?;
    for t in [&t, &t2, &t3] {
        assert!(journal::tagged(&tc, t).is_empty(), "{t} reached the MP");
    }
    // The GET probe under ServerAuth answers locally without a token.
    let resp = tc
        .client(0, Cert::None, true)?
        .request(tagged(
            Method::GET,
            "/CCM_Proxy_ServerAuth/ServiceMetadata",
            &tag("metadata"),
            Bytes::new(),
        ))
        .await?;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = collect_body(resp).await?;
    assert!(String::from_utf8_lossy(&body).contains("<Auth>ServerAuth</Auth>"));
    tc.shutdown().await;
    Ok(())
}
