//! Content downloads (seed 004: the gateway as cloud distribution point): a GET of the
//! content URL the site's location answer gave, written to `<out>.partial` as it
//! arrives. An interrupted download keeps the partial file and its `ETag`
//! (`<out>.partial.etag`); the next attempt asks only for the rest with
//! `Range: bytes=<have>-` and `If-Range: <etag>`, so a blob that changed in between
//! comes back whole (`200`) and the partial file is started over. When the body is
//! complete its SHA-256 must be the expected one, or the file is removed and the
//! download fails; only then is it renamed to `<out>`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::BodyExt as _;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;

use crate::endpoint::BaseUrl;
use crate::transport::{self, Transport, TransportError};

/// Longest wait for the head, or between two body chunks.
pub const IDLE: Duration = Duration::from_secs(30);

/// Why a download failed (the partial file is kept unless said otherwise).
#[derive(Debug, thiserror::Error)]
pub enum ContentFailure {
    #[error("content: {0}")]
    Transport(#[from] TransportError),
    #[error("content {url}: {status}")]
    Status {
        url: String,
        status: http::StatusCode,
    },
    #[error(
        "content {url}: interrupted after {have} bytes: {message} (kept; the next attempt resumes)"
    )]
    Interrupted {
        url: String,
        have: u64,
        message: String,
    },
    #[error("content {url}: SHA-256 {got}, expected {expected} (the download was removed)")]
    HashMismatch {
        url: String,
        expected: String,
        got: String,
    },
    #[error("content file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How a download ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    pub bytes: u64,
    /// Bytes that were already there from an interrupted attempt.
    pub resumed_from: u64,
}

fn partial_paths(out: &Path) -> (PathBuf, PathBuf) {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (
        out.with_file_name(format!("{name}.partial")),
        out.with_file_name(format!("{name}.partial.etag")),
    )
}

/// Downloads `url` to `out`, resuming a partial download, and checks `sha256` (hex).
pub async fn download(
    transport: &Transport,
    url: &BaseUrl,
    bearer: Option<&str>,
    out: &Path,
    sha256: &str,
) -> Result<Downloaded, ContentFailure> {
    let (partial, etag_file) = partial_paths(out);
    let file_err = |path: &Path| {
        let path = path.to_owned();
        move |source| ContentFailure::File { path, source }
    };
    let have = tokio::fs::metadata(&partial)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    let etag = tokio::fs::read_to_string(&etag_file).await.ok();
    let mut req = transport::get(&url.path(""))?;
    let h = req.headers_mut();
    if have > 0 {
        if let Ok(v) = format!("bytes={have}-").parse() {
            h.insert(http::header::RANGE, v);
        }
        if let Some(v) = etag.as_deref().and_then(|e| e.trim().parse().ok()) {
            h.insert(http::header::IF_RANGE, v);
        }
    }
    if let Some(v) = bearer.and_then(|t| format!("Bearer {t}").parse().ok()) {
        h.insert(http::header::AUTHORIZATION, v);
    }
    let resp = transport.send(url, req, IDLE).await?;
    let status = resp.status();
    let resumed_from = match status {
        http::StatusCode::PARTIAL_CONTENT
            if have > 0 && starts_at(resp.headers()) == Some(have) =>
        {
            have
        }
        http::StatusCode::OK => 0,
        // The partial file is complete or stale: start over next time.
        http::StatusCode::RANGE_NOT_SATISFIABLE => {
            let _ = tokio::fs::remove_file(&partial).await;
            let _ = tokio::fs::remove_file(&etag_file).await;
            return Err(ContentFailure::Status {
                url: url.to_string(),
                status,
            });
        }
        _ => {
            return Err(ContentFailure::Status {
                url: url.to_string(),
                status,
            })
        }
    };
    if let Some(e) = resp
        .headers()
        .get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
    {
        tokio::fs::write(&etag_file, e)
            .await
            .map_err(file_err(&etag_file))?;
    }
    let mut f = tokio::fs::OpenOptions::new()
        .create(true)
        .append(resumed_from > 0)
        .write(true)
        .truncate(resumed_from == 0)
        .open(&partial)
        .await
        .map_err(file_err(&partial))?;
    let mut written = resumed_from;
    let mut body = resp.into_body();
    loop {
        let frame = match tokio::time::timeout(IDLE, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                f.flush().await.map_err(file_err(&partial))?;
                return Err(ContentFailure::Interrupted {
                    url: url.to_string(),
                    have: written,
                    message: cmg_core::error_chain::chain(&e),
                });
            }
            Err(_) => {
                f.flush().await.map_err(file_err(&partial))?;
                return Err(ContentFailure::Interrupted {
                    url: url.to_string(),
                    have: written,
                    message: format!("no data for {IDLE:?}"),
                });
            }
        };
        if let Ok(data) = frame.into_data() {
            f.write_all(&data).await.map_err(file_err(&partial))?;
            written += data.len() as u64;
        }
    }
    f.sync_all().await.map_err(file_err(&partial))?;
    drop(f);
    let got = hash_file(&partial).await.map_err(file_err(&partial))?;
    if !got.eq_ignore_ascii_case(sha256) {
        let _ = tokio::fs::remove_file(&partial).await;
        let _ = tokio::fs::remove_file(&etag_file).await;
        return Err(ContentFailure::HashMismatch {
            url: url.to_string(),
            expected: sha256.to_owned(),
            got,
        });
    }
    tokio::fs::rename(&partial, out)
        .await
        .map_err(file_err(out))?;
    let _ = tokio::fs::remove_file(&etag_file).await;
    Ok(Downloaded {
        bytes: written,
        resumed_from,
    })
}

/// The first byte of a `Content-Range: bytes <first>-<last>/<len>`.
fn starts_at(headers: &http::HeaderMap) -> Option<u64> {
    let v = headers.get(http::header::CONTENT_RANGE)?.to_str().ok()?;
    let range = v.strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

async fn hash_file(path: &Path) -> std::io::Result<String> {
    use tokio::io::AsyncReadExt as _;
    let mut f = tokio::fs::File::open(path).await?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_start() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::CONTENT_RANGE,
            http::HeaderValue::from_static("bytes 100-199/200"),
        );
        assert_eq!(starts_at(&h), Some(100));
        h.insert(
            http::header::CONTENT_RANGE,
            http::HeaderValue::from_static("items 1-2/3"),
        );
        assert_eq!(starts_at(&h), None);
    }
}
