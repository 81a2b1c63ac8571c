//! The private ZooKeeper ensemble (scripts/zookeeper.sh) that the HA tests
//! and the README use: three nodes form a quorum with exactly one leader,
//! keep serving with one node down, come back after a full restart, and
//! start empty after a wipe.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

const BASE: u16 = 23181;

fn zk(args: &[&str]) -> (bool, String) {
    let out = Command::new(repo_root().join("scripts/zookeeper.sh"))
        .args(args)
        .env("SLUICE_ZK_PORT", BASE.to_string())
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/zookeeper.sh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn modes() -> Vec<String> {
    let (_, status) = zk(&["status"]);
    status
        .lines()
        .map(|l| l.rsplit(": ").next().unwrap_or("").trim().to_string())
        .collect()
}

fn one_leader_two_followers() -> bool {
    let mut m = modes();
    m.sort();
    m == ["follower", "follower", "leader"]
}

#[test]
fn ensemble_forms_a_quorum_and_survives_restarts() {
    let _serial = crate::serial();
    let (ok, connect) = zk(&["start"]);
    assert!(ok, "the ensemble did not start");
    assert_eq!(
        connect.trim(),
        "127.0.0.1:23181,127.0.0.1:23182,127.0.0.1:23183"
    );
    assert!(
        wait_for(Duration::from_secs(10), one_leader_two_followers),
        "{:?}",
        modes()
    );

    // One node down: the other two still serve.
    assert!(zk(&["stop", "1"]).0);
    assert!(wait_for(Duration::from_secs(10), || {
        let m = modes();
        m[0] == "stopped" && m[1..].iter().all(|x| x == "leader" || x == "follower")
    }));
    // The whole ensemble restarted, then wiped: a quorum again each time.
    assert!(zk(&["stop"]).0);
    assert_eq!(modes(), ["stopped", "stopped", "stopped"]);
    assert!(zk(&["start"]).0);
    assert!(
        wait_for(Duration::from_secs(10), one_leader_two_followers),
        "{:?}",
        modes()
    );
    assert!(zk(&["wipe"]).0);
    assert!(zk(&["start"]).0);
    assert!(
        wait_for(Duration::from_secs(10), one_leader_two_followers),
        "{:?}",
        modes()
    );
    assert!(zk(&["stop"]).0);
}
