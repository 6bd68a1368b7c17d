//! Files that hold a secret (private keys, tokens, the master key, settings bundles with
//! sealed secrets, deployment packages): written readable by the owner only and
//! atomically, and checked before a role reads one.
//!
//! [`write()`] puts the bytes in a temporary file created 0600 in the same directory
//! (`tempfile`, `O_EXCL`), flushes it to disk and renames it over the target, so a
//! reader sees the old file or the new one, never half of one, and never a moment when
//! the secret is readable by others (no `chmod` after the fact). [`check`] refuses a file
//! that group or others may read or write, naming the file and the fix, as ssh does with
//! `UNPROTECTED PRIVATE KEY FILE`; every role calls it (through [`read`] or its key
//! loader) before it uses such a file.
//!
//! It does not decide which files are secret (the callers do) and has no effect on
//! systems without Unix permissions, where both functions only write and read.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Why a secret file cannot be written or used.
#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    /// The file may be read or written by group or others.
    #[error(
        "{path} holds a secret but is accessible by group or others (mode {mode:04o}); \
         run `chmod 600 {path}`",
        path = path.display()
    )]
    TooOpen { path: PathBuf, mode: u32 },
    /// Reading or writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl PrivateFileError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Writes `contents` to `path` with mode 0600, atomically (temporary file in the same
/// directory, fsync, rename). The directory must exist.
pub fn write(path: &Path, contents: &[u8]) -> Result<(), PrivateFileError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // tempfile creates the file with mode 0600 and O_EXCL.
    let mut tmp = tempfile::Builder::new()
        .prefix(".cmg-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(PrivateFileError::io(path))?;
    tmp.write_all(contents)
        .map_err(PrivateFileError::io(path))?;
    tmp.as_file()
        .sync_all()
        .map_err(PrivateFileError::io(path))?;
    tmp.persist(path)
        .map_err(|e| PrivateFileError::io(path)(e.error))?;
    Ok(())
}

/// Refuses `path` when group or others have any access to it (see the module docs).
pub fn check(path: &Path) -> Result<(), PrivateFileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = std::fs::metadata(path).map_err(PrivateFileError::io(path))?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(PrivateFileError::TooOpen {
                path: path.to_owned(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// [`check`]s `path`, then reads it.
pub fn read(path: &Path) -> Result<Vec<u8>, PrivateFileError> {
    check(path)?;
    std::fs::read(path).map_err(PrivateFileError::io(path))
}

/// [`check`]s `path`, then reads it as UTF-8 text.
pub fn read_to_string(path: &Path) -> Result<String, PrivateFileError> {
    check(path)?;
    std::fs::read_to_string(path).map_err(PrivateFileError::io(path))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
    }

    #[test]
    fn written_owner_only_and_replaced_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("server.key");
        std::fs::write(&path, "old").expect("old");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write(&path, b"new secret").expect("write");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(read_to_string(&path).expect("read"), "new secret");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("server.key")],
            "no temporary file left"
        );
    }

    #[test]
    fn a_file_others_may_read_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("admin.token");
        std::fs::write(&path, "t").expect("write");
        for bad in [0o644, 0o640, 0o604, 0o660, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(bad)).expect("chmod");
            let err = read(&path).expect_err("refused").to_string();
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert!(
                err.contains(&format!("chmod 600 {}", path.display())),
                "{err}"
            );
        }
        for good in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(good)).expect("chmod");
            assert_eq!(read(&path).expect("read"), b"t");
        }
    }
}
