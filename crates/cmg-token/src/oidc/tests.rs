use super::jwks::tests::{ec_jwk, rsa_jwk};
use super::*;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

const ISSUER: &str = "https://login.example.test/tenant-a/v2.0";

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(path).expect("fixture")
}

/// A verifier holding `jwks`, whose JWKS endpoint is unreachable (port 1 on loopback).
fn verifier(config: OidcConfig, jwks: serde_json::Value) -> OidcVerifier {
    let http = HttpFetcher::with_roots(rustls::RootCertStore::empty()).expect("fetcher");
    OidcVerifier {
        inner: Arc::new(Inner {
            config,
            jwks_uri: "http://127.0.0.1:1/jwks".into(),
            http,
            keys: RwLock::new(Arc::new(
                KeySet::parse(jwks.to_string().as_bytes()).expect("jwks"),
            )),
            last_refresh: tokio::sync::Mutex::new(Instant::now()),
        }),
    }
}

fn config() -> OidcConfig {
    OidcConfig::new(ISSUER, vec!["api://cmg".into()])
}

fn jwks() -> serde_json::Value {
    let mut rsa = rsa_jwk(1);
    rsa["kid"] = "rsa-1".into();
    let mut ec = ec_jwk();
    ec["kid"] = "ec-1".into();
    json!({ "keys": [rsa, ec] })
}

fn claims() -> serde_json::Value {
    let now = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    json!({
        "iss": ISSUER, "aud": "api://cmg", "sub": "device-1", "tid": "tenant-a",
        "azp": "client-1", "uti": "u-1", "iat": now, "nbf": now, "exp": now + 3600,
    })
}

fn sign(alg: Algorithm, kid: Option<&str>, claims: &serde_json::Value) -> String {
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(&fixture("ec-p256.pem")),
        _ => EncodingKey::from_rsa_pem(&fixture("site-key-1.pem")),
    }
    .expect("key");
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

async fn code(v: &OidcVerifier, token: &str) -> &'static str {
    match v.verify(token).await {
        Ok(t) => panic!("accepted {t:?}"),
        Err(e) => e.code(),
    }
}

#[tokio::test]
async fn es256_and_rs256_tokens_verify() {
    let v = verifier(config(), jwks());
    let t = v
        .verify(&sign(Algorithm::ES256, Some("ec-1"), &claims()))
        .await
        .expect("ES256");
    assert_eq!(t.subject.as_deref(), Some("device-1"));
    assert_eq!(t.tenant.as_deref(), Some("tenant-a"));
    assert_eq!(t.client_id.as_deref(), Some("client-1"));
    assert_eq!(t.token_id.as_deref(), Some("u-1"));
    assert_eq!(t.audience, "api://cmg");
    v.verify(&sign(Algorithm::RS256, Some("rsa-1"), &claims()))
        .await
        .expect("RS256");
}

#[tokio::test]
async fn alg_that_does_not_fit_the_named_key_is_refused() {
    let v = verifier(config(), jwks());
    // An ES256 token naming the RSA key.
    assert_eq!(
        code(&v, &sign(Algorithm::ES256, Some("rsa-1"), &claims())).await,
        "unsupported_alg"
    );
}

#[tokio::test]
async fn token_without_kid_uses_the_only_key_of_its_algorithm() {
    let v = verifier(config(), jwks());
    v.verify(&sign(Algorithm::ES256, None, &claims()))
        .await
        .expect("single EC key");
}

#[tokio::test]
async fn tenant_allow_list() {
    let mut c = config();
    c.allowed_tenants = Some(vec!["TENANT-A".into()]);
    let v = verifier(c.clone(), jwks());
    v.verify(&sign(Algorithm::RS256, Some("rsa-1"), &claims()))
        .await
        .expect("tenant-a, case-insensitive");
    let mut other = claims();
    other["tid"] = "tenant-b".into();
    assert_eq!(
        code(&v, &sign(Algorithm::RS256, Some("rsa-1"), &other)).await,
        "tenant_not_allowed"
    );
    let mut none = claims();
    none.as_object_mut().expect("object").remove("tid");
    assert_eq!(
        code(&v, &sign(Algorithm::RS256, Some("rsa-1"), &none)).await,
        "tenant_not_allowed"
    );
}

#[tokio::test]
async fn claim_checks() {
    let v = verifier(config(), jwks());
    let mut c = claims();
    c["nbf"] = (c["nbf"].as_u64().expect("nbf") + 600).into();
    assert_eq!(
        code(&v, &sign(Algorithm::RS256, Some("rsa-1"), &c)).await,
        "token_not_yet_valid"
    );
    let mut c = claims();
    c["iss"] = "https://login.example.test/other/v2.0".into();
    assert_eq!(
        code(&v, &sign(Algorithm::RS256, Some("rsa-1"), &c)).await,
        "bad_issuer"
    );
    let mut c = claims();
    c["aud"] = json!(["api://other"]);
    assert_eq!(
        code(&v, &sign(Algorithm::RS256, Some("rsa-1"), &c)).await,
        "bad_audience"
    );
}

#[tokio::test]
async fn unknown_kid_refresh_is_rate_limited() {
    let mut c = config();
    c.jwks_refresh_min_interval = Duration::ZERO;
    c.fetch_timeout = Duration::from_secs(2);
    let v = verifier(c, jwks());
    // The JWKS endpoint is down: the refresh is tried and reported.
    assert_eq!(
        code(&v, &sign(Algorithm::RS256, Some("rotated"), &claims())).await,
        "issuer_unreachable"
    );

    // With the default interval, the refresh done at start-up counts: no fetch at all.
    let v = verifier(config(), jwks());
    assert_eq!(
        code(&v, &sign(Algorithm::RS256, Some("rotated"), &claims())).await,
        "unknown_kid"
    );
}

#[test]
fn issuer_and_jwks_url_policy() {
    assert!(check_url("https://login.microsoftonline.com/t/v2.0", false).is_ok());
    assert!(check_url("http://login.microsoftonline.com/t/v2.0", false).is_err());
    assert!(check_url("http://127.0.0.1:8080", false).is_err());
    assert!(check_url("http://127.0.0.1:8080", true).is_ok());
    assert!(check_url("http://[::1]:8080/x", true).is_ok());
    assert!(check_url("http://localhost:8080/x", true).is_ok());
    assert!(check_url("http://10.0.0.1/x", true).is_err());
    assert!(check_url("https://x/?q=1", false).is_err());
    assert!(check_url("https://x/#f", false).is_err());
    assert!(check_url("/relative", false).is_err());
    assert!(check_url("ftp://x/", true).is_err());
}

#[test]
fn config_validation() {
    assert!(config().validate().is_ok());
    let mut c = config();
    c.audiences.clear();
    assert_eq!(
        c.validate().expect_err("no audience").code(),
        "config_invalid"
    );
    let mut c = config();
    c.allowed_tenants = Some(vec![]);
    assert!(c.validate().is_err());
    let mut c = config();
    c.issuer = "http://127.0.0.1:1".into();
    assert!(c.validate().is_err());
    c.allow_insecure_loopback = true;
    assert!(c.validate().is_ok());
}
