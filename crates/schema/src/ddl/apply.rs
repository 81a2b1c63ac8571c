//! Applies a parsed DDL statement to the catalog, as the server did, and
//! says what changed (for DDL events and the schema history).

use std::sync::Arc;

use super::ast::*;
use super::types::{self, charset_of_collation, normalize_charset, Flavor};
use crate::model::{Catalog, Column, Database, Table};

/// What the statement's context says: the default database of the session
/// that ran it and the server's default charset at the time.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub default_db: Option<&'a str>,
    /// `collation_server`'s charset from the query event, if logged.
    pub server_charset: Option<&'a str>,
    pub flavor: Flavor,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    DatabaseCreate {
        database: String,
        charset: String,
    },
    DatabaseAlter {
        database: String,
        charset: String,
    },
    DatabaseDrop {
        database: String,
    },
    TableCreate {
        def: Arc<Table>,
    },
    /// Also renames (`old` and `def` differ in name).
    TableAlter {
        old: Arc<Table>,
        def: Arc<Table>,
    },
    TableDrop {
        database: String,
        table: String,
    },
    /// The server alone knows the columns (`CREATE TABLE … SELECT`): the
    /// table must be captured from it.
    Recapture {
        database: String,
        table: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyError(pub String);

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn apply(cat: &mut Catalog, st: &Statement, ctx: &Context) -> Result<Vec<Change>, ApplyError> {
    let server_cs = ctx
        .server_charset
        .map(normalize_charset)
        .unwrap_or_else(|| cat.server_charset.clone());
    match st {
        Statement::NoSchemaChange(_) => Ok(vec![]),
        Statement::CreateDatabase {
            name,
            if_not_exists,
            or_replace,
            charset,
            collation,
        } => {
            if cat.database(name).is_some() && *if_not_exists {
                return Ok(vec![]);
            }
            if *or_replace {
                cat.remove_database(name);
            }
            let charset = pick_charset(charset, collation).unwrap_or(server_cs);
            cat.put_database(Database {
                name: stored_name(cat, name),
                charset: charset.clone(),
            });
            Ok(vec![Change::DatabaseCreate {
                database: name.clone(),
                charset,
            }])
        }
        Statement::AlterDatabase {
            name,
            charset,
            collation,
        } => {
            let Some(name) = name.as_deref().or(ctx.default_db) else {
                return Err(ApplyError(
                    "ALTER DATABASE without a database name or a default database".into(),
                ));
            };
            let Some(cs) = pick_charset(charset, collation) else {
                return Ok(vec![]);
            };
            let mut db = cat.database(name).cloned().unwrap_or(Database {
                name: stored_name(cat, name),
                charset: cs.clone(),
            });
            db.charset = cs.clone();
            cat.put_database(db);
            Ok(vec![Change::DatabaseAlter {
                database: name.to_string(),
                charset: cs,
            }])
        }
        Statement::DropDatabase { name, .. } => {
            if cat.database(name).is_none()
                && !cat.tables.keys().any(|(d, _)| *d == cat.name_key(name))
            {
                return Ok(vec![]);
            }
            cat.remove_database(name);
            Ok(vec![Change::DatabaseDrop {
                database: name.clone(),
            }])
        }
        Statement::CreateTable {
            name,
            if_not_exists,
            or_replace: _,
            temporary,
            body,
            charset,
            collation,
        } => {
            if *temporary {
                return Ok(vec![]);
            }
            let db = database_of(name, ctx)?;
            if cat.get(&db, &name.name).is_some() && *if_not_exists {
                return Ok(vec![]);
            }
            let table = match body {
                CreateBody::Like(src) => {
                    let sdb = database_of(src, ctx)?;
                    let Some(s) = cat.get(&sdb, &src.name) else {
                        return Err(ApplyError(format!(
                            "CREATE TABLE … LIKE: the source table {sdb}.{} is not known",
                            src.name
                        )));
                    };
                    Table {
                        database: stored_name(cat, &db),
                        name: stored_name(cat, &name.name),
                        ..(**s).clone()
                    }
                }
                CreateBody::Columns {
                    columns,
                    primary_key,
                    json_checks,
                    as_select,
                    implicit_row_period,
                } => {
                    if *as_select {
                        return Ok(vec![Change::Recapture {
                            database: db,
                            table: name.name.clone(),
                        }]);
                    }
                    let table_cs = pick_charset(charset, collation)
                        .or_else(|| cat.database(&db).map(|d| d.charset.clone()))
                        .unwrap_or(server_cs);
                    let mut cols = Vec::with_capacity(columns.len());
                    for c in columns {
                        cols.push(column(c, &table_cs, ctx.flavor)?);
                    }
                    let mut t = Table {
                        database: stored_name(cat, &db),
                        name: stored_name(cat, &name.name),
                        charset: Some(table_cs),
                        columns: cols,
                        primary_key: Vec::new(),
                    };
                    if let Some(pk) = primary_key {
                        t.primary_key = canonical_names(&t, pk);
                    }
                    for j in json_checks {
                        mark_json(&mut t, j);
                    }
                    if *implicit_row_period {
                        add_row_period(&mut t);
                    }
                    t
                }
            };
            let def = Arc::new(table);
            cat.put((*def).clone());
            Ok(vec![Change::TableCreate { def }])
        }
        Statement::AlterTable { name, specs } => {
            let db = database_of(name, ctx)?;
            let Some(old) = cat.get(&db, &name.name).cloned() else {
                return Err(ApplyError(format!(
                    "ALTER TABLE of {db}.{}, a table sluice's schema does not know",
                    name.name
                )));
            };
            let mut t = (*old).clone();
            for spec in specs {
                alter(cat, &mut t, spec, ctx, &db)?;
            }
            cat.remove(&old.database, &old.name);
            let def = Arc::new(t);
            cat.put((*def).clone());
            Ok(vec![Change::TableAlter { old, def }])
        }
        Statement::DropTable { names, temporary } => {
            let mut out = Vec::new();
            for n in names {
                let db = database_of(n, ctx)?;
                if let Some(t) = cat.remove(&db, &n.name) {
                    out.push(Change::TableDrop {
                        database: t.database.clone(),
                        table: t.name.clone(),
                    });
                } else if !*temporary {
                    // Temporary tables are not in the catalog; a missing
                    // table was dropped with IF EXISTS.
                }
            }
            Ok(out)
        }
        Statement::RenameTable { pairs } => {
            let mut out = Vec::new();
            for (from, to) in pairs {
                let fdb = database_of(from, ctx)?;
                let tdb = database_of(to, ctx)?;
                let Some(old) = cat.remove(&fdb, &from.name) else {
                    return Err(ApplyError(format!(
                        "RENAME TABLE of {fdb}.{}, a table sluice's schema does not know",
                        from.name
                    )));
                };
                let t = Table {
                    database: stored_name(cat, &tdb),
                    name: stored_name(cat, &to.name),
                    ..(*old).clone()
                };
                let def = Arc::new(t);
                cat.put((*def).clone());
                out.push(Change::TableAlter { old, def });
            }
            Ok(out)
        }
    }
}

/// With `lower_case_table_names` = 1 the server stores names in lower case.
fn stored_name(cat: &Catalog, name: &str) -> String {
    cat.name_key(name)
}

fn database_of(name: &Name, ctx: &Context) -> Result<String, ApplyError> {
    name.db
        .clone()
        .or_else(|| ctx.default_db.map(str::to_string))
        .ok_or_else(|| {
            ApplyError(format!(
                "no database for table {} (no default database in the session)",
                name.name
            ))
        })
}

fn pick_charset(charset: &Option<String>, collation: &Option<String>) -> Option<String> {
    charset
        .as_deref()
        .map(normalize_charset)
        .or_else(|| collation.as_deref().map(charset_of_collation))
}

fn column(c: &ColumnDef, table_cs: &str, flavor: Flavor) -> Result<Column, ApplyError> {
    let mut col = types::resolve_column(&c.name, &c.ty, table_cs, flavor)
        .map_err(|e| ApplyError(format!("unknown data type {} of column {}", e.0, c.name)))?;
    if c.json_check {
        col.is_json = true;
    }
    Ok(col)
}

/// Key column names as the table spells them.
fn canonical_names(t: &Table, names: &[String]) -> Vec<String> {
    names
        .iter()
        .map(|n| {
            t.column(n)
                .map(|c| c.name.clone())
                .unwrap_or_else(|| n.clone())
        })
        .collect()
}

fn mark_json(t: &mut Table, col: &str) {
    for c in t.columns.iter_mut() {
        if c.name.eq_ignore_ascii_case(col) {
            c.is_json = true;
        }
    }
}

fn index_of(t: &Table, name: &str) -> Option<usize> {
    t.columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(name))
}

fn insert_at(t: &mut Table, col: Column, pos: &Position) -> Result<(), ApplyError> {
    let i = match pos {
        // New columns go before MariaDB's invisible row_start/row_end.
        Position::Last => {
            let n = t.columns.len();
            let trailing_period = n >= 2
                && t.columns[n - 2].name.eq_ignore_ascii_case("row_start")
                && t.columns[n - 1].name.eq_ignore_ascii_case("row_end");
            if trailing_period {
                n - 2
            } else {
                n
            }
        }
        Position::First => 0,
        Position::After(a) => {
            index_of(t, a).ok_or_else(|| {
                ApplyError(format!(
                    "AFTER {a}: no such column in {}.{}",
                    t.database, t.name
                ))
            })? + 1
        }
    };
    t.columns.insert(i, col);
    Ok(())
}

fn alter(
    cat: &Catalog,
    t: &mut Table,
    spec: &AlterSpec,
    ctx: &Context,
    db: &str,
) -> Result<(), ApplyError> {
    let table_cs = t
        .charset
        .clone()
        .unwrap_or_else(|| cat.server_charset.clone());
    let missing =
        |t: &Table, c: &str| ApplyError(format!("no column {c} in {}.{}", t.database, t.name));
    match spec {
        AlterSpec::AddColumns(cols, if_not_exists) => {
            for (c, pos) in cols {
                if index_of(t, &c.name).is_some() {
                    if *if_not_exists {
                        continue;
                    }
                    return Err(ApplyError(format!(
                        "column {} already exists in {}.{}",
                        c.name, t.database, t.name
                    )));
                }
                let col = column(c, &table_cs, ctx.flavor)?;
                insert_at(t, col, pos)?;
            }
        }
        AlterSpec::AddPrimaryKey(cols) => t.primary_key = canonical_names(t, cols),
        AlterSpec::DropPrimaryKey => t.primary_key.clear(),
        AlterSpec::DropColumn { name, if_exists } => match index_of(t, name) {
            Some(i) => {
                t.columns.remove(i);
                t.primary_key.retain(|k| !k.eq_ignore_ascii_case(name));
            }
            None if *if_exists => {}
            None => return Err(missing(t, name)),
        },
        AlterSpec::Modify {
            column: c,
            position,
            if_exists,
        } => {
            let Some(i) = index_of(t, &c.name) else {
                return if *if_exists {
                    Ok(())
                } else {
                    Err(missing(t, &c.name))
                };
            };
            let mut col = column(c, &table_cs, ctx.flavor)?;
            col.name = t.columns[i].name.clone();
            if col.data_type == "longtext"
                && t.columns[i].is_json
                && !matches!(c.ty.name.as_str(), "longtext")
            {
                col.is_json = true;
            }
            replace(t, i, col, position)?;
        }
        AlterSpec::Change {
            old,
            column: c,
            position,
            if_exists,
        } => {
            let Some(i) = index_of(t, old) else {
                return if *if_exists {
                    Ok(())
                } else {
                    Err(missing(t, old))
                };
            };
            let col = column(c, &table_cs, ctx.flavor)?;
            for k in t.primary_key.iter_mut() {
                if k.eq_ignore_ascii_case(old) {
                    *k = col.name.clone();
                }
            }
            replace(t, i, col, position)?;
        }
        AlterSpec::RenameColumn { old, new } => {
            let i = index_of(t, old).ok_or_else(|| missing(t, old))?;
            t.columns[i].name = new.clone();
            for k in t.primary_key.iter_mut() {
                if k.eq_ignore_ascii_case(old) {
                    *k = new.clone();
                }
            }
        }
        AlterSpec::RenameTable(n) => {
            // An unqualified new name is in the session's default database
            // (as any unqualified name), not necessarily the table's.
            let _ = db;
            let to_db = n.db.as_deref().or(ctx.default_db).unwrap_or(&t.database);
            t.database = stored_name(cat, to_db);
            t.name = stored_name(cat, &n.name);
        }
        AlterSpec::Convert { charset, collation } => {
            let cs = pick_charset(charset, collation)
                .or_else(|| cat.database(&t.database).map(|d| d.charset.clone()))
                .unwrap_or_else(|| cat.server_charset.clone());
            for c in t.columns.iter_mut() {
                let Some(old_cs) = c.charset.clone() else {
                    continue;
                };
                if old_cs == "binary" || !types::takes_charset(&c.data_type) {
                    continue;
                }
                if let Some(p) = types::promote_text(&c.data_type, &old_cs, &cs) {
                    let keep = types::text_capacity(&c.data_type) >= types::text_capacity(p);
                    if !keep {
                        c.column_type = c.column_type.replacen(&c.data_type, p, 1);
                        c.data_type = p.to_string();
                    }
                }
                c.charset = Some(cs.clone());
            }
            t.charset = Some(cs);
        }
        AlterSpec::DefaultCharset { charset, collation } => {
            if let Some(cs) = pick_charset(charset, collation) {
                t.charset = Some(cs);
            }
        }
        AlterSpec::JsonCheck(c) => mark_json(t, c),
        AlterSpec::SystemVersioning(true) => add_row_period(t),
        AlterSpec::SystemVersioning(false) => {
            let implicit =
                |n: &str| n.eq_ignore_ascii_case("row_start") || n.eq_ignore_ascii_case("row_end");
            t.columns.retain(|c| !implicit(&c.name));
            t.primary_key.retain(|k| !implicit(k));
        }
    }
    Ok(())
}

fn add_row_period(t: &mut Table) {
    t.add_implicit_row_period();
}

fn replace(t: &mut Table, i: usize, col: Column, position: &Position) -> Result<(), ApplyError> {
    if matches!(position, Position::Last) {
        t.columns[i] = col;
        return Ok(());
    }
    t.columns.remove(i);
    insert_at(t, col, position)
}
