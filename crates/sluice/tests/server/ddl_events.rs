//! Maxwell's DDL-event corpus (`testdata/maxwell/sql/serialization`):
//! every statement runs on the private MariaDB, and sluice (`output_ddl`)
//! emits the expected events in order. Expectations match as subsets (the
//! corpus leaves out `ts`, `sql`, and e.g. an enum's charset), and the
//! corpus' `utf8` is MariaDB's `utf8mb3`; the session's server charset is
//! utf8mb3 so that databases created without a charset get it, as in the
//! corpus.

use std::path::PathBuf;
use std::time::Duration;

use crate::common::corpus::{parse_file, quote_bare_keys, Item};
use crate::common::*;
use mysql_async::prelude::Queryable;
use serde_json::Value;

fn corpus_dir() -> PathBuf {
    std::env::var("SLUICE_CONFORMANCE_SERIALIZATION")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("testdata/maxwell/sql/serialization"))
}

/// The corpus spells MariaDB's utf8mb3 as MySQL 5.7 did.
fn normalize(v: &Value) -> Value {
    match v {
        Value::String(s) if s == "utf8" => Value::String("utf8mb3".into()),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        other => other.clone(),
    }
}

/// Every key of `want` is in `got` with a matching value; arrays match
/// element by element.
fn contains(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| g.get(k).is_some_and(|gv| contains(gv, wv))),
        (Value::Array(g), Value::Array(w)) => {
            g.len() == w.len() && g.iter().zip(w).all(|(a, b)| contains(a, b))
        }
        _ => got == want,
    }
}

/// Database names a corpus file creates (dropped before it runs).
fn databases_created(sql: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    let rest = lower.strip_prefix("create database")?;
    let name = rest.trim().trim_start_matches("if not exists").trim();
    let name = name.trim_start_matches('`');
    let end = name.find(['`', ' ', ';']).unwrap_or(name.len());
    Some(name[..end].to_string())
}

#[test]
fn serialization_corpus_produces_maxwells_ddl_events() {
    let _gate = crate::common::module_gate(module_path!());
    let dir = corpus_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 7, "corpus at {}", dir.display());
    let rt = runtime();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.json");
    let child = spawn_sluice(&[
        "--producer=file",
        &format!("--output_file={}", out.display()),
        "--output_ddl",
    ]);
    let marker = format!("serready{}", std::process::id());
    let mut n = 0;
    let streaming = wait_for(Duration::from_secs(30), || {
        n += 1;
        rt.block_on(async {
            let mut c = root_conn().await;
            c.query_drop(format!("CREATE DATABASE IF NOT EXISTS {marker}{n}"))
                .await
                .unwrap();
        });
        std::thread::sleep(Duration::from_millis(300));
        read_lines(&out)
            .iter()
            .any(|l| l["type"] == "database-create")
    });
    assert!(streaming, "sluice did not start streaming");

    let mut expected: Vec<(String, Value)> = Vec::new();
    rt.block_on(async {
        let mut conn = root_conn().await;
        conn.query_drop("SET SESSION character_set_server = utf8mb3")
            .await
            .unwrap();
        for f in &files {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            let items = parse_file(&std::fs::read_to_string(f).unwrap());
            for item in &items {
                if let Item::Sql(sql) = item {
                    if let Some(db) = databases_created(sql) {
                        conn.query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
                            .await
                            .unwrap();
                    }
                }
            }
            for item in items {
                match item {
                    Item::Sql(sql) => conn
                        .query_drop(sql.trim_end_matches(';'))
                        .await
                        .unwrap_or_else(|e| panic!("{name}: {sql}: {e}")),
                    Item::Expect(j) => {
                        let v: Value =
                            serde_json::from_str(&quote_bare_keys(&j)).unwrap_or_else(|e| {
                                panic!("{name}: expectation is not JSON ({e}): {j}")
                            });
                        expected.push((name.clone(), normalize(&v)));
                    }
                }
            }
        }
        conn.query_drop(format!("CREATE DATABASE {marker}done"))
            .await
            .unwrap();
    });
    let done = wait_for(Duration::from_secs(30), || {
        read_lines(&out)
            .iter()
            .any(|l| l["database"] == format!("{marker}done"))
    });
    let o = stop(child);
    assert!(done, "{}", String::from_utf8_lossy(&o.stderr));
    let events: Vec<Value> = read_lines(&out)
        .into_iter()
        .filter(|l| l["type"].as_str().is_some_and(|t| t.contains('-')))
        .collect();
    // In order: each expectation matches an event after the previous match.
    let mut at = 0;
    for (file, want) in &expected {
        match events[at..].iter().position(|e| contains(e, want)) {
            Some(i) => at += i + 1,
            None => panic!(
                "{file}: no event matches (in order)\n  want {want}\n  events after the previous match:\n{}",
                events[at..].iter().map(|e| format!("    {e}")).collect::<Vec<_>>().join("\n")
            ),
        }
    }
    assert!(expected.len() >= 15, "only {} expectations", expected.len());
    for e in &events {
        assert!(
            e["ts"].as_u64().is_some_and(|t| t > 1_000_000_000_000),
            "ts in ms: {e}"
        );
        assert!(e["sql"].is_string(), "{e}");
    }
    rt.block_on(async {
        let mut conn = root_conn().await;
        let all: Vec<String> = conn
            .query(format!("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{marker}%' OR SCHEMA_NAME LIKE 'ser%'"))
            .await
            .unwrap();
        for d in all {
            conn.query_drop(format!("DROP DATABASE `{d}`")).await.unwrap();
        }
    });
}
