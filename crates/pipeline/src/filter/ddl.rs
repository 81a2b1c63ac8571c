//! The filter's effect on DDL (spec §1.3): statements about blacklisted
//! tables and databases are not applied to the schema, and DDL events are
//! output only for included tables.

use sluice_schema::ddl::ast::{AlterSpec, CreateBody, Name};
use sluice_schema::ddl::{Change, Statement};

use super::Filter;

/// What is left of a statement once its blacklisted parts are dropped.
#[derive(Debug, PartialEq)]
pub struct KeptDdl {
    /// `None`: nothing left to apply.
    pub statement: Option<Statement>,
    /// Tables whose definition only the server has now, because the
    /// statement derived them from a blacklisted table (`CREATE TABLE t LIKE
    /// blacklisted`): captured from the server instead.
    pub recapture: Vec<(String, String)>,
}

fn db_of(name: &Name, default_db: Option<&str>) -> String {
    name.db
        .clone()
        .or_else(|| default_db.map(str::to_string))
        .unwrap_or_default()
}

/// Drops the parts of `st` that concern blacklisted tables or databases (as
/// Maxwell's schema store skips them; a rename is judged by its source
/// table, as in Maxwell).
pub fn without_blacklisted(f: &Filter, st: Statement, default_db: Option<&str>) -> KeptDdl {
    let table_bl = |n: &Name| f.is_table_blacklisted(&db_of(n, default_db), &n.name);
    let keep = |st: Statement| KeptDdl {
        statement: Some(st),
        recapture: Vec::new(),
    };
    let drop_all = KeptDdl {
        statement: None,
        recapture: Vec::new(),
    };
    match st {
        Statement::CreateDatabase { ref name, .. } | Statement::DropDatabase { ref name, .. } => {
            if f.is_database_blacklisted(name) {
                drop_all
            } else {
                keep(st)
            }
        }
        Statement::AlterDatabase { ref name, .. } => {
            let db = name.as_deref().or(default_db).unwrap_or_default();
            if f.is_database_blacklisted(db) {
                drop_all
            } else {
                keep(st)
            }
        }
        Statement::CreateTable {
            ref name, ref body, ..
        } => {
            if table_bl(name) {
                return drop_all;
            }
            match body {
                CreateBody::Like(src) if table_bl(src) => KeptDdl {
                    statement: None,
                    recapture: vec![(db_of(name, default_db), name.name.clone())],
                },
                _ => keep(st),
            }
        }
        Statement::AlterTable {
            ref name,
            ref specs,
        } => {
            if !table_bl(name) {
                return keep(st);
            }
            // A blacklisted table renamed to a followed name is new to the
            // schema: captured from the server.
            let recapture = specs
                .iter()
                .filter_map(|s| match s {
                    AlterSpec::RenameTable(to) if !table_bl(to) => {
                        Some((db_of(to, default_db), to.name.clone()))
                    }
                    _ => None,
                })
                .collect();
            KeptDdl {
                statement: None,
                recapture,
            }
        }
        Statement::DropTable { names, temporary } => {
            let names: Vec<Name> = names.into_iter().filter(|n| !table_bl(n)).collect();
            if names.is_empty() {
                return drop_all;
            }
            keep(Statement::DropTable { names, temporary })
        }
        Statement::RenameTable { pairs } => {
            let mut recapture = Vec::new();
            let mut kept = Vec::new();
            for (from, to) in pairs {
                if !table_bl(&from) {
                    kept.push((from, to));
                } else if !table_bl(&to) {
                    recapture.push((db_of(&to, default_db), to.name.clone()));
                }
            }
            KeptDdl {
                statement: (!kept.is_empty()).then_some(Statement::RenameTable { pairs: kept }),
                recapture,
            }
        }
        Statement::NoSchemaChange(_) => keep(st),
    }
}

/// Whether the DDL event of `change` is output: `includes(db, table)`, with
/// `""` as the table of database-level changes, and both names of a rename.
pub fn change_included(f: &Filter, change: &Change) -> bool {
    match change {
        Change::DatabaseCreate { database, .. }
        | Change::DatabaseAlter { database, .. }
        | Change::DatabaseDrop { database } => f.includes(database, ""),
        Change::TableCreate { def } => f.includes(&def.database, &def.name),
        Change::TableAlter { old, def } => {
            f.includes(&old.database, &old.name)
                && (old.database == def.database && old.name == def.name
                    || f.includes(&def.database, &def.name))
        }
        Change::TableDrop { database, table } | Change::Recapture { database, table } => {
            f.includes(database, table)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use sluice_schema::ddl::parse;
    use sluice_schema::Table;

    fn f(text: &str) -> Filter {
        Filter::parse(text, "maxwell").unwrap()
    }

    fn kept(filter: &str, sql: &str) -> KeptDdl {
        without_blacklisted(&f(filter), parse(sql).unwrap(), Some("db"))
    }

    fn table(db: &str, name: &str) -> Arc<Table> {
        Arc::new(Table {
            database: db.into(),
            name: name.into(),
            charset: None,
            columns: Vec::new(),
            primary_key: Vec::new(),
        })
    }

    #[test]
    fn statements_on_blacklisted_tables_are_not_applied() {
        let bl = "blacklist: *.noseeum, blacklist: nodb.*";
        for sql in [
            "create table noseeum (i int)",
            "alter table db.noseeum add column j int",
            "drop table noseeum",
            "rename table noseeum to noseeum2",
            "create database nodb",
            "alter database nodb character set utf8mb4",
            "drop database nodb",
            "create table nodb.t (i int)",
        ] {
            assert_eq!(kept(bl, sql).statement, None, "{sql}");
        }
        for sql in [
            "create table oicu (i int)",
            "alter table oicu add column j int",
            "create database other",
        ] {
            assert_eq!(kept(bl, sql).statement, Some(parse(sql).unwrap()), "{sql}");
        }
        assert_eq!(
            kept(bl, "drop table noseeum, oicu").statement,
            Some(parse("drop table oicu").unwrap())
        );
    }

    #[test]
    fn tables_derived_from_blacklisted_ones_are_recaptured() {
        let k = kept("blacklist: *.noseeum", "create table t2 like noseeum");
        assert_eq!(
            (k.statement, k.recapture),
            (None, vec![("db".to_string(), "t2".to_string())])
        );
        let k = kept("blacklist: *.noseeum", "rename table noseeum to t3");
        assert_eq!(k.recapture, vec![("db".to_string(), "t3".to_string())]);
        let k = kept("blacklist: *.noseeum", "alter table noseeum rename to t4");
        assert_eq!(k.recapture, vec![("db".to_string(), "t4".to_string())]);
    }

    #[test]
    fn ddl_events_follow_includes() {
        let filter = f("exclude: *.TestTableCreate4");
        let create3 = Change::TableCreate {
            def: table("db", "TestTableCreate3"),
        };
        let rename = Change::TableAlter {
            old: table("db", "TestTableCreate3"),
            def: table("db", "TestTableCreate4"),
        };
        assert!(change_included(&filter, &create3));
        assert!(!change_included(&filter, &rename));

        let filter = f("exclude: *.chicken");
        let db = Change::DatabaseCreate {
            database: "d".into(),
            charset: "utf8mb4".into(),
        };
        assert!(change_included(&filter, &db));
        assert!(!change_included(
            &filter,
            &Change::TableCreate {
                def: table("d", "chicken")
            }
        ));
        // Database-level changes have the table "": a literal table rule
        // does not match it.
        let filter = f("exclude: *.*, include: d.tbl");
        assert!(!change_included(&filter, &db));
        let filter = f("exclude: TestDatabaseCreate2.*");
        assert!(!change_included(
            &filter,
            &Change::DatabaseCreate {
                database: "TestDatabaseCreate2".into(),
                charset: "utf8mb4".into()
            }
        ));
    }
}
