//! Parse-and-apply cases; the full check against a real server is
//! `crates/sluice/tests/schema_follow.rs`.

use super::*;
use crate::model::{Catalog, Database};

fn ctx() -> Context<'static> {
    Context {
        default_db: Some("d"),
        server_charset: None,
        flavor: Flavor::MariaDb,
    }
}

fn run(cat: &mut Catalog, sql: &str) -> Vec<Change> {
    let st = parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    apply(cat, &st, &ctx()).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn catalog() -> Catalog {
    let mut c = Catalog {
        server_charset: "utf8mb4".into(),
        ..Default::default()
    };
    c.put_database(Database {
        name: "d".into(),
        charset: "latin1".into(),
    });
    c
}

fn names(cat: &Catalog, t: &str) -> Vec<String> {
    cat.get("d", t)
        .unwrap()
        .columns
        .iter()
        .map(|c| c.name.clone())
        .collect()
}

#[test]
fn create_alter_rename_drop() {
    let mut cat = catalog();
    run(&mut cat, "CREATE TABLE t (id INT UNSIGNED NOT NULL AUTO_INCREMENT, a VARCHAR(10) CHARACTER SET utf8, b TEXT, PRIMARY KEY (id)) ENGINE=InnoDB");
    let t = cat.get("d", "t").unwrap();
    assert_eq!(
        t.charset.as_deref(),
        Some("latin1"),
        "inherits the database's charset"
    );
    assert_eq!(t.columns[1].charset.as_deref(), Some("utf8mb3"));
    assert_eq!(t.columns[2].charset.as_deref(), Some("latin1"));
    assert!(t.columns[0].unsigned);
    assert_eq!(t.primary_key, vec!["id"]);

    run(&mut cat, "ALTER TABLE t ADD c INT FIRST, ADD COLUMN (e INT, f INT), ADD g ENUM('x','y''z') AFTER id, DROP COLUMN b");
    assert_eq!(names(&cat, "t"), vec!["c", "id", "g", "a", "e", "f"]);
    assert_eq!(
        cat.get("d", "t").unwrap().columns[2].values,
        vec!["x", "y'z"]
    );

    run(
        &mut cat,
        "ALTER TABLE t CHANGE COLUMN id ident BIGINT, MODIFY c INT AFTER f, RENAME COLUMN e TO ee",
    );
    assert_eq!(names(&cat, "t"), vec!["ident", "g", "a", "ee", "f", "c"]);
    assert_eq!(cat.get("d", "t").unwrap().primary_key, vec!["ident"]);

    run(
        &mut cat,
        "ALTER TABLE t DROP PRIMARY KEY, ADD PRIMARY KEY (a, f)",
    );
    assert_eq!(cat.get("d", "t").unwrap().primary_key, vec!["a", "f"]);

    run(&mut cat, "ALTER TABLE t CONVERT TO CHARACTER SET utf8mb4");
    let t = cat.get("d", "t").unwrap();
    assert!(t
        .columns
        .iter()
        .filter(|c| c.charset.is_some())
        .all(|c| c.charset.as_deref() == Some("utf8mb4")));

    run(
        &mut cat,
        "RENAME TABLE t TO e.t2, d.nope2 TO d.nope3"
            .replace(", d.nope2 TO d.nope3", "")
            .as_str(),
    );
    assert!(cat.get("d", "t").is_none() && cat.get("e", "t2").is_some());
    let ch = run(&mut cat, "DROP TABLE IF EXISTS e.t2, d.missing");
    assert_eq!(ch.len(), 1);
    assert!(cat.tables.is_empty());
}

#[test]
fn create_like_and_versioned_comments() {
    let mut cat = catalog();
    run(
        &mut cat,
        "/*!40101 CREATE TABLE IF NOT EXISTS `s` (`x` int(11) DEFAULT NULL) */",
    );
    run(&mut cat, "CREATE TABLE l LIKE s");
    assert_eq!(names(&cat, "l"), vec!["x"]);
    assert!(run(&mut cat, "CREATE TABLE IF NOT EXISTS l (y INT)").is_empty());
    assert!(run(&mut cat, "CREATE TEMPORARY TABLE tmp (y INT)").is_empty());
}

#[test]
fn statements_without_structure_are_recognised() {
    for sql in [
        "GRANT SELECT ON *.* TO 'u'@'%'",
        "CREATE DEFINER=`root`@`localhost` TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1",
        "CREATE INDEX i ON t (a)",
        "DROP VIEW IF EXISTS v",
        "CREATE OR REPLACE ALGORITHM=UNDEFINED DEFINER=root@localhost SQL SECURITY DEFINER VIEW v AS SELECT 1",
        "TRUNCATE TABLE t",
        "FLUSH PRIVILEGES",
        "# a comment only",
    ] {
        assert!(matches!(parse(sql), Ok(Statement::NoSchemaChange(_))), "{sql}");
    }
    assert!(parse("FROBNICATE TABLE t").is_err());
    assert!(parse("CREATE TABLE t (a INT").is_err());
}

#[test]
fn database_charsets() {
    let mut cat = catalog();
    run(&mut cat, "CREATE DATABASE x CHARACTER SET = 'latin2'");
    assert_eq!(cat.database("x").unwrap().charset, "latin2");
    run(
        &mut cat,
        "ALTER DATABASE x DEFAULT COLLATE utf8mb4_unicode_ci",
    );
    assert_eq!(cat.database("x").unwrap().charset, "utf8mb4");
    run(&mut cat, "CREATE TABLE x.t (a CHAR(3))");
    assert_eq!(
        cat.get("x", "t").unwrap().columns[0].charset.as_deref(),
        Some("utf8mb4")
    );
    run(&mut cat, "DROP DATABASE x");
    assert!(cat.get("x", "t").is_none() && cat.database("x").is_none());
}

#[test]
fn case_rules_follow_the_server() {
    let mut cat = catalog();
    run(&mut cat, "CREATE TABLE T1 (A INT)");
    assert!(
        cat.get("d", "t1").is_none(),
        "lower_case_table_names=0 is case-sensitive"
    );
    run(&mut cat, "ALTER TABLE T1 MODIFY a BIGINT");
    assert_eq!(cat.get("d", "T1").unwrap().columns[0].name, "A");
    let mut ci = catalog();
    ci.case_insensitive = true;
    run(&mut ci, "CREATE TABLE T1 (A INT)");
    assert_eq!(ci.get("D", "t1").unwrap().name, "t1");
}
