//! High availability with a real 3-node ZooKeeper ensemble and 3 sluice
//! nodes sharing one client_id and one output file: exactly one leader
//! answers /leader with 200, every node answers /healthcheck, /status and
//! /metrics; SIGKILL of the leader lets a standby produce within the session
//! timeout + 1 s, SIGTERM of the leader within 1 s; the replay check holds
//! over everything the leaders wrote.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::replay::{converges, create_tables, source, workload};
use crate::common::*;

const DB: &str = "hadb";
const SESSION_MS: u64 = 3000;

use crate::serial;

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
    spawn_node_with(zk, client, out, start, &[])
}

fn spawn_node_with(
    zk: &str,
    client: &str,
    out: &std::path::Path,
    start: &str,
    extra: &[&str],
) -> Node {
    let http = free_port();
    let (zk, session, init, file, http_arg) = (
        format!("--zookeeper={zk}"),
        format!("--session_timeout_ms={SESSION_MS}"),
        format!("--init_position={start}"),
        format!("--output_file={}", out.display()),
        format!("--http_port={http}"),
    );
    let mut args = vec![
        "--ha",
        &zk,
        &session,
        "--connection_timeout_ms=2000",
        "--base_sleep_time_ms=100",
        client,
        &init,
        "--producer=file",
        &file,
        &http_arg,
    ];
    args.extend_from_slice(extra);
    let child = spawn_sluice(&args);
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
    let _serial = serial();
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
        assert!(http_get(n.http, "/metrics").is_some_and(|(c, m)| c == 200
            && m.contains("sluice_leader")
            && m.contains("sluice_zookeeper_session_connected 1")
            && m.contains("sluice_election_campaigns_total")));
    }
    assert_eq!(leaders(&nodes), vec![first]);
    // Standbys name the leader and its HTTP address.
    let leader_http = format!("127.0.0.1:{}", nodes[first].http);
    for n in &nodes {
        assert!(
            wait_for(Duration::from_secs(5), || {
                let (_, st) = http_get(n.http, "/status").unwrap();
                let st: serde_json::Value = serde_json::from_str(&st).unwrap();
                st["leader"]["http"] == leader_http.as_str() && st["session"] == "SyncConnected"
            }),
            "{:?}",
            http_get(n.http, "/status")
        );
    }

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

fn epoch_of(node: &Node) -> u64 {
    let (_, status) = http_get(node.http, "/status").unwrap();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    status["epoch"].as_u64().unwrap()
}

fn push_times(out: &std::path::Path) -> Vec<f64> {
    read_lines(out)
        .iter()
        .filter_map(|v| v["_push_timestamp"].as_f64())
        .collect()
}

/// The leader loses ZooKeeper (its only path to the ensemble stops
/// answering) while MySQL stays reachable: it stops producing before the
/// other node takes over, with a higher epoch; the two outputs do not
/// interleave in time, and together they replay to the source.
#[test]
fn a_leader_cut_off_from_zookeeper_stops_before_the_next_starts() {
    let _serial = serial();
    cut_off(Cut::Refused);
    cut_off(Cut::Silent);
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cut {
    /// Connections to ZooKeeper are closed and refused.
    Refused,
    /// Nothing is closed; nothing gets through (half-open).
    Silent,
}

fn cut_off(how: Cut) {
    eprintln!("cut: {how:?}");
    start_ensemble();
    let port = ensure_mariadb();
    let rt = runtime();
    let db = "hacut";
    let start = rt.block_on(async {
        let mut c = root_conn().await;
        create_tables(&mut c, db).await;
        master_position(&mut c).await
    });
    let dir = tempfile::tempdir().unwrap();
    let outs = [dir.path().join("n0.json"), dir.path().join("n1.json")];
    let client = unique_client_id();
    // Each node reaches the ensemble only through a proxy of its own.
    let proxies = [
        crate::common::proxy::Proxy::start(23181),
        crate::common::proxy::Proxy::start(23182),
    ];
    let nodes: Vec<Node> = (0..2)
        .map(|i| {
            spawn_node_with(
                &format!("127.0.0.1:{}", proxies[i].port),
                &client,
                &outs[i],
                &start,
                &["--output_push_timestamp=true"],
            )
        })
        .collect();
    let halt = Arc::new(AtomicBool::new(false));
    let writer = {
        let halt = halt.clone();
        let db = db.to_string();
        std::thread::spawn(move || workload(port, &db, 1, 50, halt))
    };
    assert!(
        wait_for(Duration::from_secs(30), || leaders(&nodes).len() == 1),
        "no leader"
    );
    let old = leaders(&nodes)[0];
    let new = 1 - old;
    assert!(wait_for(Duration::from_secs(10), || lines(&outs[old]) > 0));
    let old_epoch = epoch_of(&nodes[old]);

    match how {
        Cut::Refused => proxies[old].switch_to(free_port()), // nothing listens there
        Cut::Silent => proxies[old].freeze(true),
    }
    let t0 = Instant::now();
    assert!(
        wait_for(Duration::from_millis(SESSION_MS * 3), || leaders(&nodes)
            == vec![new]
            && lines(&outs[new]) > 0),
        "the other node did not take over: leaders {:?}",
        leaders(&nodes)
    );
    eprintln!("takeover after the cut: {:?}", t0.elapsed());
    assert!(epoch_of(&nodes[new]) > old_epoch);
    assert_eq!(
        http_get(nodes[old].http, "/leader").map(|r| r.0),
        Some(503),
        "the cut-off node still claims to lead"
    );
    let last_old = push_times(&outs[old]).into_iter().fold(f64::MIN, f64::max);
    let first_new = push_times(&outs[new]).into_iter().fold(f64::MAX, f64::min);
    assert!(
        last_old < first_new,
        "the two leaders' writes interleave: old leader wrote until {last_old}, new one from {first_new}"
    );
    // Reconnected, the old node is a standby: still exactly one leader.
    proxies[old].freeze(false);
    proxies[old].switch_to(23181 + old as u16);
    std::thread::sleep(Duration::from_millis(SESSION_MS));
    assert_eq!(leaders(&nodes), vec![new]);
    assert_eq!(
        lines(&outs[old]),
        push_times(&outs[old]).len(),
        "the old node wrote again"
    );

    halt.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let expected = rt.block_on(async { source(&mut root_conn().await, db).await });
    let combined = dir.path().join("combined.json");
    let replayed = wait_for(Duration::from_secs(60), || {
        let mut text = std::fs::read_to_string(&outs[old]).unwrap_or_default();
        text.push_str(&std::fs::read_to_string(&outs[new]).unwrap_or_default());
        std::fs::write(&combined, text).unwrap();
        crate::common::replay::apply(&combined, db) == expected
    });
    let mut errs = String::new();
    for mut n in nodes {
        if let Some(c) = n.child.take() {
            let o = stop(c);
            errs.push_str(&String::from_utf8_lossy(&o.stderr));
        }
    }
    assert!(
        replayed,
        "the combined output differs from the source\n{errs}"
    );
    assert!(errs.contains("stepping down"), "{errs}");
}

/// The whole ensemble restarts: the nodes find it again with new sessions,
/// elect one leader, and no row is lost.
#[test]
fn the_cluster_survives_a_full_ensemble_restart() {
    let _serial = serial();
    let zk = start_ensemble();
    let port = ensure_mariadb();
    let rt = runtime();
    let db = "harestart";
    let start = rt.block_on(async {
        let mut c = root_conn().await;
        create_tables(&mut c, db).await;
        master_position(&mut c).await
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let client = unique_client_id();
    let mut nodes: Vec<Node> = (0..2)
        .map(|_| spawn_node(&zk, &client, &out, &start))
        .collect();
    let halt = Arc::new(AtomicBool::new(false));
    let writer = {
        let halt = halt.clone();
        std::thread::spawn(move || workload(port, "harestart", 1, 50, halt))
    };
    next_leader_produces(&nodes, &out, Duration::from_secs(30)).expect("no leader produced");

    let zk_script = repo_root().join("scripts/zookeeper.sh");
    assert!(Command::new(&zk_script)
        .arg("stop")
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        wait_for(Duration::from_secs(5), || leaders(&nodes).is_empty()),
        "a node kept leading without ZooKeeper"
    );
    for n in &nodes {
        assert_eq!(http_get(n.http, "/healthcheck").map(|r| r.0), Some(200));
    }
    start_ensemble();
    let (_, took) = next_leader_produces(&nodes, &out, Duration::from_secs(30))
        .expect("no leader after the ensemble came back");
    eprintln!("leader producing {took:?} after the ensemble restarted");
    assert_eq!(leaders(&nodes).len(), 1);
    let before_wipe = epoch_of(&nodes[leaders(&nodes)[0]]);

    // The ensemble comes back without its data (epoch counter included):
    // the new leader's epoch still exceeds every epoch used before.
    assert!(Command::new(&zk_script)
        .arg("wipe")
        .status()
        .unwrap()
        .success());
    start_ensemble();
    let (leader, took) = next_leader_produces(&nodes, &out, Duration::from_secs(30))
        .expect("no leader after the ensemble lost its data");
    eprintln!("leader producing {took:?} after the ensemble came back empty");
    assert!(
        wait_for(Duration::from_secs(10), || leaders(&nodes) == vec![leader]
            && epoch_of(&nodes[leader]) > before_wipe),
        "epoch {} after the wipe, {before_wipe} before",
        epoch_of(&nodes[leader])
    );

    halt.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let expected = rt.block_on(async { source(&mut root_conn().await, db).await });
    let converged = converges(&out, db, &expected, Duration::from_secs(60));
    let mut errs = String::new();
    for n in nodes.iter_mut() {
        if let Some(c) = n.child.take() {
            errs.push_str(&String::from_utf8_lossy(&stop(c).stderr));
        }
    }
    if let Err(diff) = converged {
        panic!("the replayed copy differs:\n{diff}\n{errs}");
    }
}
