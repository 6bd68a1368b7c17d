//! `CCM_Incoming/<name>`: uploads stored under `data_dir/incoming/`, by plain `PUT`/`POST`
//! or by the BITS upload protocol (see [`crate::bits`]); `GET` reads them back.

use std::path::Path;

use http::{header, Response, StatusCode};
use hyper::body::Incoming;

use crate::body::{self, read_body, BodyFailure, Received, RespBody, Sink};
use crate::respond;

/// The fixed segment that precedes the upload name.
const SEGMENT: &str = "/ccm_incoming/";

/// Where an `.../CCM_Incoming/...` path points.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Name(String),
    /// A name that is empty, escapes the folder, or is not a plain file name.
    BadName,
}

/// The upload target of `path`, if it is under `CCM_Incoming/` (segment matched without
/// regard to case, anything allowed before it).
pub(crate) fn target(path: &str) -> Option<Target> {
    let lower = path.to_ascii_lowercase();
    let at = lower.rfind(SEGMENT)?;
    let raw = &path[at + SEGMENT.len()..];
    Some(match percent_decode(raw) {
        Some(name) if is_plain_name(&name) => Target::Name(name),
        _ => Target::BadName,
    })
}

/// A file name that stays inside `incoming/` on any platform: no separators, no `..`,
/// no leading dot, printable ASCII from a conservative set.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.{}~+=,@()".contains(&b))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `PUT`/`POST`: stores the body (via `tmp/`, renamed into place only when whole).
pub(crate) async fn store(
    incoming_dir: &Path,
    tmp_dir: &Path,
    name: &str,
    body: Incoming,
) -> (Response<RespBody>, Received) {
    let part = tmp_dir.join(format!("put-{:016x}.part", rand::random::<u64>()));
    let file = match tokio::fs::File::create(&part).await {
        Ok(file) => file,
        Err(e) => {
            let received = read_body(body, &mut Sink::Discard).await;
            tracing::warn!(target: "cmg_mp", error = %e, path = %part.display(), "cannot create upload file");
            let received = Received {
                failure: Some(BodyFailure::Store(e)),
                ..received
            };
            return (respond::store_failed(), received);
        }
    };
    let mut sink = Sink::File(file);
    let received = read_body(body, &mut sink).await;
    drop(sink);
    let resp = match &received.failure {
        None => match tokio::fs::rename(&part, incoming_dir.join(name)).await {
            Ok(()) => respond::builder(StatusCode::OK)
                .header("x-mp-body-sha256", &received.sha256)
                .header("x-mp-body-bytes", received.bytes)
                .body(body::empty())
                .unwrap_or_else(|_| respond::internal()),
            Err(e) => {
                tracing::warn!(target: "cmg_mp", error = %e, name, "cannot move upload into place");
                respond::store_failed()
            }
        },
        Some(BodyFailure::Stream(_)) => respond::incomplete_body(),
        Some(BodyFailure::Store(_)) => respond::store_failed(),
    };
    if resp.status() != StatusCode::OK {
        let _ = tokio::fs::remove_file(&part).await;
    }
    (resp, received)
}

/// `GET`: streams a stored upload back, 404 if absent.
pub(crate) async fn fetch(incoming_dir: &Path, name: &str) -> Response<RespBody> {
    let path = incoming_dir.join(name);
    let file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return respond::not_found(),
        Err(e) => {
            tracing::warn!(target: "cmg_mp", error = %e, path = %path.display(), "cannot open upload");
            return respond::internal();
        }
    };
    let len = match file.metadata().await {
        Ok(m) => m.len(),
        Err(_) => return respond::internal(),
    };
    respond::builder(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .body(body::file_body(file))
        .unwrap_or_else(|_| respond::internal())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_escape_are_rejected() {
        let name = |s: &str| target(s).expect("under CCM_Incoming");
        assert_eq!(
            name("/x/ccm_incoming/{AB-12}.SMX"),
            Target::Name("{AB-12}.SMX".into())
        );
        assert_eq!(name("/CCM_Incoming/%7Ba%7D"), Target::Name("{a}".into()));
        for bad in [
            "/CCM_Incoming/",
            "/CCM_Incoming/../x",
            "/CCM_Incoming/a/b",
            "/CCM_Incoming/a%2Fb",
            "/CCM_Incoming/a%5Cb",
            "/CCM_Incoming/a\\b",
            "/CCM_Incoming/..",
            "/CCM_Incoming/%2e%2e",
            "/CCM_Incoming/%zz",
        ] {
            assert_eq!(name(bad), Target::BadName, "{bad}");
        }
        assert_eq!(target("/CCM_System/request"), None);
    }
}
