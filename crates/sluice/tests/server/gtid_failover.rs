//! gtid_mode across a failover: sluice reads a primary through an address
//! that, mid-stream, starts pointing at the primary's replica (another
//! server_id, other binlog files and offsets, the same GTIDs). sluice sees
//! the new identity, continues from its GTID position, and the replay check
//! holds over the rows written on both servers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::proxy::Proxy;
use crate::common::replay::{converges, create_tables, source, workload};
use crate::common::replica::{gtid_pos, replicate, start_server};
use crate::common::*;
use mysql_async::prelude::Queryable;

const PRIMARY: u16 = 23312;
const REPLICA: u16 = 23313;
const DB: &str = "failover";

fn run_workload(port: u16, first_id: i64, secs: u64) -> u64 {
    let halt = Arc::new(AtomicBool::new(false));
    let h = halt.clone();
    let writer = std::thread::spawn(move || workload(port, DB, first_id, 100, h));
    std::thread::sleep(Duration::from_secs(secs));
    halt.store(true, Ordering::Relaxed);
    writer.join().unwrap()
}

#[test]
fn follows_a_failover_by_gtid() {
    let _gate = crate::common::module_gate(module_path!());
    start_server(PRIMARY, "1");
    start_server(REPLICA, "2");
    let rt = runtime();
    rt.block_on(async {
        replicate(PRIMARY, REPLICA, &[DB, "maxwell"], &[]).await;
        let mut p = root_conn_at(PRIMARY).await.unwrap();
        create_tables(&mut p, DB).await;
    });

    let proxy = Proxy::start(PRIMARY);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let http = free_port();
    let mut child = std::process::Command::new(sluice_bin())
        .args([
            "--host=127.0.0.1",
            &format!("--port={}", proxy.port),
            "--user=root",
            "--gtid_mode=true",
            "--binlog_heartbeat_period_ms=500",
            "--mysql_connect_timeout_ms=1000",
            "--replication_reconnect_max_backoff_ms=1000",
            "--log_level=warn",
            "--producer=file",
            &format!("--output_file={}", out.display()),
            &format!("--http_port={http}"),
            &unique_client_id(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || http_get(http, "/leader")
            .is_some_and(|(c, _)| c == 200)),
        "sluice did not start streaming"
    );

    let on_primary = run_workload(PRIMARY, 1, 3);
    // Failover: once the replica has everything, the primary goes away and
    // the address leads to the promoted replica.
    let caught_up = wait_for(Duration::from_secs(30), || {
        rt.block_on(async {
            gtid_pos(PRIMARY, "gtid_binlog_pos").await == gtid_pos(REPLICA, "gtid_slave_pos").await
        })
    });
    assert!(caught_up, "the replica did not catch up");
    stop_extra_mariadb(PRIMARY);
    rt.block_on(async {
        let mut r = root_conn_at(REPLICA).await.unwrap();
        r.query_drop("STOP SLAVE").await.unwrap();
        r.query_drop("RESET SLAVE ALL").await.unwrap();
    });
    proxy.switch_to(REPLICA);
    let on_replica = run_workload(REPLICA, 1_000_000, 3);
    assert!(
        on_primary > 10 && on_replica > 10,
        "{on_primary} / {on_replica} transactions"
    );

    let expected =
        rt.block_on(async { source(&mut root_conn_at(REPLICA).await.unwrap(), DB).await });
    let converged = converges(&out, DB, &expected, Duration::from_secs(60));
    let alive = child.try_wait().unwrap().is_none();
    let output = stop(child);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(alive, "sluice exited:\n{err}");
    if let Err(diff) = converged {
        panic!("the replayed copy differs from the source:\n{diff}\n{err}");
    }
    assert!(
        err.contains("continuing from the GTID position") && err.contains("server_id 2"),
        "{err}"
    );
    assert!(output.status.success(), "{err}");
    // The position now belongs to the new server, and carries its GTID.
    let stored: Option<(u32, String)> = rt.block_on(async {
        root_conn_at(REPLICA)
            .await
            .unwrap()
            .query_first("SELECT server_id, gtid_set FROM maxwell.positions ORDER BY heartbeat_at DESC LIMIT 1")
            .await
            .unwrap()
    });
    let (server, gtid) = stored.expect("a stored position");
    assert_eq!(server, 2);
    assert!(gtid.starts_with("0-2-"), "{gtid}");
    stop_extra_mariadb(REPLICA);
}
