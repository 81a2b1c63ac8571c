//! Bootstrapping (snapshots of existing rows) against the private MariaDB:
//! consistency under writes and SIGKILLs without starting over, a where
//! clause the server refuses, tables without a primary key, other tables
//! flowing during a snapshot, values rendered as the binlog renders them,
//! the `sluice bootstrap` subcommand, /status and /metrics.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use serde_json::Value;

use crate::common::replay;
use crate::common::*;

struct Daemon {
    child: Child,
    http: u16,
}

/// A sluice with its own client_id streaming from `start` into `out`,
/// once it leads (the bootstrap tables exist from then on).
fn daemon(client: &str, out: &Path, start: &str, extra: &[&str]) -> Daemon {
    let http = free_port();
    let mut args = vec![
        format!("--client_id={client}"),
        format!("--init_position={start}"),
        "--producer=file".into(),
        format!("--output_file={}", out.display()),
        format!("--http_port={http}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = spawn_sluice(&refs);
    let leading = wait_for(Duration::from_secs(30), || {
        http_get(http, "/leader").is_some_and(|(c, _)| c == 200)
    });
    if !leading {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "sluice did not lead: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Daemon { child, http }
}

fn client_id(test: &str) -> String {
    format!("{test}-{}", std::process::id())
}

fn sql(rt: &tokio::runtime::Runtime, stmts: &[String]) {
    sql_at(rt, mysql_port(), stmts)
}

fn position(rt: &tokio::runtime::Runtime) -> String {
    rt.block_on(async { master_position(&mut root_conn().await).await })
}

/// Inserts a request as Maxwell's tooling (or a user) does; its id.
fn request(
    rt: &tokio::runtime::Runtime,
    client: &str,
    db: &str,
    table: &str,
    where_clause: Option<&str>,
) -> u64 {
    rt.block_on(async {
        let mut c = root_conn().await;
        c.exec_drop(
            "INSERT INTO maxwell.bootstrap (database_name, table_name, where_clause, client_id) VALUES (?, ?, ?, ?)",
            (db, table, where_clause, client),
        )
        .await
        .unwrap();
        c.last_insert_id().unwrap()
    })
}

#[derive(Debug)]
struct Progress {
    state: String,
    rows_read: u64,
    rows_emitted: u64,
    rows_superseded: u64,
    chunks: u64,
    failures: u64,
    error: Option<String>,
}

fn progress(rt: &tokio::runtime::Runtime, id: u64) -> Option<Progress> {
    rt.block_on(async {
        let mut c = root_conn().await;
        type Row = (String, u64, u64, u64, u64, u64, Option<String>);
        let row: Option<Row> = c
            .exec_first(
                // Progress rows of an earlier request with this id (the
                // table was truncated) belong to another client_id.
                "SELECT p.state, p.rows_read, p.rows_emitted, p.rows_superseded, p.chunks, p.failures, p.error \
                 FROM maxwell.bootstrap_progress p LEFT JOIN maxwell.bootstrap b ON b.id = p.id \
                 WHERE p.id = ? AND (b.id IS NULL OR b.client_id = p.client_id)",
                (id,),
            )
            .await
            .ok()
            .flatten();
        row.map(|(state, rows_read, rows_emitted, rows_superseded, chunks, failures, error)| Progress {
            state,
            rows_read,
            rows_emitted,
            rows_superseded,
            chunks,
            failures,
            error,
        })
    })
}

/// `is_complete` of request `id` (None: no such row).
fn is_complete(rt: &tokio::runtime::Runtime, id: u64) -> Option<bool> {
    rt.block_on(async {
        let mut c = root_conn().await;
        let v: Option<u8> = c
            .exec_first(
                "SELECT is_complete FROM maxwell.bootstrap WHERE id = ?",
                (id,),
            )
            .await
            .unwrap();
        v.map(|v| v != 0)
    })
}

/// Calls `f` with each line of `out`, parsed one at a time: a large output
/// is never held whole (the test process stays small, and so does the peak
/// RSS the OS reports for the children it spawns, which start as copies of
/// it).
fn each_line(out: &Path, mut f: impl FnMut(Value)) {
    use std::io::BufRead;
    let Ok(file) = std::fs::File::open(out) else {
        return;
    };
    for line in std::io::BufReader::new(file).lines() {
        let line = line.unwrap();
        if !line.trim().is_empty() {
            f(serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("sluice wrote invalid JSON ({e}): {line}")));
        }
    }
}

/// The lines of `out` of type `kind` on `table`.
fn lines_of(out: &Path, kind: &str, table: &str) -> Vec<Value> {
    let mut found = Vec::new();
    each_line(out, |l| {
        if l["type"] == kind && l["table"] == table {
            found.push(l);
        }
    });
    found
}

fn count_of(out: &Path, kind: &str, table: &str) -> usize {
    let mut n = 0;
    each_line(out, |l| {
        n += usize::from(l["type"] == kind && l["table"] == table)
    });
    n
}

fn of_type<'a>(lines: &'a [Value], kind: &str, table: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["type"] == kind && l["table"] == table)
        .collect()
}

/// Runs `sluice bootstrap ARGS` against the private MariaDB: (exit code,
/// stdout, stderr).
fn cli(args: &[String], timeout: Duration) -> (Option<i32>, String, String) {
    let mut child = cli_child(args);
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn cli_child(args: &[String]) -> Child {
    Command::new(sluice_bin())
        .arg("bootstrap")
        .args([
            "--host=127.0.0.1".to_string(),
            format!("--port={}", ensure_mariadb()),
            "--user=sluice".into(),
            "--password=sluice".into(),
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Acceptance: a 100,000-row table snapshot while a random workload inserts
/// into it, updates it, moves primary keys and deletes, with sluice
/// SIGKILLed three times mid-snapshot. Everything sluice wrote, replayed in
/// order onto an empty copy, equals the source; the snapshot queries read
/// less than 1.2 times the table (each restart continued after its last
/// delivered chunk instead of starting over).
#[test]
fn a_snapshot_under_writes_survives_three_sigkills_without_starting_over() {
    let _gate = crate::common::module_gate(module_path!());
    const DB: &str = "bootkill";
    const ROWS: u64 = 100_000;
    let rt = runtime();
    rt.block_on(async {
        let mut c = root_conn().await;
        replay::create_tables(&mut c, DB).await;
        // `b` is the workload's table with primary-key changes.
        c.query_drop(format!(
            "INSERT INTO {DB}.b SELECT seq, CONCAT('s', seq) FROM {DB}.seq_1_to_{ROWS}"
        ))
        .await
        .unwrap();
    });
    let start = position(&rt);
    let client = client_id("bootkill");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let opts = [
        "--bootstrap_chunk_size=1000",
        "--bootstrap_max_rows_per_second=10000",
    ];
    let mut d = daemon(&client, &out, &start, &opts);
    let halt = Arc::new(AtomicBool::new(false));
    let writer = {
        let halt = halt.clone();
        std::thread::spawn(move || replay::workload(mysql_port(), DB, ROWS as i64 + 1, 10, halt))
    };
    let id = request(&rt, &client, DB, "b", None);
    let mut killed_at = Vec::new();
    for k in 1..=3u64 {
        let target = k * ROWS / 4;
        assert!(
            wait_for(Duration::from_secs(60), || progress(&rt, id)
                .is_some_and(|p| p.rows_emitted >= target)),
            "the snapshot did not reach {target} rows: {:?}",
            progress(&rt, id)
        );
        let p = progress(&rt, id).unwrap();
        assert!(
            p.state == "running" && p.rows_emitted < ROWS,
            "not mid-snapshot: {p:?}"
        );
        killed_at.push(p.rows_emitted);
        unsafe_kill(d.child.id(), 9);
        let _ = d.child.wait();
        d = daemon(&client, &out, &start, &opts);
    }
    assert!(
        wait_for(Duration::from_secs(120), || is_complete(&rt, id)
            == Some(true)),
        "the snapshot did not complete: {:?}",
        progress(&rt, id)
    );
    let (_, metrics) = http_get(d.http, "/metrics").unwrap();
    halt.store(true, Ordering::Relaxed);
    let txns = writer.join().unwrap();
    assert!(txns > 20, "workload too small: {txns}");
    let expected = replay::source_now(&rt, DB);
    let converged = replay::converges(&out, DB, &expected, Duration::from_secs(60));
    let last = stop(d.child);
    if let Err(diff) = converged {
        panic!(
            "the replayed copy differs:\n{diff}\n{}",
            String::from_utf8_lossy(&last.stderr)
        );
    }
    let p = progress(&rt, id).unwrap();
    let inserts = count_of(&out, "bootstrap-insert", "b") as u64;
    let size = expected.get("b").map_or(0, |t| t.len() as u64).max(ROWS);
    eprintln!(
        "killed at {killed_at:?} rows; read {} rows for a table of {size} (emitted {inserts}, \
         stored {}, {} chunks); {txns} workload transactions",
        p.rows_read, p.rows_emitted, p.chunks
    );
    assert_eq!(p.state, "complete");
    assert!(
        p.rows_read * 10 < size * 12,
        "read {} rows for {size}",
        p.rows_read
    );
    assert!(
        inserts * 10 < size * 12,
        "emitted {inserts} snapshot rows for {size}"
    );
    assert_eq!(count_of(&out, "bootstrap-complete", "b"), 1);
    // The metric counts the reads of every run (it starts from the stored count).
    let metric = format!(
        "sluice_bootstrap_task_rows_read{{id=\"{id}\",table=\"{DB}.b\",state=\"complete\"}} {}\n",
        p.rows_read
    );
    assert!(metrics.contains(&metric), "{metric} not in\n{metrics}");
}

/// A where clause the server refuses fails the task at once, with the
/// server's message, before anything is emitted; the controller moves on
/// (Maxwell loops on it, emitting bootstrap-start every time).
#[test]
fn a_where_clause_the_server_refuses_fails_the_task_once() {
    let _gate = crate::common::module_gate(module_path!());
    let rt = runtime();
    fresh_database(&rt, "bootwhere", &["t (id INT PRIMARY KEY, v INT)"]);
    sql(
        &rt,
        &["INSERT INTO bootwhere.t SELECT seq, seq FROM bootwhere.seq_1_to_10".into()],
    );
    let start = position(&rt);
    let client = client_id("bootwhere");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let d = daemon(&client, &out, &start, &[]);
    let bad = request(&rt, &client, "bootwhere", "t", Some("no_such_column > 1"));
    let good = request(&rt, &client, "bootwhere", "t", Some("id > 5"));
    // Requests run in order: the second completing shows the first was
    // not retried in a loop.
    assert!(wait_for(Duration::from_secs(30), || is_complete(&rt, good)
        == Some(true)));
    assert_eq!(is_complete(&rt, bad), Some(true));
    let p = progress(&rt, bad).unwrap();
    assert_eq!(p.state, "failed");
    assert_eq!(p.failures, 1);
    let error = p.error.unwrap_or_default();
    assert!(error.contains("Unknown column 'no_such_column'"), "{error}");
    let (_, metrics) = http_get(d.http, "/metrics").unwrap();
    assert!(
        metrics.contains(&format!(
            "sluice_bootstrap_task_failures{{id=\"{bad}\",table=\"bootwhere.t\",state=\"failed\"}} 1\n"
        )),
        "{metrics}"
    );
    let (_, status) = http_get(d.http, "/status").unwrap();
    let status: Value = serde_json::from_str(&status).unwrap();
    let task = status["bootstrap"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == bad)
        .cloned()
        .unwrap();
    assert!(
        task["error"].as_str().unwrap().contains("Unknown column"),
        "{task}"
    );
    // Following the failed request says why and exits 1.
    let (code, _, stderr) = cli(
        &[format!("--client_id={client}"), format!("--monitor={bad}")],
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("Unknown column 'no_such_column'"),
        "{stderr}"
    );
    // The subcommand refuses a bad clause before queuing anything.
    let (code, stdout, stderr) = cli(
        &[
            format!("--client_id={client}"),
            "--database=bootwhere".into(),
            "--table=t".into(),
            "--where=nope((".into(),
        ],
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("cannot count the rows of bootwhere.t") && stderr.contains("SQL syntax"),
        "{stderr}"
    );
    let lines = read_lines(&out);
    let log = stop(d.child);
    let log = String::from_utf8_lossy(&log.stderr);
    assert_eq!(log.matches("bootstrap failed").count(), 1, "{log}");
    assert_eq!(
        of_type(&lines, "bootstrap-start", "t").len(),
        1,
        "only the good request starts"
    );
    let rows: Vec<i64> = of_type(&lines, "bootstrap-insert", "t")
        .iter()
        .map(|l| l["data"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(rows, vec![6, 7, 8, 9, 10]);
}

/// A table without a primary key is chunked by its unique key of NOT NULL
/// columns (a nullable unique key does not count), consistently with
/// concurrent writes; a table without any key is read in one pass.
#[test]
fn tables_without_a_primary_key_use_a_unique_key_or_one_pass() {
    let _gate = crate::common::module_gate(module_path!());
    let rt = runtime();
    fresh_database(
        &rt,
        "bootkeys",
        &[
            "u (code VARCHAR(20) NOT NULL, v INT, note VARCHAR(10) NULL, UNIQUE KEY by_note (note), UNIQUE KEY by_code (code))",
            "n (a INT, b VARCHAR(10))",
        ],
    );
    sql(
        &rt,
        &[
            "INSERT INTO bootkeys.u (code, v) SELECT CONCAT('c', LPAD(seq, 5, '0')), seq FROM bootkeys.seq_1_to_2500".into(),
            "INSERT INTO bootkeys.n SELECT seq % 7, CONCAT('x', seq % 3) FROM bootkeys.seq_1_to_300".into(),
        ],
    );
    let start = position(&rt);
    let client = client_id("bootkeys");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let d = daemon(
        &client,
        &out,
        &start,
        &[
            "--bootstrap_chunk_size=500",
            "--bootstrap_max_rows_per_second=1500",
        ],
    );
    // Writes to `u` while it is read: updates, deletes, inserts.
    let halt = Arc::new(AtomicBool::new(false));
    let writer = {
        let halt = halt.clone();
        std::thread::spawn(move || {
            let rt = runtime();
            let mut i = 0u64;
            while !halt.load(Ordering::Relaxed) {
                i += 1;
                let k = (i * 7919) % 2500 + 1;
                sql(
                    &rt,
                    &[
                        format!("UPDATE bootkeys.u SET v = v + 1000 WHERE code = CONCAT('c', LPAD({k}, 5, '0'))"),
                        format!("DELETE FROM bootkeys.u WHERE code = CONCAT('c', LPAD({}, 5, '0'))", (k * 13) % 2500 + 1),
                        format!("INSERT INTO bootkeys.u (code, v) VALUES ('n{i}', {i})"),
                    ],
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            i
        })
    };
    let idu = request(&rt, &client, "bootkeys", "u", None);
    let idn = request(&rt, &client, "bootkeys", "n", None);
    assert!(wait_for(Duration::from_secs(60), || is_complete(&rt, idu)
        == Some(true)));
    halt.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(wait_for(Duration::from_secs(30), || is_complete(&rt, idn)
        == Some(true)));
    let source: BTreeMap<String, i64> = rt.block_on(async {
        let mut c = root_conn().await;
        c.query::<(String, i64), _>("SELECT code, v FROM bootkeys.u")
            .await
            .unwrap()
            .into_iter()
            .collect()
    });
    let converged = wait_for(Duration::from_secs(30), || {
        let mut copy: BTreeMap<String, i64> = BTreeMap::new();
        for l in lines_of_table(&out, "u").iter() {
            let code = l["data"]["code"].as_str().unwrap_or("").to_string();
            match l["type"].as_str().unwrap() {
                "insert" | "update" | "bootstrap-insert" => {
                    copy.insert(code, l["data"]["v"].as_i64().unwrap());
                }
                "delete" => {
                    copy.remove(&code);
                }
                _ => {}
            }
        }
        copy == source
    });
    let pu = progress(&rt, idu).unwrap();
    let pn = progress(&rt, idn).unwrap();
    let n_rows = lines_of(&out, "bootstrap-insert", "n");
    stop(d.child);
    assert!(
        converged,
        "the replayed copy of u differs from the source ({writes} writes)"
    );
    assert!(
        pu.chunks >= 5,
        "u is read in chunks of 500 by its unique key: {pu:?}"
    );
    assert_eq!(pn.chunks, 1, "{pn:?}");
    let mut got: Vec<String> = n_rows.iter().map(|l| l["data"].to_string()).collect();
    let mut want: Vec<String> = (1..=300)
        .map(|s| serde_json::json!({"a": s % 7, "b": format!("x{}", s % 3)}).to_string())
        .collect();
    got.sort();
    want.sort();
    assert_eq!(
        got, want,
        "the keyless table, row for row (duplicates included)"
    );
}

/// Other tables' rows keep flowing while a table is snapshot: they arrive
/// before its bootstrap-complete; /status and /metrics show the snapshot.
#[test]
fn other_tables_flow_while_a_table_is_snapshot() {
    let _gate = crate::common::module_gate(module_path!());
    let rt = runtime();
    fresh_database(
        &rt,
        "bootflow",
        &[
            "big (id INT PRIMARY KEY, pad VARCHAR(100))",
            "o (id INT PRIMARY KEY)",
        ],
    );
    sql(
        &rt,
        &[
            "INSERT INTO bootflow.big SELECT seq, REPEAT('p', 90) FROM bootflow.seq_1_to_40000"
                .into(),
        ],
    );
    let start = position(&rt);
    let client = client_id("bootflow");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let d = daemon(
        &client,
        &out,
        &start,
        &[
            "--bootstrap_chunk_size=1000",
            "--bootstrap_max_rows_per_second=8000",
        ],
    );
    let id = request(&rt, &client, "bootflow", "big", None);
    assert!(wait_for(Duration::from_secs(30), || count_of(
        &out,
        "bootstrap-start",
        "big"
    ) > 0));
    for i in 1..=5 {
        sql(&rt, &[format!("INSERT INTO bootflow.o VALUES ({i})")]);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(wait_for(Duration::from_secs(10), || count_of(
        &out, "insert", "o"
    ) == 5));
    // They came while the snapshot was still running.
    assert_eq!(is_complete(&rt, id), Some(false));
    assert_eq!(count_of(&out, "bootstrap-complete", "big"), 0);
    let running = wait_for(Duration::from_secs(10), || {
        let (_, s) = http_get(d.http, "/status").unwrap();
        let s: Value = serde_json::from_str(&s).unwrap();
        let t = &s["bootstrap"]["tasks"][0];
        t["id"] == id
            && t["state"] == "running"
            && t["rows"].as_u64() > Some(0)
            && t["rows_per_second"].as_f64() > Some(0.0)
            && t["eta_seconds"].as_f64().is_some()
            && t["total_rows"].as_u64() > Some(0)
    });
    assert!(running, "{:?}", http_get(d.http, "/status"));
    let (_, m) = http_get(d.http, "/metrics").unwrap();
    assert!(m.contains("sluice_bootstrap_tasks_running 1\n"), "{m}");
    assert!(
        m.contains(&format!(
            "sluice_bootstrap_task_chunks{{id=\"{id}\",table=\"bootflow.big\",state=\"running\"}}"
        )),
        "{m}"
    );
    assert!(wait_for(Duration::from_secs(60), || is_complete(&rt, id)
        == Some(true)));
    stop(d.child);
    let (mut i, mut complete_at, mut last_o, mut rows) = (0, None, None, 0);
    each_line(&out, |l| {
        if l["type"] == "bootstrap-complete" && l["table"] == "big" {
            complete_at = Some(i);
        }
        if l["table"] == "o" {
            last_o = Some(i);
        }
        rows += usize::from(l["type"] == "bootstrap-insert" && l["table"] == "big");
        i += 1;
    });
    assert!(last_o < complete_at, "o's rows after bootstrap-complete");
    assert_eq!(rows, 40_000);
}

/// Every line of `out` on `table`.
fn lines_of_table(out: &Path, table: &str) -> Vec<Value> {
    let mut found = Vec::new();
    each_line(out, |l| {
        if l["table"] == table {
            found.push(l);
        }
    });
    found
}

/// Every column type renders in `bootstrap-insert` as in a binlog
/// `insert`, except Maxwell's documented differences (spec §2.4): a zero
/// DATETIME/TIMESTAMP is null, a `binary(n)` keeps its padding.
#[test]
fn snapshot_values_render_as_binlog_values() {
    let _gate = crate::common::module_gate(module_path!());
    let rt = runtime();
    fresh_database(&rt, "boottypes", &[]);
    let start = position(&rt);
    let client = client_id("boottypes");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let d = daemon(&client, &out, &start, &[]);
    sql(
        &rt,
        &[
            "CREATE TABLE boottypes.t (id INT PRIMARY KEY,
              ti TINYINT, tu TINYINT UNSIGNED, t1 TINYINT(1), bo BOOL, si SMALLINT, mi MEDIUMINT,
              mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED,
              de DECIMAL(20,10), dn DECIMAL(5,2), f FLOAT, d DOUBLE, bt BIT(8), y YEAR,
              da DATE, dt DATETIME, dt3 DATETIME(3), dt6 DATETIME(6), ts TIMESTAMP NULL DEFAULT NULL,
              ts3 TIMESTAMP(3) NULL DEFAULT NULL, ts6 TIMESTAMP(6) NULL DEFAULT NULL, tm TIME, tm3 TIME(3), tm6 TIME(6),
              c CHAR(5), vc VARCHAR(20), tx TEXT, l1 VARCHAR(20) CHARACTER SET latin1, e ENUM('a','b'),
              s SET('a','b','c'), bl BLOB, vb VARBINARY(10), bn BINARY(10), j JSON, g POINT NULL)".into(),
            "SET SESSION sql_mode = ''".into(),
        ],
    );
    rt.block_on(async {
        let mut c = root_conn().await;
        for s in [
            "SET SESSION sql_mode = ''",
            "SET SESSION time_zone = '+02:00'",
            "INSERT INTO boottypes.t VALUES (1, -128, 255, 9, true, -32768, -8388608, 16777215, -2147483648, 4294967295,
              -9223372036854775808, 18446744073709551615, -3.1415900000, 0.50, 3.14159, 3.14159, b'01010101', 2007,
              '2020-02-29', '2020-02-29 23:59:58', '2020-02-29 23:59:58.123', '2020-02-29 23:59:58.123456',
              '2020-02-29 23:59:58', '2020-02-29 23:59:58.123', '2020-02-29 23:59:58.123456', '-12:34:56', '838:59:59.000', '01:02:03.000004',
              'ab', 'héllo \"q\"', 'a\\nb', 'çà', 'b', 'a,c', x'000102', x'0a0b', x'0A0B0C0D0E0F', '{\"hello\": \"world\", \"n\": [1, 2]}', POINT(1, 2))",
            "INSERT INTO boottypes.t (id, da, dt, dt3, ts, y, e, s) VALUES (2, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00.000', '0000-00-00 00:00:00', 0, '', '')",
            "INSERT INTO boottypes.t (id) VALUES (3)",
        ] {
            c.query_drop(s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
        }
    });
    let id = request(&rt, &client, "boottypes", "t", None);
    assert!(wait_for(Duration::from_secs(30), || is_complete(&rt, id)
        == Some(true)));
    let lines = read_lines(&out);
    stop(d.child);
    let by_id = |kind: &str| -> BTreeMap<i64, serde_json::Map<String, Value>> {
        of_type(&lines, kind, "t")
            .iter()
            .map(|l| {
                (
                    l["data"]["id"].as_i64().unwrap(),
                    l["data"].as_object().unwrap().clone(),
                )
            })
            .collect()
    };
    let (binlog, snapshot) = (by_id("insert"), by_id("bootstrap-insert"));
    assert_eq!(binlog.len(), 3);
    assert_eq!(snapshot.len(), 3);
    let mut differences = Vec::new();
    for (id, row) in &binlog {
        let snap = &snapshot[id];
        assert_eq!(
            row.keys().collect::<Vec<_>>(),
            snap.keys().collect::<Vec<_>>(),
            "columns of row {id}"
        );
        for (col, v) in row {
            if &snap[col] != v {
                differences.push(format!("{id}.{col}: binlog {v} snapshot {}", snap[col]));
            }
        }
    }
    assert_eq!(
        differences,
        vec![
            "1.bn: binlog \"CgsMDQ4P\" snapshot \"CgsMDQ4PAAAAAA==\"".to_string(),
            "2.dt: binlog \"0000-00-00 00:00:00\" snapshot null".into(),
            "2.dt3: binlog \"0000-00-00 00:00:00.000\" snapshot null".into(),
            "2.ts: binlog \"0000-00-00 00:00:00\" snapshot null".into(),
        ],
        "binlog rows: {binlog:?}"
    );
    // Spot checks of Maxwell's values.
    let r = &snapshot[&1];
    assert_eq!(r["t1"], 9);
    assert_eq!(r["bt"], 85);
    assert_eq!(r["de"].to_string(), "-3.14159");
    assert_eq!(r["s"], serde_json::json!(["a", "c"]));
    assert_eq!(r["j"], serde_json::json!({"hello": "world", "n": [1, 2]}));
    assert_eq!(r["ts"], "2020-02-29 21:59:58", "TIMESTAMP in UTC");
}

/// `sluice bootstrap` queues a request, shows progress and exits 0 when the
/// daemon completed it; `--abort` stops a running snapshot (which still
/// ends with bootstrap-complete) and its follower exits 1.
#[test]
fn the_bootstrap_subcommand_requests_follows_and_aborts() {
    let _gate = crate::common::module_gate(module_path!());
    let rt = runtime();
    fresh_database(
        &rt,
        "bootcli",
        &["t (id INT PRIMARY KEY, v INT)", "slow (id INT PRIMARY KEY)"],
    );
    sql(
        &rt,
        &[
            "INSERT INTO bootcli.t SELECT seq, seq FROM bootcli.seq_1_to_5000".into(),
            "INSERT INTO bootcli.slow SELECT seq FROM bootcli.seq_1_to_60000".into(),
        ],
    );
    let start = position(&rt);
    let client = client_id("bootcli");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let d = daemon(
        &client,
        &out,
        &start,
        &[
            "--bootstrap_chunk_size=500",
            "--bootstrap_max_rows_per_second=5000",
        ],
    );
    let (code, stdout, stderr) = cli(
        &[
            format!("--client_id={client}"),
            "--database=bootcli".into(),
            "--table=t".into(),
            "--comment=via cli".into(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("bootcli.t (5000 rows)"), "{stdout}");
    assert!(stdout.contains("5000 / 5000 (100.00%)"), "{stdout}");
    assert!(stdout.contains("complete: 5000 rows"), "{stdout}");
    let rows = lines_of(&out, "bootstrap-insert", "t");
    assert_eq!(rows.len(), 5000);
    assert!(rows.iter().all(|r| r["comment"] == "via cli"));

    let follower = cli_child(&[
        format!("--client_id={client}"),
        "--database=bootcli".into(),
        "--table=slow".into(),
    ]);
    let id: u64 = {
        let mut found = None;
        assert!(wait_for(Duration::from_secs(30), || {
            found = rt.block_on(async {
                let mut c = root_conn().await;
                c.exec_first::<u64, _, _>(
                    "SELECT id FROM maxwell.bootstrap WHERE client_id = ? AND table_name = 'slow'",
                    (&client,),
                )
                .await
                .unwrap()
            });
            found.is_some_and(|id| progress(&rt, id).is_some_and(|p| p.rows_emitted > 0))
        }));
        found.unwrap()
    };
    let (code, stdout, stderr) = cli(&[format!("--abort={id}")], Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let followed = {
        let mut f = follower;
        assert!(wait_for(Duration::from_secs(10), || matches!(
            f.try_wait(),
            Ok(Some(_))
        )));
        f.wait_with_output().unwrap()
    };
    assert_eq!(followed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&followed.stdout).contains("bootstrap aborted."));
    assert!(wait_for(Duration::from_secs(30), || progress(&rt, id)
        .is_some_and(|p| p.state == "aborted")));
    assert!(wait_for(Duration::from_secs(10), || count_of(
        &out,
        "bootstrap-complete",
        "slow"
    ) == 1));
    stop(d.child);
    let emitted = count_of(&out, "bootstrap-insert", "slow");
    assert!(
        emitted > 0 && emitted < 60_000,
        "aborted after {emitted} rows"
    );
}

/// DBLog's reconciliation, made visible: each chunk query is slowed down
/// (a where clause that sleeps per row) while rows of the table are updated
/// all the time, so rows change between a chunk's watermarks. Those rows
/// are dropped from the chunk (their binlog update carries them) and the
/// replayed output still equals the source.
#[test]
fn rows_changed_between_the_watermarks_come_from_the_binlog() {
    let _gate = crate::common::module_gate(module_path!());
    const DB: &str = "bootwin";
    let rt = runtime();
    rt.block_on(async { replay::create_tables(&mut root_conn().await, DB).await });
    sql(
        &rt,
        &[format!(
            "INSERT INTO {DB}.a SELECT seq, 0 FROM {DB}.seq_1_to_2000"
        )],
    );
    let start = position(&rt);
    let client = client_id("bootwin");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let d = daemon(&client, &out, &start, &["--bootstrap_chunk_size=200"]);
    let halt = Arc::new(AtomicBool::new(false));
    let writer = {
        let halt = halt.clone();
        std::thread::spawn(move || {
            let rt = runtime();
            let mut i = 0u64;
            while !halt.load(Ordering::Relaxed) {
                i += 1;
                let id = (i * 7919) % 2000 + 1;
                sql(
                    &rt,
                    &[format!("UPDATE {DB}.a SET v = v + 1 WHERE id = {id}")],
                );
                std::thread::sleep(Duration::from_millis(2));
            }
            i
        })
    };
    let id = request(&rt, &client, DB, "a", Some("SLEEP(0.001) = 0"));
    assert!(wait_for(Duration::from_secs(60), || is_complete(&rt, id)
        == Some(true)));
    halt.store(true, Ordering::Relaxed);
    let updates = writer.join().unwrap();
    let expected = replay::source_now(&rt, DB);
    let converged = replay::converges(&out, DB, &expected, Duration::from_secs(30));
    let p = progress(&rt, id).unwrap();
    stop(d.child);
    eprintln!("{updates} updates; {p:?}");
    converged.unwrap_or_else(|diff| panic!("the replayed copy differs:\n{diff}"));
    assert!(
        p.rows_superseded > 0,
        "no row changed inside a window: {p:?}"
    );
    assert_eq!(p.rows_emitted + p.rows_superseded, p.rows_read, "{p:?}");
}
