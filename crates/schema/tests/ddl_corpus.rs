//! Maxwell's DDL corpus (`testdata/maxwell/sql/ddl`): every
//! statement of the fixed, partition and GIS files must parse, and so must
//! those of `mysql-test-errors.sql`, which Maxwell itself cannot parse.

use std::path::PathBuf;

use sluice_schema::ddl::{parse, Statement};

fn corpus_dir() -> PathBuf {
    std::env::var("SLUICE_CONFORMANCE_DDL")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/maxwell/sql/ddl")
        })
}

/// One statement per line, as the corpus is written.
fn statements(file: &str) -> Vec<String> {
    let path = corpus_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn all_parse(file: &str) -> usize {
    let stmts = statements(file);
    assert!(stmts.len() > 10, "{file}: too few statements");
    let mut failures = Vec::new();
    let mut structural = 0;
    let mut truncated = 0;
    let began = std::time::Instant::now();
    for s in &stmts {
        if s.ends_with(',') {
            // Cut off in the corpus itself (the CREATE TABLE of
            // mysql-test-errors.sql ends after a comma): the server rejects
            // it, and so must we.
            assert!(parse(s).is_err(), "a truncated statement parsed: {s}");
            truncated += 1;
            continue;
        }
        match parse(s) {
            Ok(Statement::NoSchemaChange(_)) => {}
            Ok(_) => structural += 1,
            Err(e) => failures.push(format!("{s}\n    -> {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{file}: {} of {} statements do not parse:\n{}",
        failures.len(),
        stmts.len(),
        failures.join("\n")
    );
    eprintln!(
        "{file}: {} of {} statements parse ({structural} change structure; {truncated} cut off in the corpus refused) in {:?}",
        stmts.len() - truncated,
        stmts.len(),
        began.elapsed()
    );
    structural
}

#[test]
fn fixed() {
    assert!(all_parse("mysql-test-fixed.sql") > 300);
}

#[test]
fn partition() {
    assert!(all_parse("mysql-test-partition.sql") > 600);
}

#[test]
fn gis() {
    assert!(all_parse("mysql-test-gis.sql") > 20);
}

#[test]
fn errors_maxwell_cannot_parse() {
    all_parse("mysql-test-errors.sql");
}

#[test]
fn mysql_test() {
    all_parse("mysql-test.sql");
}
