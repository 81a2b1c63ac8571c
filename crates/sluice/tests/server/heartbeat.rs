//! The replication session asks for heartbeats and enforces a read deadline
//! derived from them: an idle but healthy server keeps the session, a frozen
//! one (SIGSTOP) is detected instead of waited on forever, and sluice
//! reconnects by itself once the server answers again.

use std::time::Duration;

use crate::common::*;
use mysql_async::prelude::Queryable;

const PORT: u16 = 23309;

#[test]
fn idle_server_is_kept_frozen_server_is_detected_and_left() {
    let _gate = crate::common::module_gate(module_path!());
    ensure_extra_mariadb(PORT, "row");
    let rt = runtime();
    let mut c = rt.block_on(root_conn_at(PORT)).unwrap();
    rt.block_on(async {
        c.query_drop("DROP DATABASE IF EXISTS hb").await.unwrap();
        c.query_drop("CREATE DATABASE hb").await.unwrap();
        c.query_drop("CREATE TABLE hb.t (id INT PRIMARY KEY)")
            .await
            .unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let mut child = std::process::Command::new(sluice_bin())
        .arg("--http_port=0")
        .args([
            "--host=127.0.0.1",
            &format!("--port={PORT}"),
            "--user=root",
            "--binlog_heartbeat_period_ms=200",
            "--mysql_connect_timeout_ms=1000",
            "--log_level=warn",
            "--producer=file",
            &format!("--output_file={}", out.display()),
            &unique_client_id(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The read deadline is max(3 x 200 ms, 200 ms + 2 s) = 2.2 s: an idle
    // stream twice that long must survive on heartbeats alone.
    std::thread::sleep(Duration::from_millis(4500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "sluice died on an idle but healthy server"
    );

    let server = server_pid(PORT);
    unsafe_kill(server, 19); // SIGSTOP: the socket stays open, nothing arrives
    {
        let _thaw = Thaw(server);
        std::thread::sleep(Duration::from_secs(5));
        assert!(
            child.try_wait().unwrap().is_none(),
            "sluice must keep trying, not exit"
        );
    }
    // Thawed: new rows arrive through a new session.
    rt.block_on(c.query_drop("INSERT INTO hb.t VALUES (1)"))
        .unwrap();
    let arrived = wait_for(Duration::from_secs(30), || {
        read_lines(&out)
            .iter()
            .any(|v| v["database"] == "hb" && v["data"]["id"] == 1)
    });
    let output = stop(child);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(arrived, "row after the freeze never arrived:\n{err}");
    assert!(output.status.success(), "{err}");
    assert!(
        err.contains("read deadline") && err.contains("reconnected"),
        "{err}"
    );
}
