//! A snapshot survives its leader: three nodes share a client_id, the
//! leader is SIGKILLed mid-snapshot while a workload writes the table, and
//! the node elected next resumes the snapshot after its last delivered
//! chunk and finishes it. The standbys never snapshot; the output replays
//! to the source.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::common::replay;
use crate::common::*;
use crate::serial;

const DB: &str = "habootstrap";
const ROWS: u64 = 40_000;

fn start_ensemble() -> String {
    let out = Command::new(repo_root().join("scripts/zookeeper.sh"))
        .arg("start")
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/zookeeper.sh");
    assert!(out.status.success(), "the ZooKeeper ensemble did not start");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

struct Node {
    child: Option<Child>,
    http: u16,
}

fn spawn_node(zk: &str, client: &str, out: &std::path::Path, start: &str) -> Node {
    let http = free_port();
    let args = [
        "--ha".to_string(),
        format!("--zookeeper={zk}"),
        "--session_timeout_ms=3000".into(),
        "--connection_timeout_ms=2000".into(),
        "--base_sleep_time_ms=100".into(),
        format!("--client_id={client}"),
        format!("--init_position={start}"),
        "--producer=file".into(),
        format!("--output_file={}", out.display()),
        format!("--http_port={http}"),
        "--bootstrap_chunk_size=1000".into(),
        "--bootstrap_max_rows_per_second=8000".into(),
    ];
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Node {
        child: Some(spawn_sluice(&refs)),
        http,
    }
}

fn leaders(nodes: &[Node]) -> Vec<usize> {
    nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.child.is_some())
        .filter(|(_, n)| http_get(n.http, "/leader").is_some_and(|(c, _)| c == 200))
        .map(|(i, _)| i)
        .collect()
}

/// (state, rows_read, rows_emitted) of request `id`.
fn progress(rt: &tokio::runtime::Runtime, id: u64) -> Option<(String, u64, u64)> {
    rt.block_on(async {
        root_conn()
            .await
            .exec_first(
                "SELECT p.state, p.rows_read, p.rows_emitted FROM maxwell.bootstrap_progress p \
                 JOIN maxwell.bootstrap b ON b.id = p.id AND b.client_id = p.client_id WHERE p.id = ?",
                (id,),
            )
            .await
            .ok()
            .flatten()
    })
}

fn is_complete(rt: &tokio::runtime::Runtime, id: u64) -> bool {
    rt.block_on(async {
        root_conn()
            .await
            .exec_first::<u8, _, _>(
                "SELECT is_complete FROM maxwell.bootstrap WHERE id = ?",
                (id,),
            )
            .await
            .unwrap()
            == Some(1)
    })
}

#[test]
fn a_new_leader_finishes_the_snapshot_of_the_old() {
    let _serial = serial();
    let zk = start_ensemble();
    let port = ensure_mariadb();
    let rt = runtime();
    let start = rt.block_on(async {
        let mut c = root_conn().await;
        replay::create_tables(&mut c, DB).await;
        c.query_drop(format!(
            "INSERT INTO {DB}.b SELECT seq, CONCAT('s', seq) FROM {DB}.seq_1_to_{ROWS}"
        ))
        .await
        .unwrap();
        master_position(&mut c).await
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let client = format!("habootstrap-{}-{}", std::process::id(), free_port());
    let mut nodes: Vec<Node> = (0..3)
        .map(|_| spawn_node(&zk, &client, &out, &start))
        .collect();
    assert!(
        wait_for(Duration::from_secs(30), || leaders(&nodes).len() == 1),
        "no leader"
    );
    let first = leaders(&nodes)[0];
    let halt = Arc::new(AtomicBool::new(false));
    let writer = {
        let halt = halt.clone();
        std::thread::spawn(move || replay::workload(port, DB, ROWS as i64 + 1, 10, halt))
    };
    let id = rt.block_on(async {
        let mut c = root_conn().await;
        c.exec_drop(
            "INSERT INTO maxwell.bootstrap (database_name, table_name, client_id) VALUES (?, 'b', ?)",
            (DB, &client),
        )
        .await
        .unwrap();
        c.last_insert_id().unwrap()
    });
    assert!(
        wait_for(Duration::from_secs(60), || progress(&rt, id)
            .is_some_and(|p| p.2 >= ROWS / 4)),
        "the first leader did not get a quarter through: {:?}",
        progress(&rt, id)
    );
    // Only the leader snapshots.
    for (i, n) in nodes.iter().enumerate() {
        let (_, status) = http_get(n.http, "/status").unwrap();
        let status: serde_json::Value = serde_json::from_str(&status).unwrap();
        let tasks = status["bootstrap"]["tasks"].as_array().unwrap().len();
        assert_eq!(tasks, usize::from(i == first), "node {i}: {status}");
    }
    let at_kill = progress(&rt, id).unwrap();
    assert!(at_kill.2 < ROWS, "killed mid-snapshot: {at_kill:?}");
    let mut old = nodes[first].child.take().unwrap();
    unsafe_kill(old.id(), 9);
    let _ = old.wait();
    assert!(
        wait_for(Duration::from_secs(10), || leaders(&nodes).len() == 1),
        "no new leader"
    );
    let second = leaders(&nodes)[0];
    assert_ne!(second, first);
    assert!(
        wait_for(Duration::from_secs(60), || is_complete(&rt, id)),
        "the new leader did not finish: {:?}",
        progress(&rt, id)
    );
    let (_, status) = http_get(nodes[second].http, "/status").unwrap();
    halt.store(true, Ordering::Relaxed);
    let txns = writer.join().unwrap();
    let expected = replay::source_now(&rt, DB);
    let converged = replay::converges(&out, DB, &expected, Duration::from_secs(60));
    let done = progress(&rt, id).unwrap();
    for n in nodes.iter_mut() {
        if let Some(c) = n.child.take() {
            stop(c);
        }
    }
    eprintln!("killed at {at_kill:?}, finished {done:?}, {txns} workload transactions");
    converged.unwrap_or_else(|diff| panic!("the replayed copy differs:\n{diff}"));
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let task = &status["bootstrap"]["tasks"][0];
    assert!(task["id"] == id && task["state"] == "complete", "{status}");
    assert_eq!(done.0, "complete");
    let size = expected.get("b").map_or(0, |t| t.len() as u64).max(ROWS);
    assert!(
        done.1 * 10 < size * 12,
        "read {} rows for {size}: started over?",
        done.1
    );
    // Line by line: the output is never held whole (see replay::apply).
    use std::io::BufRead;
    let completes = std::io::BufReader::new(std::fs::File::open(&out).unwrap())
        .lines()
        .filter(|l| {
            let l = l.as_ref().unwrap();
            l.contains("\"type\":\"bootstrap-complete\"") && l.contains("\"table\":\"b\"")
        })
        .count();
    assert_eq!(completes, 1);
}
