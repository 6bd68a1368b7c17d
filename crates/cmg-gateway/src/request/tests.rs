//! The request path in memory: admission decisions (filter, authentication, limits,
//! the upstream head) on requests with in-memory bodies, and the responses refusals
//! become. No socket, no channel: what would be forwarded is inspected instead.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};

use super::access::AccessRecord;
use super::outcome::Outcome;
use super::respond::error_response;
use super::{admit, carry_out};
use crate::error::GatewayError;
use crate::testing::{self, connection, published, site_tokens, TestGateway, SERVICE};

const MUTUAL: &str = "/CCM_Proxy_MutualAuth/72057594037927939/CCM_System";
const SERVER: &str = "/CCM_Proxy_ServerAuth/72057594037927939/ccm_system_tokenauth";

fn gateway() -> TestGateway {
    testing::gateway(&format!(
        "{}{}{}",
        site_tokens(),
        published(MUTUAL, 1024),
        published(SERVER, 1024)
    ))
}

fn request(method: Method, path: &str, body: &'static str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(format!("https://{SERVICE}{path}"))
        .version(http::Version::HTTP_2)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("request")
}

/// A POST of the mutual-auth URL whose body is one streamed frame (or error), with no
/// declared length.
type Frames = futures_util::stream::Iter<
    std::array::IntoIter<Result<http_body::Frame<Bytes>, std::io::Error>, 1>,
>;

fn streamed(first: Result<http_body::Frame<Bytes>, std::io::Error>) -> Request<StreamBody<Frames>> {
    Request::builder()
        .method(Method::POST)
        .uri(format!("https://{SERVICE}{MUTUAL}"))
        .body(StreamBody::new(futures_util::stream::iter([first])))
        .expect("request")
}

async fn decide<B>(t: &TestGateway, certificate: bool, req: Request<B>) -> Outcome
where
    B: http_body::Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<crate::body::BoxError>,
{
    let conn = connection(certificate);
    let mut record = AccessRecord::new(req.method().clone(), req.uri().clone(), conn.clone());
    admit(&t.gw, &conn, req, &mut record).await
}

#[track_caller]
fn refused(outcome: Outcome) -> GatewayError {
    match outcome {
        Outcome::Refuse(e) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_certificate_client_is_forwarded_with_a_clean_upstream_head() {
    let t = gateway();
    let mut req = request(Method::POST, MUTUAL, "hello");
    let h = req.headers_mut();
    h.insert("cmg-client-identity", "forged".parse().expect("value"));
    h.insert("x-forwarded-for", "203.0.113.9".parse().expect("value"));
    h.insert(header::CONNECTION, "keep-alive".parse().expect("value"));
    let Outcome::Forward(f) = decide(&t, true, req).await else {
        panic!("not forwarded");
    };
    assert_eq!(f.site.as_str(), "DEM");
    assert_eq!(f.limit, 1024);
    let up = &f.request;
    assert_eq!(
        up.uri().to_string(),
        format!("https://{SERVICE}{MUTUAL}"),
        "absolute target"
    );
    assert_eq!(up.version(), http::Version::HTTP_2);
    let h = up.headers();
    assert_eq!(
        h["cmg-client-identity"],
        "subject=\"CN=device1\"; sha256=00"
    );
    assert_eq!(h["cmg-client-auth"], "certificate");
    assert_eq!(
        h["x-forwarded-for"], "192.0.2.7",
        "the peer, never the client's"
    );
    assert!(h.get(header::CONNECTION).is_none(), "hop-by-hop removed");
    assert_eq!(h["cmg-request-id"].len(), 16);
    assert!(
        f.replay.is_some(),
        "a body whole in its first frame can be replayed"
    );
    let body = f
        .request
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(&body[..], b"hello");
}

#[tokio::test]
async fn mutual_auth_urls_need_a_certificate() {
    let t = gateway();
    let e = refused(decide(&t, false, request(Method::GET, MUTUAL, "")).await);
    assert!(
        matches!(e, GatewayError::Forbidden("client_certificate_required")),
        "{e:?}"
    );
    assert_eq!(e.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn server_auth_urls_need_a_valid_bearer_token() {
    let t = gateway();
    // A certificate never stands in for a token.
    let e = refused(decide(&t, true, request(Method::GET, SERVER, "")).await);
    assert!(
        matches!(e, GatewayError::Unauthorized("token_required")),
        "{e:?}"
    );

    let mut req = request(Method::GET, SERVER, "");
    req.headers_mut().insert(
        header::AUTHORIZATION,
        "Bearer not.a.token".parse().expect("value"),
    );
    let e = refused(decide(&t, false, req).await);
    assert_eq!(e.status(), StatusCode::UNAUTHORIZED);

    let mut req = request(Method::GET, SERVER, "");
    req.headers_mut()
        .append(header::AUTHORIZATION, "Bearer a".parse().expect("value"));
    req.headers_mut()
        .append(header::AUTHORIZATION, "Bearer b".parse().expect("value"));
    let e = refused(decide(&t, false, req).await);
    assert!(
        matches!(e, GatewayError::BadRequest("duplicate_authorization")),
        "{e:?}"
    );

    let guid = testing::SITE_GUID.parse().expect("guid");
    let key = std::fs::read(testing::token_fixture("site-key-1.pem")).expect("key");
    let signer = cmg_token::SiteSigner::from_pem(&key, &guid).expect("signer");
    let bulk = signer
        .issue_bulk(cmg_token::site::BULK_DEFAULT_LIFETIME)
        .expect("issue");
    let mut req = request(Method::GET, SERVER, "");
    req.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {}", bulk.token).parse().expect("value"),
    );
    let Outcome::Forward(f) = decide(&t, false, req).await else {
        panic!("a valid token is forwarded");
    };
    assert_eq!(f.request.headers()["cmg-client-auth"], "token");
    assert!(
        f.request.headers().get(header::AUTHORIZATION).is_some(),
        "the role sees the token too"
    );
}

#[tokio::test]
async fn the_filter_refuses_before_authentication() {
    let t = gateway();
    let cases: &[(Method, &str, &str)] = &[
        (
            Method::GET,
            "/CCM_Proxy_MutualAuth/1/not_published",
            "url_not_published",
        ),
        (
            Method::GET,
            "/CCM_Proxy_MutualAuth/72057594037927939/CCM_System/../../etc",
            "dot_segment",
        ),
        (
            Method::GET,
            "/CCM_Proxy_MutualAuth/72057594037927939/CCM_System%2f..",
            "encoded_separator",
        ),
        (Method::CONNECT, MUTUAL, "method_not_allowed"),
    ];
    for (method, path, code) in cases {
        let e = refused(decide(&t, true, request(method.clone(), path, "")).await);
        assert!(
            e.code().contains(code) || *code == e.code(),
            "{path}: {} ({e})",
            e.code()
        );
        assert!(e.status().is_client_error(), "{path}");
    }
    let mut req = request(Method::GET, MUTUAL, "");
    *req.uri_mut() = format!("https://other.example.test{MUTUAL}")
        .parse()
        .expect("uri");
    let e = refused(decide(&t, true, req).await);
    assert!(
        matches!(e, GatewayError::BadRequest("host_mismatch")),
        "{e:?}"
    );
}

#[tokio::test]
async fn the_metadata_probe_is_answered_locally_without_authentication() {
    let t = gateway();
    let outcome = decide(
        &t,
        false,
        request(Method::GET, "/ccm_proxy_mutualauth/servicemetadata", ""),
    )
    .await;
    assert!(
        matches!(
            outcome,
            Outcome::Metadata(cmg_proto::mapping::AuthKind::MutualAuth)
        ),
        "{outcome:?}"
    );
    let conn = connection(false);
    let record = AccessRecord::new(Method::GET, "/".parse().expect("uri"), conn);
    let resp = carry_out(&t.gw, outcome, record).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let body = String::from_utf8(body.to_vec()).expect("utf-8");
    assert!(
        body.contains(&format!("<ServiceName>{SERVICE}</ServiceName>")),
        "{body}"
    );
    assert!(body.contains("<Instance>gw1</Instance>"), "{body}");
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_before_forwarding() {
    let t = gateway();
    let mut req = request(Method::POST, MUTUAL, "");
    req.headers_mut()
        .insert(header::CONTENT_LENGTH, "1025".parse().expect("value"));
    let e = refused(decide(&t, true, req).await);
    assert!(matches!(e, GatewayError::TooLarge { limit: 1024 }), "{e:?}");

    for (values, code) in [
        (&["12", "13"][..], "conflicting_content_length"),
        (&["-1"][..], "bad_content_length"),
    ] {
        let mut req = request(Method::POST, MUTUAL, "");
        for v in values {
            req.headers_mut()
                .append(header::CONTENT_LENGTH, v.parse().expect("value"));
        }
        let e = refused(decide(&t, true, req).await);
        assert_eq!(e.code(), code);
    }

    // No declared length: the first frame already passes the limit.
    let big = Bytes::from(vec![b'x'; 2048]);
    let req = streamed(Ok(http_body::Frame::data(big)));
    let e = refused(decide(&t, true, req).await);
    assert!(matches!(e, GatewayError::TooLarge { limit: 1024 }), "{e:?}");
}

#[tokio::test]
async fn a_body_broken_in_its_first_frame_never_reaches_a_channel() {
    let t = gateway();
    let req = streamed(Err(std::io::Error::other("bad chunk size")));
    let e = refused(decide(&t, true, req).await);
    assert!(
        matches!(e, GatewayError::BadRequest("bad_request_body")),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_stopped_service_refuses_everything() {
    let t = gateway();
    t.gw.swap_settings(crate::state::SettingsSwap {
        published: cmg_proto::mapping::PrefixTable::new(Vec::<(
            cmg_proto::mapping::ExternalPrefix,
            Arc<crate::state::Endpoint>,
        )>::new())
        .expect("table"),
        content: None,
        stopped: Some("critical traffic alert".into()),
    });
    let e = refused(decide(&t, true, request(Method::GET, MUTUAL, "")).await);
    assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(e.code(), "service_stopped");
}

#[tokio::test]
async fn content_is_authenticated_then_refused_while_off() {
    let t = gateway();
    let path = "/CCM_Proxy_MutualAuth/CMG_Content/pkg/file.bin";
    let e = refused(decide(&t, false, request(Method::GET, path, "")).await);
    assert!(
        matches!(e, GatewayError::Forbidden("client_certificate_required")),
        "{e:?}"
    );
    let e = refused(decide(&t, true, request(Method::GET, path, "")).await);
    assert!(matches!(e, GatewayError::ContentDisabled), "{e:?}");
}

#[tokio::test]
async fn refusals_become_short_answers_with_the_right_headers() {
    let conn = connection(false);
    let record = || AccessRecord::new(Method::GET, "/".parse().expect("uri"), conn.clone());
    let resp = error_response(&GatewayError::Unauthorized("token_required"), record());
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.headers()[header::WWW_AUTHENTICATE],
        "Bearer realm=\"cmg\""
    );
    let resp = error_response(&GatewayError::Unauthorized("token_expired"), record());
    assert!(resp.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .expect("ascii")
        .contains("error_description=\"token_expired\""));
    let resp = error_response(&GatewayError::NoChannel { site: "DEM".into() }, record());
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()[header::RETRY_AFTER], "5", "safe to retry");
    let resp = error_response(&GatewayError::BadRequest("bad_host"), record());
    assert_eq!(resp.headers()[header::CONNECTION], "close");
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&body[..], b"400 Bad Request: bad_host\n");
}
