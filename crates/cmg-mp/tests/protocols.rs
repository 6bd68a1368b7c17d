//! HTTPS (h1 and h2 by ALPN), h2c, and shutdown with an idle keep-alive connection.

mod support;

use bytes::Bytes;
use cmg_client::{collect_body, ClientTls, HttpsClient};
use cmg_mp::TlsFiles;
use http::{StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{full, header, request, sha256_hex, Mp};

#[tokio::test]
async fn https_serves_h1_and_h2_by_alpn() {
    let pki = tempfile::tempdir().expect("tempdir");
    let ck = rcgen::generate_simple_self_signed(vec!["mp.contoso.test".to_owned()]).expect("cert");
    let (cert, key) = (pki.path().join("mp.pem"), pki.path().join("mp.key"));
    std::fs::write(&cert, ck.cert.pem()).expect("write cert");
    cmg_core::private_file::write(&key, ck.signing_key.serialize_pem().as_bytes())
        .expect("write key");
    let mp = Mp::start_with(|c| {
        c.tls = Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        })
    })
    .await;
    let tls = ClientTls {
        ca: vec![cert.clone()],
        identity: None,
    };
    let data = Bytes::from(vec![0x5a; 300_000]);
    for (http2, version) in [(false, Version::HTTP_11), (true, Version::HTTP_2)] {
        let client = HttpsClient::new(&tls, mp.addr, "mp.contoso.test", http2).expect("client");
        let req = http::Request::builder()
            .method("CCM_POST")
            .uri("/CCM_Proxy_MutualAuth/72057594037927939/CCM_System/request")
            .body(Full::new(data.clone()))
            .expect("req");
        let resp = client.request(req).await.expect("request");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.version(), version);
        let sha = resp.headers()["x-mp-body-sha256"]
            .to_str()
            .expect("hex")
            .to_owned();
        assert_eq!(sha, sha256_hex(&data));
        assert_eq!(collect_body(resp).await.expect("body"), data);

        let resp = client.get("/SMS_MP/.sms_aut?MPCERT").await.expect("mpcert");
        assert_eq!(resp.status(), StatusCode::OK);
        let hex = collect_body(resp).await.expect("body");
        assert_eq!(hex, hex::encode_upper(ck.cert.der()).as_bytes());
    }
    assert_eq!(mp.journal().len(), 4);
    mp.stop().await;
}

#[tokio::test]
async fn h2c_echo() {
    let mp = Mp::start().await;
    let stream = tokio::net::TcpStream::connect(mp.addr)
        .await
        .expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2c handshake");
    tokio::spawn(conn);
    let data = vec![7u8; 2 * 1024 * 1024];
    let req = http::Request::builder()
        .method("CCM_POST")
        .uri("http://mp.contoso.test/CCM_System/request")
        .body(full(data.clone()))
        .expect("req");
    let resp = sender.send_request(req).await.expect("send");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), Version::HTTP_2);
    let got = resp.into_body().collect().await.expect("body").to_bytes();
    assert!(got == data);
    let entry = mp.journal().pop().expect("journaled");
    assert!(entry.complete);
    assert_eq!(entry.body_bytes, data.len() as u64);
    // Large echoes spill to tmp/, and nothing is left there afterwards.
    let left = std::fs::read_dir(mp.data_dir.join("tmp"))
        .expect("tmp")
        .count();
    assert_eq!(left, 0);
    mp.stop().await;
}

#[tokio::test]
async fn idle_keep_alive_connection_does_not_hold_shutdown() {
    let mp = Mp::start().await;
    let stream = tokio::net::TcpStream::connect(mp.addr)
        .await
        .expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    let conn = tokio::spawn(conn);
    let resp = sender
        .send_request(request(
            "GET",
            "/SMS_MP/.sms_pol?size=1024",
            support::empty(),
        ))
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::OK);
    let (parts, body) = resp.into_parts();
    assert_eq!(body.collect().await.expect("body").to_bytes().len(), 1024);
    assert_eq!(header(&parts, "content-length"), "1024");
    // The connection stays open (keep-alive) while the server stops.
    mp.stop().await;
    conn.await
        .expect("join")
        .expect("server closed the idle connection cleanly");
}
