//! Raw HTTP/2 frames over TLS: for the abuse a well-behaved HTTP/2 library never sends
//! (rapid resets, CONTINUATION and SETTINGS floods, window overflows, data beyond the
//! window, pings nobody reads the answer to).
//!
//! [`Frames`] writes frames exactly as told; a reader task counts in [`Seen`] what the peer sends back
//! (GOAWAY with its error code, RST_STREAM, DATA bytes, acknowledgements) and says when
//! the peer closed. The attacker decides whether to read at all: a peer that never
//! reads is part of several attacks. Header blocks are HPACK literals without indexing
//! ([`header_block`]), enough for requests; no Huffman coding.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{watch, Mutex};

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

/// What the peer sent back, as counted by the reader.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// The error code of the first GOAWAY, if one came.
    pub goaway: Option<u32>,
    pub rst_streams: u64,
    pub data_bytes: u64,
    pub headers: u64,
    /// The stream of the latest HEADERS frame (for a server: the latest request).
    pub last_headers_stream: u32,
    /// The stream and first bytes (at most 64) of the first DATA frame of each stream,
    /// for the first 1,024 streams: tells requests apart by their bodies.
    pub first_data: Vec<(u32, Vec<u8>)>,
    pub settings_acks: u64,
    pub ping_acks: u64,
    /// The peer closed the connection (EOF or a read error).
    pub closed: bool,
}

impl Seen {
    /// The stream whose body starts with `prefix`, if one arrived.
    pub fn stream_with_body(&self, prefix: &[u8]) -> Option<u32> {
        self.first_data
            .iter()
            .find(|(_, data)| data.starts_with(prefix))
            .map(|(stream, _)| *stream)
    }
}

/// Which end of HTTP/2 the raw side plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends the connection preface (an attacking client).
    Client,
    /// Expects the preface (an attacking connection point: on a channel the gateway is
    /// the HTTP/2 client).
    Server,
}

/// How the raw side reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Nothing reads: the peer's writes pile up in the socket buffers.
    Never,
    /// Every frame is read and counted.
    Count,
    /// As `Count`, and every PING is answered (a peer whose keep-alive must see a live
    /// connection until the attack starts).
    CountAndPong,
}

/// The write half of a raw HTTP/2 connection (shared with the reader for PING answers).
#[derive(Debug)]
pub struct Frames<S> {
    w: Arc<Mutex<WriteHalf<S>>>,
    stop_reading: Arc<AtomicBool>,
}

impl<S: AsyncRead + AsyncWrite> Frames<S> {
    /// Writes `bytes` and flushes, bounded by `within`; an error when the peer stopped
    /// taking bytes (its receive buffers full) or closed.
    pub async fn send(&mut self, bytes: &[u8], within: Duration) -> anyhow::Result<()> {
        send(&self.w, bytes, within).await
    }

    /// Closes our side (TLS close_notify, then FIN): the peer sees the connection end.
    pub async fn close(&mut self) {
        let _ = self.w.lock().await.shutdown().await;
    }

    /// Stops the reader after the frame it is reading: from then on nothing reads.
    pub fn stop_reading(&self) {
        self.stop_reading.store(true, Ordering::Relaxed);
    }
}

async fn send<S: AsyncWrite>(
    w: &Mutex<WriteHalf<S>>,
    bytes: &[u8],
    within: Duration,
) -> anyhow::Result<()> {
    tokio::time::timeout(within, async {
        let mut w = w.lock().await;
        w.write_all(bytes).await?;
        w.flush().await
    })
    .await
    .context("the peer stopped reading")?
    .context("write")
}

/// Splits `io` (a TLS stream that negotiated `h2` or the channel's ALPN) into a frame
/// writer and, unless `reading` is [`Reading::Never`], a task that reads and counts
/// every frame the peer sends. Sends our SETTINGS (after the preface for a client);
/// when reading, it also acknowledges the peer's first SETTINGS.
pub async fn start<S>(
    io: S,
    role: Role,
    reading: Reading,
) -> anyhow::Result<(Frames<S>, watch::Receiver<Seen>)>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut r, w) = tokio::io::split(io);
    let frames = Frames {
        w: Arc::new(Mutex::new(w)),
        stop_reading: Arc::new(AtomicBool::new(false)),
    };
    if role == Role::Server {
        let mut preface = [0u8; PREFACE.len()];
        tokio::time::timeout(Duration::from_secs(5), r.read_exact(&mut preface))
            .await
            .context("no client preface")?
            .context("read the client preface")?;
        anyhow::ensure!(preface == PREFACE, "not an HTTP/2 client preface");
    }
    let mut hello = if role == Role::Client {
        PREFACE.to_vec()
    } else {
        Vec::new()
    };
    hello.extend(settings(&[]));
    if reading != Reading::Never {
        // Our ack of the peer's first SETTINGS: sent blind, it always comes first.
        hello.extend(frame(kind::SETTINGS, flag::ACK, 0, &[]));
    }
    send(&frames.w, &hello, Duration::from_secs(5)).await?;
    let (tx, rx) = watch::channel(Seen::default());
    if reading == Reading::Never {
        // The read half stays open, held by a task that never ends before the runtime.
        tokio::spawn(async move {
            let _r = r;
            std::future::pending::<()>().await;
        });
    } else {
        let pong = (reading == Reading::CountAndPong).then(|| frames.w.clone());
        tokio::spawn(count_frames(r, pong, frames.stop_reading.clone(), tx));
    }
    Ok((frames, rx))
}

/// Reads frames until the peer closes, publishing the counts after each one, and
/// answering PINGs when given the writer.
async fn count_frames<S: AsyncRead + AsyncWrite>(
    mut r: ReadHalf<S>,
    pong: Option<Arc<Mutex<WriteHalf<S>>>>,
    stop: Arc<AtomicBool>,
    tx: watch::Sender<Seen>,
) {
    let mut seen = Seen::default();
    let mut head = [0u8; 9];
    let mut payload = Vec::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            // Hold the read half open without reading until the runtime ends.
            let _r = r;
            std::future::pending::<()>().await;
            return;
        }
        if r.read_exact(&mut head).await.is_err() {
            break;
        }
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        payload.resize(len, 0);
        if r.read_exact(&mut payload).await.is_err() {
            break;
        }
        let (kind, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        match kind {
            kind::DATA => {
                seen.data_bytes += len as u64;
                if seen.first_data.len() < 1024
                    && !seen.first_data.iter().any(|(s, _)| *s == stream)
                {
                    seen.first_data
                        .push((stream, payload[..len.min(64)].to_vec()));
                }
            }
            kind::HEADERS => {
                seen.headers += 1;
                seen.last_headers_stream = stream;
            }
            kind::RST_STREAM => seen.rst_streams += 1,
            kind::SETTINGS if flags & flag::ACK != 0 => seen.settings_acks += 1,
            kind::PING if flags & flag::ACK != 0 => seen.ping_acks += 1,
            kind::PING => {
                if let Some(w) = &pong {
                    let ack = frame(kind::PING, flag::ACK, 0, &payload);
                    if send(w, &ack, Duration::from_secs(5)).await.is_err() {
                        break;
                    }
                }
            }
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
