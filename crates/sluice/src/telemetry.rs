//! What a running node knows about itself, shared by the reader, the
//! processor and the HTTP server: role, connection state, progress, and the
//! counters exported as Prometheus metrics. Plain atomics: updating a metric
//! never blocks the pipeline. [`rates`] turns counters into per-second
//! figures, [`status`] writes `/status`, [`prometheus`] writes `/metrics`.

mod prometheus;
pub mod rates;
mod status;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use status::ProducerState;

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
    /// What startup waits for now, and since when (None: not starting).
    startup_step: Mutex<Option<(String, Instant)>>,
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
    pub producer: std::sync::OnceLock<std::sync::Arc<sluice_producers::ProducerStats>>,
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

    /// Rows the filter left out (the processor's running count; see
    /// [`Telemetry::set_rows_filtered`]).
    pub rows_filtered: AtomicU64,

    /// Snapshots (bootstrap): per task progress for /status and /metrics.
    pub bootstrap: crate::bootstrap::status::StatusBoard,

    /// The `producer=` name (for /status and the status page).
    producer_name: Mutex<String>,
    /// What `/config` serves (Maxwell's http_config): a JSON document.
    config_json: Mutex<String>,
    /// Called on every change of role (systemd notifications).
    role_observers: Mutex<Vec<RoleObserver>>,
    /// Per-second figures from counters sampled once a second.
    rates: rates::Sampler,
    /// When (unix ms) the processor last handled the server's heartbeat
    /// event, which the server sends only when it has nothing else to send:
    /// everything written to the binlog before it had been read.
    pub binlog_end_reached_ms: AtomicU64,
}

/// Called with the new role when it changes.
pub type RoleObserver = Box<dyn Fn(Role) + Send + Sync>;

/// What `/config` serves before anything is set: no filter.
pub const EMPTY_CONFIG_JSON: &str = "{\"filter\":null}";

const NOT_DOWN: u64 = u64::MAX;

/// How long one startup step may wait before /healthcheck calls startup
/// stalled rather than starting.
pub const STALLED_AFTER: Duration = Duration::from_secs(5);

/// How long the binlog connection may be down before /healthcheck says so.
pub const UNHEALTHY_AFTER_OUTAGE: Duration = Duration::from_secs(60);

impl Telemetry {
    pub fn new(client_id: &str, metrics_prefix: &str) -> Self {
        Telemetry {
            client_id: client_id.to_string(),
            metrics_prefix: metrics_prefix.to_string(),
            started: Instant::now(),
            role: AtomicU8::new(Role::Starting as u8),
            epoch: AtomicU64::new(0),
            fatal: Mutex::new(None),
            startup_step: Mutex::new(None),
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
            rows_filtered: AtomicU64::new(0),
            bootstrap: Default::default(),
            producer_name: Mutex::new(String::new()),
            config_json: Mutex::new(EMPTY_CONFIG_JSON.into()),
            role_observers: Mutex::new(Vec::new()),
            rates: rates::Sampler::default(),
            binlog_end_reached_ms: AtomicU64::new(0),
        }
    }

    /// The processor's count of rows the filter left out.
    pub fn set_rows_filtered(&self, rows: u64) {
        self.rows_filtered.store(rows, Relaxed);
    }

    /// The JSON document `/config` serves (with `http_config=true`), e.g.
    /// `{"filter":"exclude: *.*"}`. Ignored unless it is valid JSON, so the
    /// endpoint never serves a broken document.
    pub fn set_config_json(&self, json: String) {
        if serde_json::from_str::<serde_json::Value>(&json).is_err() {
            tracing::warn!("set_config_json: not JSON; /config keeps its previous document");
            return;
        }
        if let Ok(mut c) = self.config_json.lock() {
            *c = json;
        }
    }

    pub fn config_json(&self) -> String {
        self.config_json
            .lock()
            .map(|c| c.clone())
            .unwrap_or_else(|_| EMPTY_CONFIG_JSON.into())
    }

    pub fn set_producer_name(&self, name: &str) {
        if let Ok(mut n) = self.producer_name.lock() {
            *n = name.to_string();
        }
    }

    pub fn producer_name(&self) -> String {
        self.producer_name
            .lock()
            .map(|n| n.clone())
            .unwrap_or_default()
    }

    /// `observer` is called with each new role, on the thread that sets it.
    pub fn on_role_change(&self, observer: RoleObserver) {
        if let Ok(mut o) = self.role_observers.lock() {
            o.push(observer);
        }
    }

    /// Takes a sample of the counters behind the per-second figures
    /// (the HTTP server does, once a second).
    pub fn sample_rates(&self) {
        let p = self.producer.get();
        self.rates.record(rates::Sample {
            at: Instant::now(),
            rows: self.rows_emitted.load(Relaxed),
            events: self.binlog_events.load(Relaxed),
            failed: p.map_or(0, |p| p.failed.load(Relaxed)),
            rebuilds: self.producer_rebuilds.load(Relaxed),
        });
    }

    pub fn rates(&self) -> rates::Rates {
        self.rates.rates()
    }

    /// A producer was replaced (SIGHUP, unconfirmed deliveries).
    pub fn count_producer_rebuild(&self) {
        self.producer_rebuilds.fetch_add(1, Relaxed);
    }

    pub fn role(&self) -> Role {
        Role::from_u8(self.role.load(Relaxed))
    }

    pub fn set_role(&self, role: Role) {
        let old = self.role.swap(role as u8, Relaxed);
        if old != role as u8 {
            if let Ok(observers) = self.role_observers.lock() {
                for o in observers.iter() {
                    o(role);
                }
            }
        }
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

    /// Why this node is unhealthy (None: healthy): a fatal error, or, as
    /// leader, a binlog connection down for longer than
    /// [`UNHEALTHY_AFTER_OUTAGE`]. `/healthcheck` answers it and the
    /// systemd watchdog is fed only while it is None.
    pub fn unhealthy(&self) -> Option<String> {
        if let Some(f) = self.fatal() {
            return Some(f);
        }
        if self.role() == Role::Leader {
            if let Some(out) = self
                .current_outage()
                .filter(|d| *d > UNHEALTHY_AFTER_OUTAGE)
            {
                return Some(format!("binlog connection down for {} s", out.as_secs()));
            }
        }
        None
    }

    /// What startup waits for now (`None`: startup is over, or between
    /// steps).
    pub fn set_startup_step(&self, step: Option<&str>) {
        if let Ok(mut v) = self.startup_step.lock() {
            *v = step.map(|s| (s.to_string(), Instant::now()));
        }
    }

    /// Why `/healthcheck` must not say healthy although nothing failed:
    /// the node is still starting (naming the step it waits for), or its
    /// startup is stalled (a step waiting longer than
    /// [`STALLED_AFTER`], e.g. on a lock another session holds).
    pub fn not_ready(&self) -> Option<String> {
        let step = self.startup_step.lock().ok().and_then(|s| s.clone());
        match step {
            Some((what, since)) if since.elapsed() > STALLED_AFTER => Some(format!(
                "stalled: startup has waited {} s for MySQL while {what}",
                since.elapsed().as_secs()
            )),
            Some((what, _)) => Some(format!("starting: {what}")),
            None if self.role() == Role::Starting => Some("starting".into()),
            None => None,
        }
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
}

pub fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
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
