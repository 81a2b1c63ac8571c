//! Snapshots of existing rows inside the stream (Maxwell's bootstrap,
//! made consistent with DBLog's watermarks). The daemon reads a table in
//! key-ordered chunks; around each chunk it writes a low and a high
//! watermark row into `<schema_database>.bootstrap_watermarks`, through
//! the binlog. The processor, reading the binlog in order:
//!
//! - at a `start` watermark emits `bootstrap-start`;
//! - at a `low` watermark starts recording the keys of the table that the
//!   binlog changes ([`reconcile`]);
//! - at the `high` watermark emits the chunk's rows minus those keys as
//!   `bootstrap-insert` ([`encode`], values by [`values`]), right there in
//!   binlog order;
//! - at a `complete` watermark emits `bootstrap-complete`.
//!
//! What was handed to the producer, and when it was flushed, goes back to
//! the daemon through [`SnapshotSource`], which stores the snapshot's
//! cursor only once the chunk is delivered.

pub mod encode;
pub mod reconcile;
pub mod values;

use sluice_core::{Message, PrimaryKey, Producer};
use sluice_schema::Catalog;

use crate::encode::OutputConfig;
use crate::encrypt::Encryptor;
use crate::processor::PipelineError;

pub use encode::{LineWriter, Marker, TablePlan};
pub use reconcile::{Reconciler, Window};
pub use values::{ColumnPlan, SnapValue};

/// sluice's table of watermark rows in the internal database.
pub const WATERMARK_TABLE: &str = "bootstrap_watermarks";
/// Maxwell's table of bootstrap requests in the internal database: its
/// inserts are emitted as ordinary rows (Maxwell does), nothing else of it.
pub const REQUEST_TABLE: &str = "bootstrap";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Start,
    Low,
    High,
    Complete,
}

impl Mark {
    pub fn as_str(self) -> &'static str {
        match self {
            Mark::Start => "start",
            Mark::Low => "low",
            Mark::High => "high",
            Mark::Complete => "complete",
        }
    }

    pub fn parse(s: &str) -> Option<Mark> {
        [Mark::Start, Mark::Low, Mark::High, Mark::Complete]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// One watermark row read from the binlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermark {
    /// Which stream wrote it: watermarks of an earlier run (read again
    /// after a restart) are not this stream's and are ignored.
    pub session: u64,
    pub task: u64,
    pub chunk: u64,
    pub mark: Mark,
}

/// A snapshot task as the stream needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    pub task: u64,
    pub database: String,
    pub table: String,
    pub comment: Option<String>,
    /// Columns chunks are keyed by: the primary key, else a unique key of
    /// NOT NULL columns; empty: the table is read in one pass.
    pub key_columns: Vec<String>,
}

/// The rows one chunk query returned.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub task: u64,
    pub chunk: u64,
    /// The columns read, in order (every column of the table).
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SnapValue>>,
}

/// What the stream did at a watermark, reported back to the snapshot side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    Started {
        task: u64,
    },
    Chunk {
        task: u64,
        chunk: u64,
        emitted: u64,
        /// Rows dropped because the binlog changed them inside the window.
        superseded: u64,
    },
    /// Nothing of the chunk can be emitted here: read it again.
    Rejected {
        task: u64,
        chunk: u64,
        reason: String,
    },
    Completed {
        task: u64,
    },
}

/// The snapshot side, as the stream sees it (the daemon implements it).
pub trait SnapshotSource: Send {
    fn task(&self, task: u64) -> Option<TaskInfo>;
    /// The rows read for `chunk`; handed over before its high watermark
    /// was written.
    fn take_chunk(&mut self, task: u64, chunk: u64) -> Option<Chunk>;
    /// Handed to the producer (not flushed yet).
    fn handed(&mut self, what: Delivered);
    /// Everything handed so far is delivered (the producer flushed).
    fn flushed(&mut self);
    /// An insert into the request table went by in the binlog: a task may
    /// be waiting.
    fn request_seen(&mut self);
    /// A chunk's low watermark went by in the binlog: rows read from the
    /// replication server from now on are at least as new as it (the task
    /// waits for this when it writes watermarks on another server).
    fn low_seen(&mut self, _task: u64, _chunk: u64) {}
}

/// The processor's part of snapshots.
pub struct SnapshotState {
    session: u64,
    source: Box<dyn SnapshotSource>,
    reconciler: Reconciler,
    writer: LineWriter,
    key: Vec<u8>,
}

impl SnapshotState {
    pub fn new(session: u64, source: Box<dyn SnapshotSource>) -> Self {
        SnapshotState {
            session,
            source,
            reconciler: Reconciler::default(),
            writer: LineWriter::default(),
            key: Vec::new(),
        }
    }

    /// The key columns of `database.table` while a chunk window on it is open.
    pub fn watching(&self, database: &str, table: &str) -> Option<&[String]> {
        self.reconciler.watching(database, table)
    }

    pub fn record(&mut self, database: &str, table: &str, key: Option<&[u8]>) {
        self.reconciler.record(database, table, key)
    }

    pub fn request_seen(&mut self) {
        self.source.request_seen()
    }

    pub fn flushed(&mut self) {
        self.source.flushed()
    }

    /// Acts on a committed watermark; returns the rows emitted.
    /// `schema_id`: the schema history's id in force (`output_schema_id`).
    pub fn on_watermark<P: Producer>(
        &mut self,
        wm: Watermark,
        catalog: &Catalog,
        cfg: &OutputConfig,
        enc: Option<&Encryptor>,
        schema_id: Option<u64>,
        producer: &mut P,
    ) -> Result<u64, PipelineError> {
        self.writer.schema_id = schema_id;
        if wm.session != self.session {
            return Ok(0);
        }
        let Some(info) = self.source.task(wm.task) else {
            return Ok(0);
        };
        match wm.mark {
            Mark::Start | Mark::Complete => {
                let start = wm.mark == Mark::Start;
                let pk: Vec<String> = if start {
                    catalog
                        .get(&info.database, &info.table)
                        .map(|t| t.primary_key.clone())
                        .unwrap_or_default()
                } else {
                    Vec::new()
                };
                let marker = Marker {
                    database: &info.database,
                    table: &info.table,
                    comment: info.comment.as_deref(),
                    primary_key: &pk,
                };
                let kind = if start {
                    "bootstrap-start"
                } else {
                    "bootstrap-complete"
                };
                self.writer.stamp();
                self.writer.marker(cfg, kind, &marker, enc)?;
                let nulls = format!("[{}]", vec!["null"; pk.len()].join(","));
                producer.send(&Message {
                    json: &self.writer.line,
                    database: &info.database,
                    table: &info.table,
                    kind,
                    primary_key: cfg.routing.then_some(PrimaryKey {
                        columns: &pk,
                        values_json: nulls.as_bytes(),
                    }),
                    partition_values: None,
                    xid: None,
                })?;
                self.source.handed(if start {
                    Delivered::Started { task: wm.task }
                } else {
                    Delivered::Completed { task: wm.task }
                });
                Ok(0)
            }
            Mark::Low => {
                self.source.low_seen(wm.task, wm.chunk);
                self.reconciler.open(Window {
                    task: wm.task,
                    chunk: wm.chunk,
                    database: info.database.clone(),
                    table: info.table.clone(),
                    key_columns: info.key_columns.clone(),
                    ..Default::default()
                });
                Ok(0)
            }
            Mark::High => self.high(wm, &info, catalog, cfg, enc, producer),
        }
    }

    fn high<P: Producer>(
        &mut self,
        wm: Watermark,
        info: &TaskInfo,
        catalog: &Catalog,
        cfg: &OutputConfig,
        enc: Option<&Encryptor>,
        producer: &mut P,
    ) -> Result<u64, PipelineError> {
        let window = self.reconciler.close(wm.task, wm.chunk);
        let Some(chunk) = self.source.take_chunk(wm.task, wm.chunk) else {
            return Ok(0);
        };
        let reject = |reason: String| Delivered::Rejected {
            task: wm.task,
            chunk: wm.chunk,
            reason,
        };
        let window = match window {
            Some(w) if w.undecidable() => {
                self.source.handed(reject(format!(
                    "the binlog changed {} row(s) of {}.{} while the chunk was read, and {}",
                    w.changes,
                    info.database,
                    info.table,
                    if w.unknown_key {
                        "not every change carried the key columns (binlog_row_image=MINIMAL on a table without a primary key?)"
                    } else {
                        "a table without a key cannot tell which"
                    }
                )));
                return Ok(0);
            }
            Some(w) => w,
            None => {
                self.source
                    .handed(reject("the chunk's low watermark was not seen".into()));
                return Ok(0);
            }
        };
        let Some(table) = catalog.get(&info.database, &info.table) else {
            self.source.handed(reject(format!(
                "the stream does not know {}.{} at the chunk's high watermark (dropped, or blacklisted by the filter)",
                info.database, info.table
            )));
            return Ok(0);
        };
        let plan = match TablePlan::new(table, &chunk.columns, &info.key_columns, cfg) {
            Ok(p) => p,
            Err(reason) => {
                self.source.handed(reject(reason));
                return Ok(0);
            }
        };
        let (mut emitted, mut superseded) = (0u64, 0u64);
        self.writer.stamp();
        for row in &chunk.rows {
            if !window.keys.is_empty() {
                if let Err(m) = plan.chunk_key(row, cfg.null_zero_dates, &mut self.key) {
                    self.source
                        .handed(reject(format!("cannot render the chunk key: {m}")));
                    return Ok(emitted);
                }
                if window.keys.contains(&self.key) {
                    superseded += 1;
                    continue;
                }
            }
            if let Err((column, m)) = self
                .writer
                .row(cfg, &plan, info.comment.as_deref(), row, enc)
            {
                self.source.handed(reject(format!(
                    "cannot render {}.{} column {column}: {m}",
                    plan.database, plan.table
                )));
                return Ok(emitted);
            }
            producer.send(&Message {
                json: &self.writer.line,
                database: &plan.database,
                table: &plan.table,
                kind: "bootstrap-insert",
                primary_key: cfg.routing.then_some(PrimaryKey {
                    columns: &plan.primary_key_names,
                    values_json: &self.writer.pk,
                }),
                partition_values: (!self.writer.partition_values.is_empty())
                    .then_some(self.writer.partition_values.as_slice()),
                xid: None,
            })?;
            emitted += 1;
        }
        self.source.handed(Delivered::Chunk {
            task: wm.task,
            chunk: wm.chunk,
            emitted,
            superseded,
        });
        Ok(emitted)
    }
}
