//! `/metrics`: the Prometheus text exposition (version 0.0.4) of a node's
//! counters. A standby exports only what it knows for sure (its role and its
//! ZooKeeper session): pipeline figures of a node that does not stream would
//! be stale.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use super::{Role, Telemetry};

impl Telemetry {
    /// Prometheus text exposition (version 0.0.4).
    pub fn prometheus(&self) -> String {
        let mut out = String::with_capacity(4096);
        let mut m = Exporter {
            out: &mut out,
            prefix: &self.metrics_prefix,
        };
        let role = self.role();
        m.gauge("up", "1 while the process runs", 1.0);
        m.info(
            "info",
            "always 1; the labels say which cluster (client_id), producer and version",
            &[
                ("client_id", &self.client_id),
                ("producer", &self.producer_name()),
                ("version", env!("CARGO_PKG_VERSION")),
            ],
        );
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
        for (name, help, value) in [
            (
                "binlog_events_total",
                "binlog events read",
                &self.binlog_events,
            ),
            (
                "binlog_bytes_total",
                "binlog bytes read",
                &self.binlog_bytes,
            ),
            (
                "row_count",
                "rows handed to the producer (Maxwell's row_count)",
                &self.rows_emitted,
            ),
            (
                "ddl_applied_total",
                "DDL statements followed: schema changed and recorded in the history",
                &self.ddl_applied,
            ),
            (
                "ddl_skipped_total",
                "DDL statements sluice could not follow, skipped with ddl_parse_errors=skip",
                &self.ddl_skipped,
            ),
            (
                "producer_rebuilds_total",
                "producers rebuilt on SIGHUP (configuration re-read)",
                &self.producer_rebuilds,
            ),
        ] {
            m.counter(name, help, value.load(Relaxed) as f64);
        }
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
        for (name, help, value) in [
            (
                "producer_flushes_total",
                "producer flushes (everything sent is durable)",
                &self.producer_flushes,
            ),
            (
                "position_stores_total",
                "positions written to the position store",
                &self.position_stores,
            ),
            (
                "position_store_failures_total",
                "failed position writes (retried)",
                &self.position_store_failures,
            ),
            (
                "heartbeats_written_total",
                "heartbeats written into the binlog",
                &self.heartbeats_written,
            ),
            (
                "heartbeats_read_total",
                "own heartbeats read back from the binlog",
                &self.heartbeats_read,
            ),
        ] {
            m.counter(name, help, value.load(Relaxed) as f64);
        }
        if let Some(lag) = self.lag_ms() {
            m.gauge(
                "replication_lag",
                "ms between a heartbeat's write and its reading from the binlog (Maxwell's replication_lag)",
                lag as f64,
            );
        }
        m.counter(
            "rows_filtered_total",
            "rows the filter left out",
            self.rows_filtered.load(Relaxed) as f64,
        );
        let snapshots = self.bootstrap.totals();
        m.counter(
            "bootstrap_rows_total",
            "rows sent by snapshots (bootstrap)",
            snapshots.rows as f64,
        );
        m.counter(
            "bootstrap_chunks_total",
            "chunks of rows read by snapshots (bootstrap)",
            snapshots.chunks as f64,
        );
        m.counter(
            "bootstrap_failures_total",
            "snapshots (bootstrap) that failed",
            snapshots.failed as f64,
        );
        m.gauge(
            "bootstrap_active",
            "snapshots (bootstrap) running now",
            snapshots.running as f64,
        );
        let ts = self.last_commit_ts.load(Relaxed);
        if ts > 0 {
            m.gauge(
                "last_commit_timestamp_seconds",
                "commit time of the last transaction processed",
                ts as f64,
            );
        }
        // Each snapshot's own figures (labels id, table, state).
        self.bootstrap.prometheus(&mut out, &self.metrics_prefix);
        out
    }
}

struct Exporter<'a> {
    out: &'a mut String,
    prefix: &'a str,
}

impl Exporter<'_> {
    fn full_name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}_{name}", self.prefix)
        }
    }

    fn metric(&mut self, kind: &str, name: &str, help: &str, value: f64) {
        let full = self.full_name(name);
        let _ = writeln!(self.out, "# HELP {full} {help}");
        let _ = writeln!(self.out, "# TYPE {full} {kind}");
        let _ = writeln!(self.out, "{full} {value}");
    }

    /// A gauge of value 1 whose labels carry the information.
    fn info(&mut self, name: &str, help: &str, labels: &[(&str, &str)]) {
        let full = self.full_name(name);
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
            .collect();
        let _ = writeln!(self.out, "# HELP {full} {help}");
        let _ = writeln!(self.out, "# TYPE {full} gauge");
        let _ = writeln!(self.out, "{full}{{{}}} 1", labels.join(","));
    }

    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.metric("gauge", name, help, value)
    }

    fn counter(&mut self, name: &str, help: &str, value: f64) {
        self.metric("counter", name, help, value)
    }
}

/// Prometheus label values: backslash, double quote and newline escaped.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_labels_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let t = Telemetry::new("id \"x\"", "sluice");
        t.set_producer_name("kafka");
        let m = t.prometheus();
        assert!(
            m.contains("sluice_info{client_id=\"id \\\"x\\\"\",producer=\"kafka\",version=\""),
            "{m}"
        );
    }

    #[test]
    fn leaders_export_filter_and_snapshot_figures() {
        let t = Telemetry::new("c", "sluice");
        t.set_role(Role::Leader);
        t.set_rows_filtered(4);
        for id in [1, 2, 3] {
            t.bootstrap.update(id, "d", "t", |s| {
                s.rows = 10;
                s.chunks = 1;
                s.state = if id == 3 { "running" } else { "failed" };
            });
        }
        let m = t.prometheus();
        for line in [
            "sluice_rows_filtered_total 4\n",
            "sluice_bootstrap_failures_total 2\n",
            "sluice_bootstrap_active 1\n",
            "sluice_bootstrap_rows_total 30\n",
            "sluice_bootstrap_chunks_total 3\n",
            "sluice_bootstrap_task_rows{id=\"3\",table=\"d.t\",state=\"running\"} 10\n",
        ] {
            assert!(m.contains(line), "{line} missing from {m}");
        }
    }
}
