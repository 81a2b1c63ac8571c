//! Maxwell's DDL events (`output_ddl`): `database-create|alter|drop`,
//! `table-create|alter|drop`, with table definitions as Maxwell writes them
//! (`old` and `def`), `ts` in milliseconds and the statement in `sql`.

use sluice_schema::ddl::Change;
use sluice_schema::{Column, Table};

use crate::json::{write_int, write_str};

/// What every DDL event ends with.
pub struct DdlInfo<'a> {
    pub sql: &'a str,
    pub ts_ms: u64,
    pub position: Option<&'a str>,
    pub gtid: Option<&'a str>,
}

/// (database, table, JSON) of the event for `change`; `None` for changes
/// without an event of their own.
pub fn render(change: &Change, info: &DdlInfo) -> Option<(String, String, Vec<u8>)> {
    let mut o = Vec::with_capacity(256);
    let (db, table) = match change {
        Change::DatabaseCreate { database, charset }
        | Change::DatabaseAlter { database, charset } => {
            let kind = if matches!(change, Change::DatabaseCreate { .. }) {
                "database-create"
            } else {
                "database-alter"
            };
            head(&mut o, kind, database);
            o.extend_from_slice(b",\"charset\":");
            write_str(&mut o, charset);
            (database.clone(), String::new())
        }
        Change::DatabaseDrop { database } => {
            head(&mut o, "database-drop", database);
            (database.clone(), String::new())
        }
        Change::TableCreate { def } => {
            head(&mut o, "table-create", &def.database);
            o.extend_from_slice(b",\"table\":");
            write_str(&mut o, &def.name);
            o.extend_from_slice(b",\"def\":");
            table_def(&mut o, def);
            (def.database.clone(), def.name.clone())
        }
        Change::TableAlter { old, def } => {
            head(&mut o, "table-alter", &old.database);
            o.extend_from_slice(b",\"table\":");
            write_str(&mut o, &old.name);
            o.extend_from_slice(b",\"old\":");
            table_def(&mut o, old);
            o.extend_from_slice(b",\"def\":");
            table_def(&mut o, def);
            (old.database.clone(), old.name.clone())
        }
        Change::TableDrop { database, table } => {
            head(&mut o, "table-drop", database);
            o.extend_from_slice(b",\"table\":");
            write_str(&mut o, table);
            (database.clone(), table.clone())
        }
        Change::Recapture { .. } => return None,
    };
    o.extend_from_slice(b",\"ts\":");
    write_int(&mut o, info.ts_ms);
    o.extend_from_slice(b",\"sql\":");
    write_str(&mut o, info.sql);
    if let Some(p) = info.position {
        o.extend_from_slice(b",\"position\":");
        write_str(&mut o, p);
    }
    if let Some(g) = info.gtid {
        o.extend_from_slice(b",\"gtid\":");
        write_str(&mut o, g);
    }
    o.push(b'}');
    Some((db, table, o))
}

/// The event type of a change (`table-alter`, …).
pub fn kind(change: &Change) -> &'static str {
    match change {
        Change::DatabaseCreate { .. } => "database-create",
        Change::DatabaseAlter { .. } => "database-alter",
        Change::DatabaseDrop { .. } => "database-drop",
        Change::TableCreate { .. } => "table-create",
        Change::TableAlter { .. } => "table-alter",
        Change::TableDrop { .. } | Change::Recapture { .. } => "table-drop",
    }
}

fn head(o: &mut Vec<u8>, kind: &str, database: &str) {
    o.extend_from_slice(b"{\"type\":");
    write_str(o, kind);
    o.extend_from_slice(b",\"database\":");
    write_str(o, database);
}

fn table_def(o: &mut Vec<u8>, t: &Table) {
    o.extend_from_slice(b"{\"database\":");
    write_str(o, &t.database);
    o.extend_from_slice(b",\"charset\":");
    match &t.charset {
        Some(cs) => write_str(o, cs),
        None => o.extend_from_slice(b"null"),
    }
    o.extend_from_slice(b",\"table\":");
    write_str(o, &t.name);
    o.extend_from_slice(b",\"columns\":[");
    for (i, c) in t.columns.iter().enumerate() {
        if i > 0 {
            o.push(b',');
        }
        column_def(o, c);
    }
    o.extend_from_slice(b"],\"primary-key\":[");
    for (i, k) in t.primary_key.iter().enumerate() {
        if i > 0 {
            o.push(b',');
        }
        write_str(o, k);
    }
    o.extend_from_slice(b"]}");
}

/// Fractional-second digits of `datetime(6)` and the like.
fn column_length(c: &Column) -> Option<u64> {
    let inner = c.column_type.split_once('(')?.1.split_once(')')?.0;
    inner.parse().ok()
}

fn column_def(o: &mut Vec<u8>, c: &Column) {
    o.extend_from_slice(b"{\"type\":");
    write_str(o, if c.is_json { "json" } else { &c.data_type });
    o.extend_from_slice(b",\"name\":");
    write_str(o, &c.name);
    match c.data_type.as_str() {
        "tinyint" | "smallint" | "mediumint" | "int" | "bigint" => {
            o.extend_from_slice(if c.unsigned {
                b",\"signed\":false"
            } else {
                b",\"signed\":true"
            });
        }
        "time" | "datetime" | "timestamp" => {
            if let Some(n) = column_length(c) {
                o.extend_from_slice(b",\"column-length\":");
                write_int(o, n);
            }
        }
        _ => {}
    }
    if let (Some(cs), false) = (&c.charset, c.is_json) {
        if cs != "binary" || !matches!(c.data_type.as_str(), "enum" | "set") {
            o.extend_from_slice(b",\"charset\":");
            write_str(o, cs);
        }
    }
    if !c.values.is_empty() {
        o.extend_from_slice(if c.data_type == "set" {
            b",\"set-values\":["
        } else {
            b",\"enum-values\":["
        });
        for (i, v) in c.values.iter().enumerate() {
            if i > 0 {
                o.push(b',');
            }
            write_str(o, v);
        }
        o.push(b']');
    }
    o.push(b'}');
}
