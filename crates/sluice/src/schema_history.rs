//! The schema history: every schema change sluice follows is recorded at
//! its binlog position (and GTID position) in
//! `<schema_database>.schema_history`, so that a restart restores the schema
//! in force at the position it resumes from — not today's catalog, which
//! may already contain later DDL.
//!
//! Rows are snapshots (a whole catalog as JSON, split into parts under the
//! server's packet limit) and changes (the tables and databases one DDL
//! left behind). Restoring = the newest snapshot at or before the resume
//! position + the changes after it up to that position. Growth is bounded:
//! a new snapshot is written every `SNAPSHOT_EVERY` changes, and everything
//! older than the snapshot the stored position needs is deleted.

use mysql_async::prelude::Queryable;
use mysql_async::{Pool, TxOpts};
use sluice_binlog::mysql_gtid::GtidSet;
use sluice_binlog::{BinlogPosition, GtidState};
use sluice_schema::serial::{self, Op};
use sluice_schema::Catalog;

/// Changes between two snapshots.
const SNAPSHOT_EVERY: u64 = 1000;
/// Bytes per snapshot row (below every server's default max_allowed_packet).
const PART_BYTES: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("schema history: {}", sluice_schema::connect::describe(.0))]
    Sql(#[from] mysql_async::Error),
    #[error("schema history: entry {id} is unreadable: {message}")]
    Corrupt { id: u64, message: String },
}

pub struct SchemaHistory {
    pool: Pool,
    table: String,
    positions: String,
    client_id: String,
    server_id: u32,
    gtid_mode: bool,
    changes_since_snapshot: u64,
    /// `replay`: the history is read, never written.
    read_only: bool,
}

/// One row's where-and-what, without its body.
#[derive(Debug, Clone)]
struct Meta {
    id: u64,
    kind: String,
    part: u32,
    parts: u32,
    base_id: Option<u64>,
    at: BinlogPosition,
}

fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// What a restore found.
pub struct Restored {
    pub catalog: Catalog,
    pub changes_applied: u64,
    /// Position of the snapshot it started from.
    pub snapshot_at: BinlogPosition,
    /// The history entry of the schema in force (`output_schema_id`).
    pub schema_id: u64,
}

impl SchemaHistory {
    /// Creates the table when missing (the database exists: the position
    /// store made it).
    pub async fn open(
        opts: mysql_async::OptsBuilder,
        database: &str,
        client_id: &str,
        server_id: u32,
        gtid_mode: bool,
    ) -> Result<Self, HistoryError> {
        let pool = Pool::new(opts);
        let db = quote_ident(database);
        let table = format!("{db}.`schema_history`");
        let mut conn = pool.get_conn().await?;
        conn.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {table} (
               id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
               client_id VARCHAR(255) CHARACTER SET latin1 NOT NULL,
               server_id INT UNSIGNED NOT NULL,
               binlog_file VARCHAR(255) NOT NULL,
               binlog_position BIGINT UNSIGNED NOT NULL,
               gtid_set VARCHAR(4096) NULL,
               kind VARCHAR(16) NOT NULL,
               base_id BIGINT UNSIGNED NULL,
               part INT UNSIGNED NOT NULL DEFAULT 0,
               parts INT UNSIGNED NOT NULL DEFAULT 1,
               body LONGBLOB NOT NULL,
               sql_text MEDIUMTEXT NULL,
               created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
               KEY client_entries (client_id, id)
             ) CHARACTER SET utf8mb4"
        ))
        .await?;
        Ok(SchemaHistory {
            pool,
            table,
            positions: format!("{db}.`positions`"),
            client_id: client_id.to_string(),
            server_id,
            gtid_mode,
            changes_since_snapshot: 0,
            read_only: false,
        })
    }

    pub fn set_server_id(&mut self, server_id: u32) {
        self.server_id = server_id;
    }

    /// Is `entry` at or before `at`? By GTID position in gtid_mode (file
    /// names differ between servers), else by file and offset.
    fn at_or_before(&self, entry: &BinlogPosition, at: &BinlogPosition) -> bool {
        if self.gtid_mode {
            if let (Some(e), Some(a)) = (entry.gtid.as_deref(), at.gtid.as_deref()) {
                if let (Ok(e), Ok(a)) = (GtidState::parse(e), GtidState::parse(a)) {
                    return e.covered_by(&a);
                }
                // MySQL: executed sets.
                if let (Ok(e), Ok(a)) = (GtidSet::parse(e), GtidSet::parse(a)) {
                    return e.is_subset_of(&a);
                }
            }
        }
        (entry.file.as_str(), entry.offset) <= (at.file.as_str(), at.offset)
    }

    async fn metas(&self) -> Result<Vec<Meta>, HistoryError> {
        let mut conn = self.pool.get_conn().await?;
        type Row = (
            u64,
            String,
            u32,
            u32,
            Option<u64>,
            String,
            u64,
            Option<String>,
        );
        let rows: Vec<Row> = conn
            .exec(
                format!(
                    "SELECT id, kind, part, parts, base_id, binlog_file, binlog_position, gtid_set \
                     FROM {} WHERE client_id = ? ORDER BY id",
                    self.table
                ),
                (&self.client_id,),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, kind, part, parts, base_id, file, offset, gtid)| Meta {
                    id,
                    kind,
                    part,
                    parts,
                    base_id,
                    at: BinlogPosition { file, offset, gtid },
                },
            )
            .collect())
    }

    /// Complete snapshots (base id, position), oldest first.
    fn snapshots(metas: &[Meta]) -> Vec<(u64, BinlogPosition)> {
        let mut out = Vec::new();
        for m in metas.iter().filter(|m| m.kind == "snapshot" && m.part == 0) {
            let parts = metas
                .iter()
                .filter(|p| p.kind == "snapshot" && p.base_id == Some(m.id))
                .count();
            if parts as u32 == m.parts {
                out.push((m.id, m.at.clone()));
            }
        }
        out
    }

    /// The schema at `at`, if the history reaches back that far. Entries
    /// after `at` are deleted (that part of the binlog is read again and
    /// re-recorded), and so is everything the restored snapshot makes
    /// unnecessary.
    pub async fn restore(&mut self, at: &BinlogPosition) -> Result<Option<Restored>, HistoryError> {
        let metas = self.metas().await?;
        let Some((base, snapshot_at)) = Self::snapshots(&metas)
            .into_iter()
            .rev()
            .find(|(_, p)| self.at_or_before(p, at))
        else {
            return Ok(None);
        };
        let mut conn = self.pool.get_conn().await?;
        let parts: Vec<(u64, Vec<u8>)> = conn
            .exec(
                format!(
                    "SELECT id, body FROM {} WHERE base_id = ? ORDER BY part",
                    self.table
                ),
                (base,),
            )
            .await?;
        let mut body = Vec::new();
        for (_, b) in parts {
            body.extend_from_slice(&b);
        }
        let corrupt = |id: u64, message: String| HistoryError::Corrupt { id, message };
        let json: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| corrupt(base, e.to_string()))?;
        let mut catalog = serial::snapshot_from_json(&json).map_err(|e| corrupt(base, e))?;
        let wanted: Vec<u64> = metas
            .iter()
            .filter(|m| m.kind == "change" && m.id > base && self.at_or_before(&m.at, at))
            .map(|m| m.id)
            .collect();
        let future: Vec<u64> = metas
            .iter()
            .filter(|m| m.id > base && !self.at_or_before(&m.at, at) && m.base_id != Some(base))
            .map(|m| m.id)
            .collect();
        if !wanted.is_empty() {
            let rows: Vec<(u64, Vec<u8>)> = conn
                .exec(
                    format!(
                        "SELECT id, body FROM {} WHERE client_id = ? AND kind = 'change' AND id > ? AND id <= ? ORDER BY id",
                        self.table
                    ),
                    (&self.client_id, base, wanted[wanted.len() - 1]),
                )
                .await?;
            for (id, b) in rows
                .into_iter()
                .filter(|(id, _)| wanted.binary_search(id).is_ok())
            {
                let v: serde_json::Value =
                    serde_json::from_slice(&b).map_err(|e| corrupt(id, e.to_string()))?;
                let ops = serial::ops_from_json(&v).map_err(|e| corrupt(id, e))?;
                serial::apply_ops(&mut catalog, &ops);
            }
        }
        if !future.is_empty() && !self.read_only {
            conn.exec_drop(
                format!("DELETE FROM {} WHERE client_id = ? AND id >= ?", self.table),
                (&self.client_id, future[0]),
            )
            .await?;
        }
        // The resume position never moves back past this snapshot.
        if !self.read_only {
            conn.exec_drop(
                format!("DELETE FROM {} WHERE client_id = ? AND id < ?", self.table),
                (&self.client_id, base),
            )
            .await?;
        }
        self.changes_since_snapshot = wanted.len() as u64;
        Ok(Some(Restored {
            catalog,
            changes_applied: wanted.len() as u64,
            snapshot_at,
            schema_id: wanted.last().copied().unwrap_or(base),
        }))
    }

    /// Reads the history but never writes it (`replay`).
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Writes the whole catalog as the schema at `at`; returns its entry's
    /// id (`None` when read-only).
    pub async fn snapshot(
        &mut self,
        at: &BinlogPosition,
        cat: &Catalog,
    ) -> Result<Option<u64>, HistoryError> {
        if self.read_only {
            return Ok(None);
        }
        let body = serde_json::to_vec(&serial::snapshot_to_json(cat)).map_err(|e| {
            HistoryError::Corrupt {
                id: 0,
                message: e.to_string(),
            }
        })?;
        let chunks: Vec<&[u8]> = if body.is_empty() {
            vec![&body[..]]
        } else {
            body.chunks(PART_BYTES).collect()
        };
        let mut conn = self.pool.get_conn().await?;
        let mut tx = conn.start_transaction(TxOpts::default()).await?;
        let insert = format!(
            "INSERT INTO {} (client_id, server_id, binlog_file, binlog_position, gtid_set, kind, base_id, part, parts, body) \
             VALUES (?, ?, ?, ?, ?, 'snapshot', ?, ?, ?, ?)",
            self.table
        );
        let mut base: Option<u64> = None;
        for (i, chunk) in chunks.iter().enumerate() {
            tx.exec_drop(
                &insert,
                (
                    &self.client_id,
                    self.server_id,
                    &at.file,
                    at.offset,
                    &at.gtid,
                    base,
                    i as u32,
                    chunks.len() as u32,
                    chunk.to_vec(),
                ),
            )
            .await?;
            if base.is_none() {
                let id = tx.last_insert_id();
                tx.exec_drop(
                    format!("UPDATE {} SET base_id = id WHERE id = ?", self.table),
                    (id,),
                )
                .await?;
                base = id;
            }
        }
        tx.commit().await?;
        self.changes_since_snapshot = 0;
        Ok(base)
    }

    /// Records one followed DDL (its resulting tables and databases) at
    /// `at`; every `SNAPSHOT_EVERY` changes also writes a snapshot and
    /// prunes what no stored position needs any more.
    pub async fn record(
        &mut self,
        at: &BinlogPosition,
        ops: &[Op],
        sql: &str,
        cat: &Catalog,
    ) -> Result<Option<u64>, HistoryError> {
        if self.read_only {
            return Ok(None);
        }
        let body =
            serde_json::to_vec(&serial::ops_to_json(ops)).map_err(|e| HistoryError::Corrupt {
                id: 0,
                message: e.to_string(),
            })?;
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop(
            format!(
                "INSERT INTO {} (client_id, server_id, binlog_file, binlog_position, gtid_set, kind, body, sql_text) \
                 VALUES (?, ?, ?, ?, ?, 'change', ?, ?)",
                self.table
            ),
            (&self.client_id, self.server_id, &at.file, at.offset, &at.gtid, body, sql),
        )
        .await?;
        let id = conn.last_insert_id();
        drop(conn);
        self.changes_since_snapshot += 1;
        if self.changes_since_snapshot >= SNAPSHOT_EVERY {
            self.snapshot(at, cat).await?;
            self.prune().await?;
        }
        Ok(id)
    }

    /// Deletes entries older than the newest snapshot at or before every
    /// position stored for this client.
    async fn prune(&mut self) -> Result<(), HistoryError> {
        let mut conn = self.pool.get_conn().await?;
        let stored: Vec<(Option<String>, Option<u64>, Option<String>)> = conn
            .exec(
                format!(
                    "SELECT binlog_file, binlog_position, gtid_set FROM {} WHERE client_id = ?",
                    self.positions
                ),
                (&self.client_id,),
            )
            .await?;
        drop(conn);
        let metas = self.metas().await?;
        let snaps = Self::snapshots(&metas);
        let mut keep_from: Option<u64> = None;
        for (file, offset, gtid) in stored {
            let (Some(file), Some(offset)) = (file, offset) else {
                continue;
            };
            let p = BinlogPosition { file, offset, gtid };
            let needed = snaps
                .iter()
                .rev()
                .find(|(_, s)| self.at_or_before(s, &p))
                .map(|(id, _)| *id);
            match needed {
                Some(id) => keep_from = Some(keep_from.map_or(id, |k| k.min(id))),
                // A stored position older than every snapshot: keep all.
                None => return Ok(()),
            }
        }
        if let Some(id) = keep_from {
            let mut conn = self.pool.get_conn().await?;
            conn.exec_drop(
                format!("DELETE FROM {} WHERE client_id = ? AND id < ?", self.table),
                (&self.client_id, id),
            )
            .await?;
        }
        Ok(())
    }
}
