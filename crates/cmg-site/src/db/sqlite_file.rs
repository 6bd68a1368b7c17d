//! The SQLite database file as a secret file: it holds sealed secrets and token hashes,
//! so it is created 0600 before SQLite opens it (not with the process umask), and a
//! start is refused when it, or its `-wal` or `-shm` file, may be read or written by
//! group or others, naming the file and the fix (`cmg_core::private_file::check`).
//!
//! SQLite creates the `-wal` and `-shm` files with the database file's mode, so a
//! private database keeps them private. An in-memory database (`:memory:`,
//! `mode=memory`) has no file and is left alone; PostgreSQL's files are the server's.

use std::path::{Path, PathBuf};

use cmg_core::private_file::{self, PrivateFileError};

/// The file an SQLite URL names, or `None` for an in-memory database.
fn file_of(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path.starts_with(":memory:") || query.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Creates the database file 0600 when it does not exist, then checks it and its
/// `-wal` and `-shm` files (see the module docs).
pub(super) fn prepare(url: &str) -> Result<(), PrivateFileError> {
    let Some(path) = file_of(url) else {
        return Ok(());
    };
    if !path.exists() {
        create_private(&path);
    }
    private_file::check(&path)?;
    for ext in ["-wal", "-shm"] {
        let mut side = path.clone().into_os_string();
        side.push(ext);
        let side = PathBuf::from(side);
        if side.exists() {
            private_file::check(&side)?;
        }
    }
    Ok(())
}

/// An empty file, mode 0600. Failing is left to SQLite, which reports it as it always
/// has (a missing directory); another process creating it first is fine: it is checked.
fn create_private(path: &Path) {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let _ = options.open(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_urls() {
        assert_eq!(
            file_of("sqlite:///srv/site.db?mode=rwc"),
            Some(PathBuf::from("/srv/site.db"))
        );
        assert_eq!(file_of("sqlite:site.db"), Some(PathBuf::from("site.db")));
        assert_eq!(file_of("sqlite::memory:"), None);
        assert_eq!(file_of("sqlite://x.db?mode=memory&cache=shared"), None);
        assert_eq!(file_of("postgres://u@h/db"), None);
    }
}
