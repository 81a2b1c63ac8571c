//! What /status and /metrics show of snapshots: per task its rows, chunks,
//! rate, estimated time left and failures. The task updates it; the HTTP
//! server reads it. Counts include what earlier runs stored (a task resumed
//! after a restart shows its whole progress), the rate is this run's.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

/// Finished tasks kept on show.
const KEEP_FINISHED: usize = 20;

#[derive(Debug, Clone)]
pub struct TaskStatus {
    pub id: u64,
    pub database: String,
    pub table: String,
    /// running | complete | failed | aborted
    pub state: &'static str,
    /// Rows delivered as `bootstrap-insert`.
    pub rows: u64,
    /// Rows snapshot queries returned (delivered, superseded by the binlog,
    /// or read again after a restart).
    pub rows_read: u64,
    /// Chunk rows dropped because the binlog changed them inside the window.
    pub superseded: u64,
    pub chunks: u64,
    /// Rows expected: `total_rows` of the request, else the server's estimate.
    pub total: u64,
    pub failures: u64,
    pub error: Option<String>,
    since: Instant,
    rows_at_since: u64,
}

impl TaskStatus {
    pub fn new(id: u64, database: &str, table: &str) -> Self {
        TaskStatus {
            id,
            database: database.to_string(),
            table: table.to_string(),
            state: "running",
            rows: 0,
            rows_read: 0,
            superseded: 0,
            chunks: 0,
            total: 0,
            failures: 0,
            error: None,
            since: Instant::now(),
            rows_at_since: 0,
        }
    }

    /// Starts measuring the rate from the rows delivered so far.
    pub fn restart_clock(&mut self) {
        self.since = Instant::now();
        self.rows_at_since = self.rows;
    }

    /// Rows per second delivered by this run.
    pub fn rate(&self) -> f64 {
        let secs = self.since.elapsed().as_secs_f64();
        if secs < 0.001 {
            return 0.0;
        }
        self.rows.saturating_sub(self.rows_at_since) as f64 / secs
    }

    /// Seconds left at the current rate (None while there is no rate).
    pub fn eta_seconds(&self) -> Option<f64> {
        if self.state != "running" {
            return Some(0.0);
        }
        let rate = self.rate();
        (rate > 0.0).then(|| self.total.saturating_sub(self.rows) as f64 / rate)
    }

    fn json(&self) -> String {
        let opt = |v: Option<f64>| {
            v.map(|x| format!("{x:.1}"))
                .unwrap_or_else(|| "null".into())
        };
        format!(
            "{{\"id\":{},\"database\":{},\"table\":{},\"state\":\"{}\",\"rows\":{},\"rows_read\":{},\
             \"superseded\":{},\"chunks\":{},\"total_rows\":{},\"rows_per_second\":{:.1},\"eta_seconds\":{},\
             \"failures\":{},\"error\":{}}}",
            self.id,
            crate::telemetry::json_str(&self.database),
            crate::telemetry::json_str(&self.table),
            self.state,
            self.rows,
            self.rows_read,
            self.superseded,
            self.chunks,
            self.total,
            self.rate(),
            opt(self.eta_seconds()),
            self.failures,
            self.error
                .as_deref()
                .map(crate::telemetry::json_str)
                .unwrap_or_else(|| "null".into()),
        )
    }
}

/// The snapshots' figures summed over tasks (the alert rules' metrics).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub rows: u64,
    pub chunks: u64,
    pub failed: u64,
    pub running: u64,
}

#[derive(Default)]
pub struct StatusBoard {
    tasks: Mutex<BTreeMap<u64, TaskStatus>>,
}

fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl StatusBoard {
    /// Changes (or creates) the status of task `id`.
    pub fn update(&self, id: u64, database: &str, table: &str, f: impl FnOnce(&mut TaskStatus)) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        let t = tasks
            .entry(id)
            .or_insert_with(|| TaskStatus::new(id, database, table));
        f(t);
        let finished: Vec<u64> = tasks
            .values()
            .filter(|t| t.state != "running")
            .map(|t| t.id)
            .collect();
        for old in finished
            .iter()
            .take(finished.len().saturating_sub(KEEP_FINISHED))
        {
            tasks.remove(old);
        }
    }

    pub fn get(&self, id: u64) -> Option<TaskStatus> {
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    fn all(&self) -> Vec<TaskStatus> {
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// A JSON array, one object per task, oldest first.
    /// Across tasks: rows and chunks delivered, tasks failed, tasks running.
    pub fn totals(&self) -> Totals {
        let tasks = self.all();
        Totals {
            rows: tasks.iter().map(|t| t.rows).sum(),
            chunks: tasks.iter().map(|t| t.chunks).sum(),
            failed: tasks.iter().filter(|t| t.state == "failed").count() as u64,
            running: tasks.iter().filter(|t| t.state == "running").count() as u64,
        }
    }

    pub fn json(&self) -> String {
        let items: Vec<String> = self.all().iter().map(TaskStatus::json).collect();
        format!("[{}]", items.join(","))
    }

    /// Prometheus lines: totals, and per task (labels `id`, `table`).
    pub fn prometheus(&self, out: &mut String, prefix: &str) {
        let name = |n: &str| {
            if prefix.is_empty() {
                n.to_string()
            } else {
                format!("{prefix}_{n}")
            }
        };
        let tasks = self.all();
        let running = tasks.iter().filter(|t| t.state == "running").count();
        let gauge = |out: &mut String, n: &str, help: &str, kind: &str| {
            let _ = writeln!(out, "# HELP {} {help}", name(n));
            let _ = writeln!(out, "# TYPE {} {kind}", name(n));
        };
        gauge(
            out,
            "bootstrap_tasks_running",
            "snapshot tasks being read now",
            "gauge",
        );
        let _ = writeln!(out, "{} {running}", name("bootstrap_tasks_running"));
        type Field = fn(&TaskStatus) -> f64;
        let per_task: [(&str, &str, Field); 8] = [
            (
                "bootstrap_task_rows",
                "rows delivered as bootstrap-insert",
                |t| t.rows as f64,
            ),
            (
                "bootstrap_task_rows_read",
                "rows the snapshot queries read, across restarts",
                |t| t.rows_read as f64,
            ),
            (
                "bootstrap_task_rows_superseded",
                "chunk rows dropped because the binlog changed them while the chunk was read",
                |t| t.superseded as f64,
            ),
            ("bootstrap_task_chunks", "chunks delivered", |t| {
                t.chunks as f64
            }),
            (
                "bootstrap_task_total_rows",
                "rows expected (request's total_rows or the server's estimate)",
                |t| t.total as f64,
            ),
            (
                "bootstrap_task_rows_per_second",
                "delivery rate of this run",
                TaskStatus::rate,
            ),
            (
                "bootstrap_task_eta_seconds",
                "estimated seconds left (-1: unknown)",
                |t| t.eta_seconds().unwrap_or(-1.0),
            ),
            (
                "bootstrap_task_failures",
                "failed attempts (retried; a definite error fails the task at once)",
                |t| t.failures as f64,
            ),
        ];
        for (n, help, f) in per_task {
            gauge(out, n, help, "gauge");
            for t in &tasks {
                let _ = writeln!(
                    out,
                    "{}{{id=\"{}\",table=\"{}.{}\",state=\"{}\"}} {}",
                    name(n),
                    t.id,
                    label(&t.database),
                    label(&t.table),
                    t.state,
                    f(t)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_metrics_show_each_task() {
        let b = StatusBoard::default();
        b.update(3, "d", "t\"x", |t| {
            t.rows = 10;
            t.rows_read = 12;
            t.total = 100;
            t.chunks = 2;
        });
        let j: serde_json::Value = serde_json::from_str(&b.json()).unwrap();
        assert_eq!(j[0]["id"], 3);
        assert_eq!(j[0]["rows_read"], 12);
        assert_eq!(j[0]["table"], "t\"x");
        let mut m = String::new();
        b.prometheus(&mut m, "sluice");
        assert!(m.contains("sluice_bootstrap_task_rows_read{id=\"3\",table=\"d.t\\\"x\",state=\"running\"} 12\n"), "{m}");
        assert!(m.contains("sluice_bootstrap_tasks_running 1\n"), "{m}");
    }

    #[test]
    fn finished_tasks_are_kept_but_not_forever() {
        let b = StatusBoard::default();
        for id in 0..(KEEP_FINISHED as u64 + 5) {
            b.update(id, "d", "t", |t| t.state = "complete");
        }
        assert_eq!(b.all().len(), KEEP_FINISHED);
        assert!(b.get(0).is_none() && b.get(KEEP_FINISHED as u64 + 4).is_some());
        assert_eq!(
            b.get(KEEP_FINISHED as u64 + 4).unwrap().eta_seconds(),
            Some(0.0)
        );
    }
}
