//! One snapshot task, from its request row to `bootstrap-complete`:
//!
//! 1. take the request over (`bootstrap_progress`, epoch-fenced) and read
//!    what an earlier run stored: the cursor of the last delivered chunk;
//! 2. capture the table, choose its key, try the where clause (a clause the
//!    server refuses fails the task once, before anything is emitted);
//! 3. `bootstrap-start` through a `start` watermark (unless an earlier run
//!    delivered it already);
//! 4. chunks: low watermark, keyset query, hand the rows over, high
//!    watermark; at most [`HANDED_AHEAD`] chunks wait for the processor and
//!    [`UNDELIVERED`] for the producer, so memory is bounded and a crash
//!    re-reads little. A chunk is delivered when the producer flushed it:
//!    only then does the stored cursor move past it;
//! 5. `bootstrap-complete` through a `complete` watermark, then Maxwell's
//!    completion update.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool};
use sluice_pipeline::snapshot::{Chunk, Delivered, Mark, SnapValue, TaskInfo};
use sluice_schema::Table;

use super::chunks::{choose_key, ChunkReader};
use super::exchange::Exchange;
use super::options::BootstrapOptions;
use super::tables::{quote, write_watermark, Progress, Request, StateError, StateTables};
use crate::telemetry::Telemetry;

/// Chunks read and handed over but not yet taken by the processor.
const HANDED_AHEAD: usize = 2;
/// Chunks written but not yet delivered (flushed): what a crash re-reads.
const UNDELIVERED: usize = 4;
/// Rejected chunks in a row before the task fails (schema changing under
/// it, or a keyless table never quiet for one pass).
const MAX_REJECTIONS: u32 = 8;

/// How an attempt ended without an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Complete,
    /// The request row was deleted or completed by someone else.
    Aborted,
    /// The table does not exist (Maxwell: complete with 0 rows, nothing emitted).
    Missing,
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// Worth another attempt: the server went away, a lock wait timed out.
    #[error("{0}")]
    Transient(String),
    /// Will not get better: the task fails with this message.
    #[error("{0}")]
    Definite(String),
    /// A newer leader works on the request: this node stops snapshotting.
    #[error("{0}")]
    Fenced(String),
}

/// Server errors that go away by themselves.
const TRANSIENT_CODES: &[u16] = &[1040, 1053, 1205, 1213, 1317, 1927, 2006, 2013];

impl From<mysql_async::Error> for TaskError {
    fn from(e: mysql_async::Error) -> Self {
        match &e {
            mysql_async::Error::Server(s) if !TRANSIENT_CODES.contains(&s.code) => {
                TaskError::Definite(s.message.clone())
            }
            _ => TaskError::Transient(e.to_string()),
        }
    }
}

impl From<StateError> for TaskError {
    fn from(e: StateError) -> Self {
        match e {
            StateError::Sql(sql) => TaskError::from(sql),
            fenced @ StateError::Fenced { .. } => TaskError::Fenced(fenced.to_string()),
        }
    }
}

/// What a task needs of the stream it runs in.
pub struct TaskContext {
    pub tables: StateTables,
    /// Where rows are read (the replication server).
    pub rows: Pool,
    pub exchange: Arc<Exchange>,
    pub telemetry: Arc<Telemetry>,
    pub options: BootstrapOptions,
    /// The stream's watermark session.
    pub session: u64,
    /// Set when rows come from another server than the state host's.
    pub split_hosts: Option<SplitHosts>,
}

/// Rows are read from a replica (`replication_host`) while watermarks are
/// written on the state host (`host`), upstream of it: a chunk may be read
/// only once the replica has applied its low watermark, which shows as the
/// low watermark arriving in the replica's binlog.
#[derive(Debug, Clone)]
pub struct SplitHosts {
    pub state: String,
    pub replication: String,
}

/// How long a low watermark may take to come back through the replica.
const LOW_WATERMARK_WAIT: Duration = Duration::from_secs(60);

/// A chunk whose high watermark is written and which is not delivered yet.
struct Pending {
    chunk: u64,
    /// The cursor it was read after, and the key of its last row.
    from: Option<Vec<SnapValue>>,
    to: Option<Vec<SnapValue>>,
}

/// A table is read in at least this many chunks (when it has that many
/// rows): a crash re-reads at most a few chunks, so however often the
/// snapshot is interrupted each interruption costs a few percent of the
/// table, not a large part of it.
const MIN_CHUNKS_PER_TABLE: u64 = 100;
const MIN_CHUNK_ROWS: u64 = 100;

/// `bootstrap_chunk_size`, or less for a table of fewer than 100 chunks.
fn chunk_size(o: &BootstrapOptions, total_rows: u64) -> u64 {
    o.chunk_size
        .min((total_rows / MIN_CHUNKS_PER_TABLE).max(MIN_CHUNK_ROWS))
}

/// The chunk loop's state.
struct Run<'a> {
    ctx: &'a TaskContext,
    req: &'a Request,
    info: TaskInfo,
    progress: Progress,
    reader: ChunkReader,
    conn: Conn,
    /// Chunks handed over, not yet taken by the processor.
    handed: usize,
    pending: VecDeque<Pending>,
    /// Where the next chunk starts.
    next_from: Option<Vec<SnapValue>>,
    done_reading: bool,
    /// A chunk was rejected: read again from here once nothing is pending.
    restart_from: Option<Option<Vec<SnapValue>>>,
    rejections: u32,
    aborted: bool,
    started_at: Instant,
    rows_read_now: u64,
    chunks_now: u64,
    last_abort_check: Instant,
    last_inserted_rows: Instant,
    last_watermark_id: u64,
    /// Where this attempt's time went (logged at the end).
    spent: Spent,
    /// The stored count of rows read being updated.
    counting: Option<tokio::task::JoinHandle<Result<(), StateError>>>,
}

#[derive(Default)]
struct Spent {
    /// Chunk queries, rows received and converted.
    reading: Duration,
    /// Watermark writes.
    watermarks: Duration,
    /// Waiting for the stream to take or deliver chunks.
    waiting: Duration,
    /// Held back by the rate limit.
    throttled: Duration,
    /// Progress and counters written.
    bookkeeping: Duration,
}

/// Opens the connection chunks are read on: UTC like the binlog's
/// TIMESTAMPs, utf8mb4 like the JSON.
async fn open_reader(pool: &Pool) -> Result<Conn, mysql_async::Error> {
    let mut conn = pool.get_conn().await?;
    conn.query_drop("SET NAMES utf8mb4").await?;
    conn.query_drop("SET time_zone = '+00:00'").await?;
    Ok(conn)
}

/// The table's row count as the server estimates it (for progress only).
async fn estimate(conn: &mut Conn, def: &Table) -> u64 {
    conn.exec_first::<Option<u64>, _, _>(
        "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
        (&def.database, &def.name),
    )
    .await
    .ok()
    .flatten()
    .flatten()
    .unwrap_or(0)
}

/// The requested table's definition as the rows server has it now; `None`
/// when it does not exist.
async fn capture(conn: &mut Conn, req: &Request) -> Result<Option<Table>, TaskError> {
    sluice_schema::capture_table(conn, &req.database, &req.table)
        .await
        .map_err(|e| match e {
            sluice_schema::CaptureError::Sql(sql) => TaskError::from(sql),
            other => TaskError::Definite(other.to_string()),
        })
}

/// One attempt at `req`; `failures`: attempts that failed before (stored).
pub async fn attempt(
    ctx: &TaskContext,
    req: &Request,
    failures: u64,
) -> Result<Outcome, TaskError> {
    let mut progress = ctx.tables.claim(req).await?;
    progress.failures = failures;
    let board = &ctx.telemetry.bootstrap;
    if !ctx.options.resume && (progress.start_emitted || progress.cursor.is_some()) {
        tracing::info!(
            id = req.id,
            "bootstrap_resume=false: reading the table again from its first row"
        );
        progress.cursor = None;
        progress.start_emitted = false;
        progress.chunks = 0;
        progress.rows_emitted = 0;
        progress.rows_superseded = 0;
    }
    let mut conn = open_reader(&ctx.rows).await?;
    let def = capture(&mut conn, req).await?;
    let Some(def) = def else {
        tracing::warn!(
            id = req.id,
            "Couldn't find {}/{} for {}.{}: request completed with 0 rows",
            req.database,
            req.table,
            req.database,
            req.table
        );
        progress.state = "missing".into();
        ctx.tables.finish(&progress).await?;
        return Ok(Outcome::Missing);
    };
    let key = choose_key(&mut conn, &def).await?;
    if progress.key_columns != key {
        if progress.cursor.is_some() {
            tracing::warn!(id = req.id, before = ?progress.key_columns, now = ?key,
                "the table's key changed since the snapshot began: reading it again from its first row");
        }
        progress.cursor = None;
        progress.key_columns = key.clone();
    }
    // A where clause the server refuses fails the task now, once, before
    // anything is emitted (Maxwell would loop, emitting bootstrap-start).
    let probe = format!(
        "SELECT 1 FROM {}.{}{} LIMIT 0",
        quote(&def.database),
        quote(&def.name),
        req.where_clause
            .as_deref()
            .map(|w| format!(" WHERE ({w})"))
            .unwrap_or_default()
    );
    conn.query_drop(probe).await?;
    progress.total_estimate = if req.total_rows > 0 {
        req.total_rows
    } else {
        estimate(&mut conn, &def).await
    };
    if key.is_empty() {
        tracing::warn!(id = req.id, table = %format!("{}.{}", def.database, def.name),
            "no primary key and no unique key of NOT NULL columns: the table is read in one pass, held in memory until its high watermark, and read again if it changes meanwhile");
    }
    let info = TaskInfo {
        task: req.id,
        database: def.database.clone(),
        table: def.name.clone(),
        comment: req.comment.clone(),
        key_columns: key.clone(),
    };
    ctx.exchange.register(info.clone());
    board.update(req.id, &def.database, &def.name, |t| {
        t.state = "running";
        t.rows = progress.rows_emitted;
        t.rows_read = progress.rows_read;
        t.superseded = progress.rows_superseded;
        t.chunks = progress.chunks;
        t.total = progress.total_estimate;
        t.failures = progress.failures;
        t.error = None;
        t.restart_clock();
    });
    ctx.tables.mark_started(req.id).await?;
    let reader = ChunkReader::new(
        &def,
        &key,
        req.where_clause.as_deref(),
        chunk_size(&ctx.options, progress.total_estimate),
    );
    let next_from = progress.cursor.clone();
    // A keyless table is one pass: delivered once, it is not read again.
    let done_reading = key.is_empty() && progress.chunks > 0;
    let mut run = Run {
        ctx,
        req,
        info,
        progress,
        reader,
        conn,
        handed: 0,
        pending: VecDeque::new(),
        next_from,
        done_reading,
        restart_from: None,
        rejections: 0,
        aborted: false,
        started_at: Instant::now(),
        rows_read_now: 0,
        chunks_now: 0,
        last_abort_check: Instant::now(),
        last_inserted_rows: Instant::now(),
        last_watermark_id: 0,
        spent: Spent::default(),
        counting: None,
    };
    let result = run.chunks().await;
    ctx.exchange.forget(req.id);
    result
}

impl Run<'_> {
    async fn watermark(&mut self, chunk: u64, mark: Mark) -> Result<(), TaskError> {
        let t0 = Instant::now();
        let (db, client, session, task) = (
            self.ctx.tables.database(),
            self.ctx.tables.client_id(),
            self.ctx.session,
            self.req.id,
        );
        let id = match &self.ctx.split_hosts {
            // Not on the replica: it may be read-only, and a write there is
            // an errant transaction for its next failover.
            Some(_) => {
                let mut state = self.ctx.tables.conn().await?;
                write_watermark(&mut state, db, client, session, task, chunk, mark).await?
            }
            None => write_watermark(&mut self.conn, db, client, session, task, chunk, mark).await?,
        };
        self.last_watermark_id = id;
        if mark == Mark::Low {
            self.wait_for_low(chunk).await?;
        }
        self.spent.watermarks += t0.elapsed();
        Ok(())
    }

    /// With split hosts, returns once the replica applied the low
    /// watermark of `chunk` (the stream saw it in the replica's binlog).
    async fn wait_for_low(&self, chunk: u64) -> Result<(), TaskError> {
        let Some(split) = &self.ctx.split_hosts else {
            return Ok(());
        };
        let deadline = Instant::now() + LOW_WATERMARK_WAIT;
        while !self.ctx.exchange.take_low_seen(self.req.id, chunk) {
            if Instant::now() >= deadline {
                return Err(TaskError::Transient(format!(
                    "the low watermark written on the state host {} did not arrive in the binlog of the replication host {} within {} s: \
                     the replication host must replicate `{}` from the state host and log what it replicates (log_slave_updates), \
                     or its replication lag is above that",
                    split.state,
                    split.replication,
                    LOW_WATERMARK_WAIT.as_secs(),
                    self.ctx.tables.database()
                )));
            }
            tokio::select! {
                _ = self.ctx.exchange.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
        Ok(())
    }

    fn status(&self, f: impl FnOnce(&mut super::status::TaskStatus)) {
        self.ctx
            .telemetry
            .bootstrap
            .update(self.req.id, &self.info.database, &self.info.table, f);
    }

    async fn chunks(&mut self) -> Result<Outcome, TaskError> {
        if !self.progress.start_emitted {
            self.watermark(0, Mark::Start).await?;
        }
        loop {
            let t0 = Instant::now();
            self.take_reports().await?;
            self.spent.bookkeeping += t0.elapsed();
            if self.done_reading && self.pending.is_empty() && self.restart_from.is_none() {
                break;
            }
            self.check_abort().await?;
            if self.restart_from.is_some() && self.pending.is_empty() && self.handed == 0 {
                self.read_again().await?;
                continue;
            }
            let may_read = !self.done_reading
                && self.restart_from.is_none()
                && self.handed < HANDED_AHEAD
                && self.pending.len() < UNDELIVERED;
            if !may_read {
                let t0 = Instant::now();
                tokio::select! {
                    _ = self.ctx.exchange.changed() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                self.spent.waiting += t0.elapsed();
                continue;
            }
            self.throttle().await;
            self.read_chunk().await?;
        }
        self.finish().await
    }

    /// Reads one chunk between its watermarks and hands it over.
    async fn read_chunk(&mut self) -> Result<(), TaskError> {
        let chunk = self.ctx.exchange.next_chunk();
        self.watermark(chunk, Mark::Low).await?;
        let from = self.next_from.clone();
        let t0 = Instant::now();
        let rows = self.reader.read(&mut self.conn, from.as_deref()).await?;
        self.spent.reading += t0.elapsed();
        let n = rows.len() as u64;
        let t0 = Instant::now();
        self.count_read(Some(n)).await?;
        self.spent.bookkeeping += t0.elapsed();
        self.rows_read_now += n;
        self.progress.rows_read += n;
        let to = self.reader.last_key(&rows);
        let last = self.reader.is_last(rows.len());
        self.ctx.exchange.hand_over(Chunk {
            task: self.req.id,
            chunk,
            columns: self.reader.columns.clone(),
            rows,
        });
        self.watermark(chunk, Mark::High).await?;
        self.handed += 1;
        self.chunks_now += 1;
        self.pending.push_back(Pending {
            chunk,
            from,
            to: to.clone(),
        });
        if last {
            self.done_reading = true;
        } else {
            self.next_from = to;
        }
        let read = self.progress.rows_read;
        self.status(|t| t.rows_read = read);
        if self.chunks_now.is_multiple_of(256) {
            self.ctx
                .tables
                .prune_watermarks(self.last_watermark_id)
                .await?;
        }
        Ok(())
    }

    /// Adds `rows` to the stored count of rows read, beside the next chunk's
    /// query (one count in flight at a time, so errors surface); `None`
    /// waits for the last one.
    async fn count_read(&mut self, rows: Option<u64>) -> Result<(), TaskError> {
        if let Some(previous) = self.counting.take() {
            previous
                .await
                .map_err(|e| TaskError::Transient(format!("counting rows read: {e}")))??;
        }
        if let Some(n) = rows {
            let (tables, id) = (self.ctx.tables.clone(), self.req.id);
            self.counting = Some(tokio::spawn(
                async move { tables.add_rows_read(id, n).await },
            ));
        }
        Ok(())
    }

    /// Applies what the processor reported: chunks taken, rejected,
    /// delivered.
    async fn take_reports(&mut self) -> Result<(), TaskError> {
        let task = self.req.id;
        for d in self.ctx.exchange.take_handed() {
            match d {
                Delivered::Chunk { task: t, .. } if t == task => {
                    self.handed = self.handed.saturating_sub(1);
                }
                Delivered::Rejected {
                    task: t,
                    chunk,
                    reason,
                } if t == task => {
                    self.handed = self.handed.saturating_sub(1);
                    self.rejections += 1;
                    tracing::warn!(id = task, chunk, reason = %reason, "chunk rejected at its high watermark; it is read again");
                    if self.rejections > MAX_REJECTIONS {
                        return Err(TaskError::Definite(format!(
                            "{MAX_REJECTIONS} chunks in a row could not be emitted; the last because {reason}"
                        )));
                    }
                    if self.restart_from.is_none() {
                        let from = self
                            .pending
                            .iter()
                            .find(|p| p.chunk == chunk)
                            .map(|p| p.from.clone())
                            .unwrap_or_else(|| self.progress.cursor.clone());
                        self.restart_from = Some(from);
                    }
                }
                _ => {}
            }
        }
        let mut changed = false;
        for d in self.ctx.exchange.take_delivered() {
            match d {
                Delivered::Started { task: t } if t == task => {
                    self.progress.start_emitted = true;
                    changed = true;
                }
                Delivered::Chunk {
                    task: t,
                    chunk,
                    emitted,
                    superseded,
                } if t == task => {
                    self.progress.rows_emitted += emitted;
                    self.progress.rows_superseded += superseded;
                    if let Some(i) = self.pending.iter().position(|p| p.chunk == chunk) {
                        if let Some(p) = self.pending.remove(i) {
                            // Chunks are delivered in the order they were
                            // written; after a rejection the cursor waits
                            // for the chunk to be read again.
                            if self.restart_from.is_none() {
                                self.progress.cursor = p.to.or(p.from);
                                self.progress.chunks += 1;
                                self.rejections = 0;
                            }
                        }
                    }
                    changed = true;
                }
                Delivered::Rejected { task: t, chunk, .. } if t == task => {
                    self.pending.retain(|p| p.chunk != chunk);
                }
                _ => {}
            }
        }
        if changed {
            self.ctx.tables.save(&self.progress).await?;
            let p = &self.progress;
            let (rows, sup, chunks) = (p.rows_emitted, p.rows_superseded, p.chunks);
            self.status(|t| {
                t.rows = rows;
                t.superseded = sup;
                t.chunks = chunks;
            });
            if self.last_inserted_rows.elapsed() >= Duration::from_secs(1) {
                self.last_inserted_rows = Instant::now();
                self.ctx.tables.set_inserted_rows(self.req.id, rows).await?;
            }
        }
        Ok(())
    }

    /// Maxwell's abort: the request row deleted (or completed by someone
    /// else) stops reading; `bootstrap-complete` still follows.
    async fn check_abort(&mut self) -> Result<(), TaskError> {
        if self.aborted || self.last_abort_check.elapsed() < Duration::from_secs(1) {
            return Ok(());
        }
        self.last_abort_check = Instant::now();
        if self.ctx.tables.is_complete(self.req.id).await? != Some(false) {
            tracing::info!(
                id = self.req.id,
                "bootstrap request deleted or completed elsewhere: snapshot aborted"
            );
            self.aborted = true;
            self.done_reading = true;
            self.restart_from = None;
        }
        Ok(())
    }

    /// After a rejection: the table again (its columns may have changed),
    /// then the rejected chunk's range again.
    async fn read_again(&mut self) -> Result<(), TaskError> {
        let from = self.restart_from.take().flatten();
        if self.info.key_columns.is_empty() {
            // A keyless table changed during its pass: wait a little for a
            // quiet moment.
            tokio::time::sleep(Duration::from_millis(250) * self.rejections.min(20)).await;
        }
        let def = capture(&mut self.conn, self.req).await?;
        let Some(def) = def else {
            tracing::warn!(
                id = self.req.id,
                "the table was dropped during its snapshot; completing it"
            );
            self.done_reading = true;
            return Ok(());
        };
        let key = choose_key(&mut self.conn, &def).await?;
        self.next_from = if key == self.info.key_columns {
            from
        } else {
            None
        };
        self.info.key_columns = key.clone();
        self.progress.key_columns = key.clone();
        self.ctx.exchange.register(self.info.clone());
        self.reader = ChunkReader::new(
            &def,
            &key,
            self.req.where_clause.as_deref(),
            chunk_size(&self.ctx.options, self.progress.total_estimate),
        );
        self.done_reading = false;
        Ok(())
    }

    /// `bootstrap_max_rows_per_second`: waits until the rows read so far
    /// fit the rate.
    async fn throttle(&mut self) {
        let rate = self.ctx.options.max_rows_per_second;
        if rate == 0 {
            return;
        }
        let due = Duration::from_secs_f64(self.rows_read_now as f64 / rate as f64);
        let elapsed = self.started_at.elapsed();
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
            self.spent.throttled += due - elapsed;
        }
    }

    /// `bootstrap-complete`, delivered, then Maxwell's completion update.
    async fn finish(&mut self) -> Result<Outcome, TaskError> {
        self.count_read(None).await?;
        let chunk = self.ctx.exchange.next_chunk();
        self.watermark(chunk, Mark::Complete).await?;
        let task = self.req.id;
        loop {
            let delivered = self.ctx.exchange.take_delivered();
            self.ctx.exchange.take_handed();
            if delivered.contains(&Delivered::Completed { task }) {
                break;
            }
            tokio::select! {
                _ = self.ctx.exchange.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        let gone = self.ctx.tables.is_complete(task).await?.is_none();
        self.progress.state = if self.aborted { "aborted" } else { "complete" }.into();
        if gone {
            self.ctx.tables.save(&self.progress).await?;
        } else {
            self.ctx.tables.finish(&self.progress).await?;
        }
        self.ctx
            .tables
            .prune_watermarks(self.last_watermark_id + 1)
            .await?;
        let (state, rows) = (
            if self.aborted { "aborted" } else { "complete" },
            self.progress.rows_emitted,
        );
        self.status(|t| {
            t.state = state;
            t.rows = rows;
        });
        tracing::info!(id = task, table = %format!("{}.{}", self.info.database, self.info.table), rows,
            rows_read = self.progress.rows_read, superseded = self.progress.rows_superseded,
            chunks = self.progress.chunks, elapsed_ms = self.started_at.elapsed().as_millis() as u64,
            reading_ms = self.spent.reading.as_millis() as u64, watermarks_ms = self.spent.watermarks.as_millis() as u64,
            waiting_ms = self.spent.waiting.as_millis() as u64, throttled_ms = self.spent.throttled.as_millis() as u64,
            bookkeeping_ms = self.spent.bookkeeping.as_millis() as u64,
            "bootstrap {state}");
        Ok(if self.aborted {
            Outcome::Aborted
        } else {
            Outcome::Complete
        })
    }
}

/// Marks `req` failed: Maxwell's completion (so nothing waits on it or
/// runs it again) and the reason in `bootstrap_progress`.
pub async fn fail(
    ctx: &TaskContext,
    req: &Request,
    failures: u64,
    message: &str,
) -> Result<(), TaskError> {
    // Started or not, what this request stored is kept (counts, start).
    let started = Request {
        started: true,
        ..req.clone()
    };
    let mut p = ctx.tables.claim(&started).await?;
    p.state = "failed".into();
    p.error = Some(message.to_string());
    p.failures = failures;
    ctx.tables.finish(&p).await?;
    ctx.telemetry
        .bootstrap
        .update(req.id, &req.database, &req.table, |t| {
            t.state = "failed";
            t.failures = failures;
            t.error = Some(message.to_string());
        });
    ctx.exchange.forget(req.id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootstrap::options::Bootstrapper;

    #[test]
    fn small_tables_get_smaller_chunks() {
        let o = BootstrapOptions {
            mode: Bootstrapper::Async,
            chunk_size: 10_000,
            max_rows_per_second: 0,
            resume: true,
        };
        assert_eq!(chunk_size(&o, 5_000_000), 10_000);
        assert_eq!(chunk_size(&o, 100_000), 1_000);
        assert_eq!(chunk_size(&o, 3), 100);
        let small = BootstrapOptions {
            chunk_size: 50,
            ..o
        };
        assert_eq!(chunk_size(&small, 100_000), 50);
    }
}
