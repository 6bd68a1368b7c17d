//! `HttpsClient` against a tiny local rustls + hyper server with a freshly minted PKI.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use cmg_client::{collect_body, ClientTls, HttpsClient};
use http::{Request, Response, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

const SERVER_NAME: &str = "mp.cmg.test";

struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    server: (PathBuf, PathBuf),
    client: (PathBuf, PathBuf),
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    // Owner only: key files others may read are refused.
    cmg_core::private_file::write(&p, text.as_bytes()).expect("write pem");
    p
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "cmg test CA");
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("ca");

    let mint = |san: &str, eku: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec![san.to_owned()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, san);
        params.extended_key_usages = vec![eku];
        let cert = params.signed_by(&key, &ca).expect("sign");
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = mint(SERVER_NAME, ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) = mint("client1", ExtendedKeyUsagePurpose::ClientAuth);
    let d = dir.path().to_owned();
    Pki {
        ca: write(&d, "ca.pem", &ca.pem()),
        server: (
            write(&d, "server.pem", &server_cert),
            write(&d, "server.key", &server_key),
        ),
        client: (
            write(&d, "client.pem", &client_cert),
            write(&d, "client.key", &client_key),
        ),
        _dir: dir,
    }
}

struct Server {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

/// Serves h2 and http/1.1 (by ALPN); answers with `version host client-cert` and, for a
/// POST, the request body after a newline.
async fn serve(pki: &Pki, require_client_cert: bool) -> Server {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pki.server.0)
        .expect("certs")
        .collect::<Result<_, _>>()
        .expect("certs");
    let key = PrivateKeyDer::from_pem_file(&pki.server.1).expect("key");
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions");
    let builder = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(&pki.ca).expect("ca"))
            .expect("root");
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("verifier");
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_single_cert(certs, key).expect("server config");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let has_cert = tls.get_ref().1.peer_certificates().is_some();
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| async move {
                    let host = req
                        .uri()
                        .authority()
                        .map(|a| a.to_string())
                        .or_else(|| {
                            req.headers()
                                .get(http::header::HOST)
                                .and_then(|h| h.to_str().ok())
                                .map(str::to_owned)
                        })
                        .unwrap_or_default();
                    let mut text = format!("{:?} {host} {has_cert}", req.version());
                    if req.method() == http::Method::POST {
                        let body = req.into_body().collect().await.map(|b| b.to_bytes());
                        text.push('\n');
                        text.push_str(&String::from_utf8_lossy(&body.unwrap_or_default()));
                    }
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    Server { addr, accepted }
}

fn client(pki: &Pki, addr: SocketAddr, http2: bool, with_identity: bool) -> HttpsClient {
    let tls = ClientTls {
        ca: vec![pki.ca.clone()],
        identity: with_identity.then(|| pki.client.clone()),
    };
    HttpsClient::new(&tls, addr, SERVER_NAME, http2).expect("client")
}

async fn text(resp: Response<Incoming>) -> String {
    String::from_utf8(collect_body(resp).await.expect("body").to_vec()).expect("utf8")
}

#[tokio::test]
async fn http1_keeps_the_connection_alive() {
    let pki = pki();
    let server = serve(&pki, false).await;
    let c = client(&pki, server.addr, false, false);
    for _ in 0..3 {
        let resp = c.get("/ping?x=1").await.expect("get");
        assert_eq!(resp.version(), Version::HTTP_11);
        assert_eq!(text(resp).await, format!("HTTP/1.1 {SERVER_NAME} false"));
    }
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn http2_multiplexes_and_streams_bodies() {
    let pki = pki();
    let server = serve(&pki, false).await;
    let c = client(&pki, server.addr, true, false);
    let resp = c.get("/").await.expect("get");
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(text(resp).await, format!("HTTP/2.0 {SERVER_NAME} false"));

    let posts = (0..8).map(|i| {
        let c = c.clone();
        async move {
            let req = Request::post("/echo")
                .body(Full::new(Bytes::from(format!("body {i}"))))
                .expect("request");
            text(c.request(req).await.expect("post")).await
        }
    });
    let bodies = futures_util::future::join_all(posts).await;
    for (i, body) in bodies.iter().enumerate() {
        assert_eq!(body, &format!("HTTP/2.0 {SERVER_NAME} false\nbody {i}"));
    }
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn client_certificate_is_presented_when_configured() {
    let pki = pki();
    let server = serve(&pki, true).await;
    for http2 in [false, true] {
        let c = client(&pki, server.addr, http2, true);
        let resp = c.get("/").await.expect("get with identity");
        assert!(text(resp).await.ends_with(" true"));

        let anonymous = client(&pki, server.addr, http2, false);
        let err = anonymous
            .get("/")
            .await
            .expect_err("server requires a certificate");
        assert!(matches!(err, cmg_client::ClientError::Request(_)), "{err}");
    }
}

#[tokio::test]
async fn wrong_server_name_fails_the_handshake() {
    let pki = pki();
    let server = serve(&pki, false).await;
    let tls = ClientTls {
        ca: vec![pki.ca.clone()],
        identity: None,
    };
    let c = HttpsClient::new(&tls, server.addr, "other.cmg.test", false).expect("client");
    c.get("/")
        .await
        .expect_err("certificate does not name other.cmg.test");
    assert!(HttpsClient::new(&tls, server.addr, "not a name", false).is_err());
}
