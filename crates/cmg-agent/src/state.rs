//! The agent's state (`state.json` in the state directory): what it learnt from the
//! site, which management point it uses, its device token, its policy, its last
//! errors. It survives restarts; it is written whole to a temporary file with mode 0600
//! (it holds the device token), synced, then renamed over the old one, so a crash
//! leaves either the old or the new file. A file that does not parse, or that another
//! site's client wrote, is refused with an error naming the file: the agent never
//! silently starts from nothing over someone's state.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::select::Selection;

/// The `format` of the file this build reads and writes.
pub const STATE_FORMAT: &str = "cmg-client-state/1";
/// The file name inside the state directory.
pub const STATE_FILE: &str = "state.json";
/// Largest state file read (a bound against a wrong file named as state).
const MAX_STATE_BYTES: u64 = 16 * 1024 * 1024;
/// Errors kept for `status`.
pub const KEPT_ERRORS: usize = 10;

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a cmg client state file ({message}); move it away to start afresh")]
    Corrupt { path: PathBuf, message: String },
    #[error("{path}: state of format `{found}`, this build reads `{STATE_FORMAT}`")]
    Format { path: PathBuf, found: String },
    #[error("{path}: state of site `{found}`, but this client is configured for site `{expected}`; use another state_dir or move the file away")]
    ForeignSite {
        path: PathBuf,
        found: String,
        expected: String,
    },
}

/// Intranet or internet, as the control panel's "Connection type" shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionKind {
    Intranet,
    Internet,
}

impl std::fmt::Display for ConnectionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConnectionKind::Intranet => "intranet",
            ConnectionKind::Internet => "internet",
        })
    }
}

/// The last decision and why it was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub kind: ConnectionKind,
    pub reason: String,
    /// Unix seconds.
    pub decided_at: i64,
}

/// The device token a token client holds (the bearer value is never logged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceToken {
    pub token: String,
    pub tracking_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// One policy assignment the client holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldPolicy {
    pub version: String,
    /// Hex SHA-256 of the body, checked when it was downloaded.
    pub sha256: String,
    pub size: u64,
}

/// Policy the client holds and where it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyState {
    /// By policy ID.
    #[serde(default)]
    pub held: BTreeMap<String, HeldPolicy>,
    /// Unix seconds of the last successful poll.
    #[serde(default)]
    pub last_poll: Option<i64>,
    /// Unix seconds of the last body downloaded.
    #[serde(default)]
    pub last_download: Option<i64>,
    /// The path the last poll took: the management point (and through a gateway, the
    /// instance and connection point that answered, when the gateway says).
    #[serde(default)]
    pub last_path: Option<String>,
    /// The same path as data: what the last successful poll's listing answer showed.
    #[serde(default)]
    pub last_route: Option<PolicyRoute>,
}

/// Where the last policy listing came from, as its answer showed it: the connection
/// type and management point the client chose, and through a gateway the instance and
/// connection point its route headers name (`cmg-gateway-instance`,
/// `cmg-connection-point`; absent when the gateway does not send them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRoute {
    pub connection: ConnectionKind,
    /// The management point's name in the candidate list (`intranet_mp` when the
    /// configured one was used).
    pub management_point: String,
    /// The base URL asked.
    pub url: String,
    #[serde(default)]
    pub gateway_instance: Option<String>,
    #[serde(default)]
    pub connection_point: Option<String>,
}

/// A recorded failure, for `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedError {
    pub at: i64,
    pub message: String,
}

/// The whole state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub format: String,
    pub site: String,
    pub device_id: String,
    #[serde(default)]
    pub connection: Option<Connection>,
    /// The last good location answer, as the site signed it (verified again at load).
    #[serde(default)]
    pub location_jws: Option<String>,
    #[serde(default)]
    pub last_location_refresh: Option<i64>,
    /// Policy polling interval the site set, in seconds (the location answer's).
    #[serde(default)]
    pub policy_interval_secs: Option<u64>,
    /// The boundary groups the site said the client's addresses fall in.
    #[serde(default)]
    pub boundary_groups: Vec<String>,
    /// "Enable clients to use a CMG", as the last location answer said.
    #[serde(default)]
    pub use_cmg: Option<bool>,
    #[serde(default)]
    pub intranet: Selection,
    #[serde(default)]
    pub internet: Selection,
    #[serde(default)]
    pub device_token: Option<DeviceToken>,
    /// The site's reason when it refused the device token (`token_blocked`, ...): the
    /// agent then stops asking until the client is enrolled again.
    #[serde(default)]
    pub token_refused: Option<String>,
    #[serde(default)]
    pub policy: PolicyState,
    #[serde(default)]
    pub errors: Vec<RecordedError>,
}

impl State {
    /// A fresh state for `site`.
    pub fn new(site: &str, device_id: String) -> Self {
        Self {
            format: STATE_FORMAT.into(),
            site: site.into(),
            device_id,
            connection: None,
            location_jws: None,
            last_location_refresh: None,
            policy_interval_secs: None,
            boundary_groups: Vec::new(),
            use_cmg: None,
            intranet: Selection::default(),
            internet: Selection::default(),
            device_token: None,
            token_refused: None,
            policy: PolicyState::default(),
            errors: Vec::new(),
        }
    }

    /// Reads `dir/state.json`: `Ok(None)` when there is none yet.
    pub fn load(dir: &Path, site: &str) -> Result<Option<Self>, StateError> {
        let path = dir.join(STATE_FILE);
        let io = |source| StateError::Io {
            path: path.clone(),
            source,
        };
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        let mut text = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(file, MAX_STATE_BYTES + 1),
            &mut text,
        )
        .map_err(io)?;
        if text.len() as u64 > MAX_STATE_BYTES {
            return Err(StateError::Corrupt {
                path,
                message: format!("larger than {MAX_STATE_BYTES} bytes"),
            });
        }
        // The format tag first, so a future format is named as such, not as corrupt.
        #[derive(Deserialize)]
        struct Tag {
            format: Option<String>,
        }
        let tag: Tag = serde_json::from_slice(&text).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        match tag.format {
            Some(f) if f == STATE_FORMAT => {}
            Some(found) => return Err(StateError::Format { path, found }),
            None => {
                return Err(StateError::Corrupt {
                    path,
                    message: "no `format` field".into(),
                })
            }
        }
        let state: State = serde_json::from_slice(&text).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if state.site != site {
            return Err(StateError::ForeignSite {
                path,
                found: state.site,
                expected: site.into(),
            });
        }
        Ok(Some(state))
    }

    /// Writes `dir/state.json` atomically with mode 0600, creating `dir` (0700).
    pub fn save(&self, dir: &Path) -> Result<(), StateError> {
        let path = dir.join(STATE_FILE);
        let io = |source| StateError::Io {
            path: path.clone(),
            source,
        };
        create_private_dir(dir).map_err(io)?;
        let text = serde_json::to_vec_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        let tmp = dir.join(format!(".{STATE_FILE}.tmp"));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp).map_err(io)?;
        f.write_all(&text).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(())
    }

    /// Remembers a failure for `status` (the newest `KEPT_ERRORS`).
    pub fn record_error(&mut self, at: i64, message: String) {
        self.errors.push(RecordedError { at, message });
        let extra = self.errors.len().saturating_sub(KEPT_ERRORS);
        self.errors.drain(..extra);
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

#[cfg(test)]
mod tests;
