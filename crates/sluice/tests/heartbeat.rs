//! The replication session asks for heartbeats and enforces a read deadline
//! derived from them: an idle but healthy server keeps sluice running, a
//! frozen one (SIGSTOP) is detected instead of waited on forever.

mod common;

use std::time::{Duration, Instant};

use common::*;

const PORT: u16 = 23309;

struct Thaw(u32);

impl Drop for Thaw {
    fn drop(&mut self) {
        unsafe_kill(self.0, 18); // SIGCONT, whatever happened
    }
}

#[test]
fn idle_server_is_kept_frozen_server_is_detected() {
    ensure_extra_mariadb(PORT, "row");
    let pid_file = repo_root().join(format!(".run/mariadb-{PORT}/mysqld.pid"));
    let server_pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut child = std::process::Command::new(sluice_bin())
        .args([
            "--host=127.0.0.1",
            &format!("--port={PORT}"),
            "--user=root",
            "--binlog_heartbeat_period_ms=200",
            "--log_level=warn",
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

    unsafe_kill(server_pid, 19); // SIGSTOP
    let _thaw = Thaw(server_pid);
    let frozen_at = Instant::now();
    let exited = wait_for(Duration::from_secs(15), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    let waited = frozen_at.elapsed();
    if !exited {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        exited,
        "sluice did not notice the frozen server within 15 s"
    );
    assert!(
        waited >= Duration::from_millis(1500),
        "gave up after {waited:?}, before the deadline"
    );
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("read deadline"), "{err}");
}
