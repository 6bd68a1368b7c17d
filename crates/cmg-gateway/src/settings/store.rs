//! The last good bundle on disk: the signed JWS as received, so it is verified again
//! when read back (a file edited on disk is refused like a forged bundle).

use std::io::Write as _;
use std::path::Path;

use super::SettingsError;

/// Writes `signed` to `path` atomically (temporary file in the same directory, fsync,
/// rename).
pub fn save(path: &Path, signed: &str) -> Result<(), SettingsError> {
    let err = |source| SettingsError::Store {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = path.with_extension("tmp");
    // Owner only: a bundle may carry sealed secrets (the storage account), and nothing
    // but this instance needs to read it.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp).map_err(err)?;
    // A temporary file left by an older version may have kept wider permissions.
    #[cfg(unix)]
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(err)?;
    f.write_all(signed.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(err)
}

/// The saved bundle, or `None` when there is none yet.
pub fn load(path: &Path) -> Result<Option<String>, SettingsError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SettingsError::Store {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_atomically_readable_by_the_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state/bundle.jws");
        assert!(load(&path).expect("load").is_none());
        save(&path, "header.payload.signature").expect("save");
        assert_eq!(
            load(&path).expect("load").as_deref(),
            Some("header.payload.signature")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        }
        save(&path, "second").expect("save again");
        assert_eq!(load(&path).expect("load").as_deref(), Some("second"));
        assert!(!path.with_extension("tmp").exists(), "renamed into place");
    }
}
