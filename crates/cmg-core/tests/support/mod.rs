//! Shared by the admin listener's loopback tests: a role with a gate in `/ready`, and a
//! raw HTTP/1.1 exchange that reads exactly one answer (so a keep-alive connection can
//! be kept open).

#![allow(dead_code)]

use std::sync::Arc;

use cmg_core::admin::{AdminRoutes, Readiness};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// `/ready` tells `entered`, then waits for `gate` before answering.
#[derive(Debug, Default)]
pub struct GatedRoutes {
    pub entered: Notify,
    pub gate: Notify,
}

impl AdminRoutes for GatedRoutes {
    const ROLE: &'static str = "test";

    async fn ready(&self) -> Readiness {
        self.entered.notify_one();
        self.gate.notified().await;
        Readiness::Ready("after the gate".into())
    }

    async fn encode_metrics(&self, _out: &mut String) {}
}

pub fn gated() -> Arc<GatedRoutes> {
    Arc::new(GatedRoutes::default())
}

/// Sends `GET path` (keep-alive unless `close`).
pub async fn send(tcp: &mut TcpStream, path: &str, close: bool) {
    let connection = if close { "close" } else { "keep-alive" };
    let head = format!("GET {path} HTTP/1.1\r\nhost: admin\r\nconnection: {connection}\r\n\r\n");
    tcp.write_all(head.as_bytes()).await.expect("write");
}

/// Reads one answer (head and a `content-length` body): `None` if the server closed the
/// connection before a whole answer.
pub async fn answer(tcp: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Some(String::from_utf8_lossy(&buf[..end + 4 + len]).into_owned());
            }
        }
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// True once the server has closed `tcp` (reads end of stream, or a reset).
pub async fn closed(tcp: &mut TcpStream) -> bool {
    let mut chunk = [0u8; 64];
    matches!(tcp.read(&mut chunk).await, Ok(0) | Err(_))
}
