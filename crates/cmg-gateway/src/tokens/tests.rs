//! Unit tests of the token checker: bearer parsing, identities, the block list and
//! settings updates (a token blocked at the site is refused from the next request
//! on, cache or not).

use super::*;

#[test]
fn bearer_header_parsing() {
    let v = |s: &str| HeaderValue::from_str(s).expect("header");
    assert!(matches!(bearer(None), Err(TokenRefusal::Missing)));
    assert!(matches!(
        bearer(Some(&v("Basic abc"))),
        Err(TokenRefusal::Missing)
    ));
    assert_eq!(bearer(Some(&v("bearer a.b.c"))).ok(), Some("a.b.c"));
    assert_eq!(bearer(Some(&v("Bearer  a.b.c "))).ok(), Some("a.b.c"));
    assert!(matches!(
        bearer(Some(&v("Bearer "))),
        Err(TokenRefusal::Invalid(_))
    ));
}

#[test]
fn sanitize_keeps_header_values_valid() {
    let s = sanitize("a\"b\\c\nd");
    assert_eq!(s, "a'b'cd");
    assert!(HeaderValue::from_str(&s).is_ok());
}

mod blocking {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use cmg_token::site::BULK_DEFAULT_LIFETIME;
    use cmg_token::{SiteGuid, SiteSigner};
    use http::HeaderValue;

    use super::super::{ConnToken, SiteTokens, TokenAuth, TokenRefusal, TokenSettings};

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
}
