//! The admin listener out of file descriptors: `accept` fails with EMFILE while a client
//! waits in the queue. The listener must log once per pause, pause longer each time
//! (not spin), and serve the client once descriptors are free again.
//!
//! Its own test binary (own process): it lowers `RLIMIT_NOFILE` and fills the table.

#![cfg(target_os = "linux")]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cmg_core::admin::{AdminListener, Limits};
use cmg_core::shutdown::{Drain, Shutdown};
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::Layer;

use support::{answer, gated, send};

/// Records the (paused) time of every "admin accept failed" event.
#[derive(Clone, Default)]
struct AcceptFailures {
    at: Arc<Mutex<Vec<Instant>>>,
    seen: Arc<Notify>,
}

impl<S: tracing::Subscriber> Layer<S> for AcceptFailures {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        struct Message(bool);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if f.name() == "message" {
                    self.0 |= format!("{v:?}").contains("admin accept failed");
                }
            }
        }
        let mut m = Message(false);
        event.record(&mut m);
        if m.0 {
            self.at.lock().expect("lock").push(Instant::now());
            self.seen.notify_one();
        }
    }
}

#[tokio::test(start_paused = true)]
async fn out_of_descriptors_it_pauses_with_backoff_then_serves() {
    let failures = AcceptFailures::default();
    let _trace =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(failures.clone()));
    let limits = Limits {
        accept_pause: Duration::from_millis(100),
        accept_pause_max: Duration::from_millis(400),
        ..Limits::default()
    };
    let listener = AdminListener::bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind")
        .with_limits(limits);
    let addr = listener.local_addr();
    let shutdown = Shutdown::new();
    shutdown
        .tracker
        .spawn(listener.serve(gated(), shutdown.clone()));

    // A small table, filled up but for the one slot the client's socket takes.
    let saved = getrlimit(Resource::Nofile);
    let open = std::fs::read_dir("/proc/self/fd").expect("fds").count() as u64;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(open + 32),
            maximum: saved.maximum,
        },
    )
    .expect("lower RLIMIT_NOFILE");
    let mut filler = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        filler.push(f);
    }
    filler.pop();
    let mut client = TcpStream::connect(addr).await.expect("connect");

    // Four failures in a row: paused 100, 200, then 400 ms (the cap), never spinning.
    loop {
        let n = failures.at.lock().expect("lock").len();
        if n >= 4 {
            break;
        }
        failures.seen.notified().await;
    }
    let at = failures.at.lock().expect("lock").clone();
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    let ms = Duration::from_millis;
    assert_eq!(gaps[..3], [ms(100), ms(200), ms(400)], "{gaps:?}");

    // Descriptors free again: the client waiting in the queue is served.
    drop(filler);
    setrlimit(Resource::Nofile, saved).expect("restore RLIMIT_NOFILE");
    send(&mut client, "/live", true).await;
    let a = answer(&mut client).await.expect("answer");
    assert!(
        a.starts_with("HTTP/1.1 200") && a.ends_with("live\n"),
        "{a}"
    );

    assert_eq!(shutdown.drain(Duration::from_secs(10)).await, Drain::Clean);
}
