//! The state tables in `schema_database`:
//!
//! - `bootstrap`: Maxwell's requests, column for column (spec §2.1), so
//!   Maxwell's tooling and plain SQL inserts work. Its inserts are emitted
//!   as rows; sluice updates `started_at`, `inserted_rows`, `is_complete`
//!   and `completed_at` as Maxwell does.
//! - `bootstrap_progress`: sluice's own, one row per request: the cursor of
//!   the last delivered chunk (stored only after the producer flushed it),
//!   counters, the error of a failed task, and the epoch of the leader
//!   working on it (writes of a superseded leader are refused).
//! - `bootstrap_watermarks`: the low/high watermark rows written through
//!   the binlog around each chunk.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool, Row};
use sluice_pipeline::snapshot::{Mark, SnapValue, REQUEST_TABLE, WATERMARK_TABLE};

use super::cursor;

pub fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("bootstrap state: {}", sluice_schema::connect::describe(.0))]
    Sql(#[from] mysql_async::Error),
    #[error("bootstrap state: request {id} is worked on by a newer leader (epoch {theirs}; ours is {ours})")]
    Fenced { id: u64, ours: u64, theirs: u64 },
}

/// Maxwell's `bootstrap` table (its `maxwell_schema_bootstrap.sql`, with
/// `CHARACTER SET` spelled out: the same table).
fn bootstrap_ddl(db: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {db}.`{REQUEST_TABLE}` (
  id bigint auto_increment NOT NULL primary key,
  database_name varchar(255) CHARACTER SET utf8 NOT NULL,
  table_name varchar(255) CHARACTER SET utf8 NOT NULL,
  where_clause text default NULL,
  is_complete tinyint(1) unsigned NOT NULL default 0,
  inserted_rows bigint(20) unsigned NOT NULL DEFAULT 0,
  total_rows bigint(20) unsigned NOT NULL DEFAULT 0,
  created_at DATETIME default NULL,
  started_at DATETIME default NULL,
  completed_at DATETIME default NULL,
  binlog_file varchar(255) default NULL,
  binlog_position int unsigned default 0,
  client_id varchar(255) CHARACTER SET latin1 not null default 'maxwell',
  comment varchar(255) CHARACTER SET utf8 default NULL
)"
    )
}

/// sluice's progress of each request.
fn progress_ddl(db: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {db}.`bootstrap_progress` (
  id bigint NOT NULL PRIMARY KEY,
  client_id varchar(255) CHARACTER SET latin1 NOT NULL,
  epoch bigint unsigned NOT NULL DEFAULT 0,
  state varchar(16) NOT NULL DEFAULT 'running',
  request text NULL,
  key_columns text NULL,
  cursor_values mediumtext NULL,
  chunks bigint unsigned NOT NULL DEFAULT 0,
  rows_read bigint unsigned NOT NULL DEFAULT 0,
  rows_emitted bigint unsigned NOT NULL DEFAULT 0,
  rows_superseded bigint unsigned NOT NULL DEFAULT 0,
  start_emitted tinyint NOT NULL DEFAULT 0,
  total_estimate bigint unsigned NOT NULL DEFAULT 0,
  failures int unsigned NOT NULL DEFAULT 0,
  error text NULL,
  updated_at datetime(3) NULL
) CHARACTER SET utf8mb4"
    )
}

/// sluice's watermark rows.
fn watermarks_ddl(db: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {db}.`{WATERMARK_TABLE}` (
  id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
  client_id varchar(255) CHARACTER SET latin1 NOT NULL,
  session bigint unsigned NOT NULL,
  task_id bigint unsigned NOT NULL,
  chunk bigint unsigned NOT NULL,
  mark varchar(16) NOT NULL,
  KEY client_watermarks (client_id, id)
)"
    )
}

/// Columns added to the tables after their first version: an older table
/// gets them the way Maxwell upgrades its own (ALTER TABLE … ADD COLUMN).
const LATER_COLUMNS: &[(&str, &str, &str)] = &[
    (
        REQUEST_TABLE,
        "total_rows",
        "bigint(20) unsigned NOT NULL DEFAULT 0",
    ),
    (REQUEST_TABLE, "created_at", "DATETIME default NULL"),
    (
        REQUEST_TABLE,
        "client_id",
        "varchar(255) CHARACTER SET latin1 not null default 'maxwell'",
    ),
    (
        REQUEST_TABLE,
        "comment",
        "varchar(255) CHARACTER SET utf8 default NULL",
    ),
    ("bootstrap_progress", "request", "text NULL"),
];

/// Creates the three tables when missing (idempotent; needs all rights on
/// `database`, which sluice has for its positions anyway).
pub async fn ensure(conn: &mut Conn, database: &str) -> Result<(), mysql_async::Error> {
    let db = quote(database);
    conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS {db}"))
        .await?;
    conn.query_drop(bootstrap_ddl(&db)).await?;
    conn.query_drop(progress_ddl(&db)).await?;
    conn.query_drop(watermarks_ddl(&db)).await?;
    for (table, name, def) in LATER_COLUMNS {
        let has: Option<Row> = conn
            .exec_first(
                "SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?",
                (database, table, name),
            )
            .await?;
        if has.is_none() {
            conn.query_drop(format!(
                "ALTER TABLE {db}.`{table}` ADD COLUMN {name} {def}"
            ))
            .await?;
        }
    }
    Ok(())
}

/// One row of `bootstrap` waiting for this client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: u64,
    pub database: String,
    pub table: String,
    /// None: no where clause (NULL or empty, as Maxwell's utility ignores
    /// an empty one).
    pub where_clause: Option<String>,
    pub total_rows: u64,
    pub comment: Option<String>,
    /// `started_at` is set: sluice (or a schedule) started it before.
    pub started: bool,
}

impl Request {
    /// What identifies the request beyond its id (ids repeat after a
    /// `TRUNCATE` of the table, which Maxwell's own tests do).
    pub fn signature(&self, client_id: &str) -> String {
        serde_json::json!([
            client_id,
            self.database,
            self.table,
            self.where_clause,
            self.comment
        ])
        .to_string()
    }
}

/// `bootstrap_progress`, as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    pub id: u64,
    pub key_columns: Vec<String>,
    /// The key of the last row of the last delivered chunk (None: nothing
    /// delivered yet).
    pub cursor: Option<Vec<SnapValue>>,
    pub chunks: u64,
    pub rows_read: u64,
    pub rows_emitted: u64,
    pub rows_superseded: u64,
    pub start_emitted: bool,
    pub total_estimate: u64,
    pub failures: u64,
    pub error: Option<String>,
    pub state: String,
}

/// The state tables of one client, written with one epoch.
#[derive(Clone)]
pub struct StateTables {
    pool: Pool,
    db: String,
    client_id: String,
    epoch: u64,
}

impl StateTables {
    pub fn new(pool: Pool, database: &str, client_id: &str, epoch: u64) -> Self {
        StateTables {
            pool,
            db: quote(database),
            client_id: client_id.to_string(),
            epoch,
        }
    }

    pub fn database(&self) -> &str {
        &self.db
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub async fn conn(&self) -> Result<Conn, mysql_async::Error> {
        self.pool.get_conn().await
    }

    /// Maxwell's poll: waiting requests of this client, interrupted ones
    /// first, then by schedule and id; a future `started_at` waits.
    pub async fn pending(&self) -> Result<Vec<Request>, StateError> {
        type R = (u64, String, String, Option<String>, u64, Option<String>, u8);
        let rows: Vec<R> = self
            .conn()
            .await?
            .exec(
                format!(
                    "SELECT id, database_name, table_name, where_clause, total_rows, comment, started_at IS NOT NULL FROM {}.`{REQUEST_TABLE}` \
                     WHERE is_complete = 0 AND client_id = ? AND (started_at IS NULL OR started_at <= NOW()) \
                     ORDER BY ISNULL(started_at), started_at ASC, id ASC",
                    self.db
                ),
                (&self.client_id,),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, database, table, where_clause, total_rows, comment, started)| Request {
                    id,
                    database,
                    table,
                    where_clause: where_clause.filter(|w| !w.trim().is_empty()),
                    total_rows,
                    comment,
                    started: started != 0,
                },
            )
            .collect())
    }

    /// Waiting requests of other client ids (Maxwell ignores them without a
    /// word, a trap its users fall into).
    pub async fn pending_elsewhere(&self) -> Result<Vec<(u64, String)>, StateError> {
        Ok(self
            .conn()
            .await?
            .exec(
                format!(
                    "SELECT id, client_id FROM {}.`{REQUEST_TABLE}` WHERE is_complete = 0 AND client_id <> ? ORDER BY id",
                    self.db
                ),
                (&self.client_id,),
            )
            .await?)
    }

    /// `Some(is_complete)`, or None when the row is gone (aborted).
    pub async fn is_complete(&self, id: u64) -> Result<Option<bool>, StateError> {
        let v: Option<u8> = self
            .conn()
            .await?
            .exec_first(
                format!(
                    "SELECT is_complete FROM {}.`{REQUEST_TABLE}` WHERE id = ?",
                    self.db
                ),
                (id,),
            )
            .await?;
        Ok(v.map(|c| c != 0))
    }

    pub async fn mark_started(&self, id: u64) -> Result<(), StateError> {
        self.conn()
            .await?
            .exec_drop(
                format!(
                    "UPDATE {}.`{REQUEST_TABLE}` SET started_at = NOW() WHERE id = ? AND started_at IS NULL",
                    self.db
                ),
                (id,),
            )
            .await?;
        Ok(())
    }

    pub async fn set_inserted_rows(&self, id: u64, rows: u64) -> Result<(), StateError> {
        self.conn()
            .await?
            .exec_drop(
                format!(
                    "UPDATE {}.`{REQUEST_TABLE}` SET inserted_rows = ? WHERE id = ?",
                    self.db
                ),
                (rows, id),
            )
            .await?;
        Ok(())
    }

    /// Takes `req` over for this leader's epoch and returns what is stored
    /// about it. A request never started, or whose stored progress belongs
    /// to another request with the same id or is finished (the request row
    /// was re-inserted), starts afresh.
    pub async fn claim(&self, req: &Request) -> Result<Progress, StateError> {
        let id = req.id;
        let sig = req.signature(&self.client_id);
        let mut conn = self.conn().await?;
        if !req.started {
            self.forget_progress(&mut conn, id).await?;
        }
        conn.exec_drop(
            format!(
                "INSERT INTO {}.`bootstrap_progress` (id, client_id, epoch, request, updated_at) VALUES (?, ?, ?, ?, NOW(3)) \
                 ON DUPLICATE KEY UPDATE \
                 epoch = IF(client_id <> VALUES(client_id) OR epoch <= VALUES(epoch), VALUES(epoch), epoch), \
                 request = IF(client_id <> VALUES(client_id), NULL, request), \
                 client_id = VALUES(client_id)",
                self.db
            ),
            (id, &self.client_id, self.epoch, &sig),
        )
        .await?;
        type R = (
            u64,
            Option<String>,
            Option<String>,
            u64,
            u64,
            u64,
            u64,
            u8,
            u64,
            u64,
            String,
            Option<String>,
        );
        let row: Option<R> = conn
            .exec_first(
                format!(
                    "SELECT epoch, key_columns, cursor_values, chunks, rows_read, rows_emitted, rows_superseded, \
                     start_emitted, total_estimate, failures, state, request FROM {}.`bootstrap_progress` WHERE id = ?",
                    self.db
                ),
                (id,),
            )
            .await?;
        let Some((
            epoch,
            keys,
            cur,
            chunks,
            rows_read,
            rows_emitted,
            rows_superseded,
            started,
            total,
            failures,
            state,
            stored_sig,
        )) = row
        else {
            return Err(StateError::Fenced {
                id,
                ours: self.epoch,
                theirs: 0,
            });
        };
        if epoch != self.epoch {
            return Err(StateError::Fenced {
                id,
                ours: self.epoch,
                theirs: epoch,
            });
        }
        if state != "running" || stored_sig.as_deref() != Some(sig.as_str()) {
            tracing::info!(id, "stored bootstrap progress belongs to an earlier request with this id: starting afresh");
            self.forget_progress(&mut conn, id).await?;
            conn.exec_drop(
                format!(
                    "INSERT INTO {}.`bootstrap_progress` (id, client_id, epoch, request, updated_at) VALUES (?, ?, ?, ?, NOW(3))",
                    self.db
                ),
                (id, &self.client_id, self.epoch, &sig),
            )
            .await?;
            return Ok(Progress {
                id,
                state: "running".into(),
                ..Default::default()
            });
        }
        let cursor = match cur.as_deref().map(cursor::decode) {
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => {
                tracing::warn!(id, error = %e, "stored bootstrap cursor unreadable: reading the table again from its first row");
                None
            }
            None => None,
        };
        Ok(Progress {
            id,
            key_columns: keys
                .and_then(|k| serde_json::from_str(&k).ok())
                .unwrap_or_default(),
            cursor,
            chunks,
            rows_read,
            rows_emitted,
            rows_superseded,
            start_emitted: started != 0,
            total_estimate: total,
            failures,
            error: None,
            state,
        })
    }

    /// Deletes the stored progress of `id` unless a newer leader owns it.
    /// Epochs are per client_id: a row of another client with this id
    /// belongs to a request that no longer exists (request ids repeat
    /// after the request table is truncated) and is always stale.
    async fn forget_progress(&self, conn: &mut Conn, id: u64) -> Result<(), StateError> {
        conn.exec_drop(
            format!(
                "DELETE FROM {}.`bootstrap_progress` WHERE id = ? AND (client_id <> ? OR epoch <= ?)",
                self.db
            ),
            (id, &self.client_id, self.epoch),
        )
        .await?;
        Ok(())
    }

    /// Stores `p` unless a newer leader took the request over.
    pub async fn save(&self, p: &Progress) -> Result<(), StateError> {
        let mut conn = self.conn().await?;
        let affected = self.save_on(&mut conn, p).await?;
        self.fenced_unless(affected, p.id).await
    }

    /// Stores the final `p` and Maxwell's completion of the request in one
    /// transaction: a finished progress row always goes with a completed
    /// request (a request row deleted meanwhile is simply not updated).
    pub async fn finish(&self, p: &Progress) -> Result<(), StateError> {
        let mut conn = self.conn().await?;
        let mut tx = conn
            .start_transaction(mysql_async::TxOpts::default())
            .await?;
        let affected = self.save_on(&mut tx, p).await?;
        if affected == 0 {
            drop(tx);
            return self.fenced_unless(0, p.id).await;
        }
        tx.exec_drop(
            format!(
                "UPDATE {}.`{REQUEST_TABLE}` SET is_complete = 1, inserted_rows = ?, completed_at = NOW() WHERE id = ?",
                self.db
            ),
            (p.rows_emitted, p.id),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn save_on(&self, conn: &mut impl Queryable, p: &Progress) -> Result<u64, StateError> {
        let keys = serde_json::to_string(&p.key_columns).unwrap_or_else(|_| "[]".into());
        let cur = p.cursor.as_deref().map(cursor::encode);
        Ok(conn
            .exec_iter(
                format!(
                    "UPDATE {}.`bootstrap_progress` SET state = ?, key_columns = ?, cursor_values = ?, chunks = ?, \
                     rows_emitted = ?, rows_superseded = ?, start_emitted = ?, total_estimate = ?, failures = ?, \
                     error = ?, updated_at = NOW(3) WHERE id = ? AND epoch = ?",
                    self.db
                ),
                (
                    &p.state,
                    keys,
                    cur,
                    p.chunks,
                    p.rows_emitted,
                    p.rows_superseded,
                    u8::from(p.start_emitted),
                    p.total_estimate,
                    p.failures,
                    &p.error,
                    p.id,
                    self.epoch,
                ),
            )
            .await?
            .affected_rows())
    }

    /// Counts rows a snapshot query read, at once (whether or not they are
    /// delivered later): the cost of the snapshot, across restarts.
    pub async fn add_rows_read(&self, id: u64, rows: u64) -> Result<(), StateError> {
        let affected = self
            .conn()
            .await?
            .exec_iter(
                format!(
                    "UPDATE {}.`bootstrap_progress` SET rows_read = rows_read + ? WHERE id = ? AND epoch = ?",
                    self.db
                ),
                (rows, id, self.epoch),
            )
            .await?
            .affected_rows();
        self.fenced_unless(affected, id).await
    }

    async fn fenced_unless(&self, affected: u64, id: u64) -> Result<(), StateError> {
        if affected > 0 {
            return Ok(());
        }
        let theirs: Option<u64> = self
            .conn()
            .await?
            .exec_first(
                format!(
                    "SELECT epoch FROM {}.`bootstrap_progress` WHERE id = ?",
                    self.db
                ),
                (id,),
            )
            .await?;
        Err(StateError::Fenced {
            id,
            ours: self.epoch,
            theirs: theirs.unwrap_or(0),
        })
    }

    /// Drops this client's watermark rows older than `below` (they were
    /// read; only the binlog needs them).
    pub async fn prune_watermarks(&self, below: u64) -> Result<(), StateError> {
        self.conn()
            .await?
            .exec_drop(
                format!(
                    "DELETE FROM {}.`{WATERMARK_TABLE}` WHERE client_id = ? AND id < ?",
                    self.db
                ),
                (&self.client_id, below),
            )
            .await?;
        Ok(())
    }
}

/// Writes one watermark row (autocommit: its own transaction in the
/// binlog) on the chunk connection; returns its id.
pub async fn write_watermark(
    conn: &mut Conn,
    db: &str,
    client_id: &str,
    session: u64,
    task: u64,
    chunk: u64,
    mark: Mark,
) -> Result<u64, mysql_async::Error> {
    conn.exec_drop(
        format!(
            "INSERT INTO {db}.`{WATERMARK_TABLE}` (client_id, session, task_id, chunk, mark) VALUES (?, ?, ?, ?, ?)"
        ),
        (client_id, session, task, chunk, mark.as_str()),
    )
    .await?;
    Ok(conn.last_insert_id().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_schema::ddl;

    /// The stream follows these statements from the binlog: its DDL
    /// parser must take them, and the result must be Maxwell's table.
    #[test]
    fn the_stream_can_follow_the_state_table_ddl() {
        let mut cat = sluice_schema::Catalog::default();
        cat.put_database(sluice_schema::Database {
            name: "maxwell".into(),
            charset: "utf8mb4".into(),
        });
        let ctx = ddl::Context {
            default_db: None,
            server_charset: Some("utf8mb4"),
            flavor: ddl::Flavor::MariaDb,
        };
        let db = quote("maxwell");
        for sql in [bootstrap_ddl(&db), progress_ddl(&db), watermarks_ddl(&db)] {
            let st = ddl::parse(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
            ddl::apply(&mut cat, &st, &ctx).unwrap();
        }
        let t = cat.get("maxwell", "bootstrap").unwrap();
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "id",
                "database_name",
                "table_name",
                "where_clause",
                "is_complete",
                "inserted_rows",
                "total_rows",
                "created_at",
                "started_at",
                "completed_at",
                "binlog_file",
                "binlog_position",
                "client_id",
                "comment"
            ]
        );
        assert_eq!(t.primary_key, ["id"]);
    }
}
