//! The BITS upload protocol (`BITS_POST` to `CCM_Incoming/<name>`), as ConfigMgr clients
//! use it for inventory and state messages: `Ping`, `Create-Session`, `Fragment`,
//! `Close-Session`, `Cancel-Session`. Sessions live in [`Sessions`], owned by the
//! server state; a fragment holds its session's lock while it writes.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use http::request::Parts;
use http::{HeaderMap, Response, StatusCode};
use hyper::body::Incoming;
use tokio::io::AsyncSeekExt;

use crate::body::{self, read_body, BodyFailure, Received, RespBody, Sink};
use crate::respond;

/// The BITS 1.5 upload protocol, the one a server may select.
pub const BITS_PROTOCOL: &str = "{7df0354d-249b-430f-820d-3d2a9bef4931}";

/// `E_INVALIDARG`: what a bad session, range or packet type is answered with.
const E_INVALIDARG: &str = "0x80070057";

/// `BG_ERROR_CONTEXT_REMOTE_FILE`.
const ERROR_CONTEXT_REMOTE: &str = "0x7";

/// Open upload sessions by id.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Session>>>>,
}

#[derive(Debug)]
struct Session {
    /// Upload name (file name under `incoming/`).
    name: String,
    part: PathBuf,
    /// Bytes received contiguously from offset 0.
    received: u64,
    /// Total length announced by the first fragment.
    total: Option<u64>,
    /// Set once closed or cancelled, so a fragment that waited on the lock stops.
    ended: bool,
}

impl Sessions {
    fn get(&self, id: &str) -> Option<Arc<tokio::sync::Mutex<Session>>> {
        self.lock().get(id).cloned()
    }

    fn insert(&self, id: String, session: Session) {
        self.lock()
            .insert(id, Arc::new(tokio::sync::Mutex::new(session)));
    }

    fn remove(&self, id: &str) -> Option<Arc<tokio::sync::Mutex<Session>>> {
        self.lock().remove(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<Session>>>> {
        match self.map.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// Directories a BITS request works in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dirs<'a> {
    pub(crate) incoming: &'a Path,
    pub(crate) tmp: &'a Path,
}

/// Handles one `BITS_POST` for upload `name`.
pub(crate) async fn handle(
    sessions: &Sessions,
    dirs: Dirs<'_>,
    parts: &Parts,
    name: &str,
    body: Incoming,
) -> (Response<RespBody>, Received) {
    let packet = header(&parts.headers, "bits-packet-type").unwrap_or_default();
    let session_id = header(&parts.headers, "bits-session-id");
    if packet.eq_ignore_ascii_case("fragment") {
        return fragment(sessions, &parts.headers, session_id, body).await;
    }
    let received = read_body(body, &mut Sink::Discard).await;
    if !received.complete() {
        return (respond::incomplete_body(), received);
    }
    let resp = if packet.eq_ignore_ascii_case("ping") {
        ack(None).body(body::empty())
    } else if packet.eq_ignore_ascii_case("create-session") {
        create(sessions, dirs, name).await
    } else if packet.eq_ignore_ascii_case("close-session") {
        close(sessions, dirs, session_id).await
    } else if packet.eq_ignore_ascii_case("cancel-session") {
        cancel(sessions, session_id).await
    } else {
        return (error(session_id, "unknown BITS-Packet-Type"), received);
    };
    (resp.unwrap_or_else(|_| respond::internal()), received)
}

type Built = Result<Response<RespBody>, http::Error>;

async fn create(sessions: &Sessions, dirs: Dirs<'_>, name: &str) -> Built {
    let id = new_session_id();
    let part = dirs
        .tmp
        .join(format!("bits-{}.part", id.trim_matches(['{', '}'])));
    if let Err(e) = tokio::fs::File::create(&part).await {
        tracing::warn!(target: "cmg_mp", error = %e, path = %part.display(), "cannot create BITS part file");
        return Ok(respond::store_failed());
    }
    sessions.insert(
        id.clone(),
        Session {
            name: name.to_owned(),
            part,
            received: 0,
            total: None,
            ended: false,
        },
    );
    ack(Some(&id))
        .header("BITS-Protocol", BITS_PROTOCOL)
        .header("BITS-Protocols", BITS_PROTOCOL)
        .header("Accept-Encoding", "Identity")
        .body(body::empty())
}

async fn fragment(
    sessions: &Sessions,
    headers: &HeaderMap,
    session_id: Option<&str>,
    body: Incoming,
) -> (Response<RespBody>, Received) {
    let session = session_id.and_then(|id| sessions.get(id));
    let range = header(headers, "content-range").and_then(parse_content_range);
    let (Some(session), Some((first, last, total))) = (session, range) else {
        let received = read_body(body, &mut Sink::Discard).await;
        let why = if range.is_none() {
            "missing or bad Content-Range"
        } else {
            "unknown BITS-Session-Id"
        };
        return (error(session_id, why), received);
    };
    let mut session = session.lock().await;
    let in_order = first <= session.received && session.total.is_none_or(|t| t == total);
    if session.ended || !in_order {
        let received = read_body(body, &mut Sink::Discard).await;
        return (error(session_id, "fragment out of range"), received);
    }
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .open(&session.part)
        .await;
    let mut file = match file {
        Ok(file) => file,
        Err(e) => return (respond::store_failed(), stored_nothing(body, e).await),
    };
    if let Err(e) = file.seek(SeekFrom::Start(first)).await {
        return (respond::store_failed(), stored_nothing(body, e).await);
    }
    let mut sink = Sink::File(file);
    let received = read_body(body, &mut sink).await;
    let resp = match &received.failure {
        Some(BodyFailure::Stream(_)) => respond::incomplete_body(),
        Some(BodyFailure::Store(_)) => respond::store_failed(),
        None if received.bytes != last - first + 1 => {
            error(session_id, "body length does not match Content-Range")
        }
        None => {
            session.received = session.received.max(last + 1);
            session.total = Some(total);
            ack(session_id)
                .header("BITS-Received-Content-Range", session.received)
                .body(body::empty())
                .unwrap_or_else(|_| respond::internal())
        }
    };
    (resp, received)
}

async fn close(sessions: &Sessions, dirs: Dirs<'_>, session_id: Option<&str>) -> Built {
    let Some(session) = session_id.and_then(|id| sessions.get(id)) else {
        return Ok(error(session_id, "unknown BITS-Session-Id"));
    };
    let mut session = session.lock().await;
    if session.ended {
        return Ok(error(session_id, "session already ended"));
    }
    if session.total.is_some_and(|t| t != session.received) {
        return Ok(error(session_id, "upload incomplete"));
    }
    let target = dirs.incoming.join(&session.name);
    if let Err(e) = tokio::fs::rename(&session.part, &target).await {
        tracing::warn!(target: "cmg_mp", error = %e, path = %target.display(), "cannot finalise BITS upload");
        return Ok(respond::store_failed());
    }
    session.ended = true;
    if let Some(id) = session_id {
        sessions.remove(id);
    }
    ack(session_id).body(body::empty())
}

async fn cancel(sessions: &Sessions, session_id: Option<&str>) -> Built {
    let Some(session) = session_id.and_then(|id| sessions.remove(id)) else {
        return Ok(error(session_id, "unknown BITS-Session-Id"));
    };
    let mut session = session.lock().await;
    session.ended = true;
    let _ = tokio::fs::remove_file(&session.part).await;
    ack(session_id).body(body::empty())
}

/// Drains `body` after the target file could not be opened; nothing was stored.
async fn stored_nothing(body: Incoming, e: std::io::Error) -> Received {
    tracing::warn!(target: "cmg_mp", error = %e, "cannot write BITS fragment");
    let received = read_body(body, &mut Sink::Discard).await;
    Received {
        failure: Some(BodyFailure::Store(e)),
        ..received
    }
}

fn ack(session_id: Option<&str>) -> http::response::Builder {
    let b = respond::builder(StatusCode::OK).header("BITS-Packet-Type", "Ack");
    match session_id {
        Some(id) => b.header("BITS-Session-Id", id),
        None => b,
    }
}

/// A BITS error: 400 with `BITS-Error-Code` (the client reads the code, not the body).
fn error(session_id: Option<&str>, why: &'static str) -> Response<RespBody> {
    let mut b = respond::builder(StatusCode::BAD_REQUEST)
        .header("BITS-Packet-Type", "Ack")
        .header("BITS-Error-Code", E_INVALIDARG)
        .header("BITS-Error-Context", ERROR_CONTEXT_REMOTE);
    if let Some(id) = session_id {
        b = b.header("BITS-Session-Id", id);
    }
    b.body(body::full(why))
        .unwrap_or_else(|_| respond::internal())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// `bytes a-b/total` with `a <= b < total`.
fn parse_content_range(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let (a, b, total) = (
        a.trim().parse::<u64>().ok()?,
        b.trim().parse::<u64>().ok()?,
        total.trim().parse::<u64>().ok()?,
    );
    (a <= b && b < total).then_some((a, b, total))
}

/// `{xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx}`, uppercase like Windows prints GUIDs.
fn new_session_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode_upper(b);
    format!(
        "{{{}-{}-{}-{}-{}}}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("bytes 0-9/20"), Some((0, 9, 20)));
        assert_eq!(parse_content_range("bytes 10-19/20"), Some((10, 19, 20)));
        assert_eq!(parse_content_range("bytes 10-20/20"), None);
        assert_eq!(parse_content_range("bytes 5-4/20"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[test]
    fn session_ids_look_like_guids() {
        let id = new_session_id();
        assert_eq!(id.len(), 38);
        assert!(id.starts_with('{') && id.ends_with('}'));
        assert_eq!(id.matches('-').count(), 4);
    }
}
