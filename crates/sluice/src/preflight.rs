//! Checks of the server's settings before streaming, each failing with what
//! to change.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use sluice_binlog::BinlogPosition;

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

pub async fn check(conn: &mut Conn, addr: &str) -> anyhow::Result<ServerInfo> {
    let row: Option<Row> = conn
        .query_first(
            "SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@server_id, @@version",
        )
        .await?;
    let row = row.ok_or_else(|| anyhow::anyhow!("the server returned no settings"))?;
    let (log_bin, format, image, server_id, version) = (
        var(&row, 0),
        var(&row, 1),
        var(&row, 2),
        var(&row, 3),
        var(&row, 4),
    );
    if log_bin != "1" && !log_bin.eq_ignore_ascii_case("ON") {
        anyhow::bail!(
            "binary logging is off on {addr} (log_bin=OFF): sluice reads the binlog. Start the server with \
             log_bin=mysql-bin, binlog_format=ROW and a server_id (e.g. in my.cnf under [mysqld])"
        );
    }
    if !format.eq_ignore_ascii_case("ROW") {
        anyhow::bail!(
            "binlog_format is {format} on {addr}; sluice needs ROW. Set binlog_format=ROW in the server's \
             configuration (and SET GLOBAL binlog_format='ROW' for the running server; existing sessions keep the old format until they reconnect)"
        );
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

pub async fn current_position(conn: &mut Conn) -> anyhow::Result<BinlogPosition> {
    let row: Option<Row> = conn.query_first("SHOW MASTER STATUS").await.map_err(|e| {
        anyhow::anyhow!("SHOW MASTER STATUS failed ({e}); the user needs REPLICATION CLIENT (MariaDB: BINLOG MONITOR)")
    })?;
    let row = row.ok_or_else(|| {
        anyhow::anyhow!("SHOW MASTER STATUS returned nothing: binary logging is off")
    })?;
    let file = var(&row, 0);
    let pos: u64 = var(&row, 1)
        .parse()
        .map_err(|_| anyhow::anyhow!("SHOW MASTER STATUS returned an unreadable position"))?;
    Ok(BinlogPosition::new(file, pos))
}
