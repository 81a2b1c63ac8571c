//! Maxwell's split hosts: sluice reads the binlog of a replica
//! (`replication_host`) and keeps its state on the primary (`host`). A
//! random workload on the primary, sluice killed (SIGKILL) mid-stream three
//! times: the output replayed equals the primary's tables; the position is
//! stored on the primary under the replica's server_id; heartbeats written
//! to the primary come back through the replica. A replica that leaves the
//! schema database out of what it replicates is named in a warning.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::common::replay::{converges, create_tables, source, workload};
use crate::common::replica::{replicate, start_server};
use crate::common::*;
use mysql_async::prelude::Queryable;

const PRIMARY: u16 = 23316;
const REPLICA: u16 = 23317;
const PRIMARY_ID: u32 = 11;
const REPLICA_ID: u32 = 12;
const DB: &str = "split";
/// A schema database the replica is told not to replicate.
const IGNORED_STATE: &str = "hbignored_state";

/// The pair, once per test process (both tests use it).
fn pair() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        start_server(PRIMARY, &PRIMARY_ID.to_string());
        start_server(REPLICA, &REPLICA_ID.to_string());
        runtime().block_on(replicate(
            PRIMARY,
            REPLICA,
            &[DB, "maxwell", IGNORED_STATE],
            &["replicate_wild_ignore_table = 'hbignored%.%'"],
        ));
    });
}

/// sluice with state on the primary, the binlog from the replica; stderr
/// goes to `log` (read while it runs).
fn spawn_split(args: &[String], log: &Path) -> Child {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(sluice_bin())
        .args([
            "--host=127.0.0.1".to_string(),
            format!("--port={PRIMARY}"),
            "--user=root".into(),
            "--replication_host=127.0.0.1".into(),
            format!("--replication_port={REPLICA}"),
            "--replication_user=sluice".into(),
            "--replication_password=sluice".into(),
            "--log_level=warn".into(),
            "--http_port=0".into(),
        ])
        .args(args)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

fn log_text(log: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(log) {
        let _ = f.read_to_string(&mut s);
    }
    plain_log(&s)
}

/// The stored row of `client` on the primary: (server_id, file, offset,
/// last_heartbeat_read).
fn stored(
    rt: &tokio::runtime::Runtime,
    state_db: &str,
    client: &str,
) -> Vec<(u32, String, u64, Option<u64>)> {
    rt.block_on(async {
        root_conn_at(PRIMARY)
            .await
            .unwrap()
            .exec(
                format!(
                    "SELECT server_id, binlog_file, binlog_position, last_heartbeat_read FROM {state_db}.positions WHERE client_id = ?"
                ),
                (client,),
            )
            .await
            .unwrap()
    })
}

#[test]
fn streams_from_the_replica_with_state_on_the_primary_through_sigkills() {
    let _gate = crate::common::module_gate(module_path!());
    pair();
    let rt = runtime();
    // The stream starts on the replica once it has the tables, before any
    // row of the workload.
    let start = rt.block_on(async {
        create_tables(&mut root_conn_at(PRIMARY).await.unwrap(), DB).await;
        let mut r = root_conn_at(REPLICA).await.unwrap();
        let replicated = "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'b'";
        for _ in 0..300 {
            if r.exec_first::<u64, _, _>(replicated, (DB,)).await.unwrap() == Some(1) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            r.exec_first::<u64, _, _>(replicated, (DB,)).await.unwrap(),
            Some(1),
            "the replica does not replicate"
        );
        master_position(&mut r).await
    });
    let dir = tempfile::tempdir().unwrap();
    let (out, log) = (dir.path().join("out.json"), dir.path().join("stderr.log"));
    let client = unique_client_id();
    let id = client.trim_start_matches("--client_id=").to_string();
    let args = vec![
        client.clone(),
        unique_server_id(),
        "--producer=file".into(),
        format!("--output_file={}", out.display()),
        "--heartbeat_interval_ms=200".into(),
        format!("--init_position={start}"),
    ];
    let mut child = spawn_split(&args, &log);
    let halt = Arc::new(AtomicBool::new(false));
    let writer = {
        let halt = halt.clone();
        std::thread::spawn(move || workload(PRIMARY, DB, 1, 40, halt))
    };
    assert!(
        wait_for(Duration::from_secs(30), || !read_lines(&out).is_empty()),
        "nothing streamed from the replica:\n{}",
        log_text(&log)
    );
    let mut seed = std::process::id() as u64;
    for _ in 0..3 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(400 + (seed >> 33) % 1000));
        unsafe_kill(child.id(), 9);
        let _ = child.wait();
        child = spawn_split(&args, &log);
    }
    std::thread::sleep(Duration::from_millis(500));
    halt.store(true, Ordering::Relaxed);
    let transactions = writer.join().unwrap();
    assert!(transactions > 20, "workload too small: {transactions}");
    let expected =
        rt.block_on(async { source(&mut root_conn_at(PRIMARY).await.unwrap(), DB).await });
    if let Err(diff) = converges(&out, DB, &expected, Duration::from_secs(60)) {
        panic!(
            "the replayed copy differs from the primary:\n{diff}\n{}",
            log_text(&log)
        );
    }

    // The position is the replica's: keyed by its server_id, on the primary.
    let rows = stored(&rt, "maxwell", &id);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, REPLICA_ID, "{rows:?}");
    // Heartbeats written to the primary come back through the replica and
    // keep moving the stored position while the workload is idle.
    let beat = || stored(&rt, "maxwell", &id)[0].3.unwrap_or(0);
    let first = beat();
    assert!(
        wait_for(Duration::from_secs(10), || beat() > first && first > 0),
        "last_heartbeat_read does not advance ({first}):\n{}",
        log_text(&log)
    );
    let output = stop(child);
    assert!(output.status.success(), "{}", log_text(&log));
    let text = log_text(&log);
    assert!(!text.contains("do not come back"), "{text}");
    assert!(read_lines(&out).iter().all(|v| v["database"] != "maxwell"));
}

/// With state written to a schema database the replica does not replicate
/// (`replicate_wild_ignore_table`), heartbeats never come back although
/// sluice reads the replica's binlog to its end: sluice says so once,
/// naming the hosts and what to change.
#[test]
fn heartbeats_that_never_come_back_are_explained() {
    let _gate = crate::common::module_gate(module_path!());
    pair();
    let dir = tempfile::tempdir().unwrap();
    let (out, log) = (dir.path().join("out.json"), dir.path().join("stderr.log"));
    let child = spawn_split(
        &[
            unique_client_id(),
            unique_server_id(),
            "--producer=file".into(),
            format!("--output_file={}", out.display()),
            format!("--schema_database={IGNORED_STATE}"),
            "--heartbeat_interval_ms=100".into(),
            // The replica's own heartbeats tell sluice it read to the end.
            "--binlog_heartbeat_period_ms=500".into(),
        ],
        &log,
    );
    let needle =
        format!("do not come back through the binlog of 127.0.0.1:{REPLICA} (replication_host)");
    let warned = wait_for(Duration::from_secs(30), || log_text(&log).contains(&needle));
    let output = stop(child);
    let text = log_text(&log);
    assert!(warned, "no warning about unread heartbeats:\n{text}");
    assert!(output.status.success(), "{text}");
    for hint in [
        "log_slave_updates=ON",
        "replicate-wild-ignore-table",
        IGNORED_STATE,
    ] {
        assert!(text.contains(hint), "{hint} missing:\n{text}");
    }
    assert_eq!(
        text.matches(&needle).count(),
        1,
        "said once per silence:\n{text}"
    );
}

/// A snapshot with split hosts: the request and the watermarks go to the
/// primary (a replica may be read-only, and a write there is an errant
/// transaction), the rows come from the replica, and each chunk is read only
/// after the replica has applied its low watermark. With the replica's SQL
/// thread stopped, the low watermark cannot arrive: no chunk is read. Once it
/// runs again, the snapshot completes beside a live workload and the output
/// replayed equals the primary.
#[test]
fn a_snapshot_from_the_replica_reads_each_chunk_after_its_low_watermark_arrived() {
    let _gate = crate::common::module_gate(module_path!());
    const SNAP: &str = "splitsnap";
    const ROWS: u64 = 20_000;
    pair();
    let rt = runtime();
    let start = rt.block_on(async {
        let mut p = root_conn_at(PRIMARY).await.unwrap();
        create_tables(&mut p, SNAP).await;
        p.query_drop(format!(
            "INSERT INTO {SNAP}.b SELECT seq, CONCAT('s', seq) FROM {SNAP}.seq_1_to_{ROWS}"
        ))
        .await
        .unwrap();
        let mut r = root_conn_at(REPLICA).await.unwrap();
        let count = format!("SELECT COUNT(*) FROM {SNAP}.b");
        for _ in 0..300 {
            if r.query_first::<u64, _>(&count).await.ok().flatten() == Some(ROWS) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(r.query_first::<u64, _>(&count).await.unwrap(), Some(ROWS));
        // sluice's user may not write on the replica from now on.
        r.query_drop("SET GLOBAL read_only = 1").await.unwrap();
        master_position(&mut r).await
    });
    // The replica's own transactions (server_id 12), per domain.
    let replica_own = || {
        let state = rt.block_on(crate::common::replica::gtid_pos(
            REPLICA,
            "gtid_binlog_state",
        ));
        state
            .split(',')
            .filter(|g| g.trim().split('-').nth(1) == Some(REPLICA_ID.to_string().as_str()))
            .map(|g| g.trim().to_string())
            .collect::<Vec<_>>()
    };
    let own_before = replica_own();
    let dir = tempfile::tempdir().unwrap();
    let (out, log) = (dir.path().join("out.json"), dir.path().join("stderr.log"));
    let client = unique_client_id();
    let id_of_client = client.trim_start_matches("--client_id=").to_string();
    let child = spawn_split(
        &[
            client,
            unique_server_id(),
            "--producer=file".into(),
            format!("--output_file={}", out.display()),
            format!("--init_position={start}"),
        ],
        &log,
    );
    let primary_sql = |sql: String| {
        rt.block_on(async {
            let mut p = root_conn_at(PRIMARY).await.unwrap();
            p.query_first::<u64, _>(sql).await.unwrap()
        })
    };
    let replica_sql = |sql: &str| {
        rt.block_on(async {
            let mut r = root_conn_at(REPLICA).await.unwrap();
            r.query_drop(sql).await.unwrap()
        })
    };
    assert!(
        wait_for(Duration::from_secs(30), || {
            primary_sql(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'maxwell' AND TABLE_NAME = 'bootstrap_watermarks'".into()
        ) == Some(1)
        }),
        "sluice did not create its bootstrap tables:\n{}",
        log_text(&log)
    );
    replica_sql("STOP SLAVE SQL_THREAD");
    let request = rt.block_on(async {
        let mut p = root_conn_at(PRIMARY).await.unwrap();
        p.exec_drop(
            "INSERT INTO maxwell.bootstrap (database_name, table_name, client_id) VALUES (?, 'b', ?)",
            (SNAP, &id_of_client),
        )
        .await
        .unwrap();
        p.last_insert_id().unwrap()
    });
    let low_written = || {
        primary_sql(format!(
            "SELECT COUNT(*) FROM maxwell.bootstrap_watermarks WHERE client_id = '{id_of_client}' AND task_id = {request} AND mark = 'low'"
        ))
        .unwrap_or(0)
    };
    let rows_read = || {
        primary_sql(format!(
            "SELECT rows_read FROM maxwell.bootstrap_progress WHERE id = {request}"
        ))
        .unwrap_or(0)
    };
    assert!(
        wait_for(Duration::from_secs(30), || low_written() > 0),
        "no low watermark written on the primary:\n{}",
        log_text(&log)
    );
    // The replica has not applied it: the task waits instead of reading.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(low_written(), 1, "a second chunk began");
    assert_eq!(
        rows_read(),
        0,
        "a chunk was read before its low watermark arrived"
    );
    let halt = Arc::new(AtomicBool::new(false));
    let writer = {
        let halt = halt.clone();
        std::thread::spawn(move || workload(PRIMARY, SNAP, ROWS as i64 + 1, 20, halt))
    };
    replica_sql("START SLAVE SQL_THREAD");
    let complete = wait_for(Duration::from_secs(120), || {
        primary_sql(format!(
            "SELECT is_complete FROM maxwell.bootstrap WHERE id = {request}"
        )) == Some(1)
    });
    halt.store(true, Ordering::Relaxed);
    let transactions = writer.join().unwrap();
    replica_sql("SET GLOBAL read_only = 0");
    assert!(
        complete,
        "the snapshot did not complete:\n{}",
        log_text(&log)
    );
    assert!(transactions > 5, "workload too small: {transactions}");
    let expected =
        rt.block_on(async { source(&mut root_conn_at(PRIMARY).await.unwrap(), SNAP).await });
    let converged = converges(&out, SNAP, &expected, Duration::from_secs(60));
    let output = stop(child);
    converged.unwrap_or_else(|diff| {
        panic!(
            "the replayed copy differs from the primary:\n{diff}\n{}",
            log_text(&log)
        )
    });
    assert!(output.status.success(), "{}", log_text(&log));
    assert!(rows_read() >= ROWS, "rows read: {}", rows_read());
    // Nothing was written on the replica itself.
    assert_eq!(
        replica_own(),
        own_before,
        "the replica wrote transactions of its own"
    );
    let snapshot_rows = read_lines(&out)
        .iter()
        .filter(|v| v["type"] == "bootstrap-insert" && v["database"] == SNAP)
        .count() as u64;
    assert!(
        snapshot_rows > 0 && snapshot_rows <= rows_read(),
        "{snapshot_rows}"
    );
}

/// Maxwell's `bootstrap-second-server` conformance file: the requested
/// table exists only on the second server (the replica sluice reads,
/// `replication_host`), the request goes to the state host (the primary);
/// the snapshot's rows come from the replica.
#[test]
fn maxwell_bootstrap_second_server() {
    use crate::bootstrap_corpus::{in_bootstrap_order, normalize};
    use crate::common::corpus::{parse_file, quote_bare_keys, Item};
    let _gate = crate::common::module_gate(module_path!());
    pair();
    let text = std::fs::read_to_string(
        repo_root().join("testdata/maxwell/sql/json/bootstrap-second-server"),
    )
    .unwrap();
    let items = parse_file(&text);
    let expected: Vec<serde_json::Value> = items
        .iter()
        .filter_map(|i| match i {
            Item::Expect(j) => Some(normalize(
                serde_json::from_str(&quote_bare_keys(j)).unwrap(),
            )),
            _ => None,
        })
        .collect();
    assert!(!expected.is_empty());
    let rt = runtime();
    let start = rt.block_on(async {
        // Maxwell's client_id afresh on the primary.
        let mut p = root_conn_at(PRIMARY).await.unwrap();
        for sql in [
            "DELETE FROM maxwell.positions WHERE client_id = 'maxwell'",
            "DELETE FROM maxwell.schema_history WHERE client_id = 'maxwell'",
            "DELETE FROM maxwell.bootstrap WHERE client_id = 'maxwell'",
            "DELETE FROM maxwell.bootstrap_progress WHERE client_id = 'maxwell'",
        ] {
            // The tables may not exist before the first sluice ran here.
            let _ = p.query_drop(sql).await;
        }
        // The second server's own table, outside replication.
        let mut r = root_conn_at(REPLICA).await.unwrap();
        for sql in [
            "SET sql_log_bin = 0",
            "DROP DATABASE IF EXISTS test_other",
            "CREATE DATABASE test_other",
            "CREATE TABLE test_other.other (id INT PRIMARY KEY)",
            "INSERT INTO test_other.other VALUES (1)",
        ] {
            r.query_drop(sql).await.unwrap();
        }
        master_position(&mut r).await
    });
    let dir = tempfile::tempdir().unwrap();
    let (out, log) = (dir.path().join("out.json"), dir.path().join("stderr.log"));
    let child = spawn_split(
        &[
            "--client_id=maxwell".into(),
            unique_server_id(),
            "--producer=file".into(),
            format!("--output_file={}", out.display()),
            format!("--init_position={start}"),
        ],
        &log,
    );
    let primary_count = |sql: &str| {
        rt.block_on(async {
            let mut p = root_conn_at(PRIMARY).await.unwrap();
            p.query_first::<u64, _>(sql).await.ok().flatten()
        })
    };
    assert!(
        wait_for(Duration::from_secs(30), || {
            primary_count(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'maxwell' AND TABLE_NAME = 'bootstrap_watermarks'"
        ) == Some(1)
        }),
        "sluice did not create its bootstrap tables:\n{}",
        log_text(&log)
    );
    rt.block_on(async {
        let mut p = root_conn_at(PRIMARY).await.unwrap();
        for item in &items {
            if let Item::Sql(sql) = item {
                p.query_drop(sql.trim_end_matches(';')).await.unwrap();
            }
        }
    });
    let found = |lines: &[serde_json::Value]| {
        let got: Vec<serde_json::Value> = lines.iter().cloned().map(normalize).collect();
        expected.iter().all(|e| got.contains(e))
            && got.iter().any(|l| l["type"] == "bootstrap-complete")
    };
    let complete = wait_for(Duration::from_secs(60), || found(&read_lines(&out)));
    let output = stop(child);
    let lines = read_lines(&out);
    rt.block_on(async {
        let mut r = root_conn_at(REPLICA).await.unwrap();
        let _ = r.query_drop("SET sql_log_bin = 0").await;
        let _ = r.query_drop("DROP DATABASE IF EXISTS test_other").await;
    });
    assert!(
        complete,
        "expected {expected:?}\nsluice wrote {lines:?}\n{}",
        log_text(&log)
    );
    in_bootstrap_order(&lines).unwrap();
    assert!(output.status.success(), "{}", log_text(&log));
}
