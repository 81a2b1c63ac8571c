//! MySQL restarted twice mid-stream (once down for 30 s) and frozen past the
//! read deadline once: sluice keeps running, recovers by itself, and the
//! replay check holds: its output, applied in order to an empty copy keyed
//! by primary key, equals the source tables.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use mysql_async::prelude::Queryable;
use serde_json::{json, Value};

const PORT: u16 = 23310;
const DB: &str = "replay";

type Copy = BTreeMap<String, BTreeMap<i64, Value>>;

/// Applies sluice's output in order, keyed by primary key `id`.
fn apply(out: &Path) -> Copy {
    let mut copy = Copy::new();
    for v in read_lines(out) {
        if v["database"] != DB {
            continue;
        }
        let t = copy
            .entry(v["table"].as_str().unwrap().to_string())
            .or_default();
        let id = v["data"]["id"].as_i64().unwrap();
        match v["type"].as_str().unwrap() {
            "insert" => {
                t.insert(id, v["data"].clone());
            }
            "update" => {
                if let Some(old_id) = v["old"]["id"].as_i64() {
                    t.remove(&old_id);
                }
                t.insert(id, v["data"].clone());
            }
            "delete" => {
                t.remove(&id);
            }
            other => panic!("unexpected type {other}"),
        }
    }
    copy.retain(|_, t| !t.is_empty());
    copy
}

async fn source(c: &mut mysql_async::Conn) -> Copy {
    let mut copy = Copy::new();
    let a: Vec<(i64, i64)> = c.query(format!("SELECT id, v FROM {DB}.a")).await.unwrap();
    for (id, v) in a {
        copy.entry("a".into())
            .or_default()
            .insert(id, json!({"id": id, "v": v}));
    }
    let b: Vec<(i64, String)> = c.query(format!("SELECT id, s FROM {DB}.b")).await.unwrap();
    for (id, s) in b {
        copy.entry("b".into())
            .or_default()
            .insert(id, json!({"id": id, "s": s}));
    }
    copy
}

/// Random transactions of 1..=200 rows: inserts, updates (some changing the
/// primary key) and deletes over two tables, until `stop`; errors while the
/// server is away are waited out.
fn workload(stop: Arc<AtomicBool>) {
    let rt = runtime();
    rt.block_on(async {
        let mut rng: u64 = 0x2545F4914F6CDD1D;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut next_id: i64 = 1;
        let mut conn: Option<mysql_async::Conn> = None;
        while !stop.load(Ordering::Relaxed) {
            let Some(c) = conn.as_mut() else {
                conn = root_conn_at(PORT).await.ok();
                if conn.is_none() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                continue;
            };
            let rows = 1 + next(200) as i64;
            let stmts = match next(4) {
                0 | 1 => {
                    let vals: Vec<String> = (next_id..next_id + rows).map(|i| format!("({i}, {})", i % 97)).collect();
                    let strs: Vec<String> = (next_id..next_id + rows).map(|i| format!("({i}, 's{i}')")).collect();
                    next_id += rows;
                    vec![
                        format!("INSERT INTO {DB}.a VALUES {}", vals.join(",")),
                        format!("INSERT INTO {DB}.b VALUES {}", strs.join(",")),
                    ]
                }
                2 => {
                    let from = next(next_id as u64) as i64;
                    vec![
                        format!("UPDATE {DB}.a SET v = v + 1 WHERE id BETWEEN {from} AND {}", from + rows),
                        // Primary-key changes, into a range no insert uses.
                        format!(
                            "UPDATE {DB}.b SET id = id + 10000000, s = CONCAT(s, 'm') WHERE id BETWEEN {from} AND {} AND id < 10000000",
                            from + rows / 4
                        ),
                    ]
                }
                _ => {
                    let from = next(next_id as u64) as i64;
                    vec![
                        format!("DELETE FROM {DB}.a WHERE id BETWEEN {from} AND {}", from + rows / 2),
                        format!("DELETE FROM {DB}.b WHERE id % 7 = {} AND id BETWEEN {from} AND {}", next(7), from + rows),
                    ]
                }
            };
            let mut ok = c.query_drop("BEGIN").await.is_ok();
            for s in &stmts {
                ok = ok && c.query_drop(s).await.is_ok();
            }
            ok = ok && c.query_drop("COMMIT").await.is_ok();
            if !ok {
                conn = None; // the server went away; reconnect
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

#[test]
fn survives_restarts_and_a_freeze_without_losing_a_row() {
    ensure_extra_mariadb(PORT, "row");
    let rt = runtime();
    let start = rt.block_on(async {
        let mut c = root_conn_at(PORT).await.unwrap();
        c.query_drop(format!("DROP DATABASE IF EXISTS {DB}"))
            .await
            .unwrap();
        c.query_drop(format!("CREATE DATABASE {DB}")).await.unwrap();
        c.query_drop(format!(
            "CREATE TABLE {DB}.a (id BIGINT PRIMARY KEY, v INT)"
        ))
        .await
        .unwrap();
        c.query_drop(format!(
            "CREATE TABLE {DB}.b (id BIGINT PRIMARY KEY, s VARCHAR(40))"
        ))
        .await
        .unwrap();
        master_position(&mut c).await
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let child = std::process::Command::new(sluice_bin())
        .args([
            "--host=127.0.0.1",
            &format!("--port={PORT}"),
            "--user=root",
            "--binlog_heartbeat_period_ms=500",
            "--mysql_connect_timeout_ms=1000",
            "--replication_reconnect_max_backoff_ms=2000",
            "--log_level=warn",
            "--producer=file",
            &format!("--output_file={}", out.display()),
            &format!("--init_position={start}"),
            &unique_client_id(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let halt = Arc::new(AtomicBool::new(false));
    let writer = {
        let halt = halt.clone();
        std::thread::spawn(move || workload(halt))
    };
    let alive = |child: &mut std::process::Child| -> bool {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            eprintln!("sluice exited ({status}):\n{err}");
            return false;
        }
        true
    };
    let mut child = child;

    std::thread::sleep(Duration::from_secs(2));
    // 1. A quick restart.
    stop_extra_mariadb(PORT);
    ensure_extra_mariadb(PORT, "row");
    std::thread::sleep(Duration::from_secs(3));
    assert!(alive(&mut child), "sluice exited after a server restart");
    // 2. Down for 30 s.
    stop_extra_mariadb(PORT);
    std::thread::sleep(Duration::from_secs(30));
    assert!(alive(&mut child), "sluice exited while the server was down");
    ensure_extra_mariadb(PORT, "row");
    std::thread::sleep(Duration::from_secs(3));
    // 3. Frozen past the read deadline (3 x 500 ms, at least 2.5 s).
    let server = server_pid(PORT);
    unsafe_kill(server, 19);
    {
        let _thaw = Thaw(server);
        std::thread::sleep(Duration::from_secs(5));
    }
    std::thread::sleep(Duration::from_secs(3));
    halt.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(alive(&mut child), "sluice exited after the freeze");

    let expected = rt.block_on(async { source(&mut root_conn_at(PORT).await.unwrap()).await });
    assert!(
        expected.values().map(|t| t.len()).sum::<usize>() > 100,
        "the workload wrote too little"
    );
    let converged = wait_for(Duration::from_secs(60), || apply(&out) == expected);
    let output = stop(child);
    let err = String::from_utf8_lossy(&output.stderr);
    if !converged {
        let got = apply(&out);
        for t in ["a", "b"] {
            let (g, e) = (
                got.get(t).cloned().unwrap_or_default(),
                expected.get(t).cloned().unwrap_or_default(),
            );
            let missing: Vec<_> = e.keys().filter(|k| !g.contains_key(k)).take(10).collect();
            let extra: Vec<_> = g.keys().filter(|k| !e.contains_key(k)).take(10).collect();
            eprintln!(
                "table {t}: {} expected, {} replayed, missing {missing:?}, extra {extra:?}",
                e.len(),
                g.len()
            );
        }
        panic!("the replayed copy differs from the source\n{err}");
    }
    assert!(output.status.success(), "{err}");
    assert!(
        err.matches("reconnected").count() >= 3,
        "expected three recoveries:\n{err}"
    );
}

#[test]
fn a_different_server_behind_the_address_stops_sluice() {
    const P: u16 = 23311;
    ensure_extra_mariadb(P, "row");
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(sluice_bin())
        .args([
            "--host=127.0.0.1",
            &format!("--port={P}"),
            "--user=root",
            "--mysql_connect_timeout_ms=1000",
            "--replication_reconnect_max_backoff_ms=1000",
            "--log_level=warn",
            "--producer=file",
            &format!("--output_file={}", dir.path().join("o.json").display()),
            &unique_client_id(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(child.try_wait().unwrap().is_none());
    // The same address, another server (server_id 2).
    stop_extra_mariadb(P);
    let st = std::process::Command::new(repo_root().join("scripts/mariadb.sh"))
        .arg("start")
        .env("SLUICE_MYSQL_PORT", P.to_string())
        .env("SLUICE_MYSQL_SERVER_ID", "2")
        .env("SLUICE_MYSQL_BUFFER_POOL", "32M")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let exited = wait_for(Duration::from_secs(30), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !exited {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    stop_extra_mariadb(P); // the next run starts it with server_id 1 again
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        exited,
        "sluice kept going against a different server:\n{err}"
    );
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("server_id 2")
            && err.contains("server_id 1")
            && err.contains("--init_position"),
        "{err}"
    );
}
