//! The schema model as compact JSON, for the schema history: snapshots of a
//! whole catalog and deltas (the tables and databases one DDL left behind).

use serde_json::{json, Map, Value};

use crate::ddl::Change;
use crate::model::{Catalog, Column, Database, Table};

/// One step of a delta, applied in order (a `RENAME a TO b, b TO a` swap
/// must replay exactly as it ran).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    PutTable(Table),
    DropTable(String, String),
    PutDatabase(Database),
    DropDatabase(String),
}

/// What a statement's changes leave in `cat` (already applied to it).
pub fn delta(changes: &[Change], cat: &Catalog) -> Vec<Op> {
    let mut ops = Vec::new();
    for c in changes {
        match c {
            Change::DatabaseCreate { database, .. } | Change::DatabaseAlter { database, .. } => {
                if let Some(d) = cat.database(database) {
                    ops.push(Op::PutDatabase(d.clone()));
                }
            }
            Change::DatabaseDrop { database } => ops.push(Op::DropDatabase(database.clone())),
            Change::TableCreate { def } => ops.push(Op::PutTable((**def).clone())),
            Change::TableAlter { old, def } => {
                ops.push(Op::DropTable(old.database.clone(), old.name.clone()));
                ops.push(Op::PutTable((**def).clone()));
            }
            Change::TableDrop { database, table } => {
                ops.push(Op::DropTable(database.clone(), table.clone()))
            }
            Change::Recapture { .. } => {}
        }
    }
    ops
}

pub fn apply_ops(cat: &mut Catalog, ops: &[Op]) {
    for op in ops {
        match op {
            Op::PutTable(t) => cat.put(t.clone()),
            Op::DropTable(d, t) => {
                cat.remove(d, t);
            }
            Op::PutDatabase(d) => cat.put_database(d.clone()),
            Op::DropDatabase(d) => cat.remove_database(d),
        }
    }
}

pub fn ops_to_json(ops: &[Op]) -> Value {
    Value::Array(
        ops.iter()
            .map(|op| match op {
                Op::PutTable(t) => json!({"put": table_to_json(t)}),
                Op::DropTable(d, t) => json!({"drop": [d, t]}),
                Op::PutDatabase(d) => json!({"db": [d.name, d.charset]}),
                Op::DropDatabase(d) => json!({"dropdb": d}),
            })
            .collect(),
    )
}

pub fn ops_from_json(v: &Value) -> Result<Vec<Op>, String> {
    let arr = v.as_array().ok_or("a delta is a JSON array")?;
    arr.iter()
        .map(|o| {
            if let Some(t) = o.get("put") {
                Ok(Op::PutTable(table_from_json(t)?))
            } else if let Some([d, t]) = o.get("drop").and_then(Value::as_array).map(Vec::as_slice)
            {
                Ok(Op::DropTable(s(d)?, s(t)?))
            } else if let Some([n, cs]) = o.get("db").and_then(Value::as_array).map(Vec::as_slice) {
                Ok(Op::PutDatabase(Database {
                    name: s(n)?,
                    charset: s(cs)?,
                }))
            } else if let Some(d) = o.get("dropdb") {
                Ok(Op::DropDatabase(s(d)?))
            } else {
                Err(format!("unknown delta step {o}"))
            }
        })
        .collect()
}

fn s(v: &Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("expected a string, found {v}"))
}

fn opt_s(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_string)
}

pub fn table_to_json(t: &Table) -> Value {
    let cols: Vec<Value> = t
        .columns
        .iter()
        .map(|c| {
            let mut m = Map::new();
            m.insert("n".into(), c.name.clone().into());
            m.insert("t".into(), c.data_type.clone().into());
            m.insert("ct".into(), c.column_type.clone().into());
            if let Some(cs) = &c.charset {
                m.insert("cs".into(), cs.clone().into());
            }
            if c.unsigned {
                m.insert("u".into(), true.into());
            }
            if !c.values.is_empty() {
                m.insert("v".into(), c.values.clone().into());
            }
            if c.is_json {
                m.insert("j".into(), true.into());
            }
            Value::Object(m)
        })
        .collect();
    json!({"d": t.database, "n": t.name, "cs": t.charset, "pk": t.primary_key, "c": cols})
}

pub fn table_from_json(v: &Value) -> Result<Table, String> {
    let cols = v
        .get("c")
        .and_then(Value::as_array)
        .ok_or("table without columns")?;
    let mut columns = Vec::with_capacity(cols.len());
    for c in cols {
        columns.push(Column {
            name: s(c.get("n").unwrap_or(&Value::Null))?,
            data_type: s(c.get("t").unwrap_or(&Value::Null))?,
            column_type: opt_s(c.get("ct")).unwrap_or_default(),
            charset: opt_s(c.get("cs")),
            unsigned: c.get("u").and_then(Value::as_bool).unwrap_or(false),
            values: strings(c.get("v")),
            is_json: c.get("j").and_then(Value::as_bool).unwrap_or(false),
        });
    }
    Ok(Table {
        database: s(v.get("d").unwrap_or(&Value::Null))?,
        name: s(v.get("n").unwrap_or(&Value::Null))?,
        charset: opt_s(v.get("cs")),
        columns,
        primary_key: strings(v.get("pk")),
    })
}

/// The strings of a JSON array (empty when absent).
fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A whole catalog (without collations, which are the server's and are
/// read at every start).
pub fn snapshot_to_json(cat: &Catalog) -> Value {
    let mut dbs: Vec<&Database> = cat.databases.values().collect();
    dbs.sort_by(|a, b| a.name.cmp(&b.name));
    json!({
        "ci": cat.case_insensitive,
        "server_charset": cat.server_charset,
        "dbs": dbs.iter().map(|d| json!([d.name, d.charset])).collect::<Vec<_>>(),
        "tables": cat.sorted_tables().iter().map(|t| table_to_json(t)).collect::<Vec<_>>(),
    })
}

pub fn snapshot_from_json(v: &Value) -> Result<Catalog, String> {
    let mut cat = Catalog {
        case_insensitive: v.get("ci").and_then(Value::as_bool).unwrap_or(false),
        server_charset: opt_s(v.get("server_charset")).unwrap_or_else(|| "utf8mb4".into()),
        ..Default::default()
    };
    for d in v
        .get("dbs")
        .and_then(Value::as_array)
        .ok_or("snapshot without databases")?
    {
        let pair = d.as_array().map(Vec::as_slice).unwrap_or_default();
        if let [n, cs] = pair {
            cat.put_database(Database {
                name: s(n)?,
                charset: s(cs)?,
            });
        }
    }
    for t in v
        .get("tables")
        .and_then(Value::as_array)
        .ok_or("snapshot without tables")?
    {
        cat.put(table_from_json(t)?);
    }
    Ok(cat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ddl::{apply, parse, Context, Flavor};

    #[test]
    fn snapshot_and_delta_round_trip() {
        let mut cat = Catalog {
            server_charset: "utf8mb4".into(),
            ..Default::default()
        };
        let ctx = Context {
            default_db: Some("d"),
            server_charset: None,
            flavor: Flavor::MariaDb,
        };
        let mut replayed = cat.clone();
        for sql in [
            "CREATE DATABASE d",
            "CREATE TABLE a (id INT UNSIGNED PRIMARY KEY, e ENUM('x','y'), j JSON)",
            "CREATE TABLE b (x TEXT CHARACTER SET latin1)",
            "RENAME TABLE a TO tmp, b TO a, tmp TO b",
        ] {
            let changes = apply(&mut cat, &parse(sql).unwrap(), &ctx).unwrap();
            let ops = ops_from_json(&ops_to_json(&delta(&changes, &cat))).unwrap();
            apply_ops(&mut replayed, &ops);
        }
        let back = snapshot_from_json(&snapshot_to_json(&cat)).unwrap();
        for c in [&replayed, &back] {
            assert_eq!(c.sorted_tables(), cat.sorted_tables());
            assert_eq!(c.databases, cat.databases);
        }
        assert_eq!(cat.get("d", "b").unwrap().columns.len(), 3);
    }
}
