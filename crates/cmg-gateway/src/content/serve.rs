//! Answering one authenticated content request from storage: GET and HEAD of a blob,
//! with a single byte range, streamed chunk by chunk as storage sends it (never the
//! whole blob in memory).

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt};

use super::range;
use super::source::ContentSource;
use crate::error::GatewayError;

/// A boxed body stream from storage.
pub type BlobStream =
    Pin<Box<dyn Stream<Item = Result<Bytes, Box<dyn std::error::Error + Send + Sync>>> + Send>>;

/// A content answer: status, headers, and the body (none for HEAD and 416).
#[derive(Debug)]
pub struct ContentReply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Option<ContentBody>,
}

/// A blob's bytes as they arrive from storage, `len` of them.
pub struct ContentBody {
    pub stream: BlobStream,
    pub len: u64,
}

impl std::fmt::Debug for ContentBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentBody")
            .field("len", &self.len)
            .finish()
    }
}

/// Serves `blob` (the decoded path below the content segment) from `src`.
pub async fn serve(
    src: &ContentSource,
    method: &Method,
    headers: &HeaderMap,
    blob: &str,
) -> Result<ContentReply, GatewayError> {
    if method != Method::GET && method != Method::HEAD {
        return Err(GatewayError::MethodNotAllowed);
    }
    if blob.is_empty() {
        return Err(GatewayError::BadRequest("content_path_required"));
    }
    // The path was already normalised (no dot segments, no encoded separators);
    // object_store refuses empty segments and anything else it cannot name.
    let location = Path::parse(blob).map_err(|_| GatewayError::BadRequest("bad_content_path"))?;
    let wanted = requested_range(headers);

    if method == Method::HEAD || wanted.is_some() {
        let meta = bounded(src, src.store.head(&location)).await?;
        if method == Method::HEAD {
            let mut h = meta_headers(&meta);
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size));
            return Ok(ContentReply {
                status: StatusCode::OK,
                headers: h,
                body: None,
            });
        }
        let Some(r) = wanted.and_then(|w| w.resolve(meta.size)) else {
            let mut h = meta_headers(&meta);
            h.insert(
                header::CONTENT_RANGE,
                value(&format!("bytes */{}", meta.size)),
            );
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
            return Ok(ContentReply {
                status: StatusCode::RANGE_NOT_SATISFIABLE,
                headers: h,
                body: None,
            });
        };
        // The same version of the blob the size came from, or a storage error.
        let opts = GetOptions::new()
            .with_range(Some(GetRange::Bounded(r.clone())))
            .with_if_match(meta.e_tag.clone());
        let got = bounded(src, src.store.get_opts(&location, opts)).await?;
        let mut h = meta_headers(&got.meta);
        let len = got.range.end - got.range.start;
        h.insert(
            header::CONTENT_RANGE,
            value(&format!(
                "bytes {}-{}/{}",
                got.range.start,
                got.range.end.saturating_sub(1),
                got.meta.size
            )),
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        return Ok(ContentReply {
            status: StatusCode::PARTIAL_CONTENT,
            headers: h,
            body: Some(body(got.into_stream(), len, src.timeouts.idle)),
        });
    }

    let got = bounded(src, src.store.get_opts(&location, GetOptions::new())).await?;
    let mut h = meta_headers(&got.meta);
    let len = got.meta.size;
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Ok(ContentReply {
        status: StatusCode::OK,
        headers: h,
        body: Some(body(got.into_stream(), len, src.timeouts.idle)),
    })
}

/// The `Range` to honour. With `If-Range` the whole blob is served (RFC 9110 lets a
/// server ignore `Range`; checking the validator would cost a round trip first).
fn requested_range(headers: &HeaderMap) -> Option<range::ByteRange> {
    if headers.contains_key(header::IF_RANGE) {
        return None;
    }
    range::parse(headers.get(header::RANGE)?.to_str().ok()?)
}

fn value(s: &str) -> HeaderValue {
    // Only digits, spaces and ASCII punctuation are formatted in here.
    HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""))
}

fn meta_headers(meta: &ObjectMeta) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(tag) = &meta.e_tag {
        let quoted = if tag.starts_with('"') || tag.starts_with("W/") {
            tag.clone()
        } else {
            format!("\"{tag}\"")
        };
        if let Ok(v) = HeaderValue::from_str(&quoted) {
            h.insert(header::ETAG, v);
        }
    }
    let secs = meta.last_modified.timestamp();
    if let Ok(secs) = u64::try_from(secs) {
        let when = UNIX_EPOCH + Duration::from_secs(secs);
        h.insert(header::LAST_MODIFIED, value(&httpdate::fmt_http_date(when)));
    }
    h
}

/// Storage's answer within the request bound: 504 past it, 404 for a missing blob,
/// 502 for anything else (the detail goes to the access log, not the client).
async fn bounded<T>(
    src: &ContentSource,
    fut: impl Future<Output = object_store::Result<T>>,
) -> Result<T, GatewayError> {
    match tokio::time::timeout(src.timeouts.request, fut).await {
        Err(_) => Err(GatewayError::StorageTimeout),
        Ok(Ok(v)) => Ok(v),
        Ok(Err(object_store::Error::NotFound { .. })) => Err(GatewayError::ContentNotFound),
        Ok(Err(e)) => Err(GatewayError::Storage(e.to_string())),
    }
}

/// The blob's byte stream with a bound on each pause between chunks.
fn body(
    stream: futures_util::stream::BoxStream<'static, object_store::Result<Bytes>>,
    len: u64,
    idle: Duration,
) -> ContentBody {
    let stream = futures_util::stream::unfold(Some(stream), move |state| async move {
        let mut s = state?;
        match tokio::time::timeout(idle, s.next()).await {
            Err(_) => Some((
                Err(format!("storage sent nothing for {idle:?}").into()),
                None,
            )),
            Ok(None) => None,
            Ok(Some(Ok(b))) => Some((Ok(b), Some(s))),
            Ok(Some(Err(e))) => {
                let e: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
                Some((Err(e), None))
            }
        }
    });
    ContentBody {
        stream: Box::pin(stream),
        len,
    }
}
