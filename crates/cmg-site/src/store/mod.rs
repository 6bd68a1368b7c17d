//! The site's durable state and every change to it.
//!
//! One [`Store`] over one database (SQLite or PostgreSQL through sqlx `Any`, see
//! [`crate::db`]). Every change runs in one transaction that
//! 1. first increments `site.change_seq` (`UPDATE ... RETURNING`): the row lock on
//!    PostgreSQL, the write lock on SQLite, so changes are serialised on both backends
//!    and each gets a unique, increasing sequence number;
//! 2. makes the change;
//! 3. bumps `settings_version` of every gateway whose bundle it affects;
//! 4. writes one audit entry (id = the sequence number: who, when, what).
//!
//! Secrets are sealed with the master key before they reach a query and opened only
//! where they are used. The master key is a ring ([`KeyRing`]) the store reads again
//! when it rewraps (`rewrap`); at open it refuses a database holding a value sealed
//! with a key the ring lacks, naming that key.

pub mod alerts;
mod audit;
pub mod clients;
mod gateway;
mod instances;
mod publish;
pub mod reports;
mod rewrap;
mod roles;
pub mod site;
mod status;
mod storage;
pub mod sts;
mod ui_sessions;

use std::sync::{Arc, PoisonError, RwLock};

use sqlx::{Any, AnyPool, Row as _, Transaction};
use tokio::sync::watch;

use crate::db::{self, Backend};
use crate::keyring::{KeyRing, KeySource};
use crate::secret::SecretError;

pub use alerts::AlertEvent;
pub use audit::AuditFilter;
pub use publish::{ExportListen, SignedBundle};
pub use reports::Ingested;
pub use site::{ApiTls, InitParams};
pub use storage::DEFAULT_ROTATION_DAYS;
pub use ui_sessions::{SessionLifetime, UiSession};

/// Why an operation failed. `Invalid`, `NotFound`, `Conflict` and `Refused` are the
/// caller's to fix and carry a stable code; the others are the site's own faults.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("{what} {name:?} not found")]
    NotFound { what: &'static str, name: String },
    #[error("{what} {name:?} already exists")]
    Conflict { what: &'static str, name: String },
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    #[error("the site is not initialised (run `cmg site init`)")]
    NotInitialised,
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("{0}")]
    Internal(String),
}

impl StoreError {
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }
    pub(crate) fn not_found(what: &'static str, name: impl Into<String>) -> Self {
        Self::NotFound {
            what,
            name: name.into(),
        }
    }
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

    /// Whether the site's own configuration is at fault (its master key ring, its
    /// database URL or the database file's permissions), not the database or a request.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            Self::Secret(_) | Self::Db(sqlx::Error::Configuration(_))
        )
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Who made a change, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

impl Actor {
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }
}

/// The site store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: AnyPool,
    backend: Backend,
    /// The ring in force; replaced (never emptied of a key) when a rewrap reads it again.
    ring: RwLock<Arc<KeyRing>>,
    /// Where the ring is read again on rewrap; none: the ring given to `open` stays.
    source: Option<KeySource>,
    /// One rewrap at a time.
    rewrapping: tokio::sync::Mutex<()>,
    /// The last committed change sequence; long polls wait on it.
    changes: watch::Sender<i64>,
}

impl Store {
    /// Opens (creating and migrating when needed) the database at `url`. When the site
    /// is initialised, checks that `keys` open its values (see [`Self::open_from`]).
    pub async fn open(url: &str, keys: impl Into<KeyRing>) -> Result<Self> {
        Self::open_with(url, keys.into(), None).await
    }

    /// [`Self::open`] with the ring read from `source`, read again on each rewrap.
    pub async fn open_from(url: &str, source: KeySource) -> Result<Self> {
        let ring = source.load()?;
        Self::open_with(url, ring, Some(source)).await
    }

    async fn open_with(url: &str, ring: KeyRing, source: Option<KeySource>) -> Result<Self> {
        let (pool, backend) = db::connect(url).await?;
        let store = Self {
            inner: Arc::new(Inner {
                pool,
                backend,
                ring: RwLock::new(Arc::new(ring)),
                source,
                rewrapping: tokio::sync::Mutex::new(()),
                changes: watch::channel(0).0,
            }),
        };
        if let Some(check) =
            sqlx::query_scalar::<_, String>("SELECT key_check FROM site WHERE id = 1")
                .fetch_optional(store.pool())
                .await?
        {
            store
                .key()
                .open(site::KEY_CHECK_PURPOSE, &check)
                .map_err(|e| {
                    SecretError::MasterKey(format!("this is not the master key of this site: {e}"))
                })?;
            store.check_ring().await?;
        }
        tracing::info!(db = %db::redact_url(url), backend = ?backend,
            sealing_key = %store.key().sealing().id(), "site database open");
        Ok(store)
    }
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    /// The key ring in force (a rewrap may replace it; what is returned stays usable).
    pub(crate) fn key(&self) -> Arc<KeyRing> {
        self.inner
            .ring
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_key(&self, ring: KeyRing) {
        *self
            .inner
            .ring
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(ring);
    }

    /// A receiver that sees every committed change's sequence number.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.inner.changes.subscribe()
    }

    /// How many receivers from [`Self::subscribe`] are alive: a bundle long poll holds
    /// one while it waits, so a test can see that the poll is parked before it makes
    /// the change that should wake it.
    pub fn subscribers(&self) -> usize {
        self.inner.changes.receiver_count()
    }

    /// Starts a change: a transaction holding the site-wide write lock.
    pub(crate) async fn begin(&self, actor: &Actor) -> Result<Change> {
        let mut tx = self.pool().begin().await?;
        let seq: i64 = sqlx::query_scalar(
            "UPDATE site SET change_seq = change_seq + 1 WHERE id = 1 RETURNING change_seq",
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotInitialised)?;
        Ok(Change {
            tx,
            seq,
            now: crate::now(),
            actor: actor.0.clone(),
            audited: false,
        })
    }

    pub async fn close(&self) {
        self.pool().close().await;
    }
}

/// An open change (see the module docs). Dropping it rolls back.
pub(crate) struct Change {
    pub(crate) tx: Transaction<'static, Any>,
    pub(crate) seq: i64,
    pub(crate) now: i64,
    actor: String,
    audited: bool,
}

impl Change {
    /// Increments one gateway's settings version; returns the new version.
    pub(crate) async fn bump(&mut self, gateway: &str) -> Result<u64> {
        let v: i64 = sqlx::query_scalar(
            "UPDATE gateways SET settings_version = settings_version + 1, updated_at = $2 \
             WHERE name = $1 RETURNING settings_version",
        )
        .bind(gateway)
        .bind(self.now)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or_else(|| StoreError::not_found("gateway", gateway))?;
        Ok(v as u64)
    }

    /// Increments every gateway's settings version (site-wide settings changed).
    pub(crate) async fn bump_all(&mut self) -> Result<()> {
        sqlx::query("UPDATE gateways SET settings_version = settings_version + 1, updated_at = $1")
            .bind(self.now)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Records the change in the audit log (once per change).
    pub(crate) async fn audit(
        &mut self,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor, action, target, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(self.seq)
        .bind(self.now)
        .bind(self.actor.as_str())
        .bind(action)
        .bind(target)
        .bind(detail.to_string())
        .execute(&mut *self.tx)
        .await?;
        self.audited = true;
        Ok(())
    }

    /// Commits and wakes the long polls.
    pub(crate) async fn commit(self, store: &Store) -> Result<()> {
        if !self.audited {
            return Err(StoreError::internal("change without an audit entry"));
        }
        let seq = self.seq;
        self.tx.commit().await?;
        store.inner.changes.send_replace(seq);
        Ok(())
    }
}

pub(crate) fn b(v: bool) -> i64 {
    i64::from(v)
}

pub(crate) fn get_bool(row: &sqlx::any::AnyRow, col: &str) -> Result<bool> {
    Ok(row.try_get::<i64, _>(col)? != 0)
}
