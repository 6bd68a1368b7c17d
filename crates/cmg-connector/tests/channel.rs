//! The connection point against a fake gateway and a plain-HTTP role, all on loopback.
//!
//! The real gateway crate is written concurrently, so these tests carry their own
//! test-only fake gateway: the HTTP/2-client half of the channel protocol (a
//! tokio-rustls acceptor with rcgen-made certificates that requires a client certificate
//! from the site CA and selects ALPN `cmg-channel/1`, a hyper HTTP/2 client handshake
//! over the accepted stream, the hello, then test requests sent on the channel). The role
//! is a tiny hyper HTTP/1.1 server that echoes the request body and reports what it saw.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{Method, StatusCode};

use cmg_connector::{wait_all_up, wait_until, ChannelState, ConnectorStatus};
use cmg_proto::headers;
use cmg_test_support::patience;

use support::*;

// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn hello_then_forward_rewrite_stream_and_refusals() -> Result<()> {
    let _t = tracing_guard();
    let pki = Pki::new()?;
    let mut gw = FakeGateway::start(&pki, NORMAL).await?;
    let mut cp = start_connector(&pki, &[gw.addr]).await?;

    let mut ch = gw.next_channel().await?;
    assert_eq!(ch.connection_point, CP_ID);
    let status = wait_all_up(&mut cp.status, patience(WAIT)).await?;
    assert_eq!(
        status.channel(gw.addr),
        Some(&ChannelState::Up {
            connection_id: ch.connection_id.clone(),
            instance: "gw-test-0".into()
        })
    );

    // Prefix rewritten (matched case-insensitively), query kept, cmg headers passed on.
    let path = "/ccm_proxy_mutualauth/72057594037927939/CCM_System/request?a=1&b=%41";
    let resp = ch.send(Method::GET, path, Bytes::new()).await?;
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers();
    assert_eq!(h["x-role-uri"], "/internal/CCM_System/request?a=1&b=%41");
    let role_host = h["x-role-host"].to_str()?.to_owned();
    assert!(role_host.starts_with("127.0.0.1:"), "{role_host}");
    assert_eq!(h["x-role-identity"], "cert; subject=\"CN=client1\"");
    assert_eq!(h["x-role-request-id"], "req-42");
    assert_eq!(h["x-role-xff"], "203.0.113.9");
    assert_eq!(h[headers::CONNECTION_POINT], CP_ID);
    assert!(resp.body().is_empty());

    // 1 MiB streamed to the role and back, byte-identical, any method.
    let payload: Bytes = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect::<Vec<u8>>()
        .into();
    let ccm_post = Method::from_bytes(b"CCM_POST")?;
    let resp = ch
        .send(ccm_post, &format!("{MP_PREFIX}/request"), payload.clone())
        .await?;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-role-method"], "CCM_POST");
    assert_eq!(resp.body().len(), payload.len());
    assert!(*resp.body() == payload, "echoed body differs");

    // No mapping.
    let resp = ch
        .send(
            Method::GET,
            "/CCM_Proxy_MutualAuth/99/Nothing",
            Bytes::new(),
        )
        .await?;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.headers()["cmg-error"], "CMGConnector_NoMapping");
    assert_eq!(resp.headers()[headers::CONNECTION_POINT], CP_ID);

    // Unknown control path.
    let resp = ch.send(Method::GET, "/_cmg/nothing", Bytes::new()).await?;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Role down.
    let resp = ch
        .send(
            Method::GET,
            &format!("{DOWN_PREFIX}/.sms_aut?MPLIST2"),
            Bytes::new(),
        )
        .await?;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(resp.headers()["cmg-error"], "CMGConnector_RoleUnreachable");

    // Role accepts but never answers: 504 after role_timeout (1 s here).
    let resp = ch.send(Method::GET, HANG_PREFIX, Bytes::new()).await?;
    assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(resp.headers()["cmg-error"], "CMGConnector_RoleTimeout");

    cp.stop().await
}

#[tokio::test]
async fn role_connections_are_kept_alive_and_reused() -> Result<()> {
    let _t = tracing_guard();
    let pki = Pki::new()?;
    let mut gw = FakeGateway::start(&pki, NORMAL).await?;
    let mut cp = start_connector(&pki, &[gw.addr]).await?;
    let mut ch = gw.next_channel().await?;
    wait_all_up(&mut cp.status, patience(WAIT)).await?;

    // One request after the other: each response is read to its end before the next
    // request, so every one goes on the connection the first one opened.
    let mut peers = Vec::new();
    for i in 0..4u8 {
        let body = Bytes::from(vec![i; 100 * 1024 * usize::from(i)]);
        let resp = ch
            .send(Method::POST, &format!("{MP_PREFIX}/request"), body.clone())
            .await?;
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(*resp.body() == body, "echoed body differs");
        peers.push(resp.headers()["x-role-peer"].to_str()?.to_owned());
    }
    assert!(peers.iter().all(|p| *p == peers[0]), "{peers:?}");
    cp.stop().await
}

#[tokio::test]
async fn reconnects_after_the_gateway_drops_the_channel() -> Result<()> {
    let _t = tracing_guard();
    let pki = Pki::new()?;
    let mut gw = FakeGateway::start(&pki, NORMAL).await?;
    let mut cp = start_connector(&pki, &[gw.addr]).await?;

    let first = gw.next_channel().await?;
    wait_all_up(&mut cp.status, patience(WAIT)).await?;
    let first_id = first.connection_id.clone();
    first.kill.cancel();
    drop(first);

    // The channel leaves Up (Down, then Connecting while it redials) ...
    let addr = gw.addr;
    wait_until(&mut cp.status, patience(WAIT), |s| {
        s.channel(addr).and_then(ChannelState::connection_id) != Some(first_id.as_str())
    })
    .await?;
    // ... and comes back by itself on a new connection.
    let mut second = gw.next_channel().await?;
    assert_ne!(second.connection_id, first_id);
    let second_id = second.connection_id.clone();
    wait_until(&mut cp.status, patience(WAIT), |s| {
        s.channel(addr).and_then(ChannelState::connection_id) == Some(second_id.as_str())
    })
    .await?;
    let resp = second
        .send(Method::GET, &format!("{MP_PREFIX}/request"), Bytes::new())
        .await?;
    assert_eq!(resp.status(), StatusCode::OK);

    cp.stop().await
}

/// With two data-path threads the connection point keeps two channels (lanes) to the
/// instance, each serving requests on its own thread; the status follows lane 0, and a
/// lost lane 1 comes back by itself without touching it.
#[tokio::test]
async fn one_channel_per_thread_to_each_gateway() -> Result<()> {
    let _t = tracing_guard();
    let pki = Pki::new()?;
    let mut gw = FakeGateway::start(&pki, NORMAL).await?;
    let mut cp = start_connector_with(&pki, &[gw.addr], 2).await?;

    let mut a = gw.next_channel().await?;
    let mut b = gw.next_channel().await?;
    assert_ne!(a.connection_id, b.connection_id);
    let status = wait_all_up(&mut cp.status, patience(WAIT)).await?;
    assert_eq!(status.channels.len(), 1, "one status entry per instance");
    for ch in [&mut a, &mut b] {
        let resp = ch
            .send(Method::GET, &format!("{MP_PREFIX}/request"), Bytes::new())
            .await?;
        assert_eq!(resp.status(), StatusCode::OK, "lane {}", ch.connection_id);
    }
    // Drop whichever lane the status does not show: the status stays up with the same
    // connection ID, and the lane is redialled.
    let shown = status.channels[0]
        .state
        .connection_id()
        .context("lane 0 is up")?
        .to_owned();
    let (keep, lose) = if a.connection_id == shown {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(keep.connection_id, shown);
    lose.kill.cancel();
    drop(lose);
    let mut again = gw.next_channel().await?;
    let resp = again
        .send(Method::GET, &format!("{MP_PREFIX}/request"), Bytes::new())
        .await?;
    assert_eq!(resp.status(), StatusCode::OK);
    let addr = gw.addr;
    let now = cp.status.borrow().clone();
    assert_eq!(
        now.channel(addr).and_then(ChannelState::connection_id),
        Some(shown.as_str())
    );
    drop(keep);
    cp.stop().await
}

#[tokio::test]
async fn channel_failures_show_in_the_status() -> Result<()> {
    let _t = tracing_guard();
    let pki = Pki::new()?;
    let no_alpn = FakeGateway::start(
        &pki,
        Behaviour {
            alpn: false,
            hello: true,
        },
    )
    .await?;
    let silent = FakeGateway::start(
        &pki,
        Behaviour {
            alpn: true,
            hello: false,
        },
    )
    .await?;
    let mut cp = start_connector(&pki, &[no_alpn.addr, silent.addr]).await?;

    let down_with = |addr: SocketAddr, needle: &'static str| move |s: &ConnectorStatus| matches!(s.channel(addr), Some(ChannelState::Down { last_error }) if last_error.contains(needle));
    wait_until(
        &mut cp.status,
        patience(WAIT),
        down_with(no_alpn.addr, "ALPN"),
    )
    .await?;
    wait_until(
        &mut cp.status,
        patience(WAIT),
        down_with(silent.addr, "no hello"),
    )
    .await?;
    cp.stop().await
}

#[tokio::test]
async fn shutdown_lets_requests_in_flight_finish() -> Result<()> {
    let _t = tracing_guard();
    let pki = Pki::new()?;
    let mut gw = FakeGateway::start(&pki, NORMAL).await?;
    let mut cp = start_connector(&pki, &[gw.addr]).await?;
    let mut ch = gw.next_channel().await?;
    wait_all_up(&mut cp.status, patience(WAIT)).await?;

    let in_flight = tokio::spawn(async move {
        ch.send(
            Method::POST,
            &format!("{HELD_PREFIX}/x"),
            Bytes::from_static(b"payload"),
        )
        .await
    });
    tokio::time::timeout(patience(WAIT), cp.held.arrived.recv())
        .await
        .context("request did not reach the role")?;

    // Shutdown while the role still holds the request: the channel gets its GOAWAY but
    // stays open for the stream in flight.
    cp.shutdown.token.cancel();
    let addr = gw.addr;
    assert!(
        wait_until(&mut cp.status, Duration::from_millis(200), |s| !s
            .channel(addr)
            .is_some_and(ChannelState::is_up))
        .await
        .is_err(),
        "channel went down with a request in flight"
    );
    cp.held.release.notify_one();
    let resp = tokio::time::timeout(patience(WAIT), in_flight).await???;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.body().as_ref(), b"done");

    let mut status = cp.status.clone();
    cp.stop().await?;
    assert!(matches!(
        status.borrow_and_update().channel(addr),
        Some(ChannelState::Down { .. })
    ));
    Ok(())
}
