//! The gateway's HTTP/2 client end of a channel (what it sends upstream, to a
//! connection point), on the `h2` crate directly.
//!
//! A request is sent from the task that wants its answer (the client's connection, a
//! settings poll, a traffic post): the stream is opened and its response awaited right
//! there, and only a request body that is not complete when the request starts gets a
//! task of its own to stream it. hyper's HTTP/2 client, which this replaced, handed
//! every request through a queue to its connection task and spawned a task per request
//! to wait for the response: two extra task hops and about 9 % of the gateway's
//! instructions per proxied request (callgrind; bench/README.md, issue 19). What hyper
//! did on the way is done here: `content-length` from an exact body size, flow control
//! released as the response body is read, a reset with `NO_ERROR` or `CANCEL` after
//! the body ended read as its end, and a request body streamed within the stream's
//! send window.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use h2::client::SendRequest;
use h2::{RecvStream, SendStream};
use http::{header, HeaderValue, Method, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tracing::debug;

use crate::body::ForwardBody;

/// The sending half of a channel (cheap to clone).
#[derive(Debug, Clone)]
pub struct ChannelSender {
    h2: SendRequest<Bytes>,
    /// Set when the channel's connection ended.
    closed: Arc<AtomicBool>,
}

/// Why a request got no response head.
#[derive(Debug)]
pub enum SendError {
    /// The channel was closed or going away before the stream was opened: the request
    /// was never sent, and is handed back to go on another channel.
    NotSent(Box<Request<ForwardBody>>, h2::Error),
    /// The stream was opened and then failed (reset, connection lost).
    Failed(h2::Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotSent(_, e) => write!(f, "channel closed before the request was sent: {e}"),
            Self::Failed(e) => write!(f, "{e}"),
        }
    }
}

impl ChannelSender {
    pub fn new(h2: SendRequest<Bytes>) -> (Self, ClosedFlag) {
        let closed = Arc::new(AtomicBool::new(false));
        (
            Self {
                h2,
                closed: closed.clone(),
            },
            ClosedFlag(closed),
        )
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Sends `req` and waits for the response head. Waits first for a stream slot (the
    /// connection point's concurrent stream limit).
    pub async fn send(
        &self,
        req: Request<ForwardBody>,
    ) -> Result<Response<UpstreamBody>, SendError> {
        let mut h2 = self.h2.clone();
        if let Err(e) = std::future::poll_fn(|cx| h2.poll_ready(cx)).await {
            return Err(SendError::NotSent(Box::new(req), e));
        }
        let (mut parts, body) = req.into_parts();
        if let Some(len) = body.size_hint().exact() {
            if len != 0 || has_payload_semantics(&parts.method) {
                parts
                    .headers
                    .entry(header::CONTENT_LENGTH)
                    .or_insert_with(|| HeaderValue::from(len));
            }
        }
        let eos = body.is_end_stream();
        let head = Request::from_parts(parts, ());
        let (response, stream) = match h2.send_request(head, eos) {
            Ok(sent) => sent,
            Err(e) => return Err(SendError::Failed(e)),
        };
        // A body still to come streams from a task of its own, reset if this request
        // is given up before its response head (the caller timed out or went away).
        let give_up = (!eos).then(|| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            tokio::spawn(pipe(body, stream, rx));
            GiveUp(Some(tx))
        });
        let (parts, recv) = response.await.map_err(SendError::Failed)?.into_parts();
        if let Some(mut g) = give_up {
            g.0 = None; // answered: the body goes on streaming
        }
        let body = UpstreamBody::new(recv).with_length(&parts.headers);
        Ok(Response::from_parts(parts, body))
    }
}

/// Marks the channel closed when its connection ends (dropped with the connection's
/// driver).
#[derive(Debug)]
pub struct ClosedFlag(Arc<AtomicBool>);

impl Drop for ClosedFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Tells a request body's pipe to reset its stream when dropped armed.
struct GiveUp(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for GiveUp {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// Whether a request with this method carries a body by definition, so that an empty
/// one still gets `content-length: 0` (as hyper does).
fn has_payload_semantics(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::DELETE | Method::CONNECT
    )
}

/// Streams a request body on its stream within the send window; resets the stream if
/// the body fails (a client that broke its upload, or one over its limit) or the request
/// is given up (`give_up` fires).
async fn pipe(
    mut body: ForwardBody,
    mut stream: SendStream<Bytes>,
    mut give_up: tokio::sync::oneshot::Receiver<()>,
) {
    let mut answered = false;
    loop {
        let frame = std::future::poll_fn(|cx| {
            if !answered {
                match Pin::new(&mut give_up).poll(cx) {
                    Poll::Ready(Ok(())) => return Poll::Ready(Err(None)),
                    Poll::Ready(Err(_)) => answered = true,
                    Poll::Pending => {}
                }
            }
            // A reset from the connection point ends the upload.
            if let Poll::Ready(reason) = stream.poll_reset(cx) {
                return Poll::Ready(Err(Some(reason.map_or(h2::Reason::CANCEL, |r| r))));
            }
            Pin::new(&mut body).poll_frame(cx).map(Ok)
        })
        .await;
        match frame {
            Err(None) => {
                debug!("request given up before its answer; body stream reset");
                stream.send_reset(h2::Reason::CANCEL);
                return;
            }
            Err(Some(reason)) => {
                debug!(%reason, "request body stream reset by the connection point");
                return;
            }
            Ok(None) => {
                let _ = stream.send_data(Bytes::new(), true);
                return;
            }
            Ok(Some(Err(e))) => {
                debug!(error = %e, "request body failed; stream reset");
                stream.send_reset(h2::Reason::INTERNAL_ERROR);
                return;
            }
            Ok(Some(Ok(frame))) => {
                let frame = match frame.into_data() {
                    Ok(mut data) => {
                        // Within the send window: wait for capacity for each piece.
                        while !data.is_empty() {
                            stream.reserve_capacity(data.len());
                            let granted =
                                match std::future::poll_fn(|cx| stream.poll_capacity(cx)).await {
                                    Some(Ok(n)) => n,
                                    Some(Err(e)) => {
                                        debug!(error = %e, "request body stream closed");
                                        return;
                                    }
                                    None => return,
                                };
                            let piece = data.split_to(granted.min(data.len()));
                            let end = data.is_empty() && body.is_end_stream();
                            if stream.send_data(piece, end).is_err() {
                                return;
                            }
                            if end {
                                return;
                            }
                        }
                        continue;
                    }
                    Err(frame) => frame,
                };
                if let Ok(trailers) = frame.into_trailers() {
                    let _ = stream.send_trailers(trailers);
                    return;
                }
            }
        }
    }
}

/// A response body from a channel: data as it arrives (its flow control released as it
/// is read), then trailers.
#[derive(Debug)]
pub struct UpstreamBody {
    recv: RecvStream,
    /// From the response's `content-length`: what is still to come, when known.
    remaining: Option<u64>,
    data_done: bool,
}

impl UpstreamBody {
    fn new(recv: RecvStream) -> Self {
        Self {
            recv,
            remaining: None,
            data_done: false,
        }
    }

    /// Takes the length announced in the response's head, for the size hint.
    fn with_length(mut self, headers: &http::HeaderMap) -> Self {
        self.remaining = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        self
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let this = &mut *self;
        if !this.data_done {
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = this.recv.flow_control().release_capacity(data.len());
                    if let Some(left) = &mut this.remaining {
                        *left = left.saturating_sub(data.len() as u64);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => return Poll::Ready(ended_or_failed(e)),
                None => this.data_done = true,
            }
        }
        match ready!(this.recv.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(e) => Poll::Ready(ended_or_failed(e)),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// A stream reset with `NO_ERROR` or `CANCEL` ends the body rather than failing it (a
/// peer may reset a stream whose answer it has sent in full).
fn ended_or_failed(e: h2::Error) -> Option<Result<Frame<Bytes>, h2::Error>> {
    match e.reason() {
        Some(h2::Reason::NO_ERROR) | Some(h2::Reason::CANCEL) => None,
        _ => Some(Err(e)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use http_body_util::{BodyExt, StreamBody};
    use tokio::sync::mpsc;

    use super::*;
    use crate::body::{BodyStats, BoxError, LimitedBody};

    /// What the h2 server saw of one request: its body bytes, or the reset that ended it.
    #[derive(Debug, PartialEq)]
    enum Seen {
        Body(usize, Option<String>),
        Reset(h2::Reason),
    }

    /// A channel over an in-memory pipe: the sender, and what an h2 server (answering
    /// every request with `answer` bytes, after reading the whole body unless
    /// `answer_first`) saw of each request. Small windows, so bodies must wait for them.
    async fn channel(
        answer: usize,
        answer_first: bool,
    ) -> (ChannelSender, mpsc::UnboundedReceiver<Seen>) {
        let (client, server) = tokio::io::duplex(16 * 1024);
        let (seen_tx, seen) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut conn = h2::server::Builder::new()
                .initial_window_size(8 * 1024)
                .handshake::<_, Bytes>(server)
                .await
                .expect("server handshake");
            while let Some(Ok((req, mut respond))) = conn.accept().await {
                let seen_tx = seen_tx.clone();
                tokio::spawn(async move {
                    let length = req
                        .headers()
                        .get(header::CONTENT_LENGTH)
                        .map(|v| v.to_str().expect("ascii").to_owned());
                    let mut body = req.into_body();
                    let mut send = None;
                    if answer_first {
                        let mut s = respond
                            .send_response(Response::new(()), false)
                            .expect("respond");
                        let _ = s.send_data(Bytes::from(vec![1u8; answer]), true);
                        send = Some(s);
                    }
                    let mut n = 0;
                    while let Some(chunk) = body.data().await {
                        match chunk {
                            Ok(c) => {
                                n += c.len();
                                let _ = body.flow_control().release_capacity(c.len());
                            }
                            Err(e) => {
                                let _ = seen_tx.send(Seen::Reset(e.reason().expect("a reset")));
                                return;
                            }
                        }
                    }
                    let _ = seen_tx.send(Seen::Body(n, length));
                    if send.is_none() {
                        let mut s = respond
                            .send_response(Response::new(()), false)
                            .expect("respond");
                        let _ = s.send_data(Bytes::from(vec![1u8; answer]), true);
                    }
                });
            }
        });
        let (h2, conn) = h2::client::handshake(client)
            .await
            .expect("client handshake");
        let (sender, closed) = ChannelSender::new(h2);
        tokio::spawn(async move {
            let _closed = closed;
            let _ = conn.await;
        });
        (sender, seen)
    }

    fn request(method: Method, body: ForwardBody) -> Request<ForwardBody> {
        let mut req = Request::new(body);
        *req.method_mut() = method;
        *req.uri_mut() = "https://cmg.test/x".parse().expect("uri");
        req
    }

    /// A client body fed piece by piece through `tx` (an `Err` breaks it).
    fn streamed() -> (mpsc::UnboundedSender<Result<Bytes, BoxError>>, ForwardBody) {
        let (tx, rx) = mpsc::unbounded_channel::<Result<Bytes, BoxError>>();
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item.map(Frame::data), rx))
        });
        let body = LimitedBody::new(
            StreamBody::new(Box::pin(stream)),
            u64::MAX,
            Arc::new(BodyStats::default()),
        );
        (tx, ForwardBody::client(body))
    }

    #[tokio::test]
    async fn a_request_without_body_gets_the_whole_answer_and_its_length() {
        let (sender, mut seen) = channel(100_000, false).await;
        let resp = sender
            .send(request(Method::GET, ForwardBody::empty()))
            .await
            .expect("response");
        let body = resp.into_body();
        let got = body.collect().await.expect("body").to_bytes();
        assert_eq!(
            got.len(),
            100_000,
            "more than the 8 KiB window: capacity was released"
        );
        assert_eq!(
            seen.recv().await,
            Some(Seen::Body(0, None)),
            "a GET gets no content-length"
        );
    }

    #[tokio::test]
    async fn a_body_larger_than_the_window_arrives_whole_with_its_length() {
        let (sender, mut seen) = channel(3, false).await;
        let body = ForwardBody::bytes(Bytes::from(vec![9u8; 50_000]));
        let resp = sender
            .send(request(Method::POST, body))
            .await
            .expect("response");
        assert_eq!(
            resp.into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes()
                .len(),
            3
        );
        assert_eq!(
            seen.recv().await,
            Some(Seen::Body(50_000, Some("50000".into())))
        );
        // An empty POST still says so.
        let resp = sender
            .send(request(Method::POST, ForwardBody::empty()))
            .await
            .expect("response");
        drop(resp);
        assert_eq!(seen.recv().await, Some(Seen::Body(0, Some("0".into()))));
    }

    #[tokio::test]
    async fn a_streamed_body_flows_and_a_broken_one_resets_its_stream() {
        let (sender, mut seen) = channel(1, true).await;
        let (tx, body) = streamed();
        let resp = sender
            .send(request(Method::POST, body))
            .await
            .expect("answered first");
        for _ in 0..5 {
            tx.send(Ok(Bytes::from(vec![0u8; 10_000])))
                .expect("pipe alive");
        }
        drop(tx);
        assert_eq!(seen.recv().await, Some(Seen::Body(50_000, None)));
        drop(resp);

        let (tx, body) = streamed();
        let _resp = sender
            .send(request(Method::POST, body))
            .await
            .expect("answered first");
        tx.send(Ok(Bytes::from_static(b"part")))
            .expect("pipe alive");
        tx.send(Err("client went away".into())).expect("pipe alive");
        assert_eq!(
            seen.recv().await,
            Some(Seen::Reset(h2::Reason::INTERNAL_ERROR))
        );
    }

    #[tokio::test]
    async fn a_request_given_up_before_its_answer_resets_its_body_stream() {
        // The server reads the whole body before answering: the request waits.
        let (sender, mut seen) = channel(1, false).await;
        let (tx, body) = streamed();
        tx.send(Ok(Bytes::from_static(b"part")))
            .expect("pipe alive");
        let waiting = tokio::time::timeout(
            Duration::from_millis(50),
            sender.send(request(Method::POST, body)),
        );
        assert!(waiting.await.is_err(), "no answer while the body is open");
        assert_eq!(seen.recv().await, Some(Seen::Reset(h2::Reason::CANCEL)));
        drop(tx);
    }

    #[tokio::test]
    async fn a_request_on_a_closed_channel_is_handed_back_unsent() {
        let (client, server) = tokio::io::duplex(1024);
        tokio::spawn(async move {
            let mut conn = h2::server::handshake(server)
                .await
                .expect("server handshake");
            // Go away at once, then keep the connection until the client closes it.
            conn.graceful_shutdown();
            while conn.accept().await.is_some() {}
        });
        let (h2, conn) = h2::client::handshake(client)
            .await
            .expect("client handshake");
        let (sender, closed) = ChannelSender::new(h2);
        let driver = tokio::spawn(async move {
            let _closed = closed;
            let _ = conn.await;
        });
        driver.await.expect("the connection ends");
        assert!(sender.is_closed());
        let req = request(Method::GET, ForwardBody::empty());
        match sender.send(req).await {
            Err(SendError::NotSent(back, _)) => assert_eq!(back.uri(), "https://cmg.test/x"),
            other => panic!("expected the request back, got {other:?}"),
        }
    }
}
