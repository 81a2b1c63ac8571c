//! High availability against a real three-node ZooKeeper ensemble and several sluice nodes.
//! One test binary per group of tests that share servers (a binary links
//! the whole daemon once).

#[path = "../common/mod.rs"]
mod common;

mod bootstrap_failover;
mod ha;
mod ops;
mod zookeeper_ensemble;

/// Every test here shares the one ensemble, and some stop, freeze or wipe
/// it: one test at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}
