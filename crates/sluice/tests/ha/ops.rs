//! Operating a cluster: the status page in a real headless browser, the
//! cluster view over HTTPS with authentication, systemd readiness of a
//! standby, and the deploy/ files (alert rules through promtool, every
//! metric they and the dashboard name served by running nodes).

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::ops::*;
use crate::common::replay::{create_tables, workload};
use crate::common::*;
use crate::serial;

const SESSION_MS: u64 = 3000;

struct Node {
    child: Option<Child>,
    http: u16,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            stop(c);
        }
    }
}

fn start_ensemble() -> String {
    let out = Command::new(repo_root().join("scripts/zookeeper.sh"))
        .arg("start")
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/zookeeper.sh");
    assert!(out.status.success(), "the ZooKeeper ensemble did not start");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A node of the cluster `client` streaming from `start` into `out`.
fn spawn_node(
    zk: &str,
    client: &str,
    out: &std::path::Path,
    start: &str,
    extra: &[String],
    env: &[(&str, &str)],
) -> Node {
    let http = free_port();
    let child = Command::new(sluice_bin())
        .args(login_args(ensure_mariadb()))
        .args([
            "--log_level=warn",
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
        ])
        .arg(unique_server_id())
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice");
    Node {
        child: Some(child),
        http,
    }
}

/// A database with a writer: (start position, stop flag, writer thread).
fn workload_on(db: &str) -> (String, Arc<AtomicBool>, std::thread::JoinHandle<u64>) {
    let port = ensure_mariadb();
    let rt = runtime();
    let start = rt.block_on(async {
        let mut c = root_conn().await;
        create_tables(&mut c, db).await;
        master_position(&mut c).await
    });
    let halt = Arc::new(AtomicBool::new(false));
    let writer = {
        let (halt, db) = (halt.clone(), db.to_string());
        std::thread::spawn(move || workload(port, &db, 1, 20, halt))
    };
    (start, halt, writer)
}

fn leaders(nodes: &[Node]) -> Vec<usize> {
    (0..nodes.len())
        .filter(|&i| http_get(nodes[i].http, "/leader").is_some_and(|(c, _)| c == 200))
        .collect()
}

fn cluster_of(port: u16) -> Option<serde_json::Value> {
    let (code, body) = http_get(port, "/cluster")?;
    (code == 200).then(|| serde_json::from_str(&body).ok())?
}

/// The cluster as the node at `port` shows it: every node reachable, one
/// leader streaming.
fn shows_whole_cluster(c: &serde_json::Value, n: usize) -> bool {
    let nodes = c["nodes"].as_array().cloned().unwrap_or_default();
    nodes.len() == n
        && nodes.iter().all(|x| x["reachable"] == true)
        && nodes
            .iter()
            .filter(|x| x["status"]["role"] == "leader")
            .count()
            == 1
        && nodes.iter().any(|x| {
            x["status"]["role"] == "leader" && x["status"]["position"]["stored"].is_string()
        })
}

#[test]
fn status_page_in_a_headless_browser_shows_the_cluster() {
    let _gate = crate::common::module_gate(module_path!());
    let _serial = serial();
    let zk = start_ensemble();
    let (start, halt, writer) = workload_on("opspage");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let client = unique_client_id();
    let nodes: Vec<Node> = (0..3)
        .map(|_| spawn_node(&zk, &client, &out, &start, &[], &[]))
        .collect();
    assert!(
        wait_for(Duration::from_secs(30), || leaders(&nodes).len() == 1),
        "no leader"
    );
    let leader = leaders(&nodes)[0];
    let standby = (leader + 1) % 3;
    assert!(
        wait_for(Duration::from_secs(20), || cluster_of(nodes[standby].http)
            .is_some_and(|c| shows_whole_cluster(&c, 3))),
        "{:?}",
        cluster_of(nodes[standby].http)
    );

    // The page of a standby, as a browser renders it after its scripts ran.
    let url = format!("http://127.0.0.1:{}/", nodes[standby].http);
    let dom = chromium(&url, "--dump-dom", 5000);
    let rows = |role: &str| dom.matches(&format!("data-role=\"{role}\"")).count();
    assert_eq!(
        (rows("leader"), rows("standby"), rows("unreachable")),
        (1, 2, 0),
        "{dom}"
    );
    let leader_http = format!("127.0.0.1:{}", nodes[leader].http);
    assert!(
        dom.contains(&format!("data-role=\"leader\" data-http=\"{leader_http}\"")),
        "the leader row names another node: {dom}"
    );
    for n in &nodes {
        assert!(
            dom.contains(&format!("data-http=\"127.0.0.1:{}\"", n.http)),
            "{dom}"
        );
    }
    assert!(
        dom.contains("One leader streaming; all nodes reachable"),
        "{dom}"
    );
    assert!(
        dom.contains(&format!("@ {leader_http}</div>")),
        "leader card: {dom}"
    );
    assert!(dom.contains("ZooKeeper ok"), "{dom}");
    assert!(dom.contains("mysql-bin."), "positions: {dom}");
    assert!(!dom.contains("Loading…"), "{dom}");

    let shot = artifacts_dir().join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    chromium(&url, &format!("--screenshot={}", shot.display()), 5000);
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    eprintln!("status page screenshot: {}", shot.display());

    halt.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn the_cluster_view_works_over_https_with_auth_and_standbys_are_ready() {
    let _gate = crate::common::module_gate(module_path!());
    let _serial = serial();
    const PASSWORD: &str = "cluster-Secr3t";
    let auth = format!("ops:{PASSWORD}");
    let tls = tls_dir();
    let ca = tls.join("ca.pem");
    let zk = start_ensemble();
    let (start, halt, writer) = workload_on("opstls");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let client = unique_client_id();
    let sockets = [NotifySocket::new(), NotifySocket::new()];
    let mut nodes: Vec<Node> = sockets
        .iter()
        .map(|s| {
            spawn_node(
                &zk,
                &client,
                &out,
                &start,
                &tls_auth_args(&tls, &auth),
                &[("NOTIFY_SOCKET", s.path.to_str().unwrap())],
            )
        })
        .collect();
    // Both are ready as soon as they stand by as candidates.
    for s in &sockets {
        let first = s.recv(Duration::from_secs(30));
        assert_eq!(
            first.as_deref(),
            Some("READY=1\nSTATUS=standby, waiting to be elected")
        );
    }
    let is_leader = |n: &Node| curl(&ca, n.http, "/leader", None).is_some_and(|(c, _)| c == 200);
    assert!(
        wait_for(Duration::from_secs(30), || nodes
            .iter()
            .filter(|n| is_leader(n))
            .count()
            == 1),
        "no leader over HTTPS"
    );
    let leader = usize::from(!is_leader(&nodes[0]));
    let standby = 1 - leader;
    let status = sockets[leader].until(Duration::from_secs(10), |m| m.contains("STATUS=leader"));
    assert!(
        status
            .last()
            .is_some_and(|m| m.starts_with("STATUS=leader, streaming (epoch ")),
        "{status:?}"
    );

    // The standby fetches the leader's /status over HTTPS, authenticated.
    assert_eq!(
        curl(&ca, nodes[standby].http, "/cluster", None).map(|r| r.0),
        Some(401)
    );
    let mut last = None;
    let whole = wait_for(Duration::from_secs(20), || {
        last = curl(&ca, nodes[standby].http, "/cluster", Some(&auth))
            .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok());
        last.as_ref().is_some_and(|c| shows_whole_cluster(c, 2))
    });
    assert!(whole, "{last:?}");
    let c = last.unwrap();
    assert_eq!(c["ha"], true);
    assert_eq!(c["coordination"]["ok"], true);
    assert_eq!(
        c["leader"]["http"],
        format!("127.0.0.1:{}", nodes[leader].http)
    );
    assert_eq!(
        c["nodes"][0]["status"]["role"], "leader",
        "election order: {c}"
    );
    let text = c.to_string();
    assert!(!text.contains(PASSWORD), "the password shows in /cluster");

    halt.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    // A standby that stops says so too.
    let standby_child = nodes[standby].child.take().unwrap();
    unsafe_kill(standby_child.id(), 15);
    let stopping = sockets[standby].until(Duration::from_secs(10), |m| m.starts_with("STOPPING=1"));
    assert!(
        stopping.last().is_some_and(|m| m.starts_with("STOPPING=1")),
        "{stopping:?}"
    );
    let mut logs = String::from_utf8_lossy(&stop(standby_child).stderr).into_owned();
    let leader_child = nodes[leader].child.take().unwrap();
    logs.push_str(&String::from_utf8_lossy(&stop(leader_child).stderr));
    assert!(!logs.contains(PASSWORD), "the password shows in the log");
}

/// Metric names (with the default prefix) in PromQL text.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("sluice_") {
        let s = i + at;
        let boundary = s == 0 || !(bytes[s - 1].is_ascii_alphanumeric() || bytes[s - 1] == b'_');
        let e = s + text[s..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(text.len() - s);
        if boundary {
            names.insert(text[s..e].to_string());
        }
        i = e;
    }
    names
}

fn promtool(args: &[&str]) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(repo_root().join("deploy/prometheus"))
        .output()
        .expect("promtool (scripts/install-deps.sh installs Debian's prometheus)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn deploy_rules_pass_promtool_and_name_only_metrics_nodes_serve() {
    let _gate = crate::common::module_gate(module_path!());
    let rules =
        std::fs::read_to_string(repo_root().join("deploy/prometheus/sluice-alerts.yml")).unwrap();
    let (ok, text) = promtool(&["check", "rules", "sluice-alerts.yml"]);
    assert!(ok && text.contains("SUCCESS"), "{text}");
    let (ok, text) = promtool(&["test", "rules", "sluice-alerts.test.yml"]);
    assert!(ok && text.contains("SUCCESS"), "{text}");
    for alert in [
        "SluiceNoLeader",
        "SluiceTwoLeaders",
        "SluiceReplicationLagHigh",
        "SluiceBinlogDisconnected",
        "SluiceProducerFailing",
        "SluiceSnapshotFailed",
    ] {
        assert!(rules.contains(&format!("alert: {alert}\n")), "{alert}");
    }

    // Every expression of the dashboard is valid PromQL: promtool checks
    // them as recording rules.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("deploy/grafana/sluice-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(t["expr"].as_str().unwrap().to_string());
        }
        if panel["type"] != "row" {
            assert!(
                panel["targets"].is_array(),
                "a panel without a query: {panel}"
            );
        }
    }
    assert!(exprs.len() >= 20, "{}", exprs.len());
    let dir = tempfile::tempdir().unwrap();
    let as_rules = dir.path().join("dashboard-rules.yml");
    let mut yaml = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        yaml.push_str(&format!(
            "      - record: dashboard:expr_{i}\n        expr: {}\n",
            serde_json::Value::String(e.clone())
        ));
    }
    std::fs::write(&as_rules, yaml).unwrap();
    let (ok, text) = promtool(&["check", "rules", as_rules.to_str().unwrap()]);
    assert!(ok, "a dashboard expression is not PromQL: {text}");

    let mut named = metric_names(&rules);
    named.extend(exprs.iter().flat_map(|e| metric_names(e)));
    assert!(named.len() >= 30, "{named:?}");

    // A real cluster (leader and standby, with heartbeats and a producer)
    // serves every one of them.
    let _serial = serial();
    let zk = start_ensemble();
    let (start, halt, writer) = workload_on("opsmetrics");
    let out = dir.path().join("out.json");
    let client = unique_client_id();
    let nodes: Vec<Node> = (0..2)
        .map(|_| spawn_node(&zk, &client, &out, &start, &[], &[]))
        .collect();
    let served = |n: &Node| -> BTreeSet<String> {
        http_get(n.http, "/metrics")
            .map(|(_, m)| {
                m.lines()
                    .filter_map(|l| l.strip_prefix("# TYPE "))
                    .filter_map(|l| l.split_whitespace().next())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut missing = named.clone();
    let all_served = wait_for(Duration::from_secs(40), || {
        let mut union = BTreeSet::new();
        for n in &nodes {
            union.extend(served(n));
        }
        missing = named.difference(&union).cloned().collect();
        missing.is_empty() && leaders(&nodes).len() == 1
    });
    assert!(
        all_served,
        "named by deploy/ but not served by /metrics: {missing:?}"
    );
    halt.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn metric_names_are_found_in_promql() {
    let _gate = crate::common::module_gate(module_path!());
    let names = metric_names(
        "sum by (job) (sluice_leader) < 1 or absent(sluice_leader) + rate(x_sluice_no[5m]) / sluice_row_count{job=~\"$job\"}",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["sluice_leader", "sluice_row_count"]
    );
}
