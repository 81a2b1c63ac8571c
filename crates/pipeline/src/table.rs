//! Resolving a TABLE_MAP into what the decoder needs per column: names,
//! signedness, text decoding, enum/set values. The binlog's own metadata
//! (`binlog_row_metadata=FULL`) wins, since it is exact at the event's
//! position; the captured catalog fills what the binlog does not say.

use sluice_binlog::rows::{col, ColumnType, TableMap};
use sluice_schema::{Catalog, Table};

use crate::charset::TextDecoding;
use crate::encode::{ColumnPattern, OutputConfig};
use crate::json;
use crate::values::ColumnDecode;

#[derive(Debug)]
pub struct DecodeTable {
    pub database: String,
    pub table: String,
    /// `{"database":"…","table":"…",` pre-rendered.
    pub head: Vec<u8>,
    pub columns: Vec<ColumnDecode>,
    pub primary_key: Vec<usize>,
    /// Names of the primary key columns, in key order.
    pub primary_key_names: Vec<String>,
    pub map: TableMap,
}

/// Why a table map could not be resolved.
#[derive(Debug)]
pub enum ResolveError {
    /// The catalog disagrees with the binlog (or lacks the table): worth a
    /// fresh capture before giving up.
    Drift(String),
    /// Will not get better (e.g. a charset sluice cannot decode).
    Definite(String),
}

/// Catalog type names and the binlog type codes they are logged as.
fn compatible(data_type: &str, t: ColumnType) -> bool {
    let c = t.code;
    match data_type {
        "tinyint" | "bool" | "boolean" => c == col::TINY,
        "smallint" => c == col::SHORT,
        "mediumint" => c == col::INT24,
        "int" | "integer" => c == col::LONG,
        "bigint" => c == col::LONGLONG,
        "float" => c == col::FLOAT,
        "double" | "real" | "double precision" => c == col::DOUBLE,
        "decimal" | "numeric" | "fixed" => c == col::NEWDECIMAL,
        "bit" => c == col::BIT,
        "year" => c == col::YEAR,
        "date" => c == col::DATE || c == col::NEWDATE,
        "time" => c == col::TIME || c == col::TIME2,
        "datetime" => c == col::DATETIME || c == col::DATETIME2,
        "timestamp" => c == col::TIMESTAMP || c == col::TIMESTAMP2,
        "char" | "binary" => c == col::STRING,
        "varchar" | "varbinary" => c == col::VARCHAR || c == col::VAR_STRING,
        "tinytext" | "text" | "mediumtext" | "longtext" | "tinyblob" | "blob" | "mediumblob"
        | "longblob" => c == col::BLOB,
        "enum" => c == col::ENUM,
        "set" => c == col::SET,
        "json" => c == col::JSON || c == col::BLOB,
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" => c == col::GEOMETRY,
        _ => true, // types we do not know (inet6, uuid, vector, ...): trust the binlog
    }
}

fn excluded(name: &str, patterns: &[ColumnPattern]) -> bool {
    patterns.iter().any(|p| p.matches(name))
}

pub fn resolve(
    map: TableMap,
    catalog: &Catalog,
    table: Option<&Table>,
    out: &OutputConfig,
) -> Result<DecodeTable, ResolveError> {
    let exclude = &out.exclude_columns;
    let md = &map.metadata;
    let n = map.columns.len();
    let full = !md.names.is_empty();
    let qualified = format!("{}.{}", map.database, map.table);
    // The schema sluice follows must agree with the binlog: column count
    // and types always, names too where the binlog logs them
    // (binlog_row_metadata=FULL). A disagreement means the schema is wrong,
    // and is never papered over.
    match table {
        None if !full => {
            return Err(ResolveError::Drift(format!(
                "{qualified} is not in the schema and the binlog carries no column names"
            )))
        }
        None => {}
        Some(t) => {
            if t.columns.len() != n {
                return Err(ResolveError::Drift(format!(
                    "{qualified}: the binlog has {n} columns, the schema has {}",
                    t.columns.len()
                )));
            }
            for (i, (c, ty)) in t.columns.iter().zip(&map.columns).enumerate() {
                if !compatible(&c.data_type, *ty) {
                    return Err(ResolveError::Drift(format!(
                        "{qualified}: column {} is {} in the schema but type code {} in the binlog",
                        c.name, c.data_type, ty.code
                    )));
                }
                if let Some(logged) = md.names.get(i) {
                    if !logged.eq_ignore_ascii_case(&c.name) {
                        return Err(ResolveError::Drift(format!(
                            "{qualified}: column {} is named {} in the schema but {logged} in the binlog",
                            i + 1,
                            c.name
                        )));
                    }
                }
            }
        }
    }
    let mut columns = Vec::with_capacity(n);
    for (i, ty) in map.columns.iter().enumerate() {
        let name = if full {
            md.names[i].clone()
        } else {
            table.map(|t| t.columns[i].name.clone()).unwrap_or_default()
        };
        let cat_col = table.and_then(|t| {
            if full {
                t.column(&name)
            } else {
                t.columns.get(i)
            }
        });
        let unsigned = md
            .unsigned
            .get(i)
            .copied()
            .flatten()
            .or(cat_col.map(|c| c.unsigned))
            .unwrap_or(false);
        let charset: Option<String> = md
            .collation
            .get(i)
            .copied()
            .flatten()
            .and_then(|id| catalog.charset_of_collation(id).map(str::to_string))
            .or_else(|| cat_col.and_then(|c| c.charset.clone()))
            .or_else(|| table.and_then(|t| t.charset.clone()));
        let is_texty = matches!(
            ty.code,
            col::STRING | col::VARCHAR | col::VAR_STRING | col::BLOB
        );
        let text = if is_texty {
            let cs = charset.as_deref().unwrap_or("utf8mb4");
            TextDecoding::for_charset(cs).ok_or_else(|| {
                ResolveError::Definite(format!(
                    "column {qualified}.{name} uses character set '{cs}', which sluice cannot decode"
                ))
            })?
        } else {
            TextDecoding::Utf8
        };
        let from_md = if ty.code == col::ENUM {
            md.enum_values.get(i)
        } else {
            md.set_values.get(i)
        };
        let values: Vec<String> = match from_md.cloned().flatten() {
            Some(v) => v
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect(),
            None => cat_col.map(|c| c.values.clone()).unwrap_or_default(),
        };
        if ty.is_enum_or_set() && values.is_empty() {
            return Err(ResolveError::Drift(format!(
                "{qualified}.{name}: enum/set values unknown"
            )));
        }
        columns.push(ColumnDecode {
            key: json::key(&out.naming.apply(&name)),
            excluded: excluded(&name, exclude),
            is_json: ty.code == col::JSON || cat_col.is_some_and(|c| c.is_json),
            name,
            ty: *ty,
            unsigned,
            text,
            values,
        });
    }
    let primary_key: Vec<usize> = if !md.primary_key.is_empty() {
        md.primary_key.iter().copied().filter(|&i| i < n).collect()
    } else {
        table
            .map(|t| {
                t.primary_key
                    .iter()
                    .filter_map(|pk| {
                        columns
                            .iter()
                            .position(|c: &ColumnDecode| c.name.eq_ignore_ascii_case(pk))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut head = Vec::with_capacity(64);
    head.extend_from_slice(b"{\"database\":");
    json::write_str(&mut head, &map.database);
    head.extend_from_slice(b",\"table\":");
    json::write_str(&mut head, &map.table);
    let primary_key_names = primary_key
        .iter()
        .map(|&i: &usize| columns[i].name.clone())
        .collect();
    Ok(DecodeTable {
        database: map.database.clone(),
        table: map.table.clone(),
        head,
        columns,
        primary_key,
        primary_key_names,
        map,
    })
}
