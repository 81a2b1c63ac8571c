//! Every node serves HTTP from process start: /ping, /healthcheck,
//! /leader, /status and /metrics, also while it is still connecting, and
//! under `http_path_prefix`.

use std::time::Duration;

use crate::common::*;
use mysql_async::prelude::Queryable;

fn metric(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
}

#[test]
fn answers_while_still_connecting() {
    let _gate = crate::common::module_gate(module_path!());
    // A "server" that accepts connections and never says a word: sluice
    // is stuck in its startup connect for the whole timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in silent.incoming().take(4) {
            conns.push(c);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let http = free_port();
    let mut child = std::process::Command::new(sluice_bin())
        .args([
            "--host=127.0.0.1",
            &format!("--port={port}"),
            "--mysql_connect_timeout_ms=20000",
            &format!("--http_port={http}"),
            "--log_level=warn",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || http_get(http, "/ping")
            .is_some()),
        "no HTTP answer while starting"
    );
    assert_eq!(http_get(http, "/ping"), Some((200, "pong\n".into())));
    // Not healthy before it streams: starting, and what it waits for.
    let (code, body) = http_get(http, "/healthcheck").unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("starting"), "{body}");
    assert_eq!(http_get(http, "/leader"), Some((503, "starting\n".into())));
    let (code, status) = http_get(http, "/status").unwrap();
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["role"], "starting", "{status}");
    assert_eq!(status["leader"], serde_json::Value::Null, "{status}");
    let (code, metrics) = http_get(http, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert_eq!(metric(&metrics, "sluice_up"), Some(1.0), "{metrics}");
    assert_eq!(metric(&metrics, "sluice_leader"), Some(0.0), "{metrics}");
    assert_eq!(
        metric(&metrics, "sluice_row_count"),
        None,
        "a node that does not lead exports no pipeline figures: {metrics}"
    );
    assert_eq!(http_get(http, "/nothing-here").unwrap().0, 404);
    let _ = child.kill();
    let _ = child.wait();
    drop(held);
}

#[test]
fn a_streaming_node_reports_progress_under_a_prefix() {
    let _gate = crate::common::module_gate(module_path!());
    let rt = runtime();
    let db = "httpdb";
    let start = rt.block_on(async {
        let mut c = root_conn().await;
        c.query_drop(format!("DROP DATABASE IF EXISTS {db}"))
            .await
            .unwrap();
        c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
        c.query_drop(format!("CREATE TABLE {db}.t (id INT PRIMARY KEY)"))
            .await
            .unwrap();
        master_position(&mut c).await
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let http = free_port();
    let child = spawn_sluice(&[
        &format!("--init_position={start}"),
        "--producer=file",
        &format!("--output_file={}", out.display()),
        &format!("--http_port={http}"),
        "--http_path_prefix=/cdc/",
        "--metrics_prefix=MaxwellMetrics",
    ]);
    rt.block_on(async {
        root_conn()
            .await
            .query_drop(format!("INSERT INTO {db}.t VALUES (1),(2),(3),(4),(5)"))
            .await
            .unwrap()
    });
    assert!(wait_for(Duration::from_secs(20), || {
        http_get(http, "/cdc/metrics")
            .and_then(|(_, m)| metric(&m, "MaxwellMetrics_row_count"))
            .is_some_and(|n| n >= 5.0)
    }));
    assert_eq!(
        http_get(http, "/cdc/leader"),
        Some((200, "leader\n".into()))
    );
    assert_eq!(
        http_get(http, "/ping").unwrap().0,
        404,
        "outside the prefix"
    );
    assert_eq!(http_get(http, "/cdc/ping").unwrap().0, 200);
    assert!(wait_for(Duration::from_secs(5), || {
        let (_, s) = http_get(http, "/cdc/status").unwrap();
        let s: serde_json::Value = serde_json::from_str(&s).unwrap();
        s["role"] == "leader"
            && s["binlog"]["connected"] == true
            && s["position"]["stored"].is_string()
            && s["leader"]["http"] == format!("127.0.0.1:{http}")
            && s["leader"]["identity"].is_string()
    }));
    let (_, metrics) = http_get(http, "/cdc/metrics").unwrap();
    assert_eq!(
        metric(&metrics, "MaxwellMetrics_binlog_connected"),
        Some(1.0)
    );
    assert!(metric(&metrics, "MaxwellMetrics_position_stores_total").is_some_and(|n| n >= 1.0));
    let output = stop(child);
    assert!(output.status.success());
    assert_eq!(
        read_lines(&out)
            .iter()
            .filter(|v| v["database"] == db)
            .count(),
        5
    );
}

#[test]
fn a_taken_http_port_is_a_clear_startup_error() {
    let _gate = crate::common::module_gate(module_path!());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (code, err) = run_sluice(
        &[
            "--host=127.0.0.1",
            &format!("--http_port={port}"),
            "--log_level=warn",
        ],
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("--http_port") && err.contains(&port.to_string()),
        "{err}"
    );
}
