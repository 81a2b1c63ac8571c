//! Checks of the server's settings before streaming, each failing with what
//! to change.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use sluice_binlog::BinlogPosition;

use crate::error::Error;

#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub version: String,
    pub server_id: u32,
    pub row_image: String,
    pub row_metadata: Option<String>,
}

fn var(row: &Row, i: usize) -> String {
    match row.get_opt::<Option<String>, _>(i) {
        Some(Ok(Some(v))) => v,
        _ => String::new(),
    }
}

pub async fn check(conn: &mut Conn, addr: &str) -> Result<ServerInfo, Error> {
    let row: Option<Row> = conn
        .query_first(
            "SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@server_id, @@version",
        )
        .await?;
    let row = row.ok_or_else(|| Error::definite("the server returned no settings"))?;
    let (log_bin, format, image, server_id, version) = (
        var(&row, 0),
        var(&row, 1),
        var(&row, 2),
        var(&row, 3),
        var(&row, 4),
    );
    if log_bin != "1" && !log_bin.eq_ignore_ascii_case("ON") {
        return Err(Error::definite(format!(
            "binary logging is off on {addr} (log_bin=OFF): sluice reads the binlog. Start the server with \
             log_bin=mysql-bin, binlog_format=ROW and a server_id (e.g. in my.cnf under [mysqld])"
        )));
    }
    if !format.eq_ignore_ascii_case("ROW") {
        return Err(Error::definite(format!(
            "binlog_format is {format} on {addr}; sluice needs ROW. Set binlog_format=ROW in the server's \
             configuration (and SET GLOBAL binlog_format='ROW' for the running server; existing sessions keep the old format until they reconnect)"
        )));
    }
    if image.eq_ignore_ascii_case("NOBLOB") {
        tracing::warn!("binlog_row_image=NOBLOB: unchanged BLOB/TEXT columns are missing from update and delete rows");
    }
    let row_metadata = match conn
        .query_first::<Row, _>("SELECT @@binlog_row_metadata")
        .await
    {
        Ok(Some(r)) => Some(var(&r, 0)),
        _ => None,
    };
    if row_metadata
        .as_deref()
        .map(|m| !m.eq_ignore_ascii_case("FULL"))
        .unwrap_or(true)
    {
        tracing::warn!(
            "binlog_row_metadata is not FULL: column names come from the current catalog, which can be ahead of \
             the binlog right after a DDL; set binlog_row_metadata=FULL on the server to decode every event with its own columns"
        );
    }
    Ok(ServerInfo {
        version,
        server_id: server_id.parse().unwrap_or(0),
        row_image: image,
        row_metadata,
    })
}

pub async fn current_position(conn: &mut Conn) -> Result<BinlogPosition, Error> {
    // MySQL 8.4 renamed the statement; older servers and MariaDB know the
    // old name only.
    let row: Option<Row> = match conn.query_first("SHOW MASTER STATUS").await {
        Ok(row) => row,
        Err(first) => conn.query_first("SHOW BINARY LOG STATUS").await.map_err(|_| {
            Error::definite(format!("SHOW MASTER STATUS failed ({first}); the user needs REPLICATION CLIENT (MariaDB: BINLOG MONITOR)"))
        })?,
    };
    let row = row.ok_or_else(|| {
        Error::definite("SHOW MASTER STATUS returned nothing: binary logging is off")
    })?;
    let file = var(&row, 0);
    let pos: u64 = var(&row, 1)
        .parse()
        .map_err(|_| Error::definite("SHOW MASTER STATUS returned an unreadable position"))?;
    let mut at = BinlogPosition::new(file, pos);
    // MySQL: the executed GTID set at exactly this position (MariaDB's
    // GTID position is asked separately).
    let executed: String = var(&row, 4).split_whitespace().collect();
    at.gtid = (row.len() > 4 && !executed.is_empty()).then_some(executed);
    Ok(at)
}

/// The state host takes sluice's writes (positions, heartbeats, schema
/// history): a read-only server there (a replica given as `host`) would
/// fail every write.
pub async fn check_writable(conn: &mut Conn, addr: &str) -> Result<(), Error> {
    let read_only: Option<String> = conn.query_first("SELECT @@read_only").await?;
    if read_only.is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("ON")) {
        return Err(Error::definite(format!(
            "the state host {addr} is read-only (read_only=ON): sluice stores its positions, heartbeats and \
             schema history there. Point host at the primary and replication_host at the replica"
        )));
    }
    Ok(())
}
