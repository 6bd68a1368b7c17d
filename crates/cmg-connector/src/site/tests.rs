//! The site client against a loopback HTTPS server standing in for the site (rcgen
//! certificates; the server requires the client certificate): bounded bundle bodies,
//! announced or streamed, and answers that do not add up.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::{SiteClient, SiteError, VERSION_HEADER};
use crate::config::{CertKey, SiteLink};
use cmg_token::bundle::MAX_BUNDLE_BYTES;

type Body = BoxBody<Bytes, std::convert::Infallible>;

/// A JWS-shaped text whose payload says `{"version":5}`, padded to `len` bytes.
fn fake_bundle(len: usize) -> Vec<u8> {
    // base64url of {"version":5}
    let mut s = String::from("e30.eyJ2ZXJzaW9uIjo1fQ.");
    while s.len() < len {
        s.push('A');
    }
    s.into_bytes()
}

/// A body of unknown length (sent chunked).
struct Chunked(VecDeque<Bytes>);

impl hyper::body::Body for Chunked {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

/// What the stand-in answers to every bundle poll.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Announced(usize),
    Chunked(usize),
    WrongHeader,
    Refused,
}

fn respond(answer: Answer) -> Response<Body> {
    let (body, header): (Body, u64) = match answer {
        Answer::Announced(n) => (Full::new(Bytes::from(fake_bundle(n))).boxed(), 5),
        Answer::Chunked(n) => {
            let chunks = fake_bundle(n)
                .chunks(32 * 1024)
                .map(Bytes::copy_from_slice)
                .collect();
            (Chunked(chunks).boxed(), 5)
        }
        Answer::WrongHeader => (Full::new(Bytes::from(fake_bundle(100))).boxed(), 6),
        Answer::Refused => {
            let mut r = Response::new(
                Full::new(Bytes::from_static(b"{\"error\":\"wrong_gateway\"}")).boxed(),
            );
            *r.status_mut() = StatusCode::FORBIDDEN;
            return r;
        }
    };
    let mut r = Response::new(body);
    r.headers_mut()
        .insert(VERSION_HEADER, http::HeaderValue::from(header));
    r
}

/// Starts the stand-in; returns the link to it (files in `dir`).
async fn stand_in(dir: &std::path::Path, answer: Answer) -> SiteLink {
    let ca = CertifiedIssuer::self_signed(
        {
            let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p
        },
        KeyPair::generate().expect("key"),
    )
    .expect("ca");
    let issue = |san: SanType| {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.subject_alt_names = vec![san];
        let key = KeyPair::generate().expect("key");
        let cert = p.signed_by(&key, &ca).expect("cert");
        (cert, key)
    };
    let (server, server_key) = issue(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
    let (client, client_key) = issue(SanType::DnsName("cp1.test".try_into().expect("name")));
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write");
    std::fs::write(dir.join("cp.pem"), client.pem()).expect("write");
    cmg_core::private_file::write(&dir.join("cp.key"), client_key.serialize_pem().as_bytes())
        .expect("write");

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem().as_bytes()).expect("der"))
        .expect("root");
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("verifier");
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![server.der().clone()],
            PrivateKeyDer::from_pem_slice(server_key.serialize_pem().as_bytes()).expect("key"),
        )
        .expect("server config");
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(move |_req: Request<Incoming>| async move {
                    Ok::<_, std::convert::Infallible>(respond(answer))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    SiteLink {
        url: format!("https://{addr}").parse().expect("url"),
        fallback_urls: Vec::new(),
        gateway: "gw1".into(),
        ca: vec![dir.join("ca.pem")],
        client: CertKey {
            cert: dir.join("cp.pem"),
            key: dir.join("cp.key"),
        },
        wait: Duration::from_secs(1),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(10),
        report_interval: Duration::from_secs(60),
        report_debounce: Duration::ZERO,
    }
}

async fn poll(answer: Answer) -> Result<Option<u64>, SiteError> {
    let dir = tempfile::tempdir().expect("dir");
    let link = stand_in(dir.path(), answer).await;
    let client = SiteClient::new(&link, None).expect("client");
    client
        .bundle(0, link.wait)
        .await
        .map(|b| b.map(|b| b.version))
}

#[tokio::test]
async fn bundle_bodies_are_bounded_and_checked() {
    assert!(matches!(poll(Answer::Announced(1000)).await, Ok(Some(5))));
    assert!(matches!(
        poll(Answer::Chunked(MAX_BUNDLE_BYTES)).await,
        Ok(Some(5))
    ));
    for too_big in [
        Answer::Announced(MAX_BUNDLE_BYTES + 1),
        Answer::Chunked(MAX_BUNDLE_BYTES + 1),
    ] {
        let r = poll(too_big).await;
        assert!(
            matches!(
                r,
                Err(SiteError::TooLarge {
                    limit: MAX_BUNDLE_BYTES
                })
            ),
            "{too_big:?}: {r:?}"
        );
    }
    let r = poll(Answer::WrongHeader).await;
    assert!(matches!(r, Err(SiteError::NotABundle(_))), "{r:?}");
    match poll(Answer::Refused).await {
        Err(SiteError::Status { status, body }) => {
            assert_eq!(status, StatusCode::FORBIDDEN);
            assert!(body.contains("wrong_gateway"), "{body}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_site_server_fails_over_to_the_next() {
    let dir = tempfile::tempdir().expect("dir");
    let mut link = stand_in(dir.path(), Answer::Announced(1000)).await;
    // The first server is down (a port nothing listens on); the stand-in is the second.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let up = std::mem::replace(
        &mut link.url,
        format!("https://{dead}").parse().expect("url"),
    );
    link.fallback_urls = vec![up];
    let client = SiteClient::new(&link, None).expect("client");
    let got = client
        .bundle(0, link.wait)
        .await
        .expect("the second answers");
    assert_eq!(got.map(|b| b.version), Some(5));
    // The one that answered is used from now on.
    assert_eq!(client.current.load(std::sync::atomic::Ordering::Relaxed), 1);
    let again = client.bundle(0, link.wait).await.expect("again");
    assert_eq!(again.map(|b| b.version), Some(5));
}
