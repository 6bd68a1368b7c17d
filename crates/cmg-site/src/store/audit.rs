//! Reading the audit log: newest first, a page at a time, optionally filtered (the web
//! console's audit page). Entries are written by [`Change::audit`](super::Change) only;
//! [`Store::record_analysis`] is the one entry that records a check, not a change.

use sqlx::Row as _;

use super::{Actor, Result, Store};
use crate::model::AuditEntry;

/// Which audit entries to read. Text filters match case-insensitively; empty ones match
/// everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only entries with an ID below this one (the next page).
    pub before: Option<i64>,
    /// At most this many (1 to 1000).
    pub limit: u32,
    /// The actor contains this.
    pub actor: String,
    /// The action starts with this (`token.` is every token action).
    pub action: String,
    /// The target contains this.
    pub target: String,
}

/// `text` as a `LIKE` pattern matching itself literally (escape character `\`).
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn contains(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!("%{}%", literal(text))
    }
}

impl Store {
    /// Audit entries, newest first: at most `limit`, with ids below `before` if given.
    pub async fn audit(&self, limit: u32, before: Option<i64>) -> Result<Vec<AuditEntry>> {
        self.audit_filtered(&AuditFilter {
            before,
            limit,
            ..AuditFilter::default()
        })
        .await
    }

    /// Audit entries matching `f`, newest first.
    pub async fn audit_filtered(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let action = if f.action.is_empty() {
            String::new()
        } else {
            format!("{}%", literal(&f.action))
        };
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target, detail FROM audit_log WHERE id < $1 \
             AND ($3 = '' OR LOWER(actor) LIKE $3 ESCAPE '\\') \
             AND ($4 = '' OR LOWER(action) LIKE $4 ESCAPE '\\') \
             AND ($5 = '' OR LOWER(target) LIKE $5 ESCAPE '\\') \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(f.before.unwrap_or(i64::MAX))
        .bind(i64::from(f.limit.clamp(1, 1000)))
        .bind(contains(&f.actor))
        .bind(action)
        .bind(contains(&f.target))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get("detail")?;
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                })
            })
            .collect()
    }

    /// Records that `actor` ran the connection analyzer against `gateway`
    /// (`gateway.analyze`); `detail` says what was checked and how it came out, never
    /// with key material or a token.
    pub async fn record_analysis(
        &self,
        gateway: &str,
        detail: serde_json::Value,
        actor: &Actor,
    ) -> Result<()> {
        let mut change = self.begin(actor).await?;
        change.audit("gateway.analyze", gateway, detail).await?;
        change.commit(self).await
    }
}
