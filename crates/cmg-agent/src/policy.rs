//! Policy polling (FACTS: "the client asks for its assignments (ids and versions), then
//! fetches each changed body"): `GET <mp>/SMS_MP/.sms_pol?assignments`, then
//! `GET <mp>/SMS_MP/.sms_pol?<id>` for each assignment that is new or whose version or
//! hash changed. Each body must have the SHA-256 the listing states, or it is refused
//! and the old one kept; accepted bodies are written to `<state dir>/policy/<id>`
//! (mode 0600, by rename). Assignments no longer listed are dropped.

use std::path::Path;
use std::time::Duration;

use cmg_proto::device::policy::{is_policy_id, ASSIGNMENTS_QUERY};
use cmg_proto::device::{PolicyAssignments, MAX_POLICY_BODY_BYTES};
use sha2::{Digest as _, Sha256};

use crate::endpoint::BaseUrl;
use crate::state::{HeldPolicy, PolicyState};
use crate::transport::{self, Answer, Transport, TransportError};

/// Largest assignment list read.
const MAX_LISTING: usize = 1 << 20;

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFailure {
    #[error("policy: {0}")]
    Transport(#[from] TransportError),
    #[error("policy request to {server}{path}: {status}")]
    Status {
        server: String,
        path: String,
        status: http::StatusCode,
    },
    #[error("policy listing from {server}: {message}")]
    Listing { server: String, message: String },
    #[error("policy {id} from {server}: body SHA-256 {got}, the listing says {expected}")]
    HashMismatch {
        server: String,
        id: String,
        expected: String,
        got: String,
    },
    #[error("cannot store policy {id}: {source}")]
    Store { id: String, source: std::io::Error },
}

impl PolicyFailure {
    /// Whether this failure counts against the management point (it did not answer, or
    /// answered with a server error), rather than being the content's fault.
    pub fn counts_against_mp(&self) -> bool {
        match self {
            PolicyFailure::Transport(_) => true,
            PolicyFailure::Status { status, .. } => status.is_server_error(),
            _ => false,
        }
    }
}

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Polled {
    pub downloaded: Vec<String>,
    pub unchanged: usize,
    pub removed: Vec<String>,
    /// The route headers of the listing's answer (instance, connection point), when
    /// the gateway sends them.
    pub path: Option<String>,
    /// `cmg-gateway-instance` of the listing's answer.
    pub gateway_instance: Option<String>,
    /// `cmg-connection-point` of the listing's answer.
    pub connection_point: Option<String>,
}

/// Polls `mp` and updates `held`; `bearer` for token clients.
pub async fn poll(
    transport: &Transport,
    mp: &BaseUrl,
    bearer: Option<&str>,
    held: &mut PolicyState,
    dir: &Path,
    deadline: Duration,
) -> Result<Polled, PolicyFailure> {
    let listing = get(
        transport,
        mp,
        ASSIGNMENTS_QUERY,
        bearer,
        MAX_LISTING,
        deadline,
    )
    .await?;
    let server = mp.to_string();
    let list: PolicyAssignments =
        serde_json::from_slice(&listing.body).map_err(|e| PolicyFailure::Listing {
            server: server.clone(),
            message: e.to_string(),
        })?;
    let mut out = Polled {
        path: route_of(&listing.headers),
        gateway_instance: header(&listing.headers, "cmg-gateway-instance"),
        connection_point: header(&listing.headers, "cmg-connection-point"),
        ..Polled::default()
    };
    for a in &list.assignments {
        if !is_policy_id(&a.id) {
            return Err(PolicyFailure::Listing {
                server,
                message: format!("invalid policy id {:?}", a.id),
            });
        }
    }
    for a in &list.assignments {
        let version = a.version.to_string();
        let have = held.held.get(&a.id);
        if have.is_some_and(|h| h.version == version && h.sha256 == a.sha256) {
            out.unchanged += 1;
            continue;
        }
        let body = get(
            transport,
            mp,
            &a.id,
            bearer,
            MAX_POLICY_BODY_BYTES,
            deadline,
        )
        .await?;
        let got = hex::encode(Sha256::digest(&body.body));
        if !got.eq_ignore_ascii_case(&a.sha256) {
            return Err(PolicyFailure::HashMismatch {
                server,
                id: a.id.clone(),
                expected: a.sha256.clone(),
                got,
            });
        }
        write_private(&dir.join(&a.id), &body.body).map_err(|source| PolicyFailure::Store {
            id: a.id.clone(),
            source,
        })?;
        held.held.insert(
            a.id.clone(),
            HeldPolicy {
                version,
                sha256: got,
                size: body.body.len() as u64,
            },
        );
        out.downloaded.push(a.id.clone());
    }
    let listed: std::collections::BTreeSet<&str> =
        list.assignments.iter().map(|a| a.id.as_str()).collect();
    let gone: Vec<String> = held
        .held
        .keys()
        .filter(|k| !listed.contains(k.as_str()))
        .cloned()
        .collect();
    for id in &gone {
        held.held.remove(id);
        let _ = std::fs::remove_file(dir.join(id));
    }
    out.removed = gone;
    Ok(out)
}

async fn get(
    transport: &Transport,
    mp: &BaseUrl,
    query: &str,
    bearer: Option<&str>,
    max: usize,
    deadline: Duration,
) -> Result<Answer, PolicyFailure> {
    let path = mp.path(&format!("/SMS_MP/.sms_pol?{query}"));
    let mut req = transport::get(&path)?;
    if let Some(t) = bearer {
        if let Ok(v) = format!("Bearer {t}").parse() {
            req.headers_mut().insert(http::header::AUTHORIZATION, v);
        }
    }
    let answer = transport.fetch(mp, req, max, deadline).await?;
    if !answer.status.is_success() {
        return Err(PolicyFailure::Status {
            server: mp.to_string(),
            path: path.clone(),
            status: answer.status,
        });
    }
    Ok(answer)
}

/// `instance <i>, connection point <cp>` from the gateway's route headers (sent only
/// where the gateway's `route_headers` is on: the demo and tests).
pub fn route_of(headers: &http::HeaderMap) -> Option<String> {
    let h = |n: &str| header(headers, n);
    match (h("cmg-gateway-instance"), h("cmg-connection-point")) {
        (Some(i), Some(cp)) => Some(format!("instance {i}, connection point {cp}")),
        (Some(i), None) => Some(format!("instance {i}")),
        (None, Some(cp)) => Some(format!("connection point {cp}")),
        (None, None) => None,
    }
}

fn header(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Writes `bytes` to `path` with mode 0600, through a temporary file and a rename.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
