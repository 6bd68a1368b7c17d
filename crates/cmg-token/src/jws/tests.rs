use super::*;
use serde_json::json;

fn token_with_header(header: serde_json::Value) -> String {
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let p = URL_SAFE_NO_PAD.encode(json!({"exp": 1}).to_string());
    format!("{h}.{p}.c2ln")
}

fn header_code(header: serde_json::Value) -> &'static str {
    match parse_header(
        &token_with_header(header),
        &[Algorithm::RS256, Algorithm::ES256],
    ) {
        Ok(h) => panic!("accepted {h:?}"),
        Err(e) => e.code(),
    }
}

#[test]
fn only_rs256_and_es256_pass_the_header_check() {
    for alg in [
        "none", "None", "HS256", "HS512", "RS384", "PS256", "ES384", "EdDSA", "",
    ] {
        assert_eq!(header_code(json!({"alg": alg})), "unsupported_alg", "{alg}");
    }
    let ok = parse_header(
        &token_with_header(json!({"alg": "ES256", "kid": "k1"})),
        &[Algorithm::RS256, Algorithm::ES256],
    )
    .expect("ES256");
    assert_eq!(ok.alg, Algorithm::ES256);
    assert_eq!(ok.kid.as_deref(), Some("k1"));
    // Allowed by the header check but not by this caller (site tokens are RS256 only).
    let err = parse_header(
        &token_with_header(json!({"alg": "ES256"})),
        &[Algorithm::RS256],
    )
    .expect_err("ES256 for site");
    assert_eq!(err.code(), "unsupported_alg");
}

#[test]
fn malformed_headers() {
    assert_eq!(header_code(json!({"typ": "JWT"})), "malformed");
    assert_eq!(header_code(json!({"alg": 256})), "malformed");
    assert_eq!(
        header_code(json!({"alg": "RS256", "crit": ["b64"]})),
        "malformed"
    );
    assert_eq!(header_code(json!({"alg": "RS256", "kid": 7})), "malformed");
    let allowed = &[Algorithm::RS256];
    for bad in ["", "a.b", "a.b.c.d", "!!!.e30.c2ln", "e30.e30.c2ln"] {
        let err = parse_header(bad, allowed).expect_err(bad);
        assert!(matches!(err, TokenError::Malformed(_)), "{bad}: {err}");
    }
    let huge = format!("{}.e30.c2ln", "A".repeat(MAX_TOKEN_BYTES));
    assert_eq!(
        parse_header(&huge, allowed).expect_err("huge").code(),
        "malformed"
    );
}

#[test]
fn unsupported_alg_is_sanitised() {
    let err = TokenError::unsupported_alg("HS256\u{1b}[31m<script>very-long-algorithm-name");
    let TokenError::UnsupportedAlg { alg } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(alg, "HS25631mscriptve");
}

#[test]
fn times_with_skew() {
    let claims = |v: serde_json::Value| v.as_object().cloned().expect("object");
    let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
    let skew = Duration::from_secs(60);
    let c = claims(json!({"exp": 1000, "nbf": 500}));
    assert_eq!(check_times(&c, at(1000), skew).expect("at exp"), at(1000));
    assert!(check_times(&c, at(1060), skew).is_ok());
    assert_eq!(
        check_times(&c, at(1061), skew).expect_err("late").code(),
        "token_expired"
    );
    assert!(check_times(&c, at(440), skew).is_ok());
    assert_eq!(
        check_times(&c, at(439), skew).expect_err("early").code(),
        "token_not_yet_valid"
    );
    assert_eq!(
        check_times(&claims(json!({"nbf": 1})), at(2), skew)
            .expect_err("no exp")
            .code(),
        "malformed"
    );
    assert_eq!(
        check_times(&claims(json!({"exp": "soon"})), at(2), skew)
            .expect_err("string exp")
            .code(),
        "malformed"
    );
    assert!(check_times(&claims(json!({"exp": 1000.5})), at(900), skew).is_ok());
    let issued_later = claims(json!({"exp": 1000, "iat": 500}));
    assert!(check_times(&issued_later, at(440), skew).is_ok());
    assert_eq!(
        check_times(&issued_later, at(439), skew)
            .expect_err("issued in the future")
            .code(),
        "token_not_yet_valid"
    );
}

#[test]
fn audience_string_or_array() {
    let accepted = vec!["api://a".to_owned(), "api://b".to_owned()];
    let c = |v: serde_json::Value| v.as_object().cloned().expect("object");
    assert_eq!(
        matched_audience(&c(json!({"aud": "api://b"})), &accepted).expect("string"),
        "api://b"
    );
    assert_eq!(
        matched_audience(&c(json!({"aud": ["x", "api://a"]})), &accepted).expect("array"),
        "api://a"
    );
    for bad in [
        json!({"aud": "x"}),
        json!({"aud": ["x"]}),
        json!({}),
        json!({"aud": 1}),
    ] {
        assert_eq!(
            matched_audience(&c(bad), &accepted)
                .expect_err("bad")
                .code(),
            "bad_audience"
        );
    }
}
