//! A stored position Maxwell wrote may be inside a transaction: Maxwell
//! stores the end of the rows event of the last row it delivered, which is
//! before the transaction's commit (and before the rows of tables its
//! filter left out). sluice stores transaction boundaries and resumes only
//! there, so at start it moves such a position to the end of the
//! transaction it falls in: everything left of that transaction is either
//! rows Maxwell left out or the commit itself. A position already at a
//! boundary (every position sluice stores) is left as it is.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use sluice_binlog::BinlogPosition;

/// Events read per `SHOW BINLOG EVENTS` once inside a transaction (the
/// first look reads one: every position sluice stores is a boundary).
const CHUNK: u64 = 500;
/// A transaction longer than this many events is not walked to its end:
/// the position is left as it is (and the reader says what it finds).
const MAX_EVENTS: u64 = 1_000_000;

/// One line of `SHOW BINLOG EVENTS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub pos: u64,
    pub kind: String,
    pub end: u64,
    pub info: String,
}

/// What a chunk of events says about the position it starts at.
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    /// The position is where a transaction (or nothing) begins.
    AtBoundary,
    /// Inside a transaction that ends (or a new one begins) here.
    MoveTo(u64),
    /// Still inside a transaction at the end of the chunk: read on from here.
    ReadOn(u64),
}

/// Events that only occur between a transaction's start and its commit.
fn inside_transaction(e: &Listed) -> bool {
    let k = e.kind.as_str();
    k.starts_with("Write_rows")
        || k.starts_with("Update_rows")
        || k.starts_with("Delete_rows")
        || k.starts_with("Partial_update_rows")
        || matches!(
            k,
            "Table_map" | "Xid" | "Annotate_rows" | "Rows_query" | "Intvar" | "User var" | "Rand"
        )
        || is_commit(e)
}

fn is_commit(e: &Listed) -> bool {
    e.kind == "Xid" || (e.kind == "Query" && e.info.trim().eq_ignore_ascii_case("COMMIT"))
}

/// Walks `events`; `inside`: an earlier chunk ended inside a transaction.
fn scan(events: &[Listed], inside: bool) -> Scan {
    let Some(first) = events.first() else {
        // The end of the binlog: nothing to move past.
        return Scan::AtBoundary;
    };
    if !inside && !inside_transaction(first) {
        return Scan::AtBoundary;
    }
    for e in events {
        if is_commit(e) {
            return Scan::MoveTo(e.end);
        }
        if !inside_transaction(e) {
            // A new transaction (or a DDL) begins before any commit: the
            // one the position was in has no more events.
            return Scan::MoveTo(e.pos);
        }
    }
    match events.last() {
        Some(last) => Scan::ReadOn(last.end),
        None => Scan::AtBoundary,
    }
}

fn listed(row: &Row) -> Option<Listed> {
    // Log_name, Pos, Event_type, Server_id, End_log_pos, Info
    Some(Listed {
        pos: row.get_opt::<u64, _>(1)?.ok()?,
        kind: row.get_opt::<String, _>(2)?.ok()?,
        end: row.get_opt::<u64, _>(4)?.ok()?,
        info: row
            .get_opt::<Option<String>, _>(5)
            .and_then(Result::ok)
            .flatten()
            .unwrap_or_default(),
    })
}

/// The transaction boundary at or after `at` in the binlog of `conn`'s
/// server, when `at` is inside a transaction; `None` when it is a boundary
/// already or the binlog cannot be read there (the reader then reports
/// what it finds).
pub async fn boundary_after(conn: &mut Conn, at: &BinlogPosition) -> Option<BinlogPosition> {
    let mut from = at.offset;
    let mut inside = false;
    let mut walked = 0u64;
    while walked < MAX_EVENTS {
        // A SHOW statement: the text protocol, the file name quoted.
        let file = at.file.replace('\\', "\\\\").replace('\'', "''");
        let rows: Vec<Row> = match conn
            .query(format!(
                "SHOW BINLOG EVENTS IN '{file}' FROM {from} LIMIT {}",
                if inside { CHUNK } else { 1 }
            ))
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::info!(position = %at, error = %e,
                    "cannot list the binlog at the stored position to check it is a transaction boundary");
                return None;
            }
        };
        let events: Vec<Listed> = rows.iter().filter_map(listed).collect();
        walked += events.len() as u64;
        match scan(&events, inside) {
            // At a boundary; or the file ended inside a transaction (not
            // a binlog a server writes): the position is left to the reader.
            Scan::AtBoundary => return None,
            Scan::MoveTo(offset) => return Some(BinlogPosition::new(at.file.clone(), offset)),
            Scan::ReadOn(next) => {
                inside = true;
                from = next;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(pos: u64, kind: &str, end: u64, info: &str) -> Listed {
        Listed {
            pos,
            kind: kind.into(),
            end,
            info: info.into(),
        }
    }

    #[test]
    fn a_boundary_stays() {
        // sluice's positions: the next transaction's GTID, a DDL, the end.
        for first in [
            ev(400, "Gtid", 442, "BEGIN GTID 0-1-7"),
            ev(400, "Anonymous_Gtid", 479, ""),
            ev(400, "Query", 500, "BEGIN"),
            ev(400, "Query", 500, "CREATE TABLE t (id INT)"),
            ev(400, "Rotate", 443, "mysql-bin.000002;pos=4"),
            ev(400, "Stop", 419, ""),
        ] {
            assert_eq!(
                scan(std::slice::from_ref(&first), false),
                Scan::AtBoundary,
                "{first:?}"
            );
        }
        assert_eq!(scan(&[], false), Scan::AtBoundary);
    }

    #[test]
    fn maxwells_position_before_the_commit_moves_past_it() {
        // Maxwell stored the end of the last delivered row's rows event:
        // the next event is the commit.
        let events = [
            ev(900, "Xid", 931, "COMMIT /* xid=77 */"),
            ev(931, "Gtid", 973, "BEGIN GTID 0-1-9"),
        ];
        assert_eq!(scan(&events, false), Scan::MoveTo(931));
        // MyISAM (no XID): a COMMIT query.
        let events = [ev(900, "Query", 960, "COMMIT")];
        assert_eq!(scan(&events, false), Scan::MoveTo(960));
    }

    #[test]
    fn rows_maxwell_filtered_out_after_the_position_are_skipped_with_the_commit() {
        // A multi-table statement: both table maps came before the
        // position, the left-out table's rows come after it.
        let events = [
            ev(700, "Update_rows_v1", 780, "table_id: 33 flags: STMT_END_F"),
            ev(780, "Table_map", 830, "table_id: 34 (db.other)"),
            ev(830, "Write_rows_v1", 870, "table_id: 34 flags: STMT_END_F"),
            ev(870, "Xid", 901, "COMMIT /* xid=5 */"),
        ];
        assert_eq!(scan(&events, false), Scan::MoveTo(901));
    }

    #[test]
    fn a_long_transaction_is_read_on_across_chunks() {
        let first = [
            ev(700, "Write_rows_v1", 780, ""),
            ev(780, "Write_rows_v1", 860, ""),
        ];
        assert_eq!(scan(&first, false), Scan::ReadOn(860));
        let second = [ev(860, "Write_rows_v1", 940, ""), ev(940, "Xid", 971, "")];
        assert_eq!(scan(&second, true), Scan::MoveTo(971));
        // Inside, a chunk starting with a transaction start ends it there.
        assert_eq!(
            scan(&[ev(860, "Gtid", 900, "BEGIN GTID 0-1-3")], true),
            Scan::MoveTo(860)
        );
    }
}
