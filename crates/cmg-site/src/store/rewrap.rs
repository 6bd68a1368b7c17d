//! Every sealed value of the database, and moving them all to the ring's sealing key
//! while the site runs (`cmg site key rewrap`).
//!
//! [`COLUMNS`] lists each column that holds a sealed value with the purpose it is
//! sealed for; a new sealed column must be added there (the test
//! `rewrap::every_sealed_value_moves` seals one of each). A rewrap:
//! 1. reads the ring again from its source and puts it in force, keeping in memory any
//!    key the source no longer holds, so requests served meanwhile open every value;
//!    new values are sealed with the new key from then on;
//! 2. in one change (the site-wide write lock, one audit entry), opens every value that
//!    names another key and seals it with the sealing key (none: the change is rolled
//!    back and nothing is audited, as for any request that changes nothing);
//! 3. counts what still names another key: a change that sealed with the old key
//!    before step 1 and committed after step 2. While some are left it repeats step 2
//!    (at most [`PASSES`] times) and reports what remains.
//!
//! It does not touch what is sealed to gateway instances (their own keys) nor the
//! master key files.

use std::collections::BTreeMap;

use serde_json::json;
use sqlx::{AnyConnection, Row as _};

use super::{alerts, gateway, site, storage, Actor, Result, Store, StoreError};
use crate::model::{MasterKeyRewrap, MasterKeyStatus};
use crate::secret::{sealed_key_id, SecretError};

/// How many rewrap changes one request runs at most (see the module docs).
const PASSES: usize = 3;

/// A column holding sealed values.
struct Column {
    table: &'static str,
    /// The primary key column (a single row table uses `id`).
    key: &'static str,
    column: &'static str,
    /// The purpose a row's value is sealed for, from its key.
    purpose: fn(&str) -> String,
}

fn key_check(_: &str) -> String {
    site::KEY_CHECK_PURPOSE.to_owned()
}
fn ca_key(_: &str) -> String {
    site::CA_KEY.to_owned()
}
fn api_key(_: &str) -> String {
    site::API_KEY.to_owned()
}
fn webhook(_: &str) -> String {
    alerts::WEBHOOK_PURPOSE.to_owned()
}
fn storage1(gateway: &str) -> String {
    storage::purpose(gateway, 1)
}
fn storage2(gateway: &str) -> String {
    storage::purpose(gateway, 2)
}

/// Every sealed column of the schema.
const COLUMNS: [Column; 8] = [
    Column {
        table: "site",
        key: "id",
        column: "key_check",
        purpose: key_check,
    },
    Column {
        table: "site",
        key: "id",
        column: "ca_key_sealed",
        purpose: ca_key,
    },
    Column {
        table: "site",
        key: "id",
        column: "api_key_sealed",
        purpose: api_key,
    },
    Column {
        table: "site",
        key: "id",
        column: "alert_webhook",
        purpose: webhook,
    },
    Column {
        table: "signing_keys",
        key: "kid",
        column: "private_sealed",
        purpose: site::signing_purpose,
    },
    Column {
        table: "gateways",
        key: "name",
        column: "key_sealed",
        purpose: gateway::key_purpose,
    },
    Column {
        table: "storage_credentials",
        key: "gateway",
        column: "key1_sealed",
        purpose: storage1,
    },
    Column {
        table: "storage_credentials",
        key: "gateway",
        column: "key2_sealed",
        purpose: storage2,
    },
];

/// One sealed value and where it is.
struct Sealed {
    column: &'static Column,
    key: String,
    value: String,
}

impl Sealed {
    fn purpose(&self) -> String {
        (self.column.purpose)(&self.key)
    }

    /// The key id it names, `v1` for a value from before key ids.
    fn key_id(&self) -> &str {
        sealed_key_id(&self.value).unwrap_or("v1")
    }
}

/// Every sealed value in the database (NULLs skipped).
async fn scan(conn: &mut AnyConnection) -> Result<Vec<Sealed>> {
    let mut out = Vec::new();
    for column in &COLUMNS {
        let rows = sqlx::query(&format!(
            "SELECT CAST({key} AS TEXT) AS k, {col} AS v FROM {table} ORDER BY k",
            key = column.key,
            col = column.column,
            table = column.table
        ))
        .fetch_all(&mut *conn)
        .await?;
        for r in rows {
            if let Some(value) = r.try_get::<Option<String>, _>("v")? {
                out.push(Sealed {
                    column,
                    key: r.try_get("k")?,
                    value,
                });
            }
        }
    }
    Ok(out)
}

/// How many values name each key id.
fn count(values: &[Sealed]) -> BTreeMap<String, u64> {
    let mut by_key = BTreeMap::new();
    for v in values {
        *by_key.entry(v.key_id().to_owned()).or_insert(0) += 1;
    }
    by_key
}

impl Store {
    /// Refuses a database holding a value whose key the ring lacks, naming the key.
    pub(super) async fn check_ring(&self) -> Result<()> {
        let mut conn = self.pool().acquire().await?;
        let values = scan(&mut conn).await?;
        let ring = self.key();
        for (id, n) in count(&values) {
            if id != "v1" && !ring.contains(&id) {
                let first = values
                    .iter()
                    .find(|v| v.key_id() == id)
                    .map(Sealed::purpose)
                    .unwrap_or_default();
                return Err(SecretError::MissingKey {
                    key_id: id,
                    count: n as usize,
                    first,
                    ring: ring.describe(),
                }
                .into());
            }
        }
        Ok(())
    }

    /// The ring in force and how many sealed values name each key.
    pub async fn master_key_status(&self) -> Result<MasterKeyStatus> {
        let mut conn = self.pool().acquire().await?;
        let values = scan(&mut conn).await?;
        let ring = self.key();
        Ok(MasterKeyStatus {
            sealing_key: ring.sealing().id().to_owned(),
            ring: ring.ids(),
            values: count(&values),
        })
    }

    /// Reads the ring again and seals every value anew with its sealing key, while the
    /// site serves (see the module docs).
    pub async fn rewrap_secrets(&self, actor: &Actor) -> Result<MasterKeyRewrap> {
        let _one_at_a_time = self.inner.rewrapping.lock().await;
        if let Some(source) = &self.inner.source {
            let fresh = source.load()?;
            self.set_key(fresh.keeping(&self.key()));
        }
        let ring = self.key();
        let to = ring.sealing().id().to_owned();
        let mut report = MasterKeyRewrap {
            sealing_key: to.clone(),
            ring: ring.ids(),
            resealed: 0,
            from: BTreeMap::new(),
            left: 0,
        };
        for pass in 1..=PASSES {
            let mut c = self.begin(actor).await?;
            let values = scan(&mut c.tx).await?;
            let mut from = BTreeMap::new();
            for v in values.iter().filter(|v| v.key_id() != to) {
                let purpose = v.purpose();
                let plain = ring.open(&purpose, &v.value)?;
                let sealed = ring.seal(&purpose, plain.expose().as_bytes())?;
                drop(plain);
                let n = sqlx::query(&format!(
                    "UPDATE {table} SET {col} = $1 WHERE CAST({key} AS TEXT) = $2 AND {col} = $3",
                    table = v.column.table,
                    col = v.column.column,
                    key = v.column.key
                ))
                .bind(sealed)
                .bind(v.key.as_str())
                .bind(v.value.as_str())
                .execute(&mut *c.tx)
                .await?
                .rows_affected();
                if n != 1 {
                    return Err(StoreError::internal(format!(
                        "rewrap: {}.{} of {:?} changed under the write lock",
                        v.column.table, v.column.column, v.key
                    )));
                }
                *from.entry(v.key_id().to_owned()).or_insert(0u64) += 1;
            }
            let resealed: u64 = from.values().sum();
            if resealed == 0 {
                break; // nothing to move: roll the empty change back, audit nothing
            }
            c.audit(
                "master_key.rewrap",
                &to,
                json!({"sealing_key": to, "ring": ring.ids(), "resealed": resealed,
                       "from": from, "pass": pass}),
            )
            .await?;
            c.commit(self).await?;
            tracing::info!(sealing_key = %to, resealed, ?from, pass, "sealed values moved to the master key");
            report.resealed += resealed;
            for (id, n) in from {
                *report.from.entry(id).or_insert(0) += n;
            }
            let mut conn = self.pool().acquire().await?;
            report.left = scan(&mut conn)
                .await?
                .iter()
                .filter(|v| v.key_id() != to)
                .count() as u64;
            if report.left == 0 {
                break;
            }
        }
        if report.left > 0 {
            tracing::warn!(sealing_key = %to, left = report.left,
                "sealed values still name another master key after the rewrap; run it again");
        }
        Ok(report)
    }
}
