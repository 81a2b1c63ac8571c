//! High availability with a real 3-node ZooKeeper ensemble and 3 sluice
//! nodes sharing one client_id and one output file: exactly one leader
//! answers /leader with 200, every node answers /healthcheck, /status and
//! /metrics; SIGKILL of the leader lets a standby produce within the session
//! timeout + 1 s, SIGTERM of the leader within 1 s; the replay check holds
//! over everything the leaders wrote.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::replay::{converges, create_tables, source, workload};
use common::*;

const DB: &str = "hadb";
const SESSION_MS: u64 = 3000;

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
    let child = spawn_sluice(&[
        "--ha",
        &format!("--zookeeper={zk}"),
        &format!("--session_timeout_ms={SESSION_MS}"),
        "--connection_timeout_ms=2000",
        "--base_sleep_time_ms=100",
        client,
        &format!("--init_position={start}"),
        "--producer=file",
        &format!("--output_file={}", out.display()),
        &format!("--http_port={http}"),
    ]);
    Node {
        child: Some(child),
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

fn lines(out: &std::path::Path) -> usize {
    std::fs::read_to_string(out)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Waits for exactly one leader and for the output to grow: how long it took.
fn next_leader_produces(
    nodes: &[Node],
    out: &std::path::Path,
    limit: Duration,
) -> Option<(usize, Duration)> {
    let t0 = Instant::now();
    let before = lines(out);
    while t0.elapsed() < limit {
        let l = leaders(nodes);
        if l.len() == 1 && lines(out) > before {
            return Some((l[0], t0.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn one_leader_fails_over_without_losing_a_row() {
    let zk = start_ensemble();
    let port = ensure_mariadb();
    let rt = runtime();
    let start = rt.block_on(async {
        let mut c = root_conn().await;
        create_tables(&mut c, DB).await;
        master_position(&mut c).await
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let client = unique_client_id();
    let mut nodes: Vec<Node> = (0..3)
        .map(|_| spawn_node(&zk, &client, &out, &start))
        .collect();

    let halt = Arc::new(AtomicBool::new(false));
    let writer = {
        let halt = halt.clone();
        std::thread::spawn(move || workload(port, DB, 1, 50, halt))
    };
    let (first, _) =
        next_leader_produces(&nodes, &out, Duration::from_secs(30)).expect("no leader produced");
    // Every node answers; exactly one leads.
    for n in &nodes {
        assert_eq!(http_get(n.http, "/healthcheck").map(|r| r.0), Some(200));
        let (_, status) = http_get(n.http, "/status").unwrap();
        let status: serde_json::Value = serde_json::from_str(&status).unwrap();
        assert!(
            status["role"] == "leader" || status["role"] == "standby",
            "{status}"
        );
        assert!(http_get(n.http, "/metrics")
            .is_some_and(|(c, m)| c == 200 && m.contains("sluice_leader")));
    }
    assert_eq!(leaders(&nodes), vec![first]);

    // SIGKILL of the leader: a standby produces within the session timeout + 1 s.
    let mut killed = nodes[first].child.take().unwrap();
    unsafe_kill(killed.id(), 9);
    let _ = killed.wait();
    let (second, took) =
        next_leader_produces(&nodes, &out, Duration::from_millis(SESSION_MS + 1000))
            .unwrap_or_else(|| panic!("no standby took over within {} ms", SESSION_MS + 1000));
    eprintln!("failover after SIGKILL: {took:?}");
    assert_ne!(second, first);

    // SIGTERM of the leader: the last standby produces within 1 s.
    let termed = nodes[second].child.take().unwrap();
    let t0 = Instant::now();
    unsafe_kill(termed.id(), 15);
    let (third, took) = next_leader_produces(&nodes, &out, Duration::from_millis(1000))
        .unwrap_or_else(|| panic!("no standby took over after SIGTERM"));
    eprintln!(
        "failover after SIGTERM: {took:?} ({:?} since the signal)",
        t0.elapsed()
    );
    assert!(
        t0.elapsed() <= Duration::from_millis(1100),
        "{:?}",
        t0.elapsed()
    );
    let termed_out = stop(termed);
    assert!(
        termed_out.status.success(),
        "{}",
        String::from_utf8_lossy(&termed_out.stderr)
    );
    assert_eq!(leaders(&nodes), vec![third]);

    halt.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let expected = rt.block_on(async { source(&mut root_conn().await, DB).await });
    let converged = converges(&out, DB, &expected, Duration::from_secs(60));
    let last = stop(nodes[third].child.take().unwrap());
    if let Err(diff) = converged {
        panic!(
            "the replayed copy differs:\n{diff}\n{}",
            String::from_utf8_lossy(&last.stderr)
        );
    }
    assert!(last.status.success());
}
