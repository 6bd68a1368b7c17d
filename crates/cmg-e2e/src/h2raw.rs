//! Raw HTTP/2 frames over TLS: for the abuse a well-behaved HTTP/2 library never sends
//! (rapid resets, CONTINUATION and SETTINGS floods, window overflows, data beyond the
//! window, pings nobody reads the answer to).
//!
//! [`Frames`] writes frames exactly as told; [`Reader`] counts what the peer sends back
//! (GOAWAY with its error code, RST_STREAM, DATA bytes, acknowledgements) and says when
//! the peer closed. The attacker decides whether to read at all: a peer that never
//! reads is part of several attacks. Header blocks are HPACK literals without indexing
//! ([`header_block`]), enough for requests; no Huffman coding.

use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::watch;

/// The client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame types (RFC 9113 section 6).
pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags.
pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
}

/// SETTINGS identifiers.
pub mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
}

/// One frame: the 9-byte header and the payload.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    assert!(len < 1 << 24, "frame payload too long for a test frame");
    let mut out = Vec::with_capacity(9 + len);
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A SETTINGS frame with the given pairs.
pub fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::with_capacity(pairs.len() * 6);
    for (id, value) in pairs {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&value.to_be_bytes());
    }
    frame(kind::SETTINGS, 0, 0, &p)
}

/// A WINDOW_UPDATE frame.
pub fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    frame(kind::WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

/// An RST_STREAM frame with error code CANCEL.
pub fn rst_cancel(stream: u32) -> Vec<u8> {
    frame(kind::RST_STREAM, 0, stream, &8u32.to_be_bytes())
}

/// HPACK integer with an `n`-bit prefix whose high bits are `first`.
fn hpack_int(out: &mut Vec<u8>, first: u8, n: u8, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// One header as an HPACK literal without indexing, new name (RFC 7541 6.2.2).
pub fn literal(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.push(0x00);
    hpack_int(out, 0x00, 7, name.len());
    out.extend_from_slice(name.as_bytes());
    hpack_int(out, 0x00, 7, value.len());
    out.extend_from_slice(value);
}

/// The header block of a request: pseudo-headers, then `extra`.
pub fn header_block(method: &str, authority: &str, path: &str, extra: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    literal(&mut out, ":method", method.as_bytes());
    literal(&mut out, ":scheme", b"https");
    literal(&mut out, ":authority", authority.as_bytes());
    literal(&mut out, ":path", path.as_bytes());
    for (name, value) in extra {
        literal(&mut out, name, value);
    }
    out
}

/// What the peer sent back, as counted by [`Reader`].
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// The error code of the first GOAWAY, if one came.
    pub goaway: Option<u32>,
    pub rst_streams: u64,
    pub data_bytes: u64,
    pub headers: u64,
    pub settings_acks: u64,
    pub ping_acks: u64,
    /// The peer closed the connection (EOF or a read error).
    pub closed: bool,
}

/// The write half of a raw HTTP/2 connection.
#[derive(Debug)]
pub struct Frames<S> {
    w: WriteHalf<S>,
}

impl<S: AsyncRead + AsyncWrite> Frames<S> {
    /// Writes `bytes` and flushes, bounded by `within`; an error when the peer stopped
    /// taking bytes (its receive buffers full) or closed.
    pub async fn send(&mut self, bytes: &[u8], within: Duration) -> anyhow::Result<()> {
        tokio::time::timeout(within, async {
            self.w.write_all(bytes).await?;
            self.w.flush().await
        })
        .await
        .context("the peer stopped reading")?
        .context("write")
    }
}

/// Splits `io` (a TLS stream that negotiated `h2`) into a frame writer and, when `read`
/// is set, a task that reads and counts every frame the peer sends. Sends the preface
/// and an empty SETTINGS frame; with `read` it also acknowledges the peer's SETTINGS.
pub async fn start<S>(io: S, read: bool) -> anyhow::Result<(Frames<S>, watch::Receiver<Seen>)>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (r, w) = tokio::io::split(io);
    let mut frames = Frames { w };
    let mut hello = PREFACE.to_vec();
    hello.extend(settings(&[]));
    if read {
        // Our ack of the server's first SETTINGS: sent blind, it always comes first.
        hello.extend(frame(kind::SETTINGS, flag::ACK, 0, &[]));
    }
    frames.send(&hello, Duration::from_secs(5)).await?;
    let (tx, rx) = watch::channel(Seen::default());
    if read {
        tokio::spawn(count_frames(r, tx));
    } else {
        // Nothing reads: the half stays open (held by a task that never finishes until
        // the runtime ends) so the peer's writes pile up in the socket buffers.
        tokio::spawn(async move {
            let _r = r;
            std::future::pending::<()>().await;
        });
    }
    Ok((frames, rx))
}

/// Reads frames until the peer closes, publishing the counts after each one.
async fn count_frames<S: AsyncRead>(mut r: ReadHalf<S>, tx: watch::Sender<Seen>) {
    let mut seen = Seen::default();
    let mut head = [0u8; 9];
    let mut payload = Vec::new();
    loop {
        if r.read_exact(&mut head).await.is_err() {
            break;
        }
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        payload.resize(len, 0);
        if r.read_exact(&mut payload).await.is_err() {
            break;
        }
        let (kind, flags) = (head[3], head[4]);
        match kind {
            kind::DATA => seen.data_bytes += len as u64,
            kind::HEADERS => seen.headers += 1,
            kind::RST_STREAM => seen.rst_streams += 1,
            kind::SETTINGS if flags & flag::ACK != 0 => seen.settings_acks += 1,
            kind::PING if flags & flag::ACK != 0 => seen.ping_acks += 1,
            kind::GOAWAY if seen.goaway.is_none() && len >= 8 => {
                seen.goaway = Some(u32::from_be_bytes([
                    payload[4], payload[5], payload[6], payload[7],
                ]));
            }
            _ => {}
        }
        tx.send_replace(seen.clone());
    }
    seen.closed = true;
    tx.send_replace(seen);
}
