//! Maxwell's own test corpus (`testdata/maxwell/sql/json`): every
//! file's statements run against the private MariaDB while sluice streams, and
//! every `->` event of the file must appear, in order, in sluice's output
//! (ignoring `ts`, `xid`, `xoffset`, `commit`).

use crate::common::corpus::{parse_file, quote_bare_keys, Item};

use std::path::PathBuf;
use std::time::Duration;

use crate::common::*;
use mysql_async::prelude::Queryable;
use serde_json::Value;

/// Files not run here, with the reason.
const SKIPPED: &[(&str, &str)] = &[
    (
        "test_javascript_filters",
        "needs JavaScript filters, a later feature",
    ),
    (
        "test_javascript_filters_rich_values",
        "needs JavaScript filters, a later feature",
    ),
    // bootstrap-* files (not test_*) need bootstrapping, a later feature.
];

fn corpus_dir() -> PathBuf {
    let d = std::env::var("SLUICE_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("testdata/maxwell/sql/json"));
    assert!(
        d.is_dir(),
        "conformance corpus not found at {} (set SLUICE_CONFORMANCE_DIR)",
        d.display()
    );
    d
}

fn normalize(mut v: Value, lowercase_keys: bool) -> Value {
    if let Value::Object(m) = &mut v {
        for k in ["ts", "xid", "xoffset", "commit"] {
            m.remove(k);
        }
        if lowercase_keys {
            for part in ["data", "old"] {
                if let Some(Value::Object(inner)) = m.get_mut(part) {
                    let lowered = inner
                        .iter()
                        .map(|(k, v)| (k.to_lowercase(), v.clone()))
                        .collect();
                    *inner = lowered;
                }
            }
        }
    }
    v
}

fn created_databases(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Sql(s) => {
                let lower = s.to_lowercase();
                let rest = lower.strip_prefix("create database ")?;
                let rest = rest.strip_prefix("if not exists ").unwrap_or(rest);
                let name: String = rest
                    .trim()
                    .trim_end_matches(';')
                    .trim_matches('`')
                    .to_string();
                Some(
                    name.split_whitespace()
                        .next()?
                        .trim_matches('`')
                        .to_string(),
                )
            }
            _ => None,
        })
        .collect()
}

/// Runs one corpus file; `Err` describes what went wrong.
fn run_file(name: &str, text: &str) -> Result<usize, String> {
    let items = parse_file(text);
    let expected: Vec<Value> = items
        .iter()
        .filter_map(|i| match i {
            Item::Expect(j) => Some(j),
            _ => None,
        })
        .map(|j| {
            serde_json::from_str(&quote_bare_keys(j))
                .map_err(|e| format!("cannot parse expectation {j}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let lowercase = name == "test_case_insensitive";
    let expected: Vec<Value> = expected
        .into_iter()
        .map(|v| normalize(v, lowercase))
        .collect();
    let rt = runtime();
    let mut conn = rt.block_on(root_conn());
    rt.block_on(async {
        // Files that use the shared `test` database get a fresh one.
        conn.query_drop("DROP DATABASE IF EXISTS test")
            .await
            .map_err(|e| e.to_string())?;
        conn.query_drop("CREATE DATABASE test")
            .await
            .map_err(|e| e.to_string())?;
        for db in created_databases(&items) {
            conn.query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
                .await
                .map_err(|e| e.to_string())?;
        }
        // Maxwell's expectations come from MySQL 5.7's non-strict
        // NO_ZERO_IN_DATE, which stores '0003-00-00' as a zero date (with a
        // warning); MariaDB's default would store it as given.
        conn.query_drop("SET SESSION sql_mode = 'NO_ZERO_IN_DATE,NO_ENGINE_SUBSTITUTION'")
            .await
            .map_err(|e| e.to_string())?;
        if name == "test_minimal" {
            conn.query_drop("SET SESSION binlog_row_image = 'MINIMAL'")
                .await
                .map_err(|e| e.to_string())?;
        }
        if name == "test_row_query_log_is_on" {
            conn.query_drop("SET SESSION binlog_annotate_row_events = ON")
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(())
    })?;
    let start = rt.block_on(master_position(&mut conn));
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = dir.path().join("out.json");
    let mut args = vec![
        format!("--init_position={start}"),
        "--producer=file".to_string(),
        format!("--output_file={}", out.display()),
    ];
    if name == "test_row_query_log_is_on" {
        args.push("--output_row_query=true".into());
    }
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = spawn_sluice(&arg_refs);
    let mut failure = None;
    rt.block_on(async {
        for item in &items {
            if let Item::Sql(sql) = item {
                if let Err(e) = conn.query_drop(sql.trim_end_matches(';')).await {
                    failure = Some(format!("statement failed: {sql}: {e}"));
                    break;
                }
            }
        }
    });
    // Give sluice until every expected event has arrived (or time is up).
    let matched = |lines: &[Value]| -> usize {
        let mut k = 0;
        for l in lines {
            if k < expected.len() && normalize(l.clone(), lowercase) == expected[k] {
                k += 1;
            }
        }
        k
    };
    if failure.is_none() {
        wait_for(Duration::from_secs(20), || {
            matched(&read_lines(&out)) == expected.len()
        });
    }
    let output = stop(child);
    if let Some(f) = failure {
        return Err(f);
    }
    let lines = read_lines(&out);
    let k = matched(&lines);
    if k != expected.len() {
        return Err(format!(
            "event #{k} not found in order: {}\nsluice wrote:\n{}\nstderr:\n{}",
            expected[k],
            lines
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(expected.len())
}

#[test]
fn maxwell_json_corpus() {
    let _gate = crate::common::module_gate(module_path!());
    let dir = corpus_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("test_"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "expected the whole corpus, found {files:?}"
    );
    let mut failures = Vec::new();
    let mut events = 0;
    for f in &files {
        if let Some((_, why)) = SKIPPED.iter().find(|(n, _)| n == f) {
            eprintln!("skip {f}: {why}");
            continue;
        }
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        match run_file(f, &text) {
            Ok(n) => {
                eprintln!("ok   {f}: {n} events");
                events += n;
            }
            Err(e) => failures.push(format!("{f}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} conformance file(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(events > 50, "only {events} events checked");
}

#[test]
fn bare_keys_are_quoted() {
    let _gate = crate::common::module_gate(module_path!());
    let v: Value = serde_json::from_str(&quote_bare_keys(
        r#"{database:"d", data: {"id": 1, x_y: "a:b, c: d"}}"#,
    ))
    .unwrap();
    assert_eq!(v["data"]["x_y"], "a:b, c: d");
}
