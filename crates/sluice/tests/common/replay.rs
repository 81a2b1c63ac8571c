//! The replay check: a random workload of inserts, updates (some changing
//! the primary key) and deletes in transactions over two tables; sluice's
//! output, applied in order to an empty copy keyed by primary key, must
//! equal the source tables.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use serde_json::{json, Value};

use super::root_conn_at;

pub type Copy = BTreeMap<String, BTreeMap<i64, Value>>;

/// (Re)creates `db` with tables `a (id, v)` and `b (id, s)`.
pub async fn create_tables(c: &mut mysql_async::Conn, db: &str) {
    for sql in [
        format!("DROP DATABASE IF EXISTS {db}"),
        format!("CREATE DATABASE {db}"),
        format!("CREATE TABLE {db}.a (id BIGINT PRIMARY KEY, v INT)"),
        format!("CREATE TABLE {db}.b (id BIGINT PRIMARY KEY, s VARCHAR(40))"),
    ] {
        c.query_drop(sql).await.unwrap();
    }
}

/// `create_tables` plus the marker table `m (n INT)` of `until_marker_seen`.
pub fn create_tables_with_markers(rt: &tokio::runtime::Runtime, db: &str) {
    rt.block_on(async {
        let mut c = super::root_conn().await;
        create_tables(&mut c, db).await;
    });
    super::sql_at(
        rt,
        super::mysql_port(),
        &[format!("CREATE TABLE {db}.m (n INT)")],
    );
}

/// The workload's rows (tables a and b) of what a consumer received,
/// without the marker rows.
pub fn without_markers(rows: Vec<Value>) -> Vec<Value> {
    rows.into_iter().filter(|v| v["table"] != "m").collect()
}

/// The source tables of `db` on the private MariaDB, now.
pub fn source_now(rt: &tokio::runtime::Runtime, db: &str) -> Copy {
    rt.block_on(async {
        let mut c = super::root_conn().await;
        source(&mut c, db).await
    })
}

/// `workload` on the private MariaDB in a thread of its own.
pub struct Background {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Background {
    pub fn start(db: &str) -> Background {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, db) = (stop.clone(), db.to_string());
        let thread = std::thread::spawn(move || workload(super::mysql_port(), &db, 1, 40, s));
        Background { stop, thread }
    }

    /// Stops it; returns how many transactions committed (at least 20,
    /// or the test is too small to mean anything).
    pub fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let txns = self.thread.join().expect("workload thread");
        assert!(txns > 20, "workload too small: {txns}");
        txns
    }
}

/// Applies sluice's output for `db` in order, keyed by primary key `id`.
/// The file is read line by line: a large output is never held whole (the
/// test process stays small, and so does the peak RSS the OS reports for
/// the children it spawns, which start as copies of it).
pub fn apply(out: &Path, db: &str) -> Copy {
    use std::io::BufRead;
    let mut copy = Copy::new();
    if let Ok(f) = std::fs::File::open(out) {
        for line in std::io::BufReader::new(f).lines() {
            let line = line.unwrap();
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("sluice wrote invalid JSON ({e}): {line}"));
            apply_one(&mut copy, &v, db);
        }
    }
    copy.retain(|_, t| !t.is_empty());
    copy
}

/// Applies rows (as a consumer received them, in order) for `db`.
pub fn apply_rows(rows: &[Value], db: &str) -> Copy {
    let mut copy = Copy::new();
    for v in rows {
        apply_one(&mut copy, v, db);
    }
    copy.retain(|_, t| !t.is_empty());
    copy
}

fn apply_one(copy: &mut Copy, v: &Value, db: &str) {
    {
        if v["database"] != db {
            return;
        }
        let kind = v["type"].as_str().unwrap();
        // A snapshot's first and last events carry no row.
        if kind == "bootstrap-start" || kind == "bootstrap-complete" {
            return;
        }
        let t = copy
            .entry(v["table"].as_str().unwrap().to_string())
            .or_default();
        let id = v["data"]["id"].as_i64().unwrap();
        match kind {
            // Snapshot rows are inserts (a row's state where it is emitted).
            "insert" | "bootstrap-insert" => {
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
}

/// The source tables of `db` in the form `apply` produces.
pub async fn source(c: &mut mysql_async::Conn, db: &str) -> Copy {
    let mut copy = Copy::new();
    let a: Vec<(i64, i64)> = c.query(format!("SELECT id, v FROM {db}.a")).await.unwrap();
    for (id, v) in a {
        copy.entry("a".into())
            .or_default()
            .insert(id, json!({"id": id, "v": v}));
    }
    let b: Vec<(i64, String)> = c.query(format!("SELECT id, s FROM {db}.b")).await.unwrap();
    for (id, s) in b {
        copy.entry("b".into())
            .or_default()
            .insert(id, json!({"id": id, "s": s}));
    }
    copy
}

/// Random transactions of 1..=`max_rows` rows on the server at `port`
/// until `stop`, inserting ids from `first_id` on; errors while the server
/// is away are waited out. Returns how many transactions committed.
pub fn workload(port: u16, db: &str, first_id: i64, max_rows: u64, stop: Arc<AtomicBool>) -> u64 {
    let rt = super::runtime();
    rt.block_on(async {
        let mut rng: u64 = 0x2545F4914F6CDD1D ^ u64::from(port);
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut next_id: i64 = first_id;
        let mut committed = 0;
        let mut conn: Option<mysql_async::Conn> = None;
        while !stop.load(Ordering::Relaxed) {
            let Some(c) = conn.as_mut() else {
                conn = root_conn_at(port).await.ok();
                if conn.is_none() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                continue;
            };
            let rows = 1 + next(max_rows) as i64;
            let stmts = match next(4) {
                0 | 1 => {
                    let vals: Vec<String> = (next_id..next_id + rows)
                        .map(|i| format!("({i}, {})", i % 97))
                        .collect();
                    let strs: Vec<String> = (next_id..next_id + rows)
                        .map(|i| format!("({i}, 's{i}')"))
                        .collect();
                    next_id += rows;
                    vec![
                        format!("INSERT INTO {db}.a VALUES {}", vals.join(",")),
                        format!("INSERT INTO {db}.b VALUES {}", strs.join(",")),
                    ]
                }
                2 => {
                    let from = next(next_id as u64) as i64;
                    vec![
                        format!(
                            "UPDATE {db}.a SET v = v + 1 WHERE id BETWEEN {from} AND {}",
                            from + rows
                        ),
                        // Primary-key changes, into a range no insert uses.
                        format!(
                            "UPDATE {db}.b SET id = id + 10000000, s = CONCAT(s, 'm') \
                             WHERE id BETWEEN {from} AND {} AND id < 10000000",
                            from + rows / 4
                        ),
                    ]
                }
                _ => {
                    let from = next(next_id as u64) as i64;
                    vec![
                        format!(
                            "DELETE FROM {db}.a WHERE id BETWEEN {from} AND {}",
                            from + rows / 2
                        ),
                        format!(
                            "DELETE FROM {db}.b WHERE id % 7 = {} AND id BETWEEN {from} AND {}",
                            next(7),
                            from + rows
                        ),
                    ]
                }
            };
            let mut ok = c.query_drop("BEGIN").await.is_ok();
            for s in &stmts {
                ok = ok && c.query_drop(s).await.is_ok();
            }
            ok = ok && c.query_drop("COMMIT").await.is_ok();
            if ok {
                committed += 1;
            } else {
                conn = None; // the server went away; reconnect
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        committed
    })
}

/// Waits up to `timeout` for the replayed output to equal the source; on
/// failure describes the difference.
pub fn converges(out: &Path, db: &str, expected: &Copy, timeout: Duration) -> Result<(), String> {
    if super::wait_for(timeout, || &apply(out, db) == expected) {
        return Ok(());
    }
    Err(difference(&apply(out, db), expected))
}

/// `converges` for rows read back from a broker by `rows`.
pub fn converges_with(
    mut rows: impl FnMut() -> Vec<Value>,
    db: &str,
    expected: &Copy,
    timeout: Duration,
) -> Result<(), String> {
    if super::wait_for(timeout, || &apply_rows(&rows(), db) == expected) {
        return Ok(());
    }
    Err(difference(&apply_rows(&rows(), db), expected))
}

/// What differs between a replayed copy and the source, table by table.
fn difference(got: &Copy, expected: &Copy) -> String {
    let mut report = String::new();
    for t in ["a", "b"] {
        let (g, e) = (
            got.get(t).cloned().unwrap_or_default(),
            expected.get(t).cloned().unwrap_or_default(),
        );
        let missing: Vec<_> = e.keys().filter(|k| !g.contains_key(k)).take(10).collect();
        let extra: Vec<_> = g.keys().filter(|k| !e.contains_key(k)).take(10).collect();
        let differ: Vec<_> = e
            .iter()
            .filter(|(k, v)| g.get(*k).is_some_and(|gv| gv != *v))
            .map(|(k, _)| k)
            .take(10)
            .collect();
        report.push_str(&format!(
            "table {t}: {} expected, {} replayed, missing {missing:?}, extra {extra:?}, differing {differ:?}\n",
            e.len(),
            g.len()
        ));
    }
    report
}
