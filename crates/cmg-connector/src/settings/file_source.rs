//! A bundle file as the source of settings: read at start and whenever its size or
//! modification time changes (checked every `interval`). A file that is missing, too
//! large, readable by group or others (it may carry sealed secrets; the configuration
//! refuses such a file at start, this catches one replaced later) or not a bundle is
//! logged and skipped; the bundle already held stays.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{SettingsFeed, SignedBundle};

/// Files above this are not read (the gateway refuses larger bundles anyway).
const MAX_FILE: u64 = cmg_token::bundle::MAX_BUNDLE_BYTES as u64;

/// Watches `path` until `stop`.
pub async fn run(
    path: PathBuf,
    interval: Duration,
    feed: Arc<SettingsFeed>,
    stop: CancellationToken,
) {
    let mut seen: Option<(u64, Option<SystemTime>)> = None;
    loop {
        match tokio::fs::metadata(&path).await {
            Ok(meta) => {
                let stamp = (meta.len(), meta.modified().ok());
                if seen != Some(stamp) {
                    seen = Some(stamp);
                    read(&path, meta.len(), &feed).await;
                }
            }
            Err(e) if seen.is_some() || e.kind() != std::io::ErrorKind::NotFound => {
                warn!(path = %path.display(), error = %e, "settings bundle file not readable");
                seen = None;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

async fn read(path: &std::path::Path, len: u64, feed: &SettingsFeed) {
    if len > MAX_FILE {
        warn!(path = %path.display(), len, "settings bundle file too large; ignored");
        return;
    }
    if let Err(e) = cmg_core::private_file::check(path) {
        warn!(path = %path.display(), error = %e, "settings bundle file refused");
        return;
    }
    let text = match tokio::fs::read_to_string(path).await {
        Ok(t) => t,
        Err(e) => {
            warn!(path = %path.display(), error = %e, "settings bundle file not readable");
            return;
        }
    };
    match SignedBundle::parse(&text) {
        None => warn!(path = %path.display(), "settings bundle file holds no bundle; ignored"),
        Some(b) => {
            let version = b.version;
            if feed.offer(b) {
                info!(version, path = %path.display(), "settings bundle loaded for the gateway instances");
            }
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use std::os::unix::fs::PermissionsExt as _;

    #[tokio::test]
    async fn a_bundle_file_others_may_read_is_skipped() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("bundle.jws");
        let payload = URL_SAFE_NO_PAD.encode(br#"{"version":3}"#);
        cmg_core::private_file::write(&path, format!("e30.{payload}.c2ln").as_bytes())
            .expect("write");
        let feed = SettingsFeed::default();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        read(&path, 10, &feed).await;
        assert_eq!(feed.version(), 0, "a readable bundle file is not taken");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        read(&path, 10, &feed).await;
        assert_eq!(feed.version(), 3, "the same file, private, is");
    }
}
