//! The position store: per (server_id, client_id), the binlog position below
//! which every row has been delivered, in `<schema_database>.positions`
//! (Maxwell's table, plus an `epoch` column). Every write is conditional on
//! the writer's epoch, so a writer that has been superseded (a stale leader,
//! once leader election exists) can never move the position; without HA the
//! epoch is constant (0).

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::{Pool, Row};
use sluice_binlog::BinlogPosition;
use sluice_schema::Catalog;

use crate::telemetry::unix_millis;

/// A write that takes longer than this is abandoned and retried: a server
/// that froze or a connection that went half-open must not stall the
/// pipeline forever.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("position store: {}", sluice_schema::connect::describe(.0))]
    Sql(#[from] mysql_async::Error),
    #[error("position store: no answer from the server within {0:?}")]
    Timeout(std::time::Duration),
    #[error("position store: a newer epoch ({theirs}; ours is {ours}) owns the position of client_id '{client_id}'; this instance must stop")]
    Fenced {
        client_id: String,
        ours: u64,
        theirs: u64,
    },
}

/// Forgets every stored position of `client_id` (on every server) and
/// returns them, keeping the rows and their epochs: a stale leader stays
/// fenced. Run while no sluice of this client_id streams (its next
/// checkpoint would store its position again). `Ok(empty)`: nothing stored.
pub async fn forget(
    conn: &mut mysql_async::Conn,
    database: &str,
    client_id: &str,
) -> Result<Vec<(u32, BinlogPosition)>, StoreError> {
    let table = format!("{}.`positions`", quote_ident(database));
    let exists: Option<Row> = conn
        .exec_first(
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'positions'",
            (database,),
        )
        .await?;
    if exists.is_none() {
        return Ok(Vec::new());
    }
    type Stored = (u32, Option<String>, Option<u64>, Option<String>);
    let rows: Vec<Stored> = conn
        .exec(
            format!(
                "SELECT server_id, binlog_file, binlog_position, gtid_set FROM {table} \
                 WHERE client_id = ? AND binlog_file IS NOT NULL AND binlog_file <> ''"
            ),
            (client_id,),
        )
        .await?;
    conn.exec_drop(
        format!(
            "UPDATE {table} SET binlog_file = NULL, binlog_position = NULL, gtid_set = NULL \
             WHERE client_id = ?"
        ),
        (client_id,),
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|(server_id, file, offset, gtid)| {
            let mut p = BinlogPosition::new(file.unwrap_or_default(), offset.unwrap_or(0));
            p.gtid = gtid.filter(|g| !g.is_empty());
            (server_id, p)
        })
        .collect())
}

pub struct PositionStore {
    /// A pool, so a connection lost to a server restart is replaced.
    pool: Pool,
    table: String,
    /// The server the position belongs to; it changes when a GTID-mode
    /// reader follows a failover to another server.
    server_id: Arc<AtomicU32>,
    client_id: String,
    epoch: u64,
    /// Positions are found by client_id alone (GTIDs mean the same on every
    /// server of a replication topology).
    gtid_mode: bool,
    /// `replay`: positions are read, never written.
    read_only: bool,
    /// The schema database, and whether `open` added the `epoch` column to
    /// a `positions` table Maxwell created (a take-over).
    database: String,
    added_epoch_column: bool,
}

/// Writes sluice's heartbeats into the binlog (Maxwell's `heartbeats`
/// table); the processor recognises them when it reads them back.
#[derive(Clone)]
pub struct Heartbeater {
    pool: Pool,
    table: String,
    server_id: Arc<AtomicU32>,
    client_id: String,
}

impl Heartbeater {
    pub async fn beat(&self, value: u64) -> Result<(), StoreError> {
        let write = async {
            self.pool
                .get_conn()
                .await?
                .exec_drop(
                    format!(
                        "INSERT INTO {} (server_id, client_id, heartbeat) VALUES (?, ?, ?) \
                     ON DUPLICATE KEY UPDATE heartbeat = VALUES(heartbeat)",
                        self.table
                    ),
                    (self.server_id.load(Relaxed), &self.client_id, value),
                )
                .await
        };
        tokio::time::timeout(WRITE_TIMEOUT, write)
            .await
            .map_err(|_| StoreError::Timeout(WRITE_TIMEOUT))?
            .map_err(StoreError::from)
    }
}

fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

impl PositionStore {
    /// Connects with `opts`, creating the schema database and table (or the
    /// `epoch` column of a table Maxwell created) when missing.
    pub async fn open(
        opts: mysql_async::OptsBuilder,
        database: &str,
        server_id: Arc<AtomicU32>,
        client_id: &str,
        epoch: u64,
        gtid_mode: bool,
    ) -> Result<Self, StoreError> {
        // Affected rows must count matched rows: an unchanged position is
        // still a successful write.
        let pool = Pool::new(opts.client_found_rows(true));
        let mut conn = pool.get_conn().await?;
        let db = quote_ident(database);
        conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS {db}"))
            .await?;
        let table = format!("{db}.`positions`");
        conn.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {table} (
               server_id INT UNSIGNED NOT NULL,
               binlog_file VARCHAR(255),
               binlog_position INT UNSIGNED,
               gtid_set VARCHAR(4096),
               client_id VARCHAR(255) CHARACTER SET latin1 NOT NULL DEFAULT 'maxwell',
               heartbeat_at BIGINT NULL DEFAULT NULL,
               last_heartbeat_read BIGINT NULL DEFAULT NULL,
               epoch BIGINT UNSIGNED NOT NULL DEFAULT 0,
               PRIMARY KEY (server_id, client_id)
             ) CHARACTER SET utf8mb4"
        ))
        .await?;
        let has_epoch: Option<Row> = conn
            .exec_first(
                "SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'positions' AND COLUMN_NAME = 'epoch'",
                (database,),
            )
            .await?;
        let added_epoch_column = has_epoch.is_none();
        if added_epoch_column {
            conn.query_drop(format!(
                "ALTER TABLE {table} ADD COLUMN epoch BIGINT UNSIGNED NOT NULL DEFAULT 0"
            ))
            .await?;
        }
        conn.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {db}.`heartbeats` (
               server_id INT UNSIGNED NOT NULL,
               client_id VARCHAR(255) CHARACTER SET latin1 NOT NULL DEFAULT 'maxwell',
               heartbeat BIGINT NOT NULL,
               PRIMARY KEY (server_id, client_id)
             )"
        ))
        .await?;
        Ok(PositionStore {
            pool,
            table,
            server_id,
            client_id: client_id.to_string(),
            epoch,
            gtid_mode,
            read_only: false,
            database: database.to_string(),
            added_epoch_column,
        })
    }

    /// A catalog captured after `open` added the `epoch` column to
    /// Maxwell's `positions` table, as it was before that: a take-over
    /// captures today's catalog as the schema at Maxwell's older position,
    /// and the binlog holds Maxwell's rows of `positions` (without `epoch`)
    /// and then sluice's ALTER, which adds the column again in its place.
    pub fn as_before_own_alter(&self, catalog: &mut Catalog) {
        if !self.added_epoch_column {
            return;
        }
        if let Some(t) = catalog.get(&self.database, "positions") {
            let mut t = (**t).clone();
            t.columns.retain(|c| c.name != "epoch");
            catalog.put(t);
        }
    }

    /// Reads positions but never writes one (`replay`).
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    pub fn heartbeater(&self) -> Heartbeater {
        Heartbeater {
            pool: self.pool.clone(),
            table: self.table.replace("`positions`", "`heartbeats`"),
            server_id: self.server_id.clone(),
            client_id: self.client_id.clone(),
        }
    }

    /// The newest epoch any writer of this client has recorded.
    async fn newest_epoch(&self, conn: &mut mysql_async::Conn) -> Result<Option<u64>, StoreError> {
        let newest: Option<Option<u64>> = conn
            .exec_first(
                format!("SELECT MAX(epoch) FROM {} WHERE client_id = ?", self.table),
                (&self.client_id,),
            )
            .await?;
        Ok(newest.flatten())
    }

    fn fenced(&self, theirs: u64) -> StoreError {
        StoreError::Fenced {
            client_id: self.client_id.clone(),
            ours: self.epoch,
            theirs,
        }
    }

    /// The stored position of this client on this server, if any.
    /// Fails with `Fenced` when a writer with a newer epoch owns the
    /// position already: such a node must not even start reading.
    pub async fn load(&mut self) -> Result<Option<BinlogPosition>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        if let Some(theirs) = self
            .newest_epoch(&mut conn)
            .await?
            .filter(|e| *e > self.epoch)
        {
            return Err(self.fenced(theirs));
        }
        type Stored = (Option<String>, Option<u64>, Option<String>);
        let row: Option<Stored> = if self.gtid_mode {
            // The newest position of this client on any server: after a
            // failover the GTID position is valid on the new server too.
            conn.exec_first(
                format!(
                    "SELECT binlog_file, binlog_position, gtid_set FROM {} WHERE client_id = ? \
                     AND gtid_set IS NOT NULL AND gtid_set <> '' \
                     ORDER BY server_id = ? DESC, heartbeat_at DESC LIMIT 1",
                    self.table
                ),
                (&self.client_id, self.server_id.load(Relaxed)),
            )
            .await?
        } else {
            conn.exec_first(
                format!(
                    "SELECT binlog_file, binlog_position, gtid_set FROM {} WHERE server_id = ? AND client_id = ?",
                    self.table
                ),
                (self.server_id.load(Relaxed), &self.client_id),
            )
            .await?
        };
        Ok(match row {
            Some((Some(file), Some(offset), gtid)) if !file.is_empty() => Some(BinlogPosition {
                file,
                offset,
                gtid: gtid.filter(|g| !g.is_empty()),
            }),
            _ => None,
        })
    }

    /// Records our epoch for this client before anything is read, so that
    /// every older writer is fenced from now on — even one that never got
    /// to write, and even if ZooKeeper's epoch counter is lost later.
    pub async fn claim_epoch(&mut self) -> Result<(), StoreError> {
        let server_id = self.server_id.load(Relaxed);
        let mut conn = self.pool.get_conn().await?;
        // A new term's epoch must be above every epoch ever used: an equal
        // one could belong to a stale leader (ZooKeeper's counter was lost).
        if let Some(theirs) = self
            .newest_epoch(&mut conn)
            .await?
            .filter(|e| *e >= self.epoch)
        {
            return Err(self.fenced(theirs));
        }
        conn.exec_drop(
            format!(
                "INSERT IGNORE INTO {} (server_id, client_id, epoch) VALUES (?, ?, ?)",
                self.table
            ),
            (server_id, &self.client_id, self.epoch),
        )
        .await?;
        conn.exec_drop(
            format!(
                "UPDATE {} SET epoch = ? WHERE client_id = ? AND epoch <= ?",
                self.table
            ),
            (self.epoch, &self.client_id, self.epoch),
        )
        .await?;
        // Whoever holds a newer epoch now wins.
        self.load().await.map(|_| ())
    }

    /// Stores `pos` unless a newer epoch has written (then `Fenced`).
    /// `heartbeat_read`: the last own heartbeat read back from the binlog at
    /// or before `pos`, if one was read since the previous store.
    pub async fn store(
        &mut self,
        pos: &BinlogPosition,
        heartbeat_read: Option<u64>,
    ) -> Result<(), StoreError> {
        if self.read_only {
            return Ok(());
        }
        tokio::time::timeout(WRITE_TIMEOUT, self.store_now(pos, heartbeat_read))
            .await
            .map_err(|_| StoreError::Timeout(WRITE_TIMEOUT))?
    }

    async fn store_now(
        &mut self,
        pos: &BinlogPosition,
        heartbeat_read: Option<u64>,
    ) -> Result<(), StoreError> {
        let gtid = pos.gtid.clone().unwrap_or_default();
        let server_id = self.server_id.load(Relaxed);
        let now = unix_millis();
        let updated = self
            .pool
            .get_conn()
            .await?
            .exec_iter(
                format!(
                    "UPDATE {} SET binlog_file = ?, binlog_position = ?, gtid_set = ?, epoch = ?, \
                     heartbeat_at = ?, last_heartbeat_read = COALESCE(?, last_heartbeat_read) \
                     WHERE server_id = ? AND client_id = ? AND epoch <= ?",
                    self.table
                ),
                (
                    &pos.file,
                    pos.offset,
                    &gtid,
                    self.epoch,
                    now,
                    heartbeat_read,
                    server_id,
                    &self.client_id,
                    self.epoch,
                ),
            )
            .await?
            .affected_rows();
        if updated > 0 {
            return Ok(());
        }
        let inserted = self
            .pool
            .get_conn()
            .await?
            .exec_iter(
                format!(
                    "INSERT IGNORE INTO {} (server_id, client_id, binlog_file, binlog_position, gtid_set, epoch, \
                     heartbeat_at, last_heartbeat_read) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    self.table
                ),
                (server_id, &self.client_id, &pos.file, pos.offset, &gtid, self.epoch, now, heartbeat_read),
            )
            .await?
            .affected_rows();
        if inserted > 0 {
            Ok(())
        } else {
            let theirs: Option<u64> = self
                .pool
                .get_conn()
                .await?
                .exec_first(
                    format!(
                        "SELECT epoch FROM {} WHERE server_id = ? AND client_id = ?",
                        self.table
                    ),
                    (server_id, &self.client_id),
                )
                .await?;
            Err(self.fenced(theirs.unwrap_or(0)))
        }
    }
}
