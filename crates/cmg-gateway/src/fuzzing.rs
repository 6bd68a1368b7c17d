//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, off in every
//! build the project ships): the two parsers of the gateway that see a client's bytes
//! before TLS or before hyper, reached without widening the crate's public API. Not
//! for any other use; `#[doc(hidden)]` at the crate root.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::h1_guard::{GuardState, Scanner};

/// Feeds `chunks` to the HTTP/1 head scanner in order, as hyper would read them, and
/// returns the verdict for the first `requests` requests.
pub fn h1_guard(chunks: &[&[u8]], requests: usize) -> Vec<Option<&'static str>> {
    let state = Arc::new(GuardState::new(64 * 1024));
    let mut scanner = Scanner::new(state.clone());
    for chunk in chunks {
        scanner.feed(chunk);
    }
    let _ = state.head_started();
    (0..requests).map(|_| state.next_request()).collect()
}

/// Reads a PROXY protocol header from the front of `bytes`: the client's address, or
/// the refusal's reason code.
pub fn proxy_header(bytes: &[u8]) -> Result<SocketAddr, &'static str> {
    let peer = SocketAddr::from(([192, 0, 2, 1], 443));
    let mut io = bytes;
    let fut = std::pin::pin!(crate::proxy_header::read(&mut io, peer));
    // A byte slice never makes a read wait, so one poll decides.
    match fut.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result.map_err(|e| e.code()),
        Poll::Pending => Err("pending"),
    }
}
