//! The gateway's token checker ([`cmg_gateway::tokens::TokenAuth`]) on its own: the block
//! list and settings updates (a token blocked at the site is refused from the next
//! request on, cache or not), and config validation of token settings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cmg_gateway::tokens::{ConnToken, SiteTokens, TokenAuth, TokenRefusal, TokenSettings};
use cmg_token::site::BULK_DEFAULT_LIFETIME;
use cmg_token::{SiteGuid, SiteSigner};
use http::HeaderValue;

const GUID: &str = "6f1c3a7e-0b5d-4c2a-9e8f-1a2b3c4d5e6f";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cmg-token/tests/fixtures")
        .join(name)
}

fn settings(blocked: Vec<String>) -> TokenSettings {
    TokenSettings {
        site: Some(SiteTokens {
            guid: GUID.parse().expect("guid"),
            keys_pem: vec![std::fs::read_to_string(fixture("site-key-1.pub.pem")).expect("key")],
        }),
        blocked,
        oidc: vec![],
        cache_max_age: Duration::from_secs(300),
    }
}

fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).expect("header")
}

#[tokio::test]
async fn blocking_a_token_takes_effect_at_the_next_request() {
    let guid: SiteGuid = GUID.parse().expect("guid");
    let key = std::fs::read(fixture("site-key-1.pem")).expect("key");
    let signer = SiteSigner::from_pem(&key, &guid).expect("signer");
    let bulk = signer.issue_bulk(BULK_DEFAULT_LIFETIME).expect("issue");
    let other = signer.issue_bulk(BULK_DEFAULT_LIFETIME).expect("issue");

    let auth = TokenAuth::new(&settings(vec![])).expect("auth");
    // One keep-alive connection throughout: its remembered token must never outlive a
    // block, nor answer for another token.
    let conn = ConnToken::default();
    let id = auth
        .authenticate(Some(&bearer(&bulk.token)), &conn)
        .await
        .expect("valid");
    assert!(id
        .header
        .to_str()
        .expect("ascii")
        .contains("type=BulkRegistration"));
    // Cached now; blocking must still win.
    auth.update(&settings(vec![bulk.tracking_id.clone()]))
        .expect("update");
    match auth.authenticate(Some(&bearer(&bulk.token)), &conn).await {
        Err(TokenRefusal::Invalid(e)) => assert_eq!(e.code(), "token_blocked"),
        other => panic!("blocked token: {other:?}"),
    }
    // Other tokens are unaffected, and unblocking restores the token.
    let id = auth
        .authenticate(Some(&bearer(&other.token)), &conn)
        .await
        .expect("other token");
    assert!(id
        .header
        .to_str()
        .expect("ascii")
        .contains(&other.tracking_id));
    let again = auth
        .authenticate(Some(&bearer(&other.token)), &conn)
        .await
        .expect("remembered");
    assert!(
        std::sync::Arc::ptr_eq(&id, &again),
        "served from the connection"
    );
    auth.update(&settings(vec![])).expect("update");
    auth.authenticate(Some(&bearer(&bulk.token)), &conn)
        .await
        .expect("unblocked");
}

#[test]
fn server_auth_urls_need_token_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = |tokens: &str| {
        format!(
            "instance = \"gw1\"\nservice_name = \"cmg.example.test\"\n\
             [listen]\nclient = \"127.0.0.1:0\"\n\
             [tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n\
             [channel]\nsite_ca = [\"ca.pem\"]\n\
             [[published_url]]\nprefix = \"/CCM_Proxy_ServerAuth/72057594037927939/ccm_system_tokenauth\"\n\
             site = \"DEM\"\nmax_body_bytes = 1024\n{tokens}"
        )
    };
    let path = dir.path().join("gw.toml");
    let err = cmg_gateway::Config::from_toml(&path, &base("")).expect_err("no tokens");
    assert!(err.to_string().contains("tokens"), "{err}");

    std::fs::copy(
        fixture("site-key-1.pub.pem"),
        dir.path().join("site.pub.pem"),
    )
    .expect("copy");
    let ok = base(&format!(
        "[tokens]\nsite_guid = \"{GUID}\"\nsite_keys = [\"site.pub.pem\"]\n"
    ));
    let config = cmg_gateway::Config::from_toml(&path, &ok).expect("valid");
    assert!(config.tokens.site.is_some());

    let no_keys = base(&format!("[tokens]\nsite_guid = \"{GUID}\"\n"));
    let err = cmg_gateway::Config::from_toml(&path, &no_keys).expect_err("no keys");
    assert!(err.to_string().contains("tokens.site_keys"), "{err}");

    let http_issuer = base(
        "[[tokens.oidc]]\nissuer = \"http://login.example.com/tenant\"\naudiences = [\"api://cmg\"]\n",
    );
    let err = cmg_gateway::Config::from_toml(&path, &http_issuer).expect_err("http issuer");
    assert!(err.to_string().contains("https"), "{err}");
}
