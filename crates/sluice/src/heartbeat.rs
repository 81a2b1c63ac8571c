//! Heartbeats written into the binlog while this node leads (Maxwell's
//! `heartbeats` table): reading one back confirms an idle position and
//! measures the replication lag. When they are written but never come back
//! (a replica that does not replicate `schema_database`), the writer says
//! so once, with the cause to fix.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::positions::Heartbeater;
use crate::telemetry::{unix_millis, Role, Telemetry};

/// Heartbeats written without one read back before the writer warns.
pub const UNREAD_INTERVALS: u32 = 10;

/// Writes a heartbeat every `every` while this node leads; runs until
/// aborted. `unread_hint` is said (once per silence) when more than
/// [`UNREAD_INTERVALS`] heartbeats in a row have not come back although the
/// reader has reached the end of the binlog since.
pub async fn write_heartbeats(
    beats: Heartbeater,
    every: Duration,
    telemetry: Arc<Telemetry>,
    unread_hint: String,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    let mut watch = ReadBack::default();
    loop {
        tick.tick().await;
        if telemetry.role() != Role::Leader {
            continue;
        }
        let value = unix_millis();
        match beats.beat(value).await {
            Ok(()) => {
                telemetry.heartbeats_written.fetch_add(1, Relaxed);
                telemetry.heartbeat_written_ms.store(value, Relaxed);
                failing = false;
                let (reads, end) = (
                    telemetry.heartbeats_read.load(Relaxed),
                    telemetry.binlog_end_reached_ms.load(Relaxed),
                );
                if watch.written(reads, end, value) {
                    tracing::warn!(unread = UNREAD_INTERVALS + 1, "{unread_hint}");
                }
            }
            // The binlog reader reports the outage; say it once here.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "cannot write a heartbeat; retrying");
            }
            Err(_) => {}
        }
    }
}

/// Why heartbeats may not come back, for this configuration.
pub fn unread_hint(cfg: &Config) -> String {
    let (state, replication) = (
        cfg.servers.state.address(),
        cfg.servers.replication.address(),
    );
    let db = &cfg.schema_database;
    let consequence = "Until they do, an idle stream's position is stored only when replicated data commits, and lag is not measured";
    if state != replication {
        format!(
            "heartbeats written to {db}.heartbeats on {state} (host) do not come back through the binlog of \
             {replication} (replication_host), which sluice has read to its end: the replica must replicate {db} \
             and log what it applies: log_slave_updates=ON (MySQL 8: log_replica_updates=ON), and no \
             replicate-ignore-db, replicate-wild-ignore-table or replicate-do-db rule that leaves {db} out. \
             {consequence}"
        )
    } else {
        format!(
            "heartbeats written to {db}.heartbeats on {state} do not come back through its binlog, which sluice \
             has read to its end: the server must log writes to {db} (no binlog-ignore-db or binlog-do-db rule \
             that leaves it out). {consequence}"
        )
    }
}

/// Counts heartbeats written since one was last read back, and says when
/// the silence cannot be explained by a reader that is behind or stuck.
#[derive(Debug, Default)]
struct ReadBack {
    /// The reader's count of heartbeats read, at the last write.
    reads: u64,
    unread: u32,
    /// When the first heartbeat not read back was written (unix ms).
    first_unread_ms: u64,
    warned: bool,
}

impl ReadBack {
    /// A heartbeat was written at `now_ms`; `reads` is how many have been
    /// read back so far, `end_reached_ms` when the reader last reached the
    /// end of the binlog. True when it is time to warn (once per silence):
    /// more than [`UNREAD_INTERVALS`] heartbeats unread, and the end of the
    /// binlog read after the first of them was written, so it would have
    /// been read had the binlog held it. A reader catching up on a backlog
    /// or a producer that blocks the stream does not reach the end.
    fn written(&mut self, reads: u64, end_reached_ms: u64, now_ms: u64) -> bool {
        if reads != self.reads || self.unread == 0 {
            self.reads = reads;
            self.unread = 0;
            self.first_unread_ms = now_ms;
            self.warned = false;
        }
        self.unread = self.unread.saturating_add(1);
        let silent = self.unread > UNREAD_INTERVALS && end_reached_ms > self.first_unread_ms;
        if silent && !self.warned {
            self.warned = true;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY: u64 = 100;

    #[test]
    fn warns_once_when_the_end_of_the_binlog_was_read_without_them() {
        let mut w = ReadBack::default();
        let mut now = 1_000_000;
        // The binlog's end is read all along, after each write.
        for _ in 0..UNREAD_INTERVALS {
            now += EVERY;
            assert!(
                !w.written(0, now - 1, now),
                "the first heartbeats need a moment"
            );
        }
        now += EVERY;
        assert!(
            w.written(0, now - 1, now),
            "warns after {UNREAD_INTERVALS} unread intervals"
        );
        for _ in 0..50 {
            now += EVERY;
            assert!(!w.written(0, now - 1, now), "warns only once per silence");
        }
        // Heartbeats come back: the silence is over; a new one is said again.
        for reads in 1..30 {
            now += EVERY;
            assert!(!w.written(reads, now - 1, now));
        }
        for _ in 1..UNREAD_INTERVALS {
            now += EVERY;
            assert!(!w.written(29, now - 1, now));
        }
        now += EVERY;
        assert!(w.written(29, now - 1, now), "a new silence is said again");
    }

    #[test]
    fn a_reader_behind_or_stuck_is_no_reason_to_warn() {
        let mut w = ReadBack::default();
        let mut now = 1_000_000;
        // The end of the binlog was last reached before the first unread
        // heartbeat: catching up, or a producer blocking the stream.
        let reached = now - 5;
        for _ in 0..100 {
            now += EVERY;
            assert!(!w.written(0, reached, now));
        }
        // Once the end is reached after them, the silence is real.
        now += EVERY;
        assert!(w.written(0, now - 1, now));
    }

    #[test]
    fn heartbeats_read_back_keep_it_quiet() {
        let mut w = ReadBack::default();
        let mut now = 1_000_000;
        for reads in 0..1000 {
            now += EVERY;
            // One read every few writes.
            assert!(!w.written(reads / 3, now - 1, now));
        }
    }
}
