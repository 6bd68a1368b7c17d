//! The schema migrations, run by sqlx's `Migrator` from SQL files compiled into the
//! binary (no `sqlx::migrate!` macro, so no macro crates in the build).
//!
//! The `Migrator` records each applied file with its SHA-384 in `_sqlx_migrations`,
//! refuses to start when a file applied earlier has changed since (or the database
//! holds a migration this build does not know), applies each missing file in a
//! transaction, and on PostgreSQL holds a session advisory lock while it runs, so two
//! sites starting on one database migrate it once. On SQLite the lock is a no-op (the
//! write lock of each transaction serialises them).
//!
//! Databases created before the `Migrator` (cmg's own runner, table
//! `schema_migrations`) are adopted first, under the same lock: each version the old
//! table records is written to `_sqlx_migrations` with the checksum of this build's file
//! and the old table dropped, in one transaction. The files were never changed after
//! they were applied by the old runner, so that checksum is the one the files had.
//!
//! It does not write or reverse migrations: a new one is a new file at the end of
//! [`MIGRATIONS`].

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migrate, MigrateError, Migration, MigrationSource, MigrationType, Migrator};
use sqlx::{AnyConnection, AnyPool, Connection as _, Executor as _};

use super::Backend;

/// The migrations, in order: (version, description, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/0001_init.sql")),
    (
        2,
        "reports",
        include_str!("../../migrations/0002_reports.sql"),
    ),
    (
        3,
        "storage",
        include_str!("../../migrations/0003_storage.sql"),
    ),
    (
        4,
        "ui_sessions",
        include_str!("../../migrations/0004_ui_sessions.sql"),
    ),
    (
        5,
        "instance keys",
        include_str!("../../migrations/0005_instance_keys.sql"),
    ),
    (
        6,
        "instances",
        include_str!("../../migrations/0006_instances.sql"),
    ),
    (
        7,
        "clients",
        include_str!("../../migrations/0007_clients.sql"),
    ),
];

/// The table of the runner that came before the `Migrator`.
const LEGACY_TABLE: &str = "schema_migrations";

fn migrations() -> Vec<Migration> {
    MIGRATIONS
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                false,
            )
        })
        .collect()
}

/// The compiled-in files as a `MigrationSource`.
#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        Box::pin(async { Ok(migrations()) })
    }
}

/// Adopts a database of the old runner, then applies the missing migrations.
pub(super) async fn run(pool: &AnyPool, backend: Backend) -> Result<(), MigrateError> {
    {
        let mut conn = pool.acquire().await?;
        conn.lock().await?;
        let adopted = adopt_legacy(&mut conn, backend).await;
        conn.unlock().await?;
        adopted?;
    }
    Migrator::new(Embedded).await?.run(pool).await
}

/// Moves the old runner's record into `_sqlx_migrations` (once; the caller holds the
/// migration lock).
async fn adopt_legacy(conn: &mut AnyConnection, backend: Backend) -> Result<(), MigrateError> {
    let exists = match backend {
        Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = $1"
        }
    };
    let found: i64 = sqlx::query_scalar(exists)
        .bind(LEGACY_TABLE)
        .fetch_one(&mut *conn)
        .await?;
    if found == 0 {
        return Ok(());
    }
    conn.ensure_migrations_table().await?;
    let recorded: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(&mut *conn)
        .await?;
    let known = migrations();
    let mut tx = conn.begin().await?;
    for version in recorded {
        let migration = known
            .iter()
            .find(|m| m.version == version)
            .ok_or(MigrateError::VersionMissing(version))?;
        sqlx::query(
            "INSERT INTO _sqlx_migrations \
             (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, $3, $4, 0)",
        )
        .bind(version)
        .bind(migration.description.to_string())
        .bind(true)
        .bind(migration.checksum.to_vec())
        .execute(&mut *tx)
        .await?;
    }
    tx.execute("DROP TABLE schema_migrations").await?;
    tx.commit().await?;
    tracing::info!("database migration records moved from schema_migrations to _sqlx_migrations");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_increasing_and_checksums_are_the_files() {
        let all = migrations();
        assert!(all.windows(2).all(|w| w[0].version < w[1].version));
        assert_eq!(all.len(), MIGRATIONS.len());
        assert!(all.iter().all(|m| m.checksum.len() == 48), "SHA-384");
    }
}
