//! `/status`: what a node says about itself as one JSON object. The first
//! fields (role … fatal) are the original shape and stay; the rest feed the
//! status page (identity, rates, producer, snapshots, recent errors).

use std::sync::atomic::Ordering::Relaxed;

use serde_json::{json, Value};

use super::{node_identity, Role, Telemetry};

/// How the producer is doing, in one word for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducerState {
    /// This node does not stream.
    Idle,
    Ok,
    /// Messages failed within the last minute.
    Failing,
    /// The producer was rebuilt within the last minute (unconfirmed
    /// deliveries or SIGHUP).
    Rebuilt,
    /// The node hit a fatal error.
    Stopped,
}

impl ProducerState {
    pub fn name(self) -> &'static str {
        match self {
            ProducerState::Idle => "idle",
            ProducerState::Ok => "ok",
            ProducerState::Failing => "failing",
            ProducerState::Rebuilt => "rebuilt",
            ProducerState::Stopped => "stopped",
        }
    }
}

impl Telemetry {
    pub fn producer_state(&self) -> ProducerState {
        let rates = self.rates();
        if self.fatal().is_some() {
            ProducerState::Stopped
        } else if self.role() != Role::Leader {
            ProducerState::Idle
        } else if rates.recent_failures > 0 {
            ProducerState::Failing
        } else if rates.recent_rebuilds > 0 {
            ProducerState::Rebuilt
        } else {
            ProducerState::Ok
        }
    }

    /// `/status` as text (one line of JSON).
    pub fn status_json(&self, http_address: &str, session: &str) -> String {
        self.status(http_address, session).to_string()
    }

    pub fn status(&self, http_address: &str, session: &str) -> Value {
        let p = self.positions.lock().map(|p| p.clone()).unwrap_or_default();
        let role = self.role();
        let leader: Value = if role == Role::Leader {
            // The same shape as the record the leader keeps in ZooKeeper.
            json!({"identity": node_identity(), "http": http_address, "epoch": self.epoch()})
        } else {
            self.leader_record
                .lock()
                .ok()
                .and_then(|r| r.clone())
                .and_then(|r| serde_json::from_str(&r).ok())
                .unwrap_or(Value::Null)
        };
        let rates = self.rates();
        let snapshots = self.bootstrap.totals();
        let stats = self.producer.get();
        let count = |f: fn(&sluice_producers::ProducerStats) -> &std::sync::atomic::AtomicU64| {
            stats.map_or(0, |s| f(s).load(Relaxed))
        };
        let errors: Vec<Value> = crate::logging::recent_errors()
            .into_iter()
            .map(|e| json!({"at_ms": e.at_ms, "level": e.level, "target": e.target, "message": e.message}))
            .collect();
        json!({
            "role": role.name(),
            "client_id": self.client_id,
            "epoch": self.epoch(),
            "leader": leader,
            "session": session,
            "binlog": {
                "connected": self.binlog_connected.load(Relaxed),
                "reconnects": self.reconnects.load(Relaxed),
                "seconds_disconnected": round3(self.seconds_disconnected()),
            },
            "position": {"processed": non_empty(&p.processed), "stored": non_empty(&p.stored)},
            "lag_ms": self.lag_ms(),
            "rows": self.rows_emitted.load(Relaxed),
            "uptime_seconds": round3(self.started.elapsed().as_secs_f64()),
            "fatal": self.fatal(),
            // Why /healthcheck does not say healthy yet (starting, stalled).
            "not_ready": self.not_ready(),
            "identity": node_identity(),
            "http": http_address,
            "version": env!("CARGO_PKG_VERSION"),
            "rows_per_second": round3(rates.rows_per_second),
            "events_per_second": round3(rates.events_per_second),
            "rows_filtered": self.rows_filtered.load(Relaxed),
            "producer": {
                "name": self.producer_name(),
                "state": self.producer_state().name(),
                "sent": count(|s| &s.sent),
                "acked": count(|s| &s.acked),
                "failed": count(|s| &s.failed),
                "retried": count(|s| &s.retried),
                "rebuilds": self.producer_rebuilds.load(Relaxed),
                "recent_failures": rates.recent_failures,
            },
            "bootstrap": {
                "active": snapshots.running,
                "rows": snapshots.rows,
                "chunks": snapshots.chunks,
                "failures": snapshots.failed,
                "tasks": serde_json::from_str::<Value>(&self.bootstrap.json()).unwrap_or(Value::Null),
            },
            "errors": errors,
        })
    }
}

fn non_empty(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        Value::String(s.to_string())
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::rates::Sample;
    use std::time::{Duration, Instant};

    #[test]
    fn status_keeps_its_original_fields_and_adds_the_page_s() {
        let t = Telemetry::new("c1", "sluice");
        let s: Value = serde_json::from_str(&t.status_json("127.0.0.1:1", "none")).unwrap();
        for field in [
            "role",
            "client_id",
            "epoch",
            "leader",
            "session",
            "binlog",
            "position",
            "lag_ms",
            "rows",
            "uptime_seconds",
            "fatal",
            "identity",
            "rows_per_second",
            "producer",
            "errors",
        ] {
            assert!(s.get(field).is_some(), "{field} missing: {s}");
        }
        assert_eq!(s["role"], "starting");
        assert_eq!(s["not_ready"], "starting");
        t.set_startup_step(Some("opening the position store"));
        let s = t.status("127.0.0.1:1", "none");
        assert_eq!(s["not_ready"], "starting: opening the position store");
        t.set_startup_step(None);
        assert_eq!(s["leader"], Value::Null);
        assert_eq!(s["position"]["processed"], Value::Null);
        assert_eq!(s["producer"]["state"], "idle");
        t.set_role(Role::Leader);
        t.set_processed_position("mysql-bin.000001:4".into());
        let s = t.status("127.0.0.1:1", "none");
        assert_eq!(s["leader"]["http"], "127.0.0.1:1");
        assert_eq!(s["position"]["processed"], "mysql-bin.000001:4");
        assert_eq!(s["producer"]["state"], "ok");
    }

    #[test]
    fn producer_state_follows_recent_failures_and_fatal_errors() {
        let t = Telemetry::new("c1", "sluice");
        t.set_role(Role::Leader);
        let t0 = Instant::now();
        let sample = |secs, failed, rebuilds| Sample {
            at: t0 + Duration::from_secs(secs),
            rows: 0,
            events: 0,
            failed,
            rebuilds,
        };
        t.rates.record(sample(0, 0, 0));
        t.rates.record(sample(1, 0, 1));
        assert_eq!(t.producer_state(), ProducerState::Rebuilt);
        t.rates.record(sample(2, 5, 1));
        assert_eq!(t.producer_state(), ProducerState::Failing);
        t.set_fatal("boom".into());
        assert_eq!(t.producer_state(), ProducerState::Stopped);
    }
}
