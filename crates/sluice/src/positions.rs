//! The position store: per (server_id, client_id), the binlog position below
//! which every row has been delivered, in `<schema_database>.positions`
//! (Maxwell's table, plus an `epoch` column). Every write is conditional on
//! the writer's epoch, so a writer that has been superseded (a stale leader,
//! once leader election exists) can never move the position; without HA the
//! epoch is constant (0).

use mysql_async::prelude::Queryable;
use mysql_async::{Pool, Row};
use sluice_binlog::BinlogPosition;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("position store: {0}")]
    Sql(#[from] mysql_async::Error),
    #[error("position store: a writer with a newer epoch than ours ({ours}) owns the position of client_id '{client_id}'; this instance must stop")]
    Fenced { client_id: String, ours: u64 },
}

pub struct PositionStore {
    /// A pool, so a connection lost to a server restart is replaced.
    pool: Pool,
    table: String,
    server_id: u32,
    client_id: String,
    epoch: u64,
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
        server_id: u32,
        client_id: &str,
        epoch: u64,
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
        if has_epoch.is_none() {
            conn.query_drop(format!(
                "ALTER TABLE {table} ADD COLUMN epoch BIGINT UNSIGNED NOT NULL DEFAULT 0"
            ))
            .await?;
        }
        Ok(PositionStore {
            pool,
            table,
            server_id,
            client_id: client_id.to_string(),
            epoch,
        })
    }

    /// The stored position of this client on this server, if any.
    pub async fn load(&mut self) -> Result<Option<BinlogPosition>, StoreError> {
        let row: Option<(Option<String>, Option<u64>, Option<String>)> = self
            .pool
            .get_conn()
            .await?
            .exec_first(
                format!(
                    "SELECT binlog_file, binlog_position, gtid_set FROM {} WHERE server_id = ? AND client_id = ?",
                    self.table
                ),
                (self.server_id, &self.client_id),
            )
            .await?;
        Ok(match row {
            Some((Some(file), Some(offset), gtid)) if !file.is_empty() => Some(BinlogPosition {
                file,
                offset,
                gtid: gtid.filter(|g| !g.is_empty()),
            }),
            _ => None,
        })
    }

    /// Stores `pos` unless a newer epoch has written (then `Fenced`).
    pub async fn store(&mut self, pos: &BinlogPosition) -> Result<(), StoreError> {
        let gtid = pos.gtid.clone().unwrap_or_default();
        let updated = self
            .pool
            .get_conn()
            .await?
            .exec_iter(
                format!(
                    "UPDATE {} SET binlog_file = ?, binlog_position = ?, gtid_set = ?, epoch = ? \
                     WHERE server_id = ? AND client_id = ? AND epoch <= ?",
                    self.table
                ),
                (
                    &pos.file,
                    pos.offset,
                    &gtid,
                    self.epoch,
                    self.server_id,
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
                    "INSERT IGNORE INTO {} (server_id, client_id, binlog_file, binlog_position, gtid_set, epoch) \
                     VALUES (?, ?, ?, ?, ?, ?)",
                    self.table
                ),
                (self.server_id, &self.client_id, &pos.file, pos.offset, &gtid, self.epoch),
            )
            .await?
            .affected_rows();
        if inserted > 0 {
            Ok(())
        } else {
            Err(StoreError::Fenced {
                client_id: self.client_id.clone(),
                ours: self.epoch,
            })
        }
    }
}
