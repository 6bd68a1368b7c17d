//! The admin listener on a real loopback socket: the connection cap and the drain on
//! shutdown. Time is paused: the waits that must pass (a capped connection left
//! unanswered, a drain that must not end early) cost nothing.

mod support;

use std::time::Duration;

use cmg_core::admin::{AdminListener, Limits};
use cmg_core::shutdown::{Drain, Shutdown};
use tokio::net::TcpStream;

use support::{answer, closed, gated, send};

fn limits(max_connections: usize) -> Limits {
    Limits {
        max_connections,
        ..Limits::default()
    }
}

#[tokio::test(start_paused = true)]
async fn connections_past_the_cap_wait_until_one_closes() {
    let listener = AdminListener::bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind")
        .with_limits(limits(1));
    let addr = listener.local_addr();
    let shutdown = Shutdown::new();
    shutdown
        .tracker
        .spawn(listener.serve(gated(), shutdown.clone()));

    // The first connection is served and stays open (keep-alive).
    let mut first = TcpStream::connect(addr).await.expect("connect");
    send(&mut first, "/live", false).await;
    let a = answer(&mut first).await.expect("first answer");
    assert!(
        a.starts_with("HTTP/1.1 200") && a.ends_with("live\n"),
        "{a}"
    );

    // The second waits in the accept queue while the first holds the only slot.
    let mut second = TcpStream::connect(addr).await.expect("connect");
    send(&mut second, "/live", true).await;
    let waited = tokio::time::timeout(Duration::from_secs(2), answer(&mut second)).await;
    assert!(waited.is_err(), "answered past the cap: {waited:?}");

    // Once the first closes, the second is served.
    drop(first);
    let a = answer(&mut second).await.expect("second answer");
    assert!(
        a.starts_with("HTTP/1.1 200") && a.ends_with("live\n"),
        "{a}"
    );

    assert_eq!(shutdown.drain(Duration::from_secs(10)).await, Drain::Clean);
}

#[tokio::test(start_paused = true)]
async fn shutdown_finishes_the_answer_in_flight_closes_idle_connections_and_drains() {
    let listener = AdminListener::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let addr = listener.local_addr();
    let routes = gated();
    let shutdown = Shutdown::new();
    shutdown
        .tracker
        .spawn(listener.serve(routes.clone(), shutdown.clone()));

    let mut idle = TcpStream::connect(addr).await.expect("connect");
    send(&mut idle, "/live", false).await;
    assert!(answer(&mut idle).await.is_some());
    let mut busy = TcpStream::connect(addr).await.expect("connect");
    send(&mut busy, "/ready", false).await;
    routes.entered.notified().await;

    let drain = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { shutdown.drain(Duration::from_secs(30)).await }
    });
    // The idle connection closes at once; the drain waits for the answer in flight.
    assert!(closed(&mut idle).await);
    let mut drain = drain;
    let early = tokio::time::timeout(Duration::from_secs(3), &mut drain).await;
    assert!(
        early.is_err(),
        "drained with an answer in flight: {early:?}"
    );

    routes.gate.notify_one();
    let a = answer(&mut busy).await.expect("answer in flight");
    assert!(a.starts_with("HTTP/1.1 200"), "{a}");
    assert!(a.ends_with("ready: after the gate\n"), "{a}");
    assert!(closed(&mut busy).await);
    assert_eq!(drain.await.expect("drain task"), Drain::Clean);

    // The listener is gone.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn an_answer_that_never_comes_is_cut_at_the_drain_grace() {
    let grace = Duration::from_secs(2);
    let listener = AdminListener::bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind")
        .with_limits(Limits {
            drain_grace: grace,
            ..Limits::default()
        });
    let addr = listener.local_addr();
    let routes = gated();
    let shutdown = Shutdown::new();
    shutdown
        .tracker
        .spawn(listener.serve(routes.clone(), shutdown.clone()));

    let mut stuck = TcpStream::connect(addr).await.expect("connect");
    send(&mut stuck, "/ready", true).await;
    routes.entered.notified().await;

    let start = tokio::time::Instant::now();
    assert_eq!(shutdown.drain(Duration::from_secs(30)).await, Drain::Clean);
    let took = start.elapsed();
    assert!(
        took >= grace && took < grace + Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(answer(&mut stuck).await, None);
}
