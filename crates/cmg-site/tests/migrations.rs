//! The schema migrations on both databases: a database the old runner created
//! (`schema_migrations`) is adopted by sqlx's `Migrator` and brought up to date, opening
//! twice changes nothing, and a migration file changed after it was applied is refused.

#[macro_use]
mod support;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor as _};
use support::{master_key, test_db, Kind};

use cmg_site::Store;

/// A pool of its own on `url`, without the store's migrations. An SQLite file it creates
/// is made 0600 first, as the store's start asks of a file an older cmg left (it holds
/// sealed secrets).
async fn raw_pool(url: &str) -> AnyPool {
    if let Some(file) = url
        .strip_prefix("sqlite://")
        .and_then(|r| r.split('?').next())
    {
        if !std::path::Path::new(file).exists() {
            cmg_core::private_file::write(std::path::Path::new(file), b"").expect("db file");
        }
    }
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .expect("raw pool")
}

/// What the runner before the `Migrator` left: migrations 1 and 2 applied, one
/// statement at a time, and recorded in `schema_migrations`.
async fn legacy_database(url: &str) {
    let pool = raw_pool(url).await;
    pool.execute(
        "CREATE TABLE schema_migrations (\
         version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await
    .expect("legacy table");
    let files = [
        (1_i64, "init", include_str!("../migrations/0001_init.sql")),
        (2, "reports", include_str!("../migrations/0002_reports.sql")),
    ];
    for (version, name, sql) in files {
        let mut tx = pool.begin().await.expect("begin");
        tx.execute(sql).await.expect("legacy migration");
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(version)
        .bind(name)
        .bind(1_700_000_000_i64)
        .execute(&mut *tx)
        .await
        .expect("record");
        tx.commit().await.expect("commit");
    }
    pool.close().await;
}

/// (version, success, checksum length) of each applied migration.
async fn applied(url: &str) -> Vec<(i64, bool, usize)> {
    let pool = raw_pool(url).await;
    // `Any` decodes no SQLite BOOLEAN column: read `success` as a number.
    let rows: Vec<(i64, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT version, CAST(CASE WHEN success THEN 1 ELSE 0 END AS BIGINT), checksum \
         FROM _sqlx_migrations ORDER BY version",
    )
    .fetch_all(&pool)
    .await
    .expect("applied migrations");
    pool.close().await;
    rows.into_iter()
        .map(|(v, ok, sum)| (v, ok == 1, sum.len()))
        .collect()
}

async fn legacy_database_is_adopted_and_completed(kind: Kind) {
    let db = test_db(kind).await;
    legacy_database(&db.url).await;
    // A boundary group of the old shape: migration 7 moves its gateways into a list.
    let pool = raw_pool(&db.url).await;
    pool.execute(
        "INSERT INTO boundary_groups (name, gateway, fallback_gateway, created_at) \
         VALUES ('bg1', 'gw1', 'gw2', 0), ('bg2', NULL, 'gw3', 0), ('bg3', NULL, NULL, 0)",
    )
    .await
    .expect("old boundary groups");
    pool.close().await;

    let store = Store::open(&db.url, master_key())
        .await
        .expect("open a database of the old runner");
    let groups: Vec<(String, Vec<String>)> = store
        .boundary_groups()
        .await
        .expect("groups")
        .into_iter()
        .map(|g| (g.name, g.gateways))
        .collect();
    assert_eq!(
        groups,
        vec![
            ("bg1".to_owned(), vec!["gw1".to_owned(), "gw2".to_owned()]),
            ("bg2".to_owned(), vec!["gw3".to_owned()]),
            ("bg3".to_owned(), vec![]),
        ]
    );
    drop(store);
    let expected = vec![
        (1, true, 48),
        (2, true, 48),
        (3, true, 48),
        (4, true, 48),
        (5, true, 48),
        (6, true, 48),
        (7, true, 48),
    ];
    assert_eq!(applied(&db.url).await, expected);

    let pool = raw_pool(&db.url).await;
    // Migration 3 ran: its table is there.
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM storage_credentials")
        .fetch_one(&pool)
        .await
        .expect("table of migration 3");
    assert_eq!(n, 0);
    // And migration 5's.
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM instance_keys")
        .fetch_one(&pool)
        .await
        .expect("table of migration 5");
    assert_eq!(n, 0);
    // The old record is gone, so it is not adopted twice.
    assert!(sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&pool)
        .await
        .is_err());
    pool.close().await;

    // Opening again (the usual start) finds nothing to do.
    Store::open(&db.url, master_key()).await.expect("reopen");
    assert_eq!(applied(&db.url).await, expected);
}
both!(legacy_database_is_adopted_and_completed);

async fn a_changed_migration_is_refused(kind: Kind) {
    let db = test_db(kind).await;
    Store::open(&db.url, master_key()).await.expect("fresh");
    let pool = raw_pool(&db.url).await;
    sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = 1")
        .bind(vec![0_u8; 48])
        .execute(&pool)
        .await
        .expect("tamper");
    pool.close().await;
    let err = Store::open(&db.url, master_key())
        .await
        .expect_err("a changed migration");
    assert!(err.to_string().contains("modified"), "{err}");
}
both!(a_changed_migration_is_refused);
