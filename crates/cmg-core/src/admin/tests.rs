//! In-memory tests: the answer table without a socket, one connection over a duplex pipe
//! (HEAD, the header read timeout with paused time), and the `/proc` parsers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, StatusCode};
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

use super::answer::Answerer;
use super::listener::{serve_connection, Limits};
use super::process::{boot_time, max_open_files, resident_bytes, Sample};
use super::*;

#[derive(Debug)]
struct TestRoutes {
    readiness: Mutex<Readiness>,
    registry: Registry,
}

impl TestRoutes {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("cmg_test");
        let hits = Counter::<u64>::default();
        hits.inc_by(3);
        registry.register("hits", "Hits", hits);
        Self {
            readiness: Mutex::new(Readiness::Ready("all good".into())),
            registry,
        }
    }
}

impl AdminRoutes for TestRoutes {
    const ROLE: &'static str = "test";

    async fn ready(&self) -> Readiness {
        self.readiness.lock().expect("lock").clone()
    }

    async fn encode_metrics(&self, out: &mut String) {
        encode_registry(out, &self.registry);
    }

    fn route(&self, path: &str) -> Option<(StatusCode, String)> {
        (path == "/channels").then(|| (StatusCode::OK, "a up\nb down\n".to_owned()))
    }
}

fn answerer() -> Answerer<TestRoutes> {
    Answerer::new(Arc::new(TestRoutes::new()))
}

/// (status, content type, Allow, body) of one answer.
async fn ask(
    a: &Answerer<TestRoutes>,
    method: Method,
    path: &str,
) -> (StatusCode, String, Option<String>, String) {
    let resp = a.answer(&method, path).await;
    let header = |name| {
        resp.headers()
            .get(name)
            .map(|v: &http::HeaderValue| v.to_str().expect("ascii").to_owned())
    };
    let (ctype, allow) = (header(CONTENT_TYPE).unwrap_or_default(), header(ALLOW));
    let status = resp.status();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let body = String::from_utf8(body.to_vec()).expect("utf-8");
    (status, ctype, allow, body)
}

#[tokio::test]
async fn metrics_are_openmetrics_with_the_common_families_and_one_eof() {
    let a = answerer();
    let (status, ctype, _, body) = ask(&a, Method::GET, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ctype,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(body.contains("cmg_test_hits_total 3\n"), "{body}");
    let build = format!(
        "cmg_build_info{{version=\"{}\",role=\"test\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    assert!(body.contains(&build), "{body}");
    assert!(body.ends_with("\n# EOF\n"), "{body}");
    assert_eq!(body.matches("# EOF").count(), 1, "{body}");
    if cfg!(target_os = "linux") {
        for family in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_virtual_memory_bytes ",
            "process_open_fds ",
            "process_max_fds ",
            "process_start_time_seconds ",
            "process_threads ",
        ] {
            assert!(
                body.lines().any(|l| l.starts_with(family)),
                "{family} missing from:\n{body}"
            );
        }
    }
}

#[tokio::test]
async fn ready_follows_the_role_on_one_line_and_live_is_always_200() {
    let routes = Arc::new(TestRoutes::new());
    let a = Answerer::new(routes.clone());
    let (status, ctype, _, body) = ask(&a, Method::GET, "/ready").await;
    assert_eq!(
        (status, ctype.as_str(), body.as_str()),
        (
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "ready: all good\n"
        )
    );
    *routes.readiness.lock().expect("lock") = Readiness::NotReady("no channel\nat all".into());
    let (status, _, _, body) = ask(&a, Method::GET, "/ready").await;
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no channel at all\n"
        )
    );
    let (status, _, _, body) = ask(&a, Method::GET, "/live").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "live\n"));
}

#[tokio::test]
async fn role_routes_methods_and_unknown_paths() {
    let a = answerer();
    let (status, _, _, body) = ask(&a, Method::GET, "/channels").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "a up\nb down\n"));
    for path in ["/metrics", "/ready", "/live", "/channels"] {
        let (status, _, _, _) = ask(&a, Method::HEAD, path).await;
        assert_eq!(status, StatusCode::OK, "HEAD {path}");
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
            let (status, _, allow, _) = ask(&a, method.clone(), path).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_eq!(allow.as_deref(), Some("GET, HEAD"), "{method} {path}");
        }
    }
    for method in [Method::GET, Method::HEAD, Method::POST] {
        let (status, _, allow, _) = ask(&a, method.clone(), "/nope").await;
        assert_eq!((status, allow), (StatusCode::NOT_FOUND, None), "{method}");
    }
}

/// Writes `request` on a fresh in-memory connection and reads the whole answer.
async fn exchange(request: &str) -> String {
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let stop = CancellationToken::new();
    let conn = tokio::spawn(serve_connection(
        TokioIo::new(server),
        Arc::new(answerer()),
        stop,
        Limits::default(),
    ));
    client.write_all(request.as_bytes()).await.expect("write");
    let mut out = String::new();
    client.read_to_string(&mut out).await.expect("read");
    conn.await.expect("connection task");
    out
}

#[tokio::test]
async fn head_over_http_has_the_length_and_no_body() {
    let get = exchange("GET /channels HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n").await;
    assert!(get.starts_with("HTTP/1.1 200"), "{get}");
    assert!(get.ends_with("\r\n\r\na up\nb down\n"), "{get}");
    let head = exchange("HEAD /channels HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("{CONTENT_LENGTH}: 12\r\n")),
        "{head}"
    );
    assert!(head.ends_with("\r\n\r\n"), "{head}");
}

#[tokio::test(start_paused = true)]
async fn a_request_head_that_stalls_is_closed_at_the_timeout() {
    let (mut client, server) = tokio::io::duplex(1024);
    let limits = Limits::default();
    let conn = tokio::spawn(serve_connection(
        TokioIo::new(server),
        Arc::new(answerer()),
        CancellationToken::new(),
        limits,
    ));
    let start = tokio::time::Instant::now();
    client
        .write_all(b"GET /live HTTP/1.1\r\nhost: a\r\n")
        .await
        .expect("write");
    let mut out = Vec::new();
    client.read_to_end(&mut out).await.expect("read");
    let waited = start.elapsed();
    conn.await.expect("connection task");
    assert!(
        !String::from_utf8_lossy(&out).contains("200"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert!(
        waited >= limits.header_read_timeout
            && waited < limits.header_read_timeout + Duration::from_secs(1),
        "{waited:?}"
    );
}

#[test]
fn proc_stat_fields_are_read_after_the_command_name() {
    // pid, a command name with a space and a ')', then fields 3..=24 of proc(5).
    let stat = "4242 (cmg (x) y) S 1 2 3 0 -1 4194560 500 0 0 0 250 150 0 0 20 0 7 0 \
                123400 987654321 2000 18446744073709551615";
    let mut s = Sample::default();
    s.apply_stat(stat, Some(1_700_000_000));
    assert_eq!(s.cpu_seconds, Some(4.0));
    assert_eq!(s.threads, Some(7));
    assert_eq!(s.start_time_seconds, Some(1_700_001_234.0));
    assert_eq!(s.virtual_bytes, Some(987_654_321));

    let mut s = Sample::default();
    s.apply_stat("garbage", None);
    assert_eq!(s, Sample::default());
}

#[test]
fn proc_status_limits_and_boot_time() {
    let status = "Name:\tcmg\nVmPeak:\t  9000 kB\nVmRSS:\t    2048 kB\nThreads:\t7\n";
    assert_eq!(resident_bytes(status), Some(2048 * 1024));
    assert_eq!(resident_bytes("Name:\tcmg\n"), None);
    let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                  Max cpu time              unlimited            unlimited            seconds   \n\
                  Max open files            1024                 524288               files     \n";
    assert_eq!(max_open_files(limits), Some(1024));
    let unlimited = "Max open files            unlimited            unlimited            files\n";
    assert_eq!(max_open_files(unlimited), None);
    assert_eq!(
        boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n"),
        Some(1_700_000_000)
    );
    assert_eq!(boot_time("cpu 1\n"), None);
}
