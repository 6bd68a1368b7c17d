//! The management point's endpoints against a real bound server on loopback.

mod support;

use bytes::Bytes;
use futures_util::stream;
use http::StatusCode;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use support::{empty, full, header, request, sha256_hex, Body, Mp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FORWARDED: &str = "/CCM_Proxy_MutualAuth/72057594037927939/CCM_System/request";

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn echo(mp: &Mp, path: &str, data: Vec<u8>, chunked: bool) {
    let body: Body = if chunked {
        let chunks: Vec<Result<Frame<Bytes>, std::io::Error>> = data
            .chunks(100_000)
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        StreamBody::new(stream::iter(chunks)).boxed()
    } else {
        full(data.clone())
    };
    let mut req = request("CCM_POST", path, body);
    req.headers_mut()
        .insert("cmg-client-identity", "GUID:1234".parse().expect("value"));
    let (parts, got) = mp.send(req).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(got.len(), data.len());
    assert!(got == data, "echo differs");
    let sha = sha256_hex(&data);
    assert_eq!(header(&parts, "x-mp-body-sha256"), sha);
    assert_eq!(header(&parts, "x-mp-body-bytes"), data.len().to_string());
    assert_eq!(header(&parts, "x-mp-client-identity"), "GUID:1234");

    let entry = mp.journal().pop().expect("journaled");
    assert_eq!(entry.method, "CCM_POST");
    assert_eq!(entry.path, path);
    assert_eq!(entry.body_bytes, data.len() as u64);
    assert_eq!(entry.body_sha256, sha);
    assert!(entry.complete);
    assert_eq!(entry.status, 200);
    assert!(entry
        .headers
        .iter()
        .any(|(k, v)| k == "cmg-client-identity" && v == "GUID:1234"));
}

#[tokio::test]
async fn ccm_post_echoes_byte_for_byte() {
    let mp = Mp::start().await;
    echo(&mp, "/CCM_System/request", Vec::new(), false).await;
    echo(&mp, FORWARDED, pattern(1024, 7), false).await;
    echo(
        &mp,
        "/ccm_system/REQUEST",
        pattern(10 * 1024 * 1024, 9),
        true,
    )
    .await;
    assert_eq!(mp.journal().len(), 3);
    mp.stop().await;
}

#[tokio::test]
async fn sms_pol_serves_exactly_n_pattern_bytes() {
    let mp = Mp::start().await;
    for size in [0usize, 1024, 65536, 3 * 1024 * 1024 + 17] {
        let path = format!("/SMS_MP/.sms_pol?size={size}");
        let (parts, got) = mp.send(request("GET", &path, empty())).await;
        assert_eq!(parts.status, StatusCode::OK);
        assert_eq!(header(&parts, "content-length"), size.to_string());
        assert_eq!(got.len(), size);
        assert!(got
            .iter()
            .enumerate()
            .all(|(i, b)| *b == cmg_mp::policy_byte(i as u64)));
    }
    let (parts, _) = mp
        .send(request("GET", "/SMS_MP/.sms_pol?size=67108865", empty()))
        .await;
    assert_eq!(parts.status, StatusCode::BAD_REQUEST);
    mp.stop().await;
}

#[tokio::test]
async fn mplist_and_not_found() {
    let mp = Mp::start().await;
    let (parts, xml) = mp
        .send(request("GET", "/x/SMS_MP/.sms_aut?MPLIST2", empty()))
        .await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(header(&parts, "content-type"), "text/xml");
    let xml = String::from_utf8(xml.to_vec()).expect("utf8");
    assert!(
        xml.starts_with("<MPList><MP Name=\"MP\" FQDN=\"mp.contoso.test\">"),
        "{xml}"
    );
    let (parts, _) = mp
        .send(request("GET", "/SMS_MP/.sms_aut?MPCERT", empty()))
        .await;
    assert_eq!(parts.status, StatusCode::NOT_FOUND, "no cert on plain HTTP");
    let (parts, _) = mp.send(request("GET", "/nothing/here", empty())).await;
    assert_eq!(parts.status, StatusCode::NOT_FOUND);
    let entries = mp.journal();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0].query.as_deref(), Some("MPLIST2"));
    assert_eq!(entries[2].status, 404);
    mp.stop().await;
}

#[tokio::test]
async fn incoming_put_get_and_traversal() {
    let mp = Mp::start().await;
    let data = pattern(200_000, 3);
    let (parts, _) = mp
        .send(request("PUT", "/CCM_Incoming/{A1}.SMX", full(data.clone())))
        .await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(header(&parts, "x-mp-body-sha256"), sha256_hex(&data));
    let stored = std::fs::read(mp.data_dir.join("incoming/{A1}.SMX")).expect("stored");
    assert!(stored == data);
    let (parts, got) = mp
        .send(request("GET", "/ccm_incoming/{A1}.SMX", empty()))
        .await;
    assert_eq!(parts.status, StatusCode::OK);
    assert!(got == data);
    let (parts, _) = mp
        .send(request("GET", "/CCM_Incoming/absent", empty()))
        .await;
    assert_eq!(parts.status, StatusCode::NOT_FOUND);

    for bad in [
        "/CCM_Incoming/..%2Fescape",
        "/CCM_Incoming/../escape",
        "/CCM_Incoming/a%5C..%5Cescape",
        "/CCM_Incoming/..",
    ] {
        let (parts, _) = mp.send(request("PUT", bad, full("x"))).await;
        assert_eq!(parts.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert!(!mp.data_dir.join("escape").exists());
    assert_eq!(mp.journal().len(), 7);
    mp.stop().await;
}

fn bits(packet: &str, session: Option<&str>) -> http::request::Builder {
    let b = http::Request::builder()
        .method("BITS_POST")
        .uri("/CCM_Proxy_MutualAuth/72057594037927939/CCM_Incoming/{B2}.BDR")
        .header("host", "mp.contoso.test")
        .header("BITS-Packet-Type", packet);
    match session {
        Some(id) => b.header("BITS-Session-Id", id),
        None => b,
    }
}

#[tokio::test]
async fn bits_upload_reassembles_fragments() {
    let mp = Mp::start().await;
    let data = pattern(300_000, 11);
    let (parts, _) = mp
        .send(bits("Ping", None).body(empty()).expect("req"))
        .await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(header(&parts, "BITS-Packet-Type"), "Ack");

    let create = bits("Create-Session", None)
        .header("BITS-Supported-Protocols", cmg_mp::BITS_PROTOCOL)
        .body(empty())
        .expect("req");
    let (parts, _) = mp.send(create).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(header(&parts, "BITS-Protocols"), cmg_mp::BITS_PROTOCOL);
    let id = header(&parts, "BITS-Session-Id").to_owned();
    assert!(id.starts_with('{') && id.ends_with('}'), "{id}");

    let total = data.len();
    let split = 123_457;
    for (a, b) in [(0, split - 1), (split, total - 1)] {
        let frag = bits("Fragment", Some(&id))
            .header("Content-Range", format!("bytes {a}-{b}/{total}"))
            .body(full(data[a..=b].to_vec()))
            .expect("req");
        let (parts, _) = mp.send(frag).await;
        assert_eq!(parts.status, StatusCode::OK);
        assert_eq!(
            header(&parts, "BITS-Received-Content-Range"),
            (b + 1).to_string()
        );
    }
    // A fragment beyond what was received, and one for an unknown session, are refused.
    let gap = bits("Fragment", Some(&id))
        .header(
            "Content-Range",
            format!("bytes {}-{}/{}", total + 5, total + 6, total + 7),
        )
        .body(full("ab"))
        .expect("req");
    let (parts, _) = mp.send(gap).await;
    assert_eq!(parts.status, StatusCode::BAD_REQUEST);
    assert!(parts.headers.contains_key("BITS-Error-Code"));
    let unknown = bits("Fragment", Some("{00000000-0000-4000-8000-000000000000}"))
        .header("Content-Range", "bytes 0-1/2")
        .body(full("ab"))
        .expect("req");
    let (parts, _) = mp.send(unknown).await;
    assert_eq!(parts.status, StatusCode::BAD_REQUEST);
    assert!(parts.headers.contains_key("BITS-Error-Code"));

    let (parts, _) = mp
        .send(bits("Close-Session", Some(&id)).body(empty()).expect("req"))
        .await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(header(&parts, "BITS-Packet-Type"), "Ack");
    let stored = std::fs::read(mp.data_dir.join("incoming/{B2}.BDR")).expect("stored");
    assert!(stored == data, "reassembled file differs");
    let entries = mp.journal();
    assert_eq!(entries.len(), 7);
    assert_eq!(entries[2].body_bytes, split as u64);
    assert_eq!(entries[2].body_sha256, sha256_hex(&data[..split]));
    mp.stop().await;
}

#[tokio::test]
async fn cut_off_body_is_journaled_incomplete() {
    let mp = Mp::start().await;
    let mut tcp = tokio::net::TcpStream::connect(mp.addr)
        .await
        .expect("connect");
    tcp.write_all(
        b"CCM_POST /CCM_System/request HTTP/1.1\r\nhost: mp\r\ncontent-length: 1000\r\n\r\n0123456789",
    )
    .await
    .expect("write");
    tcp.shutdown().await.expect("half-close");
    let mut rest = Vec::new();
    let _ = tcp.read_to_end(&mut rest).await;
    drop(tcp);
    let entries = mp.journal_eventually(1).await;
    let entry = &entries[0];
    assert!(!entry.complete, "{entry:?}");
    assert_eq!(entry.body_bytes, 10);
    assert_eq!(entry.body_sha256, sha256_hex(b"0123456789"));
    assert_ne!(entry.status, 200);
    mp.stop().await;
}
