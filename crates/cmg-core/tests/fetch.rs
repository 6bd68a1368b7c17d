//! The bounded fetcher against hostile loopback servers: one that trickles, one that
//! sends a 1 GiB body, one that declares 1 GiB; plus the honest cases. Each hostile
//! case runs with both transports (plain HTTP only, and HTTPS-capable on an `http://`
//! URL), which share the bounds.

use std::time::{Duration, Instant};

use cmg_core::fetch::{FetchError, FetchLimits, HttpFetcher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The plain-HTTP fetcher and the HTTPS-capable one.
fn fetchers() -> [HttpFetcher; 2] {
    let https = HttpFetcher::with_roots(rustls::RootCertStore::empty(), &LIMITS).expect("fetcher");
    [HttpFetcher::http(&LIMITS), https]
}

fn fetcher() -> HttpFetcher {
    HttpFetcher::http(&LIMITS)
}

/// Serves each connection with `serve` on 127.0.0.1:0; the task ends with the runtime.
async fn spawn_server<F, Fut>(serve: F) -> String
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
    format!("http://{addr}/doc")
}

/// Reads the request head (up to the blank line).
async fn read_head(stream: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => buf.push(byte[0]),
            _ => return,
        }
    }
}

const LIMITS: FetchLimits = FetchLimits {
    connect_timeout: Duration::from_secs(1),
    timeout: Duration::from_secs(2),
    max_bytes: 256 * 1024,
};

#[tokio::test]
async fn body_that_trickles_one_byte_per_second_times_out() {
    let url = spawn_server(|mut s| async move {
        read_head(&mut s).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
            .await;
        for _ in 0..100 {
            if s.write_all(b"x").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await;
    for f in fetchers() {
        let start = Instant::now();
        let err = f.get(&url, &LIMITS).await.expect_err("trickle");
        let took = start.elapsed();
        assert!(matches!(err, FetchError::Timeout(_)), "{err}");
        assert!(took < Duration::from_secs(4), "took {took:?}");
    }
}

#[tokio::test]
async fn response_head_that_trickles_times_out() {
    let url = spawn_server(|mut s| async move {
        read_head(&mut s).await;
        for b in b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}" {
            if s.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await;
    for f in fetchers() {
        let start = Instant::now();
        let err = f.get(&url, &LIMITS).await.expect_err("trickle");
        assert!(matches!(err, FetchError::Timeout(_)), "{err}");
        assert!(start.elapsed() < Duration::from_secs(4));
    }
}

#[tokio::test]
async fn streamed_one_gib_body_is_cut_off_quickly() {
    let url = spawn_server(|mut s| async move {
        read_head(&mut s).await;
        // No length: the body runs until the connection closes.
        if s.write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..(1u64 << 30) / chunk.len() as u64 {
            if s.write_all(&chunk).await.is_err() {
                return; // the client hung up: good
            }
        }
    })
    .await;
    let limits = FetchLimits {
        timeout: Duration::from_secs(30),
        ..LIMITS
    };
    for f in fetchers() {
        let start = Instant::now();
        let err = f.get(&url, &limits).await.expect_err("1 GiB");
        let took = start.elapsed();
        assert!(
            matches!(err, FetchError::TooLarge { limit } if limit == 256 * 1024),
            "{err}"
        );
        assert!(took < Duration::from_secs(3), "took {took:?}");
    }
}

#[tokio::test]
async fn chunked_one_gib_body_is_cut_off_quickly() {
    let url = spawn_server(|mut s| async move {
        read_head(&mut s).await;
        if s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
        let mut chunk = b"10000\r\n".to_vec();
        chunk.extend(std::iter::repeat_n(b'b', 0x10000));
        chunk.extend(b"\r\n");
        for _ in 0..(1u64 << 30) / 0x10000 {
            if s.write_all(&chunk).await.is_err() {
                return;
            }
        }
    })
    .await;
    for f in fetchers() {
        let start = Instant::now();
        let err = f.get(&url, &LIMITS).await.expect_err("1 GiB");
        assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(3));
    }
}

#[tokio::test]
async fn declared_one_gib_is_refused_before_the_body() {
    let url = spawn_server(|mut s| async move {
        read_head(&mut s).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1073741824\r\n\r\n")
            .await;
        // Send nothing more: a fetcher waiting for the body would time out instead.
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    for f in fetchers() {
        let err = f.get(&url, &LIMITS).await.expect_err("1 GiB");
        assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
    }
}

#[tokio::test]
async fn honest_answers() {
    let url = spawn_server(|mut s| async move {
        read_head(&mut s).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n{\"keys\":[]}")
            .await;
    })
    .await;
    for f in fetchers() {
        let body = f.get(&url, &LIMITS).await.expect("fetch");
        assert_eq!(&body[..], b"{\"keys\":[]}");
    }

    let url = spawn_server(|mut s| async move {
        read_head(&mut s).await;
        let _ = s
            .write_all(
                b"HTTP/1.1 302 Found\r\nlocation: http://example.com/\r\ncontent-length: 0\r\n\r\n",
            )
            .await;
    })
    .await;
    for f in fetchers() {
        let err = f.get(&url, &LIMITS).await.expect_err("redirect");
        assert!(matches!(err, FetchError::Status(302)), "{err}");
    }

    // Nothing listening: a connection error, not a hang.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let err = fetcher()
        .get(&format!("http://{addr}/"), &LIMITS)
        .await
        .expect_err("refused");
    assert!(matches!(err, FetchError::Connect(_)), "{err}");

    for f in fetchers() {
        let err = f.get("ftp://x/", &LIMITS).await.expect_err("scheme");
        assert!(matches!(err, FetchError::Url(_)), "{err}");
    }
    // The plain fetcher refuses https:// before connecting.
    let err = fetcher()
        .get("https://127.0.0.1:1/", &LIMITS)
        .await
        .expect_err("https");
    assert!(matches!(err, FetchError::Url(_)), "{err}");
}

/// Reads the request head and returns it with the body of `content-length` bytes.
async fn read_request(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await.expect("request body");
    (head, body)
}

#[tokio::test]
async fn post_sends_body_content_type_and_headers() {
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let url = spawn_server(move |mut s| {
        let seen_tx = seen_tx.clone();
        async move {
            let (head, body) = read_request(&mut s).await;
            let _ = seen_tx.send((head, body));
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nyes")
                .await;
        }
    })
    .await;
    let fetcher = fetcher()
        .with_user_agent("cmg-test")
        .with_accept("application/ocsp-response");
    let answer = fetcher
        .post(&url, "application/ocsp-request", "ask".into(), &LIMITS)
        .await
        .expect("post");
    assert_eq!(&answer[..], b"yes");
    let (head, body) = seen_rx.recv().await.expect("request seen");
    assert!(head.starts_with("post /doc http/1.1"), "{head}");
    assert!(
        head.contains("content-type: application/ocsp-request"),
        "{head}"
    );
    assert!(head.contains("user-agent: cmg-test"), "{head}");
    assert!(head.contains("accept: application/ocsp-response"), "{head}");
    assert_eq!(body, b"ask");
}
