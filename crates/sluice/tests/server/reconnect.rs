//! MySQL restarted twice mid-stream (once down for 30 s) and frozen past the
//! read deadline once: sluice keeps running, recovers by itself, and the
//! replay check holds: its output, applied in order to an empty copy keyed
//! by primary key, equals the source tables.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::replay::{converges, create_tables, source, workload};
use crate::common::*;

const PORT: u16 = 23310;
const DB: &str = "replay";

#[test]
fn survives_restarts_and_a_freeze_without_losing_a_row() {
    let _gate = crate::common::module_gate(module_path!());
    ensure_extra_mariadb(PORT, "row");
    let rt = runtime();
    let start = rt.block_on(async {
        let mut c = root_conn_at(PORT).await.unwrap();
        create_tables(&mut c, DB).await;
        master_position(&mut c).await
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let http = free_port();
    let child = std::process::Command::new(sluice_bin())
        .arg(format!("--http_port={http}"))
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
        std::thread::spawn(move || workload(PORT, DB, 1, 200, halt))
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

    let expected = rt.block_on(async { source(&mut root_conn_at(PORT).await.unwrap(), DB).await });
    assert!(
        expected.values().map(|t| t.len()).sum::<usize>() > 100,
        "the workload wrote too little"
    );
    let converged = converges(&out, DB, &expected, Duration::from_secs(60));
    // The outages are counted where an operator looks.
    let (code, metrics) = http_get(http, "/metrics").expect("sluice answers /metrics");
    assert_eq!(code, 200);
    let metric = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
    };
    let output = stop(child);
    let err = String::from_utf8_lossy(&output.stderr);
    if let Err(diff) = converged {
        panic!("the replayed copy differs from the source:\n{diff}\n{err}");
    }
    assert!(output.status.success(), "{err}");
    assert!(
        err.matches("reconnected").count() >= 3,
        "expected three recoveries:\n{err}"
    );
    assert!(metric("sluice_binlog_reconnects_total") >= 3.0, "{metrics}");
    assert!(
        metric("sluice_binlog_disconnected_seconds_total") >= 30.0,
        "the 30 s outage is counted: {metrics}"
    );
    assert_eq!(metric("sluice_binlog_connected"), 1.0, "{metrics}");
}

#[test]
fn a_different_server_behind_the_address_stops_sluice() {
    let _gate = crate::common::module_gate(module_path!());
    const P: u16 = 23311;
    ensure_extra_mariadb(P, "row");
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(sluice_bin())
        .arg("--http_port=0")
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
