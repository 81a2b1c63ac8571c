//! Maxwell's bootstrap conformance files (`testdata/maxwell/sql/json/
//! bootstrap-*`): each file's statements run against the private MariaDB in
//! Maxwell's test setting (database `shard_1` with its `minimal` table, the
//! client_id `maxwell`) while sluice streams; every `->` event of the file
//! must be in sluice's output (Maxwell's harness compares them as a set,
//! after dropping `ts`, `xid`, `xoffset`, `commit`). Beyond Maxwell, each
//! table's `bootstrap-start` must precede its `bootstrap-insert`s, which
//! must precede its `bootstrap-complete`.

use std::path::PathBuf;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use serde_json::Value;

use crate::common::corpus::{parse_file, quote_bare_keys, Item};
use crate::common::*;

/// Files not run, with the reason.
const SKIPPED: &[(&str, &str)] = &[
    (
        "bootstrap-js-filters",
        "needs JavaScript filters (filter.javascript), which sluice does not have",
    ),
    (
        "bootstrap-second-server",
        "run by replica::maxwell_bootstrap_second_server (rows read from a second server)",
    ),
];

fn corpus_dir() -> PathBuf {
    repo_root().join("testdata/maxwell/sql/json")
}

pub fn normalize(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        for k in ["ts", "xid", "xoffset", "commit"] {
            m.remove(k);
        }
    }
    v
}

/// Maxwell's test setting, afresh: `shard_1.minimal` empty, no state of
/// client_id `maxwell` (positions, schema history, bootstrap requests).
async fn reset(conn: &mut mysql_async::Conn) -> Result<(), String> {
    let minimal =
        std::fs::read_to_string(repo_root().join("testdata/maxwell/sql/schema/minimal.sql"))
            .map_err(|e| e.to_string())?;
    for sql in [
        "DROP DATABASE IF EXISTS shard_1".to_string(),
        "CREATE DATABASE shard_1".into(),
        format!(
            "CREATE TABLE shard_1.{}",
            minimal.trim().trim_start_matches("CREATE TABLE ")
        ),
        "DROP DATABASE IF EXISTS test".into(),
        "CREATE DATABASE test".into(),
        "CREATE DATABASE IF NOT EXISTS maxwell".into(),
    ] {
        conn.query_drop(&sql)
            .await
            .map_err(|e| format!("{sql}: {e}"))?;
    }
    // The tables may not exist before the first sluice ran.
    for sql in [
        "DELETE FROM maxwell.positions WHERE client_id = 'maxwell'",
        "DELETE FROM maxwell.schema_history WHERE client_id = 'maxwell'",
        "TRUNCATE maxwell.bootstrap",
        "DELETE FROM maxwell.bootstrap_progress WHERE client_id = 'maxwell'",
        // Another client's progress of a request with the id the next
        // request gets (ids repeat after the TRUNCATE), under a higher
        // epoch: stale, and no reason to refuse ours (epochs are per
        // client_id).
        "REPLACE INTO maxwell.bootstrap_progress (id, client_id, epoch, state) VALUES (1, 'another-client', 7, 'running')",
    ] {
        let _ = conn.query_drop(sql).await;
    }
    conn.query_drop("USE shard_1")
        .await
        .map_err(|e| e.to_string())
}

/// Extra options a file needs (`bootstrap-whitelist` runs with Maxwell's
/// filter when sluice has the option).
fn extra_args(name: &str, help: &str) -> Vec<String> {
    match name {
        "bootstrap-whitelist" if help.contains("--filter ") => {
            vec!["--filter=exclude: *.*, include: shard_1.*".into()]
        }
        _ => Vec::new(),
    }
}

/// Each table's bootstrap-start before its inserts, before its complete.
pub fn in_bootstrap_order(lines: &[Value]) -> Result<(), String> {
    let mut phase: std::collections::HashMap<String, u8> = Default::default();
    for l in lines {
        let kind = l["type"].as_str().unwrap_or("");
        let table = format!("{}.{}", l["database"], l["table"]);
        let at = phase.entry(table.clone()).or_insert(0);
        let ok = match kind {
            "bootstrap-start" => {
                let ok = *at == 0 || *at == 2;
                *at = 1;
                ok
            }
            "bootstrap-insert" => *at == 1,
            "bootstrap-complete" => {
                let ok = *at == 1;
                *at = 2;
                ok
            }
            _ => true,
        };
        if !ok {
            return Err(format!("{kind} of {table} out of order: {l}"));
        }
    }
    Ok(())
}

fn run_file(name: &str, text: &str, help: &str) -> Result<usize, String> {
    let items = parse_file(text);
    let expected: Vec<Value> = items
        .iter()
        .filter_map(|i| match i {
            Item::Expect(j) => Some(j),
            _ => None,
        })
        .map(|j| {
            serde_json::from_str(&quote_bare_keys(j))
                .map(normalize)
                .map_err(|e| format!("cannot parse expectation {j}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let rt = runtime();
    let mut conn = rt.block_on(root_conn());
    rt.block_on(reset(&mut conn))?;
    let start = rt.block_on(master_position(&mut conn));
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = dir.path().join("out.json");
    let http = free_port();
    let mut args = vec![
        "--client_id=maxwell".to_string(),
        format!("--init_position={start}"),
        "--producer=file".into(),
        format!("--output_file={}", out.display()),
        format!("--http_port={http}"),
    ];
    args.extend(extra_args(name, help));
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = spawn_sluice(&arg_refs);
    // The leader creates the bootstrap table before it streams.
    let leading = wait_for(Duration::from_secs(30), || {
        http_get(http, "/leader").is_some_and(|(c, _)| c == 200)
    });
    let mut failure = (!leading).then(|| "sluice did not lead within 30 s".to_string());
    if failure.is_none() {
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
    }
    let missing = |lines: &[Value]| -> Option<Value> {
        let got: Vec<Value> = lines.iter().cloned().map(normalize).collect();
        expected.iter().find(|e| !got.contains(e)).cloned()
    };
    if failure.is_none() {
        wait_for(Duration::from_secs(30), || {
            let lines = read_lines(&out);
            missing(&lines).is_none()
                && lines
                    .iter()
                    .filter(|l| l["type"] == "bootstrap-start")
                    .count()
                    <= lines
                        .iter()
                        .filter(|l| l["type"] == "bootstrap-complete")
                        .count()
        });
    }
    let output = stop(child);
    if let Some(f) = failure {
        return Err(f);
    }
    let lines = read_lines(&out);
    let report = |what: String| {
        format!(
            "{what}\nsluice wrote:\n{}\nstderr:\n{}",
            lines
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    if let Some(m) = missing(&lines) {
        return Err(report(format!("event not found: {m}")));
    }
    in_bootstrap_order(&lines).map_err(report)?;
    let starts = lines
        .iter()
        .filter(|l| l["type"] == "bootstrap-start")
        .count();
    let completes = lines
        .iter()
        .filter(|l| l["type"] == "bootstrap-complete")
        .count();
    if starts == 0 || starts != completes {
        return Err(report(format!(
            "{starts} bootstrap-start, {completes} bootstrap-complete"
        )));
    }
    Ok(expected.len())
}

#[test]
fn maxwell_bootstrap_corpus() {
    let _gate = crate::common::module_gate(module_path!());
    let dir = corpus_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("bootstrap-"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        11,
        "Maxwell's eleven bootstrap files: {files:?}"
    );
    let help = String::from_utf8_lossy(
        &std::process::Command::new(sluice_bin())
            .arg("--help")
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    let mut failures = Vec::new();
    let mut ran = 0;
    for f in &files {
        if let Some((_, why)) = SKIPPED.iter().find(|(n, _)| n == f) {
            eprintln!("skip {f}: {why}");
            continue;
        }
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        match run_file(f, &text, &help) {
            Ok(n) => {
                eprintln!("ok   {f}: {n} events");
                ran += 1;
            }
            Err(e) => failures.push(format!("{f}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} bootstrap file(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert_eq!(ran, files.len() - SKIPPED.len());
}

#[test]
fn out_of_order_bootstrap_events_are_caught() {
    let _gate = crate::common::module_gate(module_path!());
    let l = |t: &str| serde_json::json!({"database": "d", "table": "t", "type": t});
    assert!(in_bootstrap_order(&[
        l("bootstrap-start"),
        l("bootstrap-insert"),
        l("bootstrap-complete")
    ])
    .is_ok());
    assert!(in_bootstrap_order(&[l("bootstrap-insert")]).is_err());
    assert!(in_bootstrap_order(&[
        l("bootstrap-start"),
        l("bootstrap-complete"),
        l("bootstrap-insert")
    ])
    .is_err());
}
