//! The request journal: one JSON line per request, appended once the request body has
//! been read to its end (or failed), so tests and the demo can check what arrived.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// What the management point saw of one request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JournalEntry {
    /// When the entry was written (RFC 3339, UTC).
    pub ts: String,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Request headers in arrival order; values not valid UTF-8 are replaced lossily.
    pub headers: Vec<(String, String)>,
    /// Body bytes received (all of them when `complete`, those before the failure if not).
    pub body_bytes: u64,
    /// Lowercase hex SHA-256 of the `body_bytes` received.
    pub body_sha256: String,
    /// False when the body stream failed (peer reset, truncated, or not stored): a
    /// cut-off body never looks complete.
    pub complete: bool,
    /// Status the management point answered with.
    pub status: u16,
}

/// Reads every entry of a journal file.
pub fn read_journal(path: &Path) -> std::io::Result<Vec<JournalEntry>> {
    let reader = BufReader::new(File::open(path)?);
    let mut entries = Vec::new();
    for line in reader.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let entry = serde_json::from_str(&line)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        entries.push(entry);
    }
    Ok(entries)
}

/// The append-only journal writer shared by all connections.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    pub(crate) fn open(path: PathBuf) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Self {
            path,
            file: Mutex::new(file),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entry` as one line with a single unbuffered write, so a reader sees it as
    /// soon as this returns.
    pub(crate) fn append(&self, entry: &JournalEntry) {
        let mut line = match serde_json::to_vec(entry) {
            Ok(line) => line,
            Err(e) => {
                tracing::warn!(target: "cmg_mp", error = %e, "journal entry not serialisable");
                return;
            }
        };
        line.push(b'\n');
        let mut file = match self.file.lock() {
            Ok(file) => file,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Err(e) = file.write_all(&line).and_then(|()| file.flush()) {
            tracing::warn!(target: "cmg_mp", error = %e, path = %self.path.display(), "journal write failed");
        }
    }
}

/// The current time as RFC 3339 (UTC).
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
