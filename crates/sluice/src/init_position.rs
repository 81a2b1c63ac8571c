//! `--init_position` checked against the server before anything is stored:
//! once stored, a position wins over `--init_position` at every start, so
//! a typo stored would outlive its correction. The file must be one the
//! server has, the offset within it and the start of an event.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use sluice_binlog::BinlogPosition;

use crate::error::Error;

/// The checks are small queries; a server that does not answer them in
/// this time is not waited on.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn check(conn: &mut Conn, p: &BinlogPosition) -> Result<(), Error> {
    match tokio::time::timeout(CHECK_TIMEOUT, check_now(conn, p)).await {
        Ok(r) => r,
        Err(_) => Err(Error::definite(format!(
            "--init_position {p}: the server did not answer SHOW BINARY LOGS / SHOW BINLOG EVENTS \
             within {CHECK_TIMEOUT:?}; nothing was stored"
        ))),
    }
}

async fn check_now(conn: &mut Conn, p: &BinlogPosition) -> Result<(), Error> {
    let refuse = |why: String| {
        Error::definite(format!(
            "--init_position {p}: {why}; nothing was stored. Restart with --init_position FILE:OFFSET \
             naming a binlog the server has and an event's start (SHOW BINARY LOGS lists the files, \
             SHOW BINLOG EVENTS IN 'FILE' the events' offsets)"
        ))
    };
    let rows: Vec<Row> = conn.query("SHOW BINARY LOGS").await.map_err(|e| {
        Error::definite(format!(
            "--init_position {p} cannot be checked: SHOW BINARY LOGS failed ({e}); the user needs \
             REPLICATION CLIENT (MariaDB: BINLOG MONITOR)"
        ))
    })?;
    let logs: Vec<(String, Option<u64>)> = rows
        .iter()
        .map(|r| {
            let name = r
                .get_opt::<String, _>(0)
                .and_then(Result::ok)
                .unwrap_or_default();
            (name, r.get_opt::<u64, _>(1).and_then(Result::ok))
        })
        .collect();
    let Some((_, size)) = logs.iter().find(|(name, _)| *name == p.file) else {
        let names: Vec<String> = logs.iter().map(|(name, _)| name.clone()).collect();
        use sluice_binlog::position::{missing_file, MissingFile};
        return Err(refuse(match missing_file(&p.file, &names) {
            MissingFile::Purged { first } => format!(
                "the binlog file {} is no longer on the server (purged; the oldest it has is {first})",
                p.file
            ),
            MissingFile::NotFound { first, last } => format!(
                "the binlog file {} was not found on the server ({})",
                p.file,
                match (first, last) {
                    (Some(f), Some(l)) => format!("it has {f} to {l}"),
                    _ => "it lists no binary logs".into(),
                }
            ),
        }));
    };
    if let Some(size) = size.filter(|size| p.offset > *size) {
        return Err(refuse(format!(
            "offset {} is beyond the end of {} ({size} bytes)",
            p.offset, p.file
        )));
    }
    if p.offset == 4 || Some(p.offset) == *size {
        // The first event, or the end where the next one will start.
        return Ok(());
    }
    let sql = format!(
        "SHOW BINLOG EVENTS IN '{}' FROM {} LIMIT 1",
        p.file.replace('\\', "\\\\").replace('\'', "''"),
        p.offset
    );
    let found: Result<Option<Row>, _> = conn.query_first(sql).await;
    match found {
        Ok(Some(row)) if row.get_opt::<u64, _>(1).and_then(Result::ok) == Some(p.offset) => Ok(()),
        Ok(_) => Err(refuse(format!(
            "offset {} is not the start of an event in {}",
            p.offset, p.file
        ))),
        Err(mysql_async::Error::Server(e)) => Err(refuse(format!(
            "offset {} is not the start of an event in {} (the server says: {})",
            p.offset, p.file, e.message
        ))),
        Err(e) => Err(Error::definite(format!(
            "--init_position {p} cannot be checked: SHOW BINLOG EVENTS failed ({e}); nothing was stored"
        ))),
    }
}
