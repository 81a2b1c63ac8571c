//! What a running node knows about itself, shared by the reader, the
//! processor and the HTTP server: role, connection state, progress, and the
//! counters exported as Prometheus metrics. Plain atomics: updating a metric
//! never blocks the pipeline.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A node's part in its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// Connecting, checking the server, restoring state.
    Starting = 0,
    /// Reading the binlog and producing.
    Leader = 1,
    /// Alive, not producing (waiting to be elected).
    Standby = 2,
    /// Shutting down.
    Stopping = 3,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Starting => "starting",
            Role::Leader => "leader",
            Role::Standby => "standby",
            Role::Stopping => "stopping",
        }
    }

    fn from_u8(v: u8) -> Role {
        match v {
            1 => Role::Leader,
            2 => Role::Standby,
            3 => Role::Stopping,
            _ => Role::Starting,
        }
    }
}

/// How this node names itself to others: host name and process id.
pub fn node_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}", std::process::id())
}

pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Positions as text, for /status.
#[derive(Default, Clone)]
struct Positions {
    /// The last transaction boundary the processor handled.
    processed: String,
    /// The last position made durable in the position store.
    stored: String,
}

pub struct Telemetry {
    pub client_id: String,
    pub metrics_prefix: String,
    started: Instant,
    role: AtomicU8,
    epoch: AtomicU64,
    /// A fatal error: the node is about to exit (reported by /healthcheck).
    fatal: Mutex<Option<String>>,
    positions: Mutex<Positions>,
    /// ZooKeeper session state ("none" without leader election).
    session: Mutex<String>,
    /// The leader's record as a standby last read it (JSON).
    leader_record: Mutex<Option<String>>,

    // The binlog connection.
    binlog_connected: AtomicBool,
    /// Since when the binlog connection is down, as ms since `started`
    /// (u64::MAX: connected or never connected).
    down_since_ms: AtomicU64,
    pub reconnects: AtomicU64,
    /// Leader election: campaigns started and terms won.
    pub campaigns: AtomicU64,
    pub elections_won: AtomicU64,
    /// Completed outages, in microseconds.
    disconnected_us: AtomicU64,
    pub binlog_events: AtomicU64,
    pub binlog_bytes: AtomicU64,

    // The pipeline.
    pub rows_emitted: AtomicU64,
    /// DDL statements followed (schema changed and recorded).
    pub ddl_applied: AtomicU64,
    /// DDL statements skipped with ddl_parse_errors=skip.
    pub ddl_skipped: AtomicU64,
    /// Producer rebuilds (SIGHUP).
    pub producer_rebuilds: AtomicU64,
    /// Counters of an acknowledging producer (Kafka), once it exists.
    pub producer: std::sync::OnceLock<std::sync::Arc<sluice_sinks::ProducerStats>>,
    pub producer_flushes: AtomicU64,
    pub position_stores: AtomicU64,
    pub position_store_failures: AtomicU64,
    /// Commit timestamp (s) of the last transaction processed.
    pub last_commit_ts: AtomicU64,

    // Heartbeats written into the binlog and read back from it.
    pub heartbeats_written: AtomicU64,
    pub heartbeats_read: AtomicU64,
    /// Value (unix ms) of the newest heartbeat written.
    pub heartbeat_written_ms: AtomicU64,
    /// Value (unix ms) of the newest heartbeat read back, and the delay
    /// between its writing and its reading.
    pub heartbeat_read_ms: AtomicU64,
    pub heartbeat_read_delay_ms: AtomicU64,
}

const NOT_DOWN: u64 = u64::MAX;

impl Telemetry {
    pub fn new(client_id: &str, metrics_prefix: &str) -> Self {
        Telemetry {
            client_id: client_id.to_string(),
            metrics_prefix: metrics_prefix.to_string(),
            started: Instant::now(),
            role: AtomicU8::new(Role::Starting as u8),
            epoch: AtomicU64::new(0),
            fatal: Mutex::new(None),
            positions: Mutex::new(Positions::default()),
            session: Mutex::new("none".into()),
            leader_record: Mutex::new(None),
            binlog_connected: AtomicBool::new(false),
            down_since_ms: AtomicU64::new(NOT_DOWN),
            reconnects: AtomicU64::new(0),
            campaigns: AtomicU64::new(0),
            elections_won: AtomicU64::new(0),
            disconnected_us: AtomicU64::new(0),
            binlog_events: AtomicU64::new(0),
            binlog_bytes: AtomicU64::new(0),
            rows_emitted: AtomicU64::new(0),
            ddl_applied: AtomicU64::new(0),
            ddl_skipped: AtomicU64::new(0),
            producer_rebuilds: AtomicU64::new(0),
            producer: std::sync::OnceLock::new(),
            producer_flushes: AtomicU64::new(0),
            position_stores: AtomicU64::new(0),
            position_store_failures: AtomicU64::new(0),
            last_commit_ts: AtomicU64::new(0),
            heartbeats_written: AtomicU64::new(0),
            heartbeats_read: AtomicU64::new(0),
            heartbeat_written_ms: AtomicU64::new(0),
            heartbeat_read_ms: AtomicU64::new(0),
            heartbeat_read_delay_ms: AtomicU64::new(0),
        }
    }

    pub fn role(&self) -> Role {
        Role::from_u8(self.role.load(Relaxed))
    }

    pub fn set_role(&self, role: Role) {
        self.role.store(role as u8, Relaxed);
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Relaxed)
    }

    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Relaxed);
    }

    pub fn set_fatal(&self, message: String) {
        if let Ok(mut f) = self.fatal.lock() {
            f.get_or_insert(message);
        }
    }

    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().ok().and_then(|f| f.clone())
    }

    fn since_start_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn binlog_connected(&self) {
        self.binlog_connected.store(true, Relaxed);
        let since = self.down_since_ms.swap(NOT_DOWN, Relaxed);
        if since != NOT_DOWN {
            let outage = self.since_start_ms().saturating_sub(since);
            self.disconnected_us.fetch_add(outage * 1000, Relaxed);
        }
    }

    pub fn binlog_disconnected(&self) {
        if self.binlog_connected.swap(false, Relaxed) {
            self.down_since_ms.store(self.since_start_ms(), Relaxed);
        }
    }

    /// Seconds the binlog connection has been down, counting a current outage.
    pub fn seconds_disconnected(&self) -> f64 {
        let mut us = self.disconnected_us.load(Relaxed);
        let since = self.down_since_ms.load(Relaxed);
        if since != NOT_DOWN {
            us += self.since_start_ms().saturating_sub(since) * 1000;
        }
        us as f64 / 1e6
    }

    /// How long the current outage of the binlog connection has lasted.
    pub fn current_outage(&self) -> Option<Duration> {
        let since = self.down_since_ms.load(Relaxed);
        (since != NOT_DOWN)
            .then(|| Duration::from_millis(self.since_start_ms().saturating_sub(since)))
    }

    pub fn set_session(&self, s: String) {
        if let Ok(mut v) = self.session.lock() {
            *v = s;
        }
    }

    /// `record`: the JSON the leader wrote into ZooKeeper.
    pub fn set_leader_record(&self, record: Option<String>) {
        let valid = record.filter(|r| serde_json::from_str::<serde_json::Value>(r).is_ok());
        if let Ok(mut v) = self.leader_record.lock() {
            *v = valid;
        }
    }

    pub fn session(&self) -> String {
        self.session.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn set_processed_position(&self, p: String) {
        if let Ok(mut s) = self.positions.lock() {
            s.processed = p;
        }
    }

    pub fn set_stored_position(&self, p: String) {
        if let Ok(mut s) = self.positions.lock() {
            s.stored = p;
        }
    }

    /// Replication lag in ms measured by heartbeats through the binlog: the
    /// delay of the last heartbeat read back, or, if a newer one is written
    /// and not read yet, how long it has been waiting. None before the first
    /// heartbeat is read.
    pub fn lag_ms(&self) -> Option<u64> {
        let read = self.heartbeat_read_ms.load(Relaxed);
        if read == 0 {
            return None;
        }
        let delay = self.heartbeat_read_delay_ms.load(Relaxed);
        let written = self.heartbeat_written_ms.load(Relaxed);
        if written > read {
            Some(delay.max(unix_millis().saturating_sub(written)))
        } else {
            Some(delay)
        }
    }

    pub fn status_json(&self, http_address: &str, session: &str) -> String {
        let p = self.positions.lock().map(|p| p.clone()).unwrap_or_default();
        let role = self.role();
        let leader = if role == Role::Leader {
            // The same shape as the record the leader keeps in ZooKeeper.
            format!(
                "{{\"identity\":{},\"http\":{},\"epoch\":{}}}",
                json_str(&node_identity()),
                json_str(http_address),
                self.epoch()
            )
        } else {
            self.leader_record
                .lock()
                .ok()
                .and_then(|r| r.clone())
                .unwrap_or_else(|| "null".into())
        };
        format!(
            "{{\"role\":\"{}\",\"client_id\":{},\"epoch\":{},\"leader\":{},\"session\":{},\
             \"binlog\":{{\"connected\":{},\"reconnects\":{},\"seconds_disconnected\":{:.3}}},\
             \"position\":{{\"processed\":{},\"stored\":{}}},\"lag_ms\":{},\"rows\":{},\
             \"uptime_seconds\":{:.3},\"fatal\":{}}}",
            role.name(),
            json_str(&self.client_id),
            self.epoch(),
            leader,
            json_str(session),
            self.binlog_connected.load(Relaxed),
            self.reconnects.load(Relaxed),
            self.seconds_disconnected(),
            json_or_null(&p.processed),
            json_or_null(&p.stored),
            self.lag_ms()
                .map(|l| l.to_string())
                .unwrap_or_else(|| "null".into()),
            self.rows_emitted.load(Relaxed),
            self.started.elapsed().as_secs_f64(),
            self.fatal()
                .map(|f| json_str(&f))
                .unwrap_or_else(|| "null".into()),
        )
    }

    /// Prometheus text exposition (version 0.0.4).
    pub fn prometheus(&self) -> String {
        let mut out = String::with_capacity(4096);
        let mut m = Exporter {
            out: &mut out,
            prefix: &self.metrics_prefix,
        };
        let role = self.role();
        m.gauge("up", "1 while the process runs", 1.0);
        m.gauge(
            "uptime_seconds",
            "seconds since the process started",
            self.started.elapsed().as_secs_f64(),
        );
        m.gauge(
            "leader",
            "1 when this node reads the binlog and produces",
            f64::from(u8::from(role == Role::Leader)),
        );
        m.gauge("epoch", "leader epoch of this node", self.epoch() as f64);
        m.gauge(
            "healthy",
            "1 unless a fatal error occurred",
            f64::from(u8::from(self.fatal().is_none())),
        );
        let session = self.session();
        if session != "none" {
            m.gauge(
                "zookeeper_session_connected",
                "1 while the ZooKeeper session is connected",
                f64::from(u8::from(session == "SyncConnected")),
            );
            m.counter(
                "election_campaigns_total",
                "leader election campaigns started (each with a new session)",
                self.campaigns.load(Relaxed) as f64,
            );
            m.counter(
                "elections_won_total",
                "terms as leader",
                self.elections_won.load(Relaxed) as f64,
            );
        }
        if role != Role::Leader {
            // A standby exports no pipeline figures: they would be stale.
            return out;
        }
        m.gauge(
            "binlog_connected",
            "1 while the binlog connection is up",
            f64::from(u8::from(self.binlog_connected.load(Relaxed))),
        );
        m.counter(
            "binlog_reconnects_total",
            "binlog connections re-established after a loss",
            self.reconnects.load(Relaxed) as f64,
        );
        m.counter(
            "binlog_disconnected_seconds_total",
            "seconds without a binlog connection since start (a current outage included)",
            self.seconds_disconnected(),
        );
        m.counter(
            "binlog_events_total",
            "binlog events read",
            self.binlog_events.load(Relaxed) as f64,
        );
        m.counter(
            "binlog_bytes_total",
            "binlog bytes read",
            self.binlog_bytes.load(Relaxed) as f64,
        );
        m.counter(
            "row_count",
            "rows handed to the producer (Maxwell's row_count)",
            self.rows_emitted.load(Relaxed) as f64,
        );
        m.counter(
            "ddl_applied_total",
            "DDL statements followed: schema changed and recorded in the history",
            self.ddl_applied.load(Relaxed) as f64,
        );
        m.counter(
            "ddl_skipped_total",
            "DDL statements sluice could not follow, skipped with ddl_parse_errors=skip",
            self.ddl_skipped.load(Relaxed) as f64,
        );
        m.counter(
            "producer_rebuilds_total",
            "producers rebuilt on SIGHUP (configuration re-read)",
            self.producer_rebuilds.load(Relaxed) as f64,
        );
        if let Some(p) = self.producer.get() {
            for (name, help, v) in [
                (
                    "producer_messages_sent_total",
                    "messages handed to the producer",
                    &p.sent,
                ),
                (
                    "producer_messages_acked_total",
                    "messages acknowledged by the broker",
                    &p.acked,
                ),
                (
                    "producer_messages_failed_total",
                    "messages the broker did not take (after the client's retries)",
                    &p.failed,
                ),
                (
                    "producer_retries_total",
                    "retries: reconnects and resends, waits on a full local queue or missing metadata",
                    &p.retried,
                ),
                (
                    "producer_dead_lettered_total",
                    "refused messages sent to the dead-letter destination instead",
                    &p.dead_lettered,
                ),
                (
                    "producer_dropped_total",
                    "refused messages dropped (ignore_producer_error)",
                    &p.dropped,
                ),
                (
                    "producer_bytes_total",
                    "payload bytes handed to the producer",
                    &p.bytes,
                ),
            ] {
                m.counter(name, help, v.load(Relaxed) as f64);
            }
            m.counter(
                "producer_ack_latency_seconds_total",
                "sum of send-to-acknowledgement times (divide by acked for the mean)",
                p.ack_latency_us.load(Relaxed) as f64 / 1e6,
            );
        }
        m.counter(
            "producer_flushes_total",
            "producer flushes (everything sent is durable)",
            self.producer_flushes.load(Relaxed) as f64,
        );
        m.counter(
            "position_stores_total",
            "positions written to the position store",
            self.position_stores.load(Relaxed) as f64,
        );
        m.counter(
            "position_store_failures_total",
            "failed position writes (retried)",
            self.position_store_failures.load(Relaxed) as f64,
        );
        m.counter(
            "heartbeats_written_total",
            "heartbeats written into the binlog",
            self.heartbeats_written.load(Relaxed) as f64,
        );
        m.counter(
            "heartbeats_read_total",
            "own heartbeats read back from the binlog",
            self.heartbeats_read.load(Relaxed) as f64,
        );
        if let Some(lag) = self.lag_ms() {
            m.gauge(
                "replication_lag",
                "ms between a heartbeat's write and its reading from the binlog (Maxwell's replication_lag)",
                lag as f64,
            );
        }
        let ts = self.last_commit_ts.load(Relaxed);
        if ts > 0 {
            m.gauge(
                "last_commit_timestamp_seconds",
                "commit time of the last transaction processed",
                ts as f64,
            );
        }
        out
    }
}

struct Exporter<'a> {
    out: &'a mut String,
    prefix: &'a str,
}

impl Exporter<'_> {
    fn metric(&mut self, kind: &str, name: &str, help: &str, value: f64) {
        let full = if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}_{name}", self.prefix)
        };
        let _ = writeln!(self.out, "# HELP {full} {help}");
        let _ = writeln!(self.out, "# TYPE {full} {kind}");
        let _ = writeln!(self.out, "{full} {value}");
    }

    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.metric("gauge", name, help, value)
    }

    fn counter(&mut self, name: &str, help: &str, value: f64) {
        self.metric("counter", name, help, value)
    }
}

pub fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn json_or_null(s: &str) -> String {
    if s.is_empty() {
        "null".into()
    } else {
        json_str(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_summed_and_a_current_one_counts() {
        let t = Telemetry::new("c", "sluice");
        assert_eq!(t.seconds_disconnected(), 0.0);
        t.binlog_connected();
        t.binlog_disconnected();
        std::thread::sleep(Duration::from_millis(30));
        assert!(t.seconds_disconnected() >= 0.03);
        assert!(t.current_outage().is_some());
        t.binlog_connected();
        let done = t.seconds_disconnected();
        assert!(done >= 0.03);
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(t.seconds_disconnected(), done, "no outage now");
        assert!(t.current_outage().is_none());
    }

    #[test]
    fn standby_exports_no_pipeline_metrics() {
        let t = Telemetry::new("c", "sluice");
        t.set_role(Role::Standby);
        let m = t.prometheus();
        assert!(m.contains("sluice_leader 0"), "{m}");
        assert!(!m.contains("row_count"), "{m}");
        t.set_role(Role::Leader);
        t.rows_emitted.store(7, Relaxed);
        let m = t.prometheus();
        assert!(m.contains("sluice_row_count 7\n"), "{m}");
        assert!(m.contains("# TYPE sluice_row_count counter"), "{m}");
    }

    #[test]
    fn lag_counts_an_unread_heartbeat() {
        let t = Telemetry::new("c", "");
        assert_eq!(t.lag_ms(), None);
        let now = unix_millis();
        t.heartbeat_read_ms.store(now - 5000, Relaxed);
        t.heartbeat_read_delay_ms.store(3, Relaxed);
        t.heartbeat_written_ms.store(now - 5000, Relaxed);
        assert_eq!(t.lag_ms(), Some(3));
        t.heartbeat_written_ms.store(now - 2000, Relaxed);
        assert!(t.lag_ms().is_some_and(|l| l >= 2000));
    }
}
