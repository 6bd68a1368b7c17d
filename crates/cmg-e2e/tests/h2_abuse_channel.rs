//! HTTP/2 abuse against the gateway's channel listener, from a rogue connection point
//! (a peer with a real connection point certificate: a stolen key, a compromised host),
//! and slow TLS handshakes by the thousand on both listeners (no certificate needed).
//!
//! On a channel the gateway is the HTTP/2 client, so the rogue attacks as a server:
//! floods whose answers it never reads, a CONTINUATION flood and an HPACK bomb in a
//! response head, a connection WINDOW_UPDATE overflow, response DATA beyond the window.
//! (Rapid reset and "more streams than allowed" are a client's attacks: on a channel
//! only the gateway opens streams.) Each must end the rogue's channel within bounded
//! time with bounded memory; the client whose request the rogue took gets an error, not
//! a hang; every honest request afterwards is served through the honest connection point.

use std::time::{Duration, Instant};

use cmg_client::collect_body;
use cmg_e2e::h2raw::{self, flag, kind, setting, Seen};
use cmg_e2e::memory::{self, rss_kib};
use cmg_e2e::rogue::{self, Rogue};
use cmg_e2e::{ccm_post, journal, system_request, tag, tagged, Cert, TestCluster};
use cmg_test_support::patience;
use http::StatusCode;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// How much the process's resident set may grow during one attack.
const MEMORY_BOUND_KIB: u64 = 64 * 1024;

/// The tests of this file run one at a time: each measures the resident set of the
/// whole process, which another test's cluster would grow.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn assert_memory(before: u64, what: &str) {
    memory::assert_grew_at_most(before, MEMORY_BOUND_KIB, what);
}

/// One gateway, the honest connection point cp1, and cp2's certificate free for the
/// rogue (cp2 is stopped once the cluster is up).
async fn cluster() -> (TestCluster, tokio::sync::MutexGuard<'static, ()>) {
    let turn = ONE_AT_A_TIME.lock().await;
    let mut tc = TestCluster::start_with(|s| {
        s.gateways = 1;
        s.connectors = 2;
        s.gateway_extra
            .push_str("\n[limits]\nhandshake_timeout = \"2s\"\n");
    })
    .await
    .expect("cluster");
    tc.stop_connector(1).await;
    (tc, turn)
}

/// One honest request on a fresh HTTP/2 connection; its status, bounded in time.
async fn honest(tc: &TestCluster) -> anyhow::Result<StatusCode> {
    let client = tc.client(0, Cert::Valid, true)?;
    let t = tag("honest");
    let resp = client
        .request(tagged(ccm_post(), &system_request(), &t, "honest"))
        .await?;
    let status = resp.status();
    collect_body(resp).await?;
    Ok(status)
}

/// Ten honest requests in a row, each served, each journaled once: with the rogue's
/// channel still registered, round robin would hand it some of them.
async fn honest_all_served(tc: &TestCluster, what: &str) {
    let bound = patience(Duration::from_secs(3));
    for i in 0..10 {
        let t = tag("after");
        let client = tc.client(0, Cert::Valid, true).expect("client");
        let started = Instant::now();
        let body = tokio::time::timeout(bound, async {
            let resp = client
                .request(tagged(ccm_post(), &system_request(), &t, "after"))
                .await
                .expect("honest request");
            let status = resp.status();
            let body = collect_body(resp).await.expect("body");
            assert_eq!(
                status,
                StatusCode::OK,
                "{what}: honest request {i}: {body:?}"
            );
            body
        })
        .await
        .unwrap_or_else(|_| panic!("{what}: honest request {i} took longer than {bound:?}"));
        assert_eq!(body, "after");
        assert_eq!(journal::tagged(tc, &t).len(), 1, "{what}: journaled once");
        if i == 0 {
            eprintln!("{what}: honest request served in {:?}", started.elapsed());
        }
    }
}

/// Sends honest requests until one lands on the rogue's channel; returns its stream on
/// the channel and the task awaiting that request's status. The others are served by
/// cp1 (checked).
async fn lure(
    tc: &TestCluster,
    rogue: &mut Rogue,
) -> (u32, JoinHandle<anyhow::Result<StatusCode>>) {
    for _ in 0..200 {
        let client = tc.client(0, Cert::Valid, true).expect("client");
        let t = tag("lure");
        let marker = t.clone().into_bytes();
        let task = tokio::spawn(async move {
            // The tag is the body too: the rogue tells the request from the gateway's
            // own requests on the channel (settings long poll, reports) by it.
            let resp = client
                .request(tagged(ccm_post(), &system_request(), &t, t.clone()))
                .await?;
            let status = resp.status();
            // A head already passed on and a body cut off is a failure too.
            collect_body(resp).await?;
            Ok(status)
        });
        let landed = tokio::select! {
            s = rogue.seen.wait_for(|s| s.stream_with_body(&marker).is_some()) => {
                s.ok().and_then(|s| s.stream_with_body(&marker))
            }
            _ = tokio::time::sleep(patience(Duration::from_secs(3))) => None,
        };
        if let Some(stream) = landed {
            return (stream, task);
        }
        let status = task.await.expect("task").expect("served by cp1");
        assert_eq!(status, StatusCode::OK, "a request cp1 served");
    }
    panic!("200 requests and none landed on the rogue's channel");
}

/// The lured request ends (bounded) without success.
async fn lured_fails(task: JoinHandle<anyhow::Result<StatusCode>>, what: &str) {
    let wait = patience(Duration::from_secs(10));
    let result = tokio::time::timeout(wait, task)
        .await
        .unwrap_or_else(|_| panic!("{what}: the lured request hung for {wait:?}"))
        .expect("task");
    // Display, not Debug: an error's Debug form resolves its backtrace, which maps the
    // test binary's debug info and would count as the attack's memory.
    match &result {
        Ok(status) => {
            eprintln!("{what}: the lured request ended with {status}");
            assert!(
                !status.is_success(),
                "{what}: the rogue's answer was passed on as a success"
            );
        }
        Err(e) => eprintln!("{what}: the lured request failed: {e:#}"),
    }
}

/// A response attack on the stream of a lured request. The gateway must refuse it:
/// end the channel (GOAWAY or close), or, for an error HTTP/2 confines to the stream,
/// reset the stream; either way the lured client gets an error, not a hang. The rogue
/// then hangs up, and every honest request is served by cp1.
async fn response_attack(what: &str, attack: impl AsyncFnOnce(&mut Rogue, u32)) {
    let (tc, _turn) = cluster().await;
    let mut rogue = rogue::open(&tc, 0, 1).await.expect("rogue channel");
    let (stream, task) = lure(&tc, &mut rogue).await;
    // Measured after the lure: its up to 200 honest connections are not the attack.
    let before = rss_kib();
    attack(&mut rogue, stream).await;
    let end = refused(&mut rogue, what).await;
    eprintln!("{what}: the rogue saw {end:?}");
    lured_fails(task, what).await;
    assert_memory(before, what);
    rogue.frames.close().await;
    honest_all_served(&tc, what).await;
}

/// Waits (bounded) until the gateway ended the rogue's channel or reset a stream.
async fn refused(rogue: &mut Rogue, what: &str) -> Seen {
    let wait = patience(Duration::from_secs(10));
    let result = tokio::time::timeout(
        wait,
        rogue
            .seen
            .wait_for(|s| s.goaway.is_some() || s.closed || s.rst_streams > 0),
    )
    .await
    .map(|r| r.map(|s| s.clone()));
    match result {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => rogue.seen.borrow().clone(),
        Err(_) => panic!(
            "{what}: no GOAWAY, close or reset within {wait:?}: {:?}",
            *rogue.seen.borrow()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuation_flood_in_a_response_ends_the_channel() {
    response_attack("channel CONTINUATION flood", async |rogue, stream| {
        let head = rogue::response_head(200);
        let _ = rogue
            .frames
            .send(
                &h2raw::frame(kind::HEADERS, 0, stream, &head),
                Duration::from_secs(5),
            )
            .await;
        let mut filler = Vec::new();
        h2raw::literal(&mut filler, "x-filler", &[b'a'; 4000]);
        let frame = h2raw::frame(kind::CONTINUATION, 0, stream, &filler);
        let mut sent = 0usize;
        while sent < 64 * 1024 * 1024 {
            let s = rogue.seen.borrow().clone();
            if s.closed || s.goaway.is_some() {
                break;
            }
            if rogue
                .frames
                .send(&frame, Duration::from_secs(5))
                .await
                .is_err()
            {
                break;
            }
            sent += frame.len();
        }
        assert!(
            sent < 64 * 1024 * 1024,
            "the gateway took 64 MiB of one response head"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpack_bomb_in_a_response_is_refused() {
    response_attack("channel HPACK bomb", async |rogue, stream| {
        let mut block = rogue::response_head(200);
        block.push(0x40);
        block.push(7);
        block.extend_from_slice(b"x-bomb1");
        block.extend_from_slice(&[0x7f, 0x81, 0x1e]); // length 4000
        block.extend(std::iter::repeat_n(b'b', 4000));
        block.extend(std::iter::repeat_n(0xbe, 16_000));
        let mut frames = Vec::new();
        let chunks: Vec<&[u8]> = block.chunks(16_000).collect();
        for (i, c) in chunks.iter().enumerate() {
            let last = if i + 1 == chunks.len() {
                flag::END_HEADERS
            } else {
                0
            };
            let k = if i == 0 {
                kind::HEADERS
            } else {
                kind::CONTINUATION
            };
            frames.extend(h2raw::frame(
                k,
                last | if i == 0 { flag::END_STREAM } else { 0 },
                stream,
                c,
            ));
        }
        let _ = rogue.frames.send(&frames, Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_update_overflow_ends_the_channel() {
    response_attack("channel WINDOW_UPDATE overflow", async |rogue, _stream| {
        let mut frames = h2raw::window_update(0, 0x7fff_ffff);
        frames.extend(h2raw::window_update(0, 0x7fff_ffff));
        let _ = rogue.frames.send(&frames, Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_data_beyond_the_window_ends_the_channel() {
    response_attack("channel DATA beyond the window", async |rogue, stream| {
        let head = rogue::response_head(200);
        let mut frames = h2raw::frame(kind::HEADERS, flag::END_HEADERS, stream, &head);
        // 32 MiB in one go against a 256 KiB stream window. The gateway widens the window
        // as its client reads the answer, so a burst its client keeps pace with is not
        // beyond the window at all (4 MiB once was, on a loaded machine, and the lured
        // request then just waited for the rest of a long answer): the burst must outrun
        // the client by more than a window, which this one does.
        let chunk = vec![0u8; 16_384];
        for _ in 0..2048 {
            frames.extend(h2raw::frame(kind::DATA, 0, stream, &chunk));
        }
        let _ = rogue.frames.send(&frames, Duration::from_secs(10)).await;
    })
    .await;
}

/// Floods `frame` and stops reading: the gateway's PINGs go unanswered and its
/// answers back up; it must drop the channel within its ping timeout.
async fn unread_flood(frame: Vec<u8>, what: &str) {
    let (tc, _turn) = cluster().await;
    let before = rss_kib();
    let rogue = rogue::open(&tc, 0, 1).await.expect("rogue channel");
    rogue.frames.stop_reading();
    let mut burst = Vec::with_capacity(frame.len() * 1000);
    for _ in 0..1000 {
        burst.extend_from_slice(&frame);
    }
    let mut frames = rogue.frames;
    let started = Instant::now();
    let mut sent = 0usize;
    let mut stalled = None;
    let mut closed = None;
    // Bounded: at most 2 million frames, and 30 s (scaled). A write that times out
    // means the gateway stopped reading; one that fails, that it closed the channel.
    let deadline = started + patience(Duration::from_secs(30));
    while sent < 2_000_000 && Instant::now() < deadline {
        match frames.send(&burst, Duration::from_secs(1)).await {
            Ok(()) => sent += 1000,
            Err(e) if format!("{e:#}").contains("stopped reading") => {
                stalled.get_or_insert(started.elapsed());
            }
            Err(_) => {
                closed = Some(started.elapsed());
                break;
            }
        }
    }
    eprintln!(
        "{what}: {sent} frames written; stopped reading after {stalled:?}, closed after {closed:?}"
    );
    assert!(
        closed.is_some(),
        "{what}: the gateway kept a rogue channel that never read"
    );
    assert_memory(before, what);
    honest_all_served(&tc, what).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_flood_unread_ends_the_channel() {
    unread_flood(
        h2raw::settings(&[(setting::HEADER_TABLE_SIZE, 4096)]),
        "channel SETTINGS flood",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood_unread_ends_the_channel() {
    unread_flood(
        h2raw::frame(kind::PING, 0, 0, &[7; 8]),
        "channel PING flood",
    )
    .await;
}

/// 1,000 connections to each listener that start a TLS handshake and stall (a record
/// header promising a ClientHello that never comes). The gateway must close each within
/// its handshake timeout (2 s here) and serve an honest client meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_handshakes_by_the_thousand_are_closed() {
    let (tc, _turn) = cluster().await;
    let before = rss_kib();
    let addrs = [tc.gateways[0].client, tc.gateways[0].channel];
    let mut stalled = Vec::new();
    for addr in addrs {
        for _ in 0..1000 {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            // A handshake record of 512 bytes, of which 5 arrive.
            s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
                .await
                .expect("write");
            stalled.push(s);
        }
    }
    let status = tokio::time::timeout(patience(Duration::from_secs(3)), honest(&tc))
        .await
        .expect("an honest request while 2,000 handshakes stall")
        .expect("honest request");
    assert_eq!(status, StatusCode::OK);
    let started = Instant::now();
    let wait = patience(Duration::from_secs(10));
    let mut closed = 0;
    for mut s in stalled {
        let mut buf = [0u8; 64];
        let left = wait.saturating_sub(started.elapsed());
        // A close shows as EOF or a reset; an alert before it is read and skipped.
        let r = tokio::time::timeout(left, async {
            loop {
                match tokio::io::AsyncReadExt::read(&mut s, &mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        if r.is_ok() {
            closed += 1;
        }
    }
    eprintln!(
        "slow handshakes: {closed} of 2000 closed after {:?}",
        started.elapsed()
    );
    assert_eq!(closed, 2000, "stalled handshakes left open past {wait:?}");
    assert_memory(before, "slow handshakes");
    honest_all_served(&tc, "slow handshakes").await;
}
