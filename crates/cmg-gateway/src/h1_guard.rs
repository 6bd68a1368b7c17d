//! An HTTP/1.1 head scanner in front of hyper, for the one smuggling shape hyper
//! accepts silently: a request with both `Content-Length` and `Transfer-Encoding`.
//! hyper (RFC 9112 §6.3) drops the `Content-Length`, frames by chunked and closes the
//! connection afterwards; a front end that frames the other way would disagree with
//! us, so cmg refuses the request outright (400), as the issue and most CDNs do.
//!
//! The scanner (fed by the connection's IO wrapper, `conn::Watched`) follows message framing (heads, fixed-length and chunked bodies) over
//! the bytes hyper reads, so it only ever looks at heads, never at body bytes. Every
//! other malformed shape (differing duplicate `Content-Length`, bad chunk sizes,
//! obs-fold, non-chunked `Transfer-Encoding`) is refused by hyper itself; when the
//! scanner meets something it cannot frame, it stops and leaves the verdict to hyper.
//! Written by hand because no crate offers a passive framing tracker; httparse (hyper's
//! own parser) does the head parsing.
//!
//! The scanner also times request heads: hyper's `header_read_timeout` runs from the
//! moment it waits for a head, so on a keep-alive connection it is really an idle
//! timeout. The scanner notes when the first byte of a head arrives; the connection
//! closes a head still incomplete `header_read_timeout` later (slowloris).

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Reason code of the refused shape.
pub const CL_AND_TE: &str = "content_length_with_transfer_encoding";

const NONE: u64 = u64::MAX;
const MAX_CHUNK_LINE: usize = 4096;

/// Shared between the scanner (in the connection's IO) and the request handler.
#[derive(Debug)]
pub struct GuardState {
    max_head: usize,
    epoch: tokio::time::Instant,
    /// Milliseconds after `epoch` when the first byte of the pending head arrived.
    head_started: AtomicU64,
    /// Woken when a head starts, so the connection can arm its header timer.
    head_notify: tokio::sync::Notify,
    /// Index of the first request whose head had both framing headers.
    first_violation: AtomicU64,
    /// Requests handed to the handler so far.
    served: AtomicU64,
}

impl GuardState {
    pub fn new(max_head: usize) -> Self {
        Self {
            max_head,
            epoch: tokio::time::Instant::now(),
            head_started: AtomicU64::new(NONE),
            head_notify: tokio::sync::Notify::new(),
            first_violation: AtomicU64::new(NONE),
            served: AtomicU64::new(0),
        }
    }

    /// When the first byte of a still incomplete request head arrived.
    pub fn head_started(&self) -> Option<tokio::time::Instant> {
        let ms = self.head_started.load(Ordering::Relaxed);
        (ms != NONE).then(|| self.epoch + std::time::Duration::from_millis(ms))
    }

    /// Resolves when a head starts arriving.
    pub async fn head_begun(&self) {
        self.head_notify.notified().await
    }

    fn head_begins(&self) {
        if self.head_started.load(Ordering::Relaxed) == NONE {
            let ms = self.epoch.elapsed().as_millis() as u64;
            self.head_started.store(ms, Ordering::Relaxed);
            self.head_notify.notify_one();
        }
    }

    fn head_ends(&self) {
        self.head_started.store(NONE, Ordering::Relaxed);
    }

    /// Called once per request by the handler, in order.
    pub fn next_request(&self) -> Option<&'static str> {
        let index = self.served.fetch_add(1, Ordering::Relaxed);
        (index >= self.first_violation.load(Ordering::Relaxed)).then_some(CL_AND_TE)
    }
}

#[derive(Debug)]
enum State {
    Head(Vec<u8>),
    Body(u64),
    ChunkSize(Vec<u8>),
    ChunkData(u64),
    ChunkCrlf(u8),
    Trailers(Vec<u8>),
    /// Something the scanner does not frame (upgrade, malformed input): hyper decides.
    Off,
}

/// The scanner's framing state over one connection's inbound bytes.
#[derive(Debug)]
pub struct Scanner {
    state: State,
    heads: u64,
    shared: Arc<GuardState>,
}

impl Scanner {
    pub fn new(shared: Arc<GuardState>) -> Self {
        Self {
            state: State::Head(Vec::new()),
            heads: 0,
            shared,
        }
    }

    /// Whether every byte fed so far belonged to complete messages: no head, body or
    /// trailer is partly read (and the scanner has not stopped).
    pub fn between_messages(&self) -> bool {
        matches!(&self.state, State::Head(buf) if buf.is_empty())
    }

    /// How many complete request heads were fed so far.
    pub fn heads(&self) -> u64 {
        self.heads
    }

    /// Feeds bytes in the order hyper reads them.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            data = match &mut self.state {
                State::Off => return,
                State::Body(left) => {
                    let n = (*left).min(data.len() as u64);
                    *left -= n;
                    if *left == 0 {
                        self.state = State::Head(Vec::new());
                    }
                    &data[n as usize..]
                }
                State::ChunkData(left) => {
                    let n = (*left).min(data.len() as u64);
                    *left -= n;
                    if *left == 0 {
                        self.state = State::ChunkCrlf(2);
                    }
                    &data[n as usize..]
                }
                State::ChunkCrlf(left) => {
                    let n = (*left as usize).min(data.len());
                    *left -= n as u8;
                    if *left == 0 {
                        self.state = State::ChunkSize(Vec::new());
                    }
                    &data[n..]
                }
                State::ChunkSize(line) => {
                    let (taken, done) = take_line(line, data);
                    if line.len() > MAX_CHUNK_LINE {
                        self.state = State::Off;
                        return;
                    }
                    if done {
                        self.state = match chunk_size(line) {
                            Some(0) => State::Trailers(Vec::new()),
                            Some(n) => State::ChunkData(n),
                            None => State::Off,
                        };
                    }
                    &data[taken..]
                }
                State::Trailers(buf) => {
                    let (taken, done) = take_line(buf, data);
                    if buf.len() > self.shared.max_head {
                        self.state = State::Off;
                        return;
                    }
                    if done {
                        // An empty line ends the trailers; otherwise it was a trailer field.
                        if buf == b"\r\n" || buf == b"\n" {
                            self.state = State::Head(Vec::new());
                        } else {
                            buf.clear();
                        }
                    }
                    &data[taken..]
                }
                State::Head(buf) if buf.is_empty() => {
                    // The usual case: the whole head came in this read. Parsed where it
                    // lies; only a head split across reads is copied.
                    self.shared.head_begins();
                    match self.head(data) {
                        Some(len) => &data[len..],
                        None => {
                            if let State::Head(buf) = &mut self.state {
                                buf.extend_from_slice(data);
                            }
                            return;
                        }
                    }
                }
                State::Head(buf) => {
                    let start = buf.len();
                    buf.extend_from_slice(data);
                    let head = std::mem::take(buf);
                    match self.head(&head) {
                        Some(len) => &data[len - start..],
                        None => {
                            if let State::Head(buf) = &mut self.state {
                                *buf = head;
                            }
                            return;
                        }
                    }
                }
            };
        }
    }

    /// Parses `bytes`, the start of a head (the pending one's bytes so far); returns the
    /// head's length once complete, or `None` when more are needed (the state is left
    /// as it was) or scanning stopped (the state is `Off`).
    fn head(&mut self, bytes: &[u8]) -> Option<usize> {
        // hyper skips empty lines before a request line; so does the scanner.
        let skip = bytes
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        // Not zeroed first: httparse writes every field it returns.
        let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; 256];
        let mut req = httparse::Request::new(&mut []);
        let len = match req.parse_with_uninit_headers(&bytes[skip..], &mut fields) {
            Ok(httparse::Status::Complete(n)) => skip + n,
            Ok(httparse::Status::Partial) if bytes.len() <= self.shared.max_head => return None,
            _ => {
                // hyper refuses this head itself; stop timing and scanning.
                self.shared.head_ends();
                self.state = State::Off;
                return None;
            }
        };
        self.shared.head_ends();
        let index = self.heads;
        self.heads += 1;
        let mut te: Option<&[u8]> = None;
        let mut cl: Option<&[u8]> = None;
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("transfer-encoding") {
                te = Some(h.value);
            } else if h.name.eq_ignore_ascii_case("content-length") {
                cl = Some(h.value);
            }
        }
        let upgrade = req.method == Some("CONNECT")
            || req
                .headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case("upgrade"));
        self.state = match (te, cl) {
            _ if upgrade => State::Off,
            (Some(_), Some(_)) => {
                let _ = self.shared.first_violation.compare_exchange(
                    NONE,
                    index,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                // hyper closes the connection after this request: nothing more to frame.
                State::Off
            }
            (Some(te), None) if last_coding_is_chunked(te) => State::ChunkSize(Vec::new()),
            (Some(_), None) => State::Off,
            (None, Some(cl)) => match std::str::from_utf8(cl)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
            {
                Some(0) => State::Head(Vec::new()),
                Some(n) => State::Body(n),
                None => State::Off,
            },
            (None, None) => State::Head(Vec::new()),
        };
        Some(len)
    }
}

fn last_coding_is_chunked(te: &[u8]) -> bool {
    te.rsplit(|b| *b == b',')
        .next()
        .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// Appends bytes up to and including the first `\n`; returns (bytes taken, line done).
fn take_line(line: &mut Vec<u8>, data: &[u8]) -> (usize, bool) {
    match data.iter().position(|b| *b == b'\n') {
        Some(i) => {
            line.extend_from_slice(&data[..=i]);
            (i + 1, true)
        }
        None => {
            line.extend_from_slice(data);
            (data.len(), false)
        }
    }
}

fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits: Vec<u8> = line
        .iter()
        .copied()
        .take_while(|b| b.is_ascii_hexdigit())
        .collect();
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(&digits).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(pieces: &[&[u8]]) -> (Arc<GuardState>, Vec<Option<&'static str>>) {
        let shared = Arc::new(GuardState::new(16 * 1024));
        let mut s = Scanner::new(shared.clone());
        for p in pieces {
            s.feed(p);
        }
        let verdicts = (0..s.heads).map(|_| shared.next_request()).collect();
        (shared, verdicts)
    }

    #[test]
    fn flags_content_length_with_transfer_encoding() {
        let (_, v) = scan(&[b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"]);
        assert_eq!(v, vec![Some(CL_AND_TE)]);
        let (_, v) =
            scan(&[b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\ncontent-length: 4\r\n\r\n"]);
        assert_eq!(v, vec![Some(CL_AND_TE)]);
    }

    #[test]
    fn follows_bodies_without_reading_them_as_heads() {
        // The body of the first request looks like a smuggled head; it must not count.
        let body = b"GET /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let head = format!(
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let chunked = b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n";
        let last = b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut all = head.into_bytes();
        all.extend_from_slice(body);
        all.extend_from_slice(chunked);
        all.extend_from_slice(last);
        // Fed one byte at a time and all at once: same verdicts.
        let bytes: Vec<&[u8]> = all.chunks(1).collect();
        let (_, v) = scan(&bytes);
        assert_eq!(v, vec![None, None, None]);
        let (_, v) = scan(&[&all]);
        assert_eq!(v, vec![None, None, None]);
    }

    #[test]
    fn a_later_request_is_flagged_not_the_earlier_one() {
        let (_, v) = scan(&[
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        ]);
        assert_eq!(v, vec![None, Some(CL_AND_TE)]);
    }

    #[test]
    fn a_head_split_across_reads_is_timed_from_its_first_byte_and_framed_whole() {
        let shared = Arc::new(GuardState::new(16 * 1024));
        let mut s = Scanner::new(shared.clone());
        s.feed(b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n");
        assert!(
            shared.head_started().is_some(),
            "a partial head is being timed"
        );
        assert!(!s.between_messages());
        s.feed(b"Transfer-Encoding: chunked\r\n\r\n");
        assert!(
            shared.head_started().is_none(),
            "the complete head is no longer timed"
        );
        assert_eq!(s.heads(), 1);
        assert_eq!(shared.next_request(), Some(CL_AND_TE));
        // A whole head in one read, then its body: between messages again.
        let mut s = Scanner::new(Arc::new(GuardState::new(16 * 1024)));
        s.feed(b"POST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi");
        assert!(s.between_messages());
        assert_eq!(s.heads(), 1);
    }

    #[test]
    fn stops_on_garbage_and_leaves_it_to_hyper() {
        let (_, v) = scan(&[
            b"POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET / HTTP/1.1\r\n\r\n",
        ]);
        assert_eq!(v, vec![None]);
    }
}
