//! The SQLite database file holds sealed secrets and token hashes: created 0600 with its
//! `-wal` and `-shm` files whatever the umask, and a start refused when any of them is
//! readable by group or others, naming the file and the fix.

#![cfg(unix)]

#[allow(unused_macros)]
mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use cmg_site::Store;
use support::{admin, master_key, test_site, Kind};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn side(db: &Path, ext: &str) -> PathBuf {
    let mut p = db.to_owned().into_os_string();
    p.push(ext);
    PathBuf::from(p)
}

#[tokio::test]
async fn the_database_and_its_wal_are_private_and_checked_at_start() {
    let (store, db) = test_site(Kind::Sqlite).await;
    let file = db.sqlite_file();
    // A change, so the write-ahead log and shared memory exist while the store is open.
    store.new_token(Some(60), &admin()).await.expect("token");
    assert_eq!(mode(&file), 0o600, "site.db");
    for ext in ["-wal", "-shm"] {
        let f = side(&file, ext);
        assert!(f.exists(), "{} exists in WAL mode", f.display());
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    store.close().await;

    // Group-readable: refused, naming the file and the fix; nothing opened.
    chmod(&file, 0o640);
    let err = Store::open(&db.url, master_key())
        .await
        .expect_err("group-readable database");
    let msg = err.to_string();
    assert!(
        msg.contains(&file.display().to_string()) && msg.contains("chmod 600"),
        "{msg}"
    );
    chmod(&file, 0o600);

    // A write-ahead log left readable by others is refused too.
    let wal = side(&file, "-wal");
    std::fs::write(&wal, b"").expect("wal");
    chmod(&wal, 0o644);
    let err = Store::open(&db.url, master_key())
        .await
        .expect_err("readable -wal");
    assert!(err.to_string().contains("site.db-wal"), "{err}");
    chmod(&wal, 0o600);
    Store::open(&db.url, master_key())
        .await
        .expect("private again: opens")
        .close()
        .await;
}
