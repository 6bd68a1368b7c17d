//! HTTP/2 abuse against the gateway's client listener: rapid reset, CONTINUATION flood,
//! HPACK bomb, SETTINGS and PING floods whose answers are never read, more streams than
//! allowed, WINDOW_UPDATE overflow, DATA beyond the window, and a reader that never
//! opens its window on many streams. Each attack must end in GOAWAY or a close (or, where
//! the attacker stops reading, in the gateway no longer reading it) within bounded time,
//! keep the process's memory bounded, forward nothing it should not, and leave an honest
//! client on another connection served.
//!
//! The cluster runs in this process, so "the process's memory" is the test process's
//! resident set: the gateway, the connection points and the management point together.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cmg_client::collect_body;
use cmg_e2e::h2raw::{self, flag, kind, setting, Reading, Role, Seen};
use cmg_e2e::memory::{self, rss_kib};
use cmg_e2e::{ccm_post, journal, raw, spec, system_request, tag, tagged, Cert, TestCluster};
use cmg_test_support::{eventually, patience};
use http::StatusCode;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::client::TlsStream;

/// HTTP/2 error codes the gateway may end an abusive connection with.
const PROTOCOL_ERROR: u32 = 0x1;
const FLOW_CONTROL_ERROR: u32 = 0x3;
const COMPRESSION_ERROR: u32 = 0x9;
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// How much the process's resident set may grow during one attack. The largest honest
/// cost is the zero-window reader's: per stream the gateway holds at most one channel
/// stream window (256 KiB) and the connection point one role read buffer (64 KiB), so
/// 128 streams hold 40 MiB; the rest is the allocator's slack.
const MEMORY_BOUND_KIB: u64 = 96 * 1024;

type Conn = TlsStream<TcpStream>;

fn authority() -> String {
    spec::SERVICE_NAME.to_string()
}

/// A raw HTTP/2 connection to gateway 0 with the valid client certificate.
async fn attacker(tc: &TestCluster, read: bool) -> (h2raw::Frames<Conn>, watch::Receiver<Seen>) {
    let tls = raw::connect_alpn(tc, 0, Cert::Valid, b"h2")
        .await
        .expect("attacker connects");
    let reading = if read { Reading::Count } else { Reading::Never };
    h2raw::start(tls, Role::Client, reading)
        .await
        .expect("preface")
}

/// Waits (bounded) until what the gateway sent satisfies `done`; returns it.
async fn wait_seen(
    seen: &mut watch::Receiver<Seen>,
    what: &str,
    done: impl FnMut(&Seen) -> bool,
) -> Seen {
    let wait = patience(Duration::from_secs(10));
    let result = tokio::time::timeout(wait, seen.wait_for(done))
        .await
        .map(|r| r.map(|s| s.clone()));
    match result {
        Ok(Ok(s)) => s,
        // The reader ended: the last counts are final.
        Ok(Err(_)) => seen.borrow().clone(),
        Err(_) => panic!(
            "{what}: nothing decisive within {wait:?}: {:?}",
            *seen.borrow()
        ),
    }
}

/// Waits (bounded) until the gateway sent GOAWAY or closed.
async fn ends(seen: &mut watch::Receiver<Seen>, what: &str) -> Seen {
    wait_seen(seen, what, |s| s.goaway.is_some() || s.closed).await
}

/// An honest HTTP/2 request on its own connection is answered, and within `bound`.
async fn honest_served(tc: &TestCluster, what: &str) {
    let bound = patience(Duration::from_secs(3));
    let t = tag("honest");
    let client = tc.client(0, Cert::Valid, true).expect("honest client");
    let started = Instant::now();
    let body = tokio::time::timeout(bound, async {
        let resp = client
            .request(tagged(ccm_post(), &system_request(), &t, "honest"))
            .await
            .expect("honest request");
        assert_eq!(resp.status(), StatusCode::OK, "{what}: honest request");
        collect_body(resp).await.expect("body")
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: the honest request took longer than {bound:?}"));
    assert_eq!(body, "honest");
    assert_eq!(
        journal::tagged(tc, &t).len(),
        1,
        "{what}: honest request journaled once"
    );
    eprintln!("{what}: honest request served in {:?}", started.elapsed());
}

fn assert_memory(before: u64, what: &str) {
    memory::assert_grew_at_most(before, MEMORY_BOUND_KIB, what);
}

/// A GET of the MP's policy endpoint (answered with `size` bytes), end of stream set.
fn get_policy(stream: u32, size: usize, tag: &str) -> Vec<u8> {
    let path = format!("{}/.sms_pol?size={size}", spec::external_prefix("SMS_MP"));
    let block = h2raw::header_block("GET", &authority(), &path, &[("x-e2e-tag", tag.as_bytes())]);
    h2raw::frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        stream,
        &block,
    )
}

/// The tests of this file run one at a time: each measures the resident set of the
/// whole process, which another test's cluster would grow.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn cluster() -> (TestCluster, tokio::sync::MutexGuard<'static, ()>) {
    let turn = ONE_AT_A_TIME.lock().await;
    let tc = TestCluster::start_with(|s| {
        s.gateways = 1;
        s.connectors = 1;
        s.gateway_extra
            .push_str("\n[limits]\nidle_timeout = \"3s\"\n");
    })
    .await
    .expect("cluster");
    (tc, turn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_ends_in_goaway() {
    let (tc, _turn) = cluster().await;
    let before = rss_kib();
    let (mut tx, mut seen) = attacker(&tc, true).await;
    let t = tag("rapid-reset");
    let started = Instant::now();
    let mut sent = 0u32;
    for i in 0..20_000u32 {
        let stream = 2 * i + 1;
        let mut burst = get_policy(stream, 1024, &t);
        burst.extend(h2raw::rst_cancel(stream));
        if tx.send(&burst, Duration::from_secs(5)).await.is_err() || seen.borrow().closed {
            break;
        }
        sent += 1;
        if seen.borrow().goaway.is_some() {
            break;
        }
    }
    let end = ends(&mut seen, "rapid reset").await;
    eprintln!(
        "rapid reset: {sent} streams opened and reset, ended after {:?}: {end:?}",
        started.elapsed()
    );
    assert!(
        sent < 20_000,
        "the gateway let 20,000 HEADERS+RST_STREAM pairs through"
    );
    assert!(
        matches!(end.goaway, Some(ENHANCE_YOUR_CALM) | Some(PROTOCOL_ERROR)) || end.closed,
        "rapid reset: {end:?}"
    );
    assert_memory(before, "rapid reset");
    honest_served(&tc, "rapid reset").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuation_flood_ends_in_goaway() {
    let (tc, _turn) = cluster().await;
    let before = rss_kib();
    let (mut tx, mut seen) = attacker(&tc, true).await;
    let block = h2raw::header_block("GET", &authority(), &system_request(), &[]);
    tx.send(
        &h2raw::frame(kind::HEADERS, 0, 1, &block),
        Duration::from_secs(5),
    )
    .await
    .expect("HEADERS");
    let mut filler = Vec::new();
    h2raw::literal(&mut filler, "x-filler", &[b'a'; 4000]);
    let mut sent = 0usize;
    // At most 64 MiB of CONTINUATION frames: far beyond any header limit.
    while sent < 64 * 1024 * 1024 && !seen.borrow().closed && seen.borrow().goaway.is_none() {
        let frame = h2raw::frame(kind::CONTINUATION, 0, 1, &filler);
        if tx.send(&frame, Duration::from_secs(5)).await.is_err() {
            break;
        }
        sent += frame.len();
    }
    let end = ends(&mut seen, "CONTINUATION flood").await;
    eprintln!("CONTINUATION flood: {sent} bytes sent: {end:?}");
    assert!(
        sent < 64 * 1024 * 1024,
        "the gateway took 64 MiB of one header block"
    );
    assert_memory(before, "CONTINUATION flood");
    honest_served(&tc, "CONTINUATION flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpack_bomb_is_refused() {
    let (tc, _turn) = cluster().await;
    let before = rss_kib();
    let (mut tx, mut seen) = attacker(&tc, true).await;
    let t = tag("hpack-bomb");
    // Enter one 4 KiB header into the dynamic table (literal with incremental indexing),
    // then refer to it with one byte (index 62) thousands of times: 16 KiB of header
    // block that decodes to 64 MiB of headers.
    let mut block = h2raw::header_block("GET", &authority(), &system_request(), &[]);
    block.push(0x40);
    block.push(7);
    block.extend_from_slice(b"x-bomb1");
    block.extend_from_slice(&[0x7f, 0x81, 0x1e]); // length 4000 (127 + 3873)
    block.extend(std::iter::repeat_n(b'b', 4000));
    block.extend(std::iter::repeat_n(0xbe, 16_000));
    let mut frames = Vec::new();
    let mut chunks = block.chunks(16_000).peekable();
    let first = chunks.next().expect("a block");
    let end_headers = |last: bool| if last { flag::END_HEADERS } else { 0 };
    frames.extend(h2raw::frame(
        kind::HEADERS,
        flag::END_STREAM | end_headers(chunks.peek().is_none()),
        1,
        first,
    ));
    while let Some(c) = chunks.next() {
        frames.extend(h2raw::frame(
            kind::CONTINUATION,
            end_headers(chunks.peek().is_none()),
            1,
            c,
        ));
    }
    let _ = tx.send(&frames, Duration::from_secs(5)).await;
    let end = wait_seen(&mut seen, "an answer to the HPACK bomb", |s| {
        s.rst_streams > 0 || s.headers > 0 || s.goaway.is_some() || s.closed
    })
    .await;
    eprintln!("HPACK bomb: {end:?}");
    assert!(
        end.rst_streams > 0
            || end.headers > 0
            || matches!(
                end.goaway,
                Some(COMPRESSION_ERROR) | Some(PROTOCOL_ERROR) | Some(ENHANCE_YOUR_CALM)
            )
            || end.closed,
        "HPACK bomb: {end:?}"
    );
    assert!(
        journal::tagged(&tc, &t).is_empty(),
        "the bomb's request reached the MP"
    );
    assert_memory(before, "HPACK bomb");
    honest_served(&tc, "HPACK bomb").await;
}

/// Floods `frame` on a connection that never reads: the gateway must stop reading it
/// (its answers back up) with bounded memory, and end the connection within bounded
/// time; an honest client is served meanwhile.
async fn unread_flood(frame: Vec<u8>, what: &str) {
    let (tc, _turn) = cluster().await;
    let before = rss_kib();
    let (mut tx, _seen) = attacker(&tc, false).await;
    let mut burst = Vec::with_capacity(frame.len() * 1000);
    for _ in 0..1000 {
        burst.extend_from_slice(&frame);
    }
    let mut sent = 0usize;
    let mut stopped = false;
    // Bounded: at most 2,000 bursts (2 million frames).
    for _ in 0..2000 {
        if tx.send(&burst, Duration::from_secs(2)).await.is_err() {
            stopped = true;
            break;
        }
        sent += 1000;
    }
    eprintln!("{what}: {sent} frames written before the gateway stopped reading");
    assert!(
        stopped,
        "{what}: the gateway read 2 million frames whose answers nobody read"
    );
    assert_memory(before, what);
    honest_served(&tc, what).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_flood_unread_is_bounded() {
    unread_flood(
        h2raw::settings(&[(setting::HEADER_TABLE_SIZE, 4096)]),
        "SETTINGS flood",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood_unread_is_bounded() {
    unread_flood(h2raw::frame(kind::PING, 0, 0, &[7; 8]), "PING flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_streams_than_allowed_are_refused() {
    let (tc, _turn) = cluster().await;
    let (mut tx, mut seen) = attacker(&tc, true).await;
    let t = tag("too-many");
    // Open streams without ending them (no END_STREAM: the requests wait for bodies),
    // past the advertised limit (128 by default).
    let path = system_request();
    let block = h2raw::header_block(
        "CCM_POST",
        &authority(),
        &path,
        &[("x-e2e-tag", t.as_bytes())],
    );
    let mut burst = Vec::new();
    for i in 0..300u32 {
        burst.extend(h2raw::frame(
            kind::HEADERS,
            flag::END_HEADERS,
            2 * i + 1,
            &block,
        ));
    }
    let _ = tx.send(&burst, Duration::from_secs(5)).await;
    let end = wait_seen(&mut seen, "a refusal of the streams past the limit", |s| {
        s.rst_streams > 0 || s.goaway.is_some() || s.closed
    })
    .await;
    eprintln!("too many streams: {end:?}");
    assert!(
        end.rst_streams > 0 || end.goaway.is_some() || end.closed,
        "{end:?}"
    );
    honest_served(&tc, "too many streams").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_update_overflow_is_a_flow_control_error() {
    let (tc, _turn) = cluster().await;
    let (mut tx, mut seen) = attacker(&tc, true).await;
    // The connection window starts at 65,535; two maximal increments overflow 2^31-1.
    let mut frames = h2raw::window_update(0, 0x7fff_ffff);
    frames.extend(h2raw::window_update(0, 0x7fff_ffff));
    tx.send(&frames, Duration::from_secs(5))
        .await
        .expect("write");
    let end = ends(&mut seen, "WINDOW_UPDATE overflow").await;
    assert!(
        end.goaway == Some(FLOW_CONTROL_ERROR) || end.closed,
        "WINDOW_UPDATE overflow: {end:?}"
    );
    honest_served(&tc, "WINDOW_UPDATE overflow").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_beyond_the_window_is_a_flow_control_error() {
    let (tc, _turn) = cluster().await;
    let (mut tx, mut seen) = attacker(&tc, true).await;
    let t = tag("beyond-window");
    let block = h2raw::header_block(
        "CCM_POST",
        &authority(),
        &system_request(),
        &[("x-e2e-tag", t.as_bytes())],
    );
    let mut frames = h2raw::frame(kind::HEADERS, flag::END_HEADERS, 1, &block);
    // The gateway's windows are 1 MiB (stream) and 4 MiB (connection): send 5 MiB
    // without waiting for any WINDOW_UPDATE... but the gateway reads the body and
    // opens its window as the request is forwarded, so send faster than that: all
    // 5 MiB and far more in one go, 16 KiB frames.
    let chunk = vec![0u8; 16_384];
    for _ in 0..(16 * 1024 * 1024 / chunk.len()) {
        frames.extend(h2raw::frame(kind::DATA, 0, 1, &chunk));
    }
    let _ = tx.send(&frames, Duration::from_secs(10)).await;
    let end = wait_seen(&mut seen, "a refusal of data beyond the window", |s| {
        s.rst_streams > 0 || s.goaway.is_some() || s.closed
    })
    .await;
    eprintln!("DATA beyond the window: {end:?}");
    assert!(
        end.rst_streams > 0 || end.goaway == Some(FLOW_CONTROL_ERROR) || end.closed,
        "{end:?}"
    );
    honest_served(&tc, "DATA beyond the window").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_window_reader_holds_bounded_data_and_stalls_nobody() {
    let (tc, _turn) = cluster().await;
    let before = rss_kib();
    // The attacker's window is zero: the gateway may send nothing on any stream. It
    // opens as many streams as allowed, each asking for a 4 MiB answer that must come
    // through the one channel the honest client's requests share.
    let (mut tx, seen) = attacker(&tc, true).await;
    tx.send(
        &h2raw::settings(&[(setting::INITIAL_WINDOW_SIZE, 0)]),
        Duration::from_secs(5),
    )
    .await
    .expect("SETTINGS");
    let t = tag("zero-window");
    let mut burst = Vec::new();
    for i in 0..128u32 {
        burst.extend(get_policy(2 * i + 1, 4 * 1024 * 1024, &t));
    }
    tx.send(&burst, Duration::from_secs(5))
        .await
        .expect("HEADERS");
    // Wait until the MP answered them all (the answers are then stuck on their way).
    eventually("the MP answered the zero-window streams")
        .within(Duration::from_secs(10))
        .until(|| journal::tagged(&tc, &t).len(), |n| *n >= 100)
        .await;
    assert_eq!(seen.borrow().data_bytes, 0, "data sent into a zero window");
    for _ in 0..5 {
        honest_served(&tc, "zero-window reader").await;
    }
    let big = honest_big(&tc).await;
    eprintln!("zero-window reader: a 1 MiB answer to an honest client took {big:?}");
    assert_memory(before, "zero-window reader");
}

/// An honest client downloads a 1 MiB answer through the same channel; returns the time.
async fn honest_big(tc: &TestCluster) -> Duration {
    let bound = patience(Duration::from_secs(5));
    let client = tc.client(0, Cert::Valid, true).expect("client");
    let path = format!(
        "{}/.sms_pol?size={}",
        spec::external_prefix("SMS_MP"),
        1 << 20
    );
    let started = Instant::now();
    let req = http::Request::get(path)
        .body(http_body_util::Full::new(Bytes::new()))
        .expect("request");
    let body = tokio::time::timeout(bound, async {
        let resp = client.request(req).await.expect("request");
        assert_eq!(resp.status(), StatusCode::OK);
        collect_body(resp).await.expect("body")
    })
    .await
    .unwrap_or_else(|_| panic!("an honest 1 MiB answer took longer than {bound:?}"));
    assert_eq!(body.len(), 1 << 20);
    started.elapsed()
}
