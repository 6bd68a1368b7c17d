//! The database connection and the schema migrations, the same for SQLite and PostgreSQL.
//!
//! Both backends go through sqlx's `Any` driver: one pool type, one set of queries. The
//! SQL is kept to the common dialect (see `migrations/0001_init.sql`): `$n` parameters
//! (SQLite reads `$1` as parameter 1), `BIGINT` and `TEXT` columns, `RETURNING`, no
//! backend-specific types. Migrations are plain SQL files compiled into the binary and
//! applied in order, each in a transaction, recorded in `schema_migrations`.

use std::path::Path;
use std::str::FromStr;
use std::sync::Once;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor as _};

/// The migrations, in order: (version, name, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (2, "reports", include_str!("../migrations/0002_reports.sql")),
    (3, "storage", include_str!("../migrations/0003_storage.sql")),
];

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend of `url`, or `None` for an unsupported scheme.
    pub fn of(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// The URL of an SQLite file (created on first use).
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// A URL for logs: the password of a PostgreSQL URL replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Opens a pool on `url` and applies missing migrations.
pub async fn connect(url: &str) -> Result<(AnyPool, Backend), sqlx::Error> {
    static DRIVERS: Once = Once::new();
    DRIVERS.call_once(sqlx::any::install_default_drivers);
    let backend = Backend::of(url).ok_or_else(|| {
        sqlx::Error::Configuration(
            format!(
                "unsupported database URL {:?}: use sqlite://FILE or postgres://...",
                redact_url(url)
            )
            .into(),
        )
    })?;
    let options = AnyConnectOptions::from_str(url)?;
    let pool = AnyPoolOptions::new()
        .max_connections(match backend {
            Backend::Sqlite => 4,
            Backend::Postgres => 8,
        })
        .connect_with(options)
        .await?;
    if backend == Backend::Sqlite {
        // Readers never wait for the writer; the writer lock is taken by the first
        // statement of every change (see `Store::begin`) and waited for (busy timeout).
        pool.execute("PRAGMA journal_mode = WAL").await?;
    }
    migrate(&pool).await?;
    Ok((pool, backend))
}

async fn migrate(pool: &AnyPool) -> Result<(), sqlx::Error> {
    pool.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
         version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(pool)
        .await?;
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        let mut tx = pool.begin().await?;
        for statement in statements(sql) {
            tx.execute(statement.as_str()).await?;
        }
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(*version)
        .bind(*name)
        .bind(crate::now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(version, name, "database migration applied");
    }
    Ok(())
}

/// The statements of a migration file: split at `;` ending a line, comments dropped.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let line = line.trim_end();
        if line.trim_start().starts_with("--") || line.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.ends_with(';') {
            out.push(current.trim().trim_end_matches(';').to_owned());
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_statements_and_redacts() {
        let s = statements("-- c\nCREATE TABLE a (x BIGINT);\n\nCREATE TABLE b (\n y TEXT\n);\n");
        assert_eq!(s.len(), 2);
        assert!(s[1].starts_with("CREATE TABLE b"));
        assert_eq!(
            redact_url("postgres://u:pw@127.0.0.1:5/db"),
            "postgres://u:***@127.0.0.1:5/db"
        );
        assert_eq!(Backend::of("sqlite://x"), Some(Backend::Sqlite));
        assert_eq!(Backend::of("mysql://x"), None);
    }
}
