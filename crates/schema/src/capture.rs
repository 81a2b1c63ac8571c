//! Reads the current catalog from `information_schema`.

use std::collections::HashMap;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

use crate::model::{parse_enum_values, Catalog, Column, Database, Table};

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("schema capture failed: {0}")]
    Sql(#[from] mysql_async::Error),
    #[error("schema capture: unexpected value in information_schema.{0}")]
    Value(String),
}

const SYSTEM_DBS: &str = "('information_schema','performance_schema','mysql','sys')";

fn text(row: &Row, i: usize, what: &str) -> Result<Option<String>, CaptureError> {
    match row.get_opt::<Option<String>, _>(i) {
        Some(Ok(v)) => Ok(v),
        _ => Err(CaptureError::Value(what.to_string())),
    }
}

fn required(row: &Row, i: usize, what: &str) -> Result<String, CaptureError> {
    text(row, i, what)?.ok_or_else(|| CaptureError::Value(what.to_string()))
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "''")
}

/// Captures every database and user table.
pub async fn capture_catalog(conn: &mut Conn) -> Result<Catalog, CaptureError> {
    let mut cat = capture_server(conn).await?;
    let rows: Vec<Row> = conn
        .query(format!(
            "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA \
             WHERE SCHEMA_NAME NOT IN {SYSTEM_DBS}"
        ))
        .await?;
    for r in rows {
        let charset = required(&r, 1, "SCHEMATA.DEFAULT_CHARACTER_SET_NAME")?;
        cat.put_database(Database {
            name: required(&r, 0, "SCHEMATA.SCHEMA_NAME")?,
            charset: crate::ddl::normalize_charset(&charset),
        });
    }
    for t in capture_tables(conn, &format!("TABLE_SCHEMA NOT IN {SYSTEM_DBS}")).await? {
        cat.put(t);
    }
    Ok(cat)
}

/// What belongs to the server rather than to the schema history: its
/// collations, case rules and default charset (a catalog without tables).
pub async fn capture_server(conn: &mut Conn) -> Result<Catalog, CaptureError> {
    let (lctn, server_charset): (Option<u32>, Option<String>) = conn
        .query_first("SELECT @@lower_case_table_names, @@character_set_server")
        .await?
        .unwrap_or((None, None));
    Ok(Catalog {
        collations: capture_collations(conn).await?,
        case_insensitive: lctn.unwrap_or(0) > 0,
        server_charset: crate::ddl::normalize_charset(
            &server_charset.unwrap_or_else(|| "utf8mb4".into()),
        ),
        ..Default::default()
    })
}

/// Captures one table; `None` if it does not exist (any more).
pub async fn capture_table(
    conn: &mut Conn,
    db: &str,
    table: &str,
) -> Result<Option<Table>, CaptureError> {
    let filter = format!(
        "TABLE_SCHEMA = '{}' AND TABLE_NAME = '{}'",
        escape(db),
        escape(table)
    );
    Ok(capture_tables(conn, &filter).await?.into_iter().next())
}

async fn capture_collations(conn: &mut Conn) -> Result<HashMap<u32, String>, CaptureError> {
    let rows: Vec<Row> = conn
        .query("SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS WHERE ID IS NOT NULL AND CHARACTER_SET_NAME IS NOT NULL")
        .await?;
    let mut out = HashMap::new();
    for r in rows {
        let id = match r.get_opt::<u32, _>(0) {
            Some(Ok(v)) => v,
            _ => return Err(CaptureError::Value("COLLATIONS.ID".into())),
        };
        out.insert(id, required(&r, 1, "COLLATIONS.CHARACTER_SET_NAME")?);
    }
    // MariaDB 10.10+ lists its UCA-14 collations only in
    // COLLATION_CHARACTER_SET_APPLICABILITY; add those ids when present.
    if let Ok(rows) = conn
        .query::<Row, _>("SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATION_CHARACTER_SET_APPLICABILITY WHERE ID IS NOT NULL AND CHARACTER_SET_NAME IS NOT NULL")
        .await
    {
        for r in rows {
            if let (Some(Ok(id)), Ok(Some(cs))) = (r.get_opt::<u32, _>(0), text(&r, 1, "")) {
                out.entry(id).or_insert(cs);
            }
        }
    }
    Ok(out)
}

async fn capture_tables(conn: &mut Conn, filter: &str) -> Result<Vec<Table>, CaptureError> {
    let by_name: HashMap<String, String> = {
        let rows: Vec<Row> = conn
            .query("SELECT COLLATION_NAME, CHARACTER_SET_NAME FROM information_schema.COLLATIONS")
            .await?;
        let mut m = HashMap::new();
        for r in rows {
            // MariaDB lists charset-less UCA-14 collation templates: skip them.
            if let (Some(name), Some(cs)) = (text(&r, 0, "COLLATIONS")?, text(&r, 1, "COLLATIONS")?)
            {
                m.insert(name, cs);
            }
        }
        m
    };
    let mut tables: Vec<Table> = Vec::new();
    // Exact names: on a case-sensitive server `T` and `t` are two tables.
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    let mut versioned: Vec<usize> = Vec::new();
    let rows: Vec<Row> = conn
        .query(format!(
            "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_COLLATION, TABLE_TYPE FROM information_schema.TABLES \
             WHERE {filter} AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED', 'SEQUENCE') ORDER BY TABLE_SCHEMA, TABLE_NAME"
        ))
        .await?;
    for r in rows {
        let db = required(&r, 0, "TABLES.TABLE_SCHEMA")?;
        let name = required(&r, 1, "TABLES.TABLE_NAME")?;
        let charset = text(&r, 2, "TABLES.TABLE_COLLATION")?
            .and_then(|c| by_name.get(&c).map(|cs| crate::ddl::normalize_charset(cs)));
        if text(&r, 3, "TABLES.TABLE_TYPE")?.as_deref() == Some("SYSTEM VERSIONED") {
            versioned.push(tables.len());
        }
        index.insert((db.clone(), name.clone()), tables.len());
        tables.push(Table {
            database: db,
            name,
            charset,
            columns: Vec::new(),
            primary_key: Vec::new(),
        });
    }
    let rows: Vec<Row> = conn
        .query(format!(
            "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, EXTRA \
             FROM information_schema.COLUMNS WHERE {filter} ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
        ))
        .await?;
    for r in rows {
        let k = (required(&r, 0, "COLUMNS")?, required(&r, 1, "COLUMNS")?);
        let Some(&ti) = index.get(&k) else { continue };
        if text(&r, 6, "COLUMNS.EXTRA")?
            .is_some_and(|e| e.to_ascii_uppercase().contains("ROW START"))
        {
            // A declared period: its columns are visible ones.
            versioned.retain(|&v| v != ti);
        }
        let data_type = required(&r, 3, "COLUMNS.DATA_TYPE")?.to_ascii_lowercase();
        let column_type = required(&r, 4, "COLUMNS.COLUMN_TYPE")?;
        let mut charset =
            text(&r, 5, "COLUMNS.CHARACTER_SET_NAME")?.map(|cs| crate::ddl::normalize_charset(&cs));
        if charset.is_none()
            && matches!(
                data_type.as_str(),
                "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob"
            )
        {
            charset = Some("binary".into());
        }
        let values = if data_type == "enum" || data_type == "set" {
            parse_enum_values(&column_type)
        } else {
            Vec::new()
        };
        tables[ti].columns.push(Column {
            name: required(&r, 2, "COLUMNS.COLUMN_NAME")?,
            unsigned: column_type.to_ascii_lowercase().contains("unsigned"),
            is_json: data_type == "json",
            data_type,
            column_type,
            charset,
            values,
        });
    }
    let rows: Vec<Row> = conn
        .query(format!(
            "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
             WHERE {filter} AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
        ))
        .await?;
    for r in rows {
        let k = (
            required(&r, 0, "KEY_COLUMN_USAGE")?,
            required(&r, 1, "KEY_COLUMN_USAGE")?,
        );
        if let Some(&ti) = index.get(&k) {
            tables[ti]
                .primary_key
                .push(required(&r, 2, "KEY_COLUMN_USAGE.COLUMN_NAME")?);
        }
    }
    // MariaDB's JSON is LONGTEXT guarded by CHECK (json_valid(`col`)).
    let check_filter = filter.replace("TABLE_SCHEMA", "CONSTRAINT_SCHEMA");
    if let Ok(rows) = conn
        .query::<Row, _>(format!(
            "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
             WHERE {check_filter} AND CHECK_CLAUSE LIKE 'json_valid(%'"
        ))
        .await
    {
        for r in rows {
            let k = (required(&r, 0, "CHECK_CONSTRAINTS")?, required(&r, 1, "CHECK_CONSTRAINTS")?);
            let clause = required(&r, 2, "CHECK_CONSTRAINTS.CHECK_CLAUSE")?;
            let col = clause
                .trim_start_matches("json_valid(")
                .trim_end_matches(')')
                .trim_matches('`')
                .to_string();
            if let Some(&ti) = index.get(&k) {
                for c in tables[ti].columns.iter_mut() {
                    if c.name.eq_ignore_ascii_case(&col) {
                        c.is_json = true;
                    }
                }
            }
        }
    }
    for ti in versioned {
        tables[ti].add_implicit_row_period();
    }
    Ok(tables)
}
