//! Raw HTTP/1.1 over TLS: for the requests a well-behaved client library refuses to
//! build (smuggling shapes, absolute-form targets, control bytes, folded headers).

use std::time::Duration;

use anyhow::{bail, Context as _};
use cmg_cluster::Cluster;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::{spec, Cert};

/// Bound on every raw exchange.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RESPONSE: usize = 1024 * 1024;

/// A raw TLS connection to gateway `gw`'s client port, ALPN `http/1.1`.
pub async fn connect(
    cluster: &Cluster,
    gw: usize,
    cert: Cert,
) -> anyhow::Result<TlsStream<TcpStream>> {
    connect_alpn(cluster, gw, cert, cmg_client::ALPN_HTTP11).await
}

/// A raw TLS connection to gateway `gw`'s client port offering only `alpn`.
pub async fn connect_alpn(
    cluster: &Cluster,
    gw: usize,
    cert: Cert,
    alpn: &[u8],
) -> anyhow::Result<TlsStream<TcpStream>> {
    let config = cmg_client::tls_config(&cluster.client_tls(cert), vec![alpn.to_vec()])?;
    let tcp = TcpStream::connect(cluster.gateways[gw].client)
        .await
        .context("connect")?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(spec::SERVICE_NAME)?.to_owned();
    let tls = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .context("TLS handshake")?;
    Ok(tls)
}

/// One response as read off the wire.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Status line and headers, as text.
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends `request` (bytes as given) on a fresh connection with a valid client
/// certificate and reads one response.
pub async fn exchange(cluster: &Cluster, gw: usize, request: &[u8]) -> anyhow::Result<RawResponse> {
    let mut tls = connect(cluster, gw, Cert::Valid).await?;
    tokio::time::timeout(EXCHANGE_TIMEOUT, async {
        tls.write_all(request).await.context("write request")?;
        tls.flush().await?;
        read_response(&mut tls).await
    })
    .await
    .context("raw exchange timed out")?
}

/// Reads one response: the head, then a `Content-Length` body, or up to EOF without one.
pub async fn read_response(tls: &mut TlsStream<TcpStream>) -> anyhow::Result<RawResponse> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = find(&buf, b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > MAX_RESPONSE {
            bail!("response head too large");
        }
        let n = tls.read(&mut chunk).await.context("read response head")?;
        if n == 0 {
            bail!(
                "connection closed before a response head ({} bytes: {:?})",
                buf.len(),
                String::from_utf8_lossy(&buf)
            );
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .with_context(|| format!("bad status line in {head:?}"))?;
    let mut resp = RawResponse {
        status,
        head,
        body: buf[head_end..].to_vec(),
    };
    let length = resp
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok());
    loop {
        if length.is_some_and(|len| resp.body.len() >= len) || resp.body.len() > MAX_RESPONSE {
            break;
        }
        match tls.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => resp.body.extend_from_slice(&chunk[..n]),
            // A peer that closes without close_notify after a complete answer.
            Err(_) if length.is_none() => break,
            Err(e) => return Err(e).context("read response body"),
        }
    }
    if let Some(len) = length {
        resp.body.truncate(len);
    }
    Ok(resp)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `<method> <target> HTTP/1.1` with `Host`, the test tag, `Connection: close`, the
/// extra header lines (each ending in CRLF) and the raw body.
pub fn request(method: &str, target: &str, tag: &str, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\n{}: {tag}\r\nConnection: close\r\n{extra}\r\n",
        spec::SERVICE_NAME,
        crate::TAG
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}
