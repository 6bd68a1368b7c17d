//! The database connection and the schema migrations, the same for SQLite and PostgreSQL.
//!
//! Both backends go through sqlx's `Any` driver: one pool type, one set of queries. The
//! SQL is kept to the common dialect (see `migrations/0001_init.sql`): `$n` parameters
//! (SQLite reads `$1` as parameter 1), `BIGINT` and `TEXT` columns, `RETURNING`, no
//! backend-specific types. Migrations are plain SQL files compiled into the binary, run
//! by sqlx's `Migrator` (`migrate`).

mod migrate;
mod sqlite_file;

use std::path::Path;
use std::str::FromStr;
use std::sync::Once;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor as _};

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

/// Opens a pool on `url` and applies missing migrations. An SQLite file is created 0600
/// and refused when group or others may read it (`sqlite_file`).
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
    if backend == Backend::Sqlite {
        sqlite_file::prepare(url).map_err(|e| sqlx::Error::Configuration(Box::new(e)))?;
    }
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
    migrate::run(&pool, backend)
        .await
        .map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
    Ok((pool, backend))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_and_names_backends() {
        assert_eq!(
            redact_url("postgres://u:pw@127.0.0.1:5/db"),
            "postgres://u:***@127.0.0.1:5/db"
        );
        assert_eq!(Backend::of("sqlite://x"), Some(Backend::Sqlite));
        assert_eq!(Backend::of("mysql://x"), None);
    }
}
