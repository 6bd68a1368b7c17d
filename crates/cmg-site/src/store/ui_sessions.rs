//! The web console's sessions (`ui_sessions`, migration 0004): kept in the database so
//! a restart, or a second site server on the same database, keeps them. A row is keyed
//! by the SHA-256 of the cookie's secret; the secret itself is never stored. Signing in
//! and out are audited changes (actor `web:<name>`); looking a session up is not.
//!
//! It does not make or check cookies (that is `ui::session`).

use serde_json::json;
use sqlx::Row as _;

use super::{Actor, Result, Store};

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiSession {
    /// The name given at sign-in (the actor is `web:<name>`).
    pub name: String,
    pub created_at: i64,
    pub last_seen: i64,
}

/// How long a session lives, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLifetime {
    /// Without a request for this long, the session ends.
    pub idle: i64,
    /// After this long from sign-in, the session ends whatever its use.
    pub absolute: i64,
}

/// `last_seen` is written at most this often (seconds), not at every request.
const TOUCH_EVERY: i64 = 60;

impl Store {
    /// Records a new session (signing in) and removes expired ones.
    pub async fn create_ui_session(
        &self,
        id_sha256: &str,
        name: &str,
        life: SessionLifetime,
        actor: &Actor,
    ) -> Result<()> {
        let mut c = self.begin(actor).await?;
        sqlx::query("DELETE FROM ui_sessions WHERE created_at <= $1 OR last_seen <= $2")
            .bind(c.now - life.absolute)
            .bind(c.now - life.idle)
            .execute(&mut *c.tx)
            .await?;
        sqlx::query(
            "INSERT INTO ui_sessions (id_sha256, name, created_at, last_seen) VALUES ($1, $2, $3, $3)",
        )
        .bind(id_sha256)
        .bind(name)
        .bind(c.now)
        .execute(&mut *c.tx)
        .await?;
        c.audit("console.sign_in", name, json!({})).await?;
        c.commit(self).await
    }

    /// The session with this key if it is live at `now`; an expired one is removed.
    /// Refreshes `last_seen` (at most once a minute).
    pub async fn ui_session(
        &self,
        id_sha256: &str,
        life: SessionLifetime,
        now: i64,
    ) -> Result<Option<UiSession>> {
        let row =
            sqlx::query("SELECT name, created_at, last_seen FROM ui_sessions WHERE id_sha256 = $1")
                .bind(id_sha256)
                .fetch_optional(self.pool())
                .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut s = UiSession {
            name: row.try_get("name")?,
            created_at: row.try_get("created_at")?,
            last_seen: row.try_get("last_seen")?,
        };
        if now - s.created_at >= life.absolute || now - s.last_seen >= life.idle {
            sqlx::query("DELETE FROM ui_sessions WHERE id_sha256 = $1")
                .bind(id_sha256)
                .execute(self.pool())
                .await?;
            return Ok(None);
        }
        if now - s.last_seen >= TOUCH_EVERY {
            sqlx::query("UPDATE ui_sessions SET last_seen = $1 WHERE id_sha256 = $2")
                .bind(now)
                .bind(id_sha256)
                .execute(self.pool())
                .await?;
            s.last_seen = now;
        }
        Ok(Some(s))
    }

    /// Ends a session (signing out); audited when it existed.
    pub async fn end_ui_session(&self, id_sha256: &str, actor: &Actor) -> Result<()> {
        let mut c = self.begin(actor).await?;
        let name: Option<String> =
            sqlx::query_scalar("DELETE FROM ui_sessions WHERE id_sha256 = $1 RETURNING name")
                .bind(id_sha256)
                .fetch_optional(&mut *c.tx)
                .await?;
        let Some(name) = name else {
            return Ok(());
        };
        c.audit("console.sign_out", &name, json!({})).await?;
        c.commit(self).await
    }

    /// Moves a session's times (tests of expiry).
    pub async fn set_ui_session_times(
        &self,
        id_sha256: &str,
        created_at: i64,
        last_seen: i64,
    ) -> Result<()> {
        sqlx::query("UPDATE ui_sessions SET created_at = $1, last_seen = $2 WHERE id_sha256 = $3")
            .bind(created_at)
            .bind(last_seen)
            .bind(id_sha256)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
