//! Policy: `.sms_pol?assignments` lists the bodies in `[policy] dir`, each file whose
//! name is a policy ID (`A-Za-z0-9._-`, at most 128) being one assignment, with its
//! version and SHA-256; `.sms_pol?<id>` answers the body. Versions are the management
//! point's own: a file seen for the first time is version 1, and each listing that finds
//! a file's content changed (by its hash) raises its version by one; they are kept in
//! `data_dir/policy-versions.json`, so they only increase, across restarts too. Editing
//! a file is publishing a new version. A body that changes between the listing and its
//! download fails the client's hash check; the client lists again.
//!
//! The product's format (multipart/mixed, a UTF-16 XML header, a zlib payload) is not
//! copied: see `cmg_proto::device::policy`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use cmg_proto::device::{is_policy_id, PolicyAssignment, PolicyAssignments, MAX_POLICY_BODY_BYTES};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::sync::Mutex;

/// The file under `data_dir` that keeps the versions.
const VERSIONS_FILE: &str = "policy-versions.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Known {
    version: u64,
    sha256: String,
}

/// The policy directory and the versions seen so far.
#[derive(Debug)]
pub(crate) struct Policies {
    dir: PathBuf,
    versions_file: PathBuf,
    known: Mutex<BTreeMap<String, Known>>,
}

impl Policies {
    /// Opens `dir` (created if missing) with the versions kept in `data_dir`.
    pub(crate) async fn open(dir: PathBuf, data_dir: &Path) -> std::io::Result<Self> {
        tokio::fs::create_dir_all(&dir).await?;
        let versions_file = data_dir.join(VERSIONS_FILE);
        let known = match tokio::fs::read(&versions_file).await {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", versions_file.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(Self {
            dir,
            versions_file,
            known: Mutex::new(known),
        })
    }

    /// The assignments now: every policy file, its version and hash.
    pub(crate) async fn list(&self) -> std::io::Result<PolicyAssignments> {
        let mut names = Vec::new();
        let mut entries = tokio::fs::read_dir(&self.dir).await?;
        while let Some(e) = entries.next_entry().await? {
            if !e.file_type().await?.is_file() {
                continue;
            }
            if let Some(name) = e.file_name().to_str().filter(|n| is_policy_id(n)) {
                names.push(name.to_owned());
            }
        }
        names.sort();
        let mut known = self.known.lock().await;
        let mut changed = false;
        let mut out = Vec::with_capacity(names.len());
        for id in names {
            let Some(body) = self.read(&id).await? else {
                tracing::warn!(target: "cmg_mp", policy = %id, "policy body over the size limit; not listed");
                continue;
            };
            let sha256 = hex::encode(Sha256::digest(&body));
            let entry = known.entry(id.clone()).or_insert_with(|| {
                changed = true;
                Known {
                    version: 1,
                    sha256: sha256.clone(),
                }
            });
            if entry.sha256 != sha256 {
                entry.version += 1;
                entry.sha256 = sha256.clone();
                changed = true;
            }
            out.push(PolicyAssignment {
                id,
                version: entry.version,
                sha256,
            });
        }
        if changed {
            let text = serde_json::to_vec_pretty(&*known).map_err(std::io::Error::other)?;
            let tmp = self.versions_file.with_extension("json.tmp");
            tokio::fs::write(&tmp, text).await?;
            tokio::fs::rename(&tmp, &self.versions_file).await?;
        }
        Ok(PolicyAssignments { assignments: out })
    }

    /// The body of policy `id`; `None` when there is none (or it is over the limit).
    pub(crate) async fn body(&self, id: &str) -> std::io::Result<Option<Bytes>> {
        if !is_policy_id(id) {
            return Ok(None);
        }
        self.read(id).await
    }

    async fn read(&self, id: &str) -> std::io::Result<Option<Bytes>> {
        match tokio::fs::read(self.dir.join(id)).await {
            Ok(b) if b.len() <= MAX_POLICY_BODY_BYTES => Ok(Some(b.into())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn versions_rise_when_a_body_changes_and_survive_a_reopen() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("policy");
        let p = Policies::open(dir.clone(), tmp.path()).await.expect("open");
        tokio::fs::write(dir.join("baseline"), b"one")
            .await
            .expect("write");
        tokio::fs::write(dir.join("not a policy id"), b"x")
            .await
            .expect("write");
        let l = p.list().await.expect("list");
        assert_eq!(l.assignments.len(), 1);
        assert_eq!(l.assignments[0].version, 1);
        assert_eq!(l.assignments[0].sha256, hex::encode(Sha256::digest(b"one")));
        assert_eq!(
            p.list().await.expect("again").assignments[0].version,
            1,
            "unchanged"
        );
        tokio::fs::write(dir.join("baseline"), b"two")
            .await
            .expect("write");
        assert_eq!(p.list().await.expect("list").assignments[0].version, 2);
        drop(p);
        let p = Policies::open(dir.clone(), tmp.path())
            .await
            .expect("reopen");
        assert_eq!(
            p.list().await.expect("list").assignments[0].version,
            2,
            "kept"
        );
        assert_eq!(
            p.body("baseline").await.expect("body").as_deref(),
            Some(&b"two"[..])
        );
        assert_eq!(p.body("missing").await.expect("body"), None);
        assert_eq!(p.body("../etc").await.expect("body"), None);
    }
}
