//! The OIDC verifier against a real OpenID Connect provider (the npm package
//! `oidc-provider`, cmg-test-support's `oidc/server.mjs`) on loopback: discovery, JWKS,
//! JWT access tokens from the client-credentials grant, key rotation at the provider,
//! and forgeries.
//!
//! The provider is `cmg_test_support::oidc::OidcProvider`. Needs node (20 or later) and
//! npm: the first test to run installs the provider from the committed lock file
//! (`npm ci --prefix crates/cmg-test-support/oidc`) when it is missing; `.ci/run`
//! installs it beforehand. Without node or npm these tests fail, saying so.

mod common;

use std::time::{Duration, SystemTime};

use cmg_test_support::oidc::OidcProvider as Provider;
use cmg_token::{HttpFetcher, OidcConfig, OidcVerifier, TokenError, VerifiedToken};

const AUDIENCE: &str = "api://cmg-test";

fn fetcher() -> HttpFetcher {
    HttpFetcher::with_roots(rustls::RootCertStore::empty()).expect("fetcher")
}

fn config(issuer: &str) -> OidcConfig {
    let mut c = OidcConfig::new(issuer, vec![AUDIENCE.into()]);
    c.allow_insecure_loopback = true;
    c.fetch_timeout = Duration::from_secs(5);
    c
}

async fn discover(config: OidcConfig) -> OidcVerifier {
    OidcVerifier::discover(config, &fetcher())
        .await
        .expect("discovery")
}

fn refused(r: Result<VerifiedToken, TokenError>) -> &'static str {
    match r {
        Ok(t) => panic!("accepted {t:?}"),
        Err(e) => e.code(),
    }
}

fn kid(token: &str) -> String {
    let header = token.split('.').next().expect("header");
    let header: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header)
            .expect("b64"),
    )
    .expect("json");
    header["kid"].as_str().expect("kid").to_owned()
}

#[tokio::test]
async fn valid_token_from_a_real_provider() {
    let p = Provider::start().await;
    let mut c = config(&p.issuer());
    c.audiences = vec!["api://someone-else".into(), AUDIENCE.into()];
    let v = discover(c).await;
    let token = p.token('a', AUDIENCE).await;
    let t = v.verify(&token).await.expect("valid token");
    assert_eq!(t.issuer, p.issuer());
    assert_eq!(t.audience, AUDIENCE);
    assert_eq!(t.subject.as_deref(), Some("cmg-client-a"));
    assert_eq!(t.client_id.as_deref(), Some("cmg-client-a"));
    assert_eq!(t.tenant.as_deref(), Some("tenant-a"));
    assert!(t.token_id.is_some());
    assert_eq!(t.claims["scope"], "api");
    let left = t
        .expires_at
        .duration_since(SystemTime::now())
        .expect("future");
    assert!(left <= Duration::from_secs(300) && left > Duration::from_secs(200));
}

#[tokio::test]
async fn wrong_audience_expired_and_tenants() {
    let p = Provider::start().await;
    let v = discover(config(&p.issuer())).await;

    let other = p.token('a', "api://other-app").await;
    assert_eq!(refused(v.verify(&other).await), "bad_audience");

    // TTL 300 s plus 60 s skew: an hour later it has expired; just within the skew not.
    let token = p.token('a', AUDIENCE).await;
    let now = SystemTime::now();
    assert!(v
        .verify_at(&token, now + Duration::from_secs(330))
        .await
        .is_ok());
    assert_eq!(
        refused(v.verify_at(&token, now + Duration::from_secs(3600)).await),
        "token_expired"
    );
    assert_eq!(
        refused(v.verify_at(&token, now - Duration::from_secs(3600)).await),
        "token_not_yet_valid",
        "no nbf from this provider: iat in the future counts"
    );

    let mut c = config(&p.issuer());
    c.allowed_tenants = Some(vec!["tenant-b".into()]);
    let only_b = discover(c).await;
    assert_eq!(refused(only_b.verify(&token).await), "tenant_not_allowed");
    let token_b = p.token('b', AUDIENCE).await;
    let t = only_b.verify(&token_b).await.expect("tenant-b");
    assert_eq!(t.tenant.as_deref(), Some("tenant-b"));
}

#[tokio::test]
async fn key_rotation_at_the_provider_is_picked_up() {
    let p = Provider::start().await;
    let mut eager = config(&p.issuer());
    eager.jwks_refresh_min_interval = Duration::ZERO;
    let eager = discover(eager).await;
    // Default 5 minute interval: discovery just fetched the JWKS, so no refresh now.
    let limited = discover(config(&p.issuer())).await;

    let before = p.token('a', AUDIENCE).await;
    eager.verify(&before).await.expect("before rotation");
    limited.verify(&before).await.expect("before rotation");

    let new_kid = p.rotate().await;
    let after = p.token('a', AUDIENCE).await;
    assert_eq!(kid(&after), new_kid);
    assert_ne!(kid(&after), kid(&before));

    // Unknown kid: a refresh, then the new key verifies; the old key is still published.
    eager
        .verify(&after)
        .await
        .expect("after rotation, refreshed");
    eager
        .verify(&before)
        .await
        .expect("old key still in the JWKS");
    // The rate limit holds: no refresh within the interval.
    assert_eq!(refused(limited.verify(&after).await), "unknown_kid");
    assert!(limited.verify(&before).await.is_ok());
}

#[tokio::test]
async fn forgeries_are_refused() {
    let p = Provider::start().await;
    let v = discover(config(&p.issuer())).await;
    let token = p.token('a', AUDIENCE).await;
    let claims = common::payload(&token);
    let real_kid = kid(&token);

    // Tampered payload, signature kept.
    let mut changed = claims.clone();
    changed["sub"] = "admin".into();
    let tampered = common::with_payload(&token, &changed);
    assert_eq!(refused(v.verify(&tampered).await), "bad_signature");

    // alg: none, with and without the real kid.
    let none = common::alg_none(&claims, Some(&real_kid));
    assert_eq!(refused(v.verify(&none).await), "unsupported_alg");
    assert_eq!(
        refused(v.verify(&common::alg_none(&claims, None)).await),
        "unsupported_alg"
    );

    // HS256 with the provider's public key as the HMAC secret, in the forms an attacker
    // would try (the JWK as published, and the raw modulus). Refused on `alg` before any
    // key is looked up, whatever the secret.
    let jwks = fetcher()
        .get(&format!("{}/jwks", p.issuer()), Default::default())
        .await
        .expect("jwks");
    let jwks: serde_json::Value = serde_json::from_slice(&jwks).expect("jwks json");
    let jwk = &jwks["keys"][0];
    let modulus = jwk["n"].as_str().expect("n");
    for secret in [jwk.to_string().into_bytes(), modulus.as_bytes().to_vec()] {
        let forged = common::hs256_with_secret(&claims, &secret, Some(&real_kid));
        let err = v.verify(&forged).await.expect_err("HS256");
        assert_eq!(err.code(), "unsupported_alg");
        assert!(!err.to_string().contains(&forged), "no token in the error");
    }

    // A key id the provider never had (after a refresh attempt): unknown_kid.
    let mut eager = config(&p.issuer());
    eager.jwks_refresh_min_interval = Duration::ZERO;
    let eager = discover(eager).await;
    let bogus_kid = {
        let header = serde_json::json!({"alg": "RS256", "kid": "no-such-key"});
        let mut parts = token.splitn(2, '.');
        parts.next();
        format!(
            "{}.{}",
            common::b64(header.to_string().as_bytes()),
            parts.next().expect("rest")
        )
    };
    assert_eq!(refused(eager.verify(&bogus_kid).await), "unknown_kid");
}

#[tokio::test]
async fn wrong_issuer() {
    let p = Provider::start().await;
    let v = discover(config(&p.issuer())).await;
    // Signed by the same keys (so the signature verifies) but issued by `<issuer>/other`.
    let token = p.token_from("/other", 'a', AUDIENCE).await;
    assert_eq!(
        common::payload(&token)["iss"],
        format!("{}/other", p.issuer())
    );
    assert_eq!(refused(v.verify(&token).await), "bad_issuer");

    // A configured issuer that the discovery document does not confirm.
    let err = OidcVerifier::discover(config(&format!("{}/", p.issuer())), &fetcher())
        .await
        .expect_err("issuer mismatch");
    assert_eq!(err.code(), "issuer_metadata_invalid");

    // https is required unless loopback http is explicitly allowed for tests.
    let mut strict = config(&p.issuer());
    strict.allow_insecure_loopback = false;
    let err = OidcVerifier::discover(strict, &fetcher())
        .await
        .expect_err("http issuer");
    assert_eq!(err.code(), "config_invalid");
}

#[tokio::test]
async fn issuer_unreachable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let err = OidcVerifier::discover(config(&format!("http://{addr}")), &fetcher())
        .await
        .expect_err("nothing listens");
    assert_eq!(err.code(), "issuer_unreachable");
    assert!(!err.is_token_fault());
}
