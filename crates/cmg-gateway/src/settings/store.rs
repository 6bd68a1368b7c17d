//! The last good bundle on disk: the signed JWS as received, so it is verified again
//! when read back (a file edited on disk is refused like a forged bundle).

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
    // Owner only: a bundle carries secrets sealed to the instances (the storage key),
    // and nothing but this instance needs to read it.
    cmg_core::private_file::write(path, signed.as_bytes()).map_err(SettingsError::Private)
}

/// The saved bundle, or `None` when there is none yet.
/// A file that group or others may read is refused (it may carry sealed secrets).
pub fn load(path: &Path) -> Result<Option<String>, SettingsError> {
    if !path.exists() {
        return Ok(None);
    }
    cmg_core::private_file::read_to_string(path)
        .map(Some)
        .map_err(SettingsError::Private)
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
        assert_eq!(
            std::fs::read_dir(path.parent().expect("dir"))
                .expect("dir")
                .count(),
            1,
            "renamed into place"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            let err = load(&path).expect_err("0644 refused").to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }
}
