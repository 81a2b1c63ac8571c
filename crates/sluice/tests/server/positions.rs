//! The delivered position is stored per client_id (epoch-fenced) and wins at
//! restart: killing sluice at random moments loses no row, SIGTERM stores
//! the final position, and a newer epoch stops a stale writer.

use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::replay;
use crate::common::*;
use mysql_async::prelude::Queryable;

fn sluice_args(start: &str, client: &str, out: &Path) -> Vec<String> {
    vec![
        format!("--init_position={start}"),
        client.to_string(),
        "--producer=file".into(),
        format!("--output_file={}", out.display()),
    ]
}

fn spawn(args: &[String]) -> Child {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn_sluice(&refs)
}

/// Recreates `db` with one table; returns the binlog position after that.
async fn fresh_table(c: &mut mysql_async::Conn, db: &str, table_ddl: &str) -> String {
    c.query_drop(format!("DROP DATABASE IF EXISTS {db}"))
        .await
        .unwrap();
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("CREATE TABLE {db}.{table_ddl}"))
        .await
        .unwrap();
    master_position(c).await
}

fn ids_in(out: &Path, db: &str) -> Vec<i64> {
    read_lines(out)
        .into_iter()
        .filter(|v| v["database"] == db)
        .filter_map(|v| v["data"]["id"].as_i64())
        .collect()
}

async fn stored_position(c: &mut mysql_async::Conn, client: &str) -> Option<(String, u64)> {
    let id = client.trim_start_matches("--client_id=");
    c.exec_first(
        "SELECT binlog_file, binlog_position FROM maxwell.positions WHERE client_id = ?",
        (id,),
    )
    .await
    .unwrap()
}

/// The replay check under SIGKILL: a random workload of inserts, updates
/// (some changing the primary key) and deletes in transactions of 1..=500
/// rows over two tables runs while sluice is killed at random moments 10
/// times and restarted; the output, applied in order, equals the source.
#[test]
fn sigkill_at_random_moments_loses_no_row() {
    let _gate = crate::common::module_gate(module_path!());
    let rt = runtime();
    let db = "posdb_kill";
    let port = ensure_mariadb();
    let start = rt.block_on(async {
        let mut c = root_conn().await;
        replay::create_tables(&mut c, db).await;
        master_position(&mut c).await
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let client = unique_client_id();
    let args = sluice_args(&start, &client, &out);

    let halt = Arc::new(AtomicBool::new(false));
    let writer = {
        let halt = halt.clone();
        std::thread::spawn(move || replay::workload(port, db, 1, 500, halt))
    };
    let mut seed: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut child = spawn(&args);
    for _ in 0..10 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(300 + (seed >> 33) % 900));
        unsafe_kill(child.id(), 9);
        let _ = child.wait();
        child = spawn(&args);
    }
    halt.store(true, Ordering::Relaxed);
    let transactions = writer.join().unwrap();
    let expected = rt.block_on(async { replay::source(&mut root_conn().await, db).await });
    let converged = replay::converges(&out, db, &expected, Duration::from_secs(60));
    let output = stop(child);
    let err = String::from_utf8_lossy(&output.stderr);
    if let Err(diff) = converged {
        panic!("the replayed copy differs from the source:\n{diff}\n{err}");
    }
    assert!(
        transactions > 50,
        "the workload wrote too little: {transactions} transactions"
    );
    assert!(output.status.success(), "{err}");
    eprintln!(
        "{transactions} transactions, {} lines written",
        read_lines(&out).len()
    );
}

#[test]
fn sigterm_stores_the_final_position() {
    let _gate = crate::common::module_gate(module_path!());
    let rt = runtime();
    let db = "posdb_term";
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let client = unique_client_id();
    let mut c = rt.block_on(root_conn());
    let start = rt.block_on(fresh_table(&mut c, db, "t (id INT PRIMARY KEY)"));
    let child = spawn(&sluice_args(&start, &client, &out));
    let after = rt.block_on(async {
        c.query_drop(format!("INSERT INTO {db}.t VALUES (1), (2), (3)"))
            .await
            .unwrap();
        master_position(&mut c).await
    });
    assert!(wait_for(Duration::from_secs(20), || ids_in(&out, db).len() == 3));
    // Idle after the rows: the position is stored without waiting for more.
    let (after_file, after_pos) = after.split_once(':').unwrap();
    let after_pos: u64 = after_pos.parse().unwrap();
    let reached = |c: &mut mysql_async::Conn| {
        rt.block_on(stored_position(c, &client))
            .is_some_and(|(f, p)| (f.as_str(), p) >= (after_file, after_pos))
    };
    assert!(
        wait_for(Duration::from_secs(5), || reached(&mut c)),
        "idle position not stored"
    );
    let output = stop(child);
    assert!(
        output.status.success(),
        "SIGTERM must exit 0: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (file, pos) = rt
        .block_on(stored_position(&mut c, &client))
        .expect("a stored position");
    let (after_file, after_pos) = after.split_once(':').unwrap();
    let after_pos: u64 = after_pos.parse().unwrap();
    assert!(
        (file.as_str(), pos) >= (after_file, after_pos),
        "stored {file}:{pos} is before the insert's end {after}"
    );

    // Restarting resumes there: nothing already delivered comes again.
    let child = spawn(&sluice_args(&start, &client, &out));
    rt.block_on(c.query_drop(format!("INSERT INTO {db}.t VALUES (4)")))
        .unwrap();
    assert!(wait_for(Duration::from_secs(20), || ids_in(&out, db).len() >= 4));
    let output = stop(child);
    assert!(output.status.success());
    assert_eq!(ids_in(&out, db), vec![1, 2, 3, 4]);
    // sluice's own position writes are not output.
    assert!(read_lines(&out).iter().all(|v| v["database"] != "maxwell"));
}

#[test]
fn a_newer_epoch_fences_the_writer() {
    let _gate = crate::common::module_gate(module_path!());
    let rt = runtime();
    let db = "posdb_fence";
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let client = unique_client_id();
    let id = client.trim_start_matches("--client_id=").to_string();
    let mut c = rt.block_on(root_conn());
    let start = rt.block_on(fresh_table(&mut c, db, "t (id INT PRIMARY KEY)"));
    let mut child = spawn(&sluice_args(&start, &client, &out));
    rt.block_on(c.query_drop(format!("INSERT INTO {db}.t VALUES (1)")))
        .unwrap();
    assert!(wait_for(Duration::from_secs(20), || rt
        .block_on(stored_position(&mut c, &client))
        .is_some()));
    // Another writer takes over with a newer epoch.
    rt.block_on(c.exec_drop(
        "UPDATE maxwell.positions SET epoch = 5 WHERE client_id = ?",
        (id,),
    ))
    .unwrap();
    rt.block_on(c.query_drop(format!("INSERT INTO {db}.t VALUES (2)")))
        .unwrap();
    let exited = wait_for(Duration::from_secs(20), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !exited {
        let _ = child.kill();
    }
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(exited, "a fenced writer must stop");
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("newer epoch"), "{err}");
}

/// Heartbeats written into the binlog come back through it and confirm the
/// position: `last_heartbeat_read` keeps moving while the watched tables
/// are idle, lag is measured from them, and they are never output.
#[test]
fn heartbeats_confirm_an_idle_position() {
    let _gate = crate::common::module_gate(module_path!());
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let client = unique_client_id();
    let id = client.trim_start_matches("--client_id=").to_string();
    let http = free_port();
    let start = rt.block_on(async { master_position(&mut root_conn().await).await });
    let mut args = sluice_args(&start, &client, &out);
    args.push("--heartbeat_interval_ms=200".into());
    args.push(format!("--http_port={http}"));
    let child = spawn(&args);
    let read_beat = || -> Option<u64> {
        rt.block_on(async {
            root_conn()
                .await
                .exec_first::<Option<u64>, _, _>(
                    "SELECT last_heartbeat_read FROM maxwell.positions WHERE client_id = ?",
                    (&id,),
                )
                .await
                .unwrap()
                .flatten()
        })
    };
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    assert!(
        wait_for(Duration::from_secs(10), || read_beat().is_some()),
        "no heartbeat was read back and stored"
    );
    let first = read_beat().unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || read_beat() > Some(first)),
        "the heartbeat position does not advance"
    );
    let latest = read_beat().unwrap();
    assert!(
        now_ms().saturating_sub(latest) < 5000,
        "the stored heartbeat is stale: {latest}"
    );
    let (code, metrics) = http_get(http, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(metrics.contains("\nsluice_replication_lag "), "{metrics}");
    let read_total: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sluice_heartbeats_read_total "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(read_total >= 2.0, "{metrics}");
    let output = stop(child);
    assert!(output.status.success());
    assert!(
        read_lines(&out).iter().all(|v| v["database"] != "maxwell"),
        "sluice's own heartbeats must not be output"
    );
}
