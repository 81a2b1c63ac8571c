//! Rendering on a pool of worker threads (`worker_threads` ≥ 2), output in
//! binlog order.
//!
//! The processor thread keeps everything sequential and cheap: table maps,
//! schema, filters, transaction boundaries, the checkpoint. Rows events of a
//! transaction are kept as they came (their bytes and the `Arc`'d decode
//! table); at the commit the transaction joins a job. A worker decodes the
//! row images and writes every row's finished JSON line (commit fields
//! included) into one buffer; the processor hands the lines to the producer
//! job by job, in submission order, so the output is the same bytes in the
//! same order as with rendering on the processor thread. A job carries the
//! transaction boundary after its last transaction: the checkpoint moves
//! there only once the job's rows are handed over, so the checkpoint rule
//! (flush, then store) is unchanged. Jobs in flight are bounded in number
//! and in bytes: memory stays flat.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use sluice_binlog::event::EventHeader;
use sluice_binlog::rows::{read_row_image, Cell, RowsHeader, RowsKind};
use sluice_binlog::BinlogPosition;

use crate::encode::{CommitInfo, OutputConfig};
use crate::processor::PipelineError;
use crate::render::{write_head, Images, RowContext, RowScratch};
use crate::table::DecodeTable;
use crate::values::RenderOptions;

/// A job is handed to the pool once its transactions hold this many bytes of
/// rows events (about 3,000 rows of six columns), or when the stream waits.
const JOB_BYTES: usize = 256 * 1024;
/// Bytes of rows events in jobs not yet handed to the producer.
const MAX_IN_FLIGHT_BYTES: usize = 16 * 1024 * 1024;
/// A transaction with more bytes of rows events than this is rendered on the
/// processor thread into the (spilling) transaction buffer instead.
pub(crate) const MAX_DEFERRED_TXN_BYTES: usize = 4 * 1024 * 1024;
/// The largest delivered job buffers kept for reuse: a usual job renders
/// about 1 MiB of JSON; one that held a big transaction (up to
/// `MAX_DEFERRED_TXN_BYTES` of events, several times that in JSON) is freed
/// rather than kept at that size for good.
const MAX_SPARE_BUF_BYTES: usize = 4 * 1024 * 1024;
const MAX_SPARE_ROWS: usize = 32 * 1024;

/// One rows event kept for a worker.
pub(crate) struct DeferredRows {
    pub header: EventHeader,
    pub body: Vec<u8>,
    pub hdr: RowsHeader,
    pub table_index: u32,
    /// The statement's text, when `output_row_query` asks for it.
    pub row_query: Option<String>,
}

/// A committed transaction whose rows are still to be rendered.
pub(crate) struct TxnWork {
    pub events: Vec<DeferredRows>,
    pub tables: Vec<Arc<DecodeTable>>,
    pub xid: Option<u64>,
    pub position: String,
    pub gtid: Option<String>,
    pub server_id: u32,
    pub thread_id: Option<u32>,
    pub schema_id: Option<u64>,
    /// The binlog file (for error messages).
    pub file: String,
}

#[derive(Default)]
pub(crate) struct Job {
    pub txns: Vec<TxnWork>,
    pub bytes: usize,
}

/// One finished line in a job's buffer.
pub(crate) struct RowOut {
    pub txn: u32,
    pub table: u32,
    pub kind: &'static str,
    pub line: Range<usize>,
    pub pk: Range<usize>,
    pub partition_values: Range<usize>,
}

/// A job's lines, in order; `error` stops the stream (no line of the job is
/// handed over).
pub(crate) struct Rendered {
    pub job: Job,
    pub buf: Vec<u8>,
    pub rows: Vec<RowOut>,
    pub error: Option<PipelineError>,
}

/// A job, the buffers to render it into (reused: a job's lines are
/// megabytes, and fresh ones cost page faults), and where to answer.
struct Work {
    job: Job,
    buf: Vec<u8>,
    rows: Vec<RowOut>,
    reply: SyncSender<Rendered>,
}

pub(crate) struct Pool {
    jobs: Option<SyncSender<Work>>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    fn new(workers: usize, cfg: OutputConfig, line_blocks: bool) -> std::io::Result<Pool> {
        let (tx, rx) = mpsc::sync_channel::<Work>(workers * 2);
        let rx = Arc::new(Mutex::new(rx));
        let cfg = Arc::new(cfg);
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let (rx, cfg) = (rx.clone(), cfg.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("render-{i}"))
                    .spawn(move || worker(&rx, &cfg, line_blocks))?,
            );
        }
        Ok(Pool {
            jobs: Some(tx),
            threads,
        })
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the queue ends the workers after their current job.
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn worker(rx: &Mutex<Receiver<Work>>, cfg: &OutputConfig, line_blocks: bool) {
    let mut w = Worker {
        scratch: RowScratch::new(RenderOptions {
            null_zero_dates: cfg.null_zero_dates,
        }),
        before: Vec::new(),
        before_absent: Vec::new(),
        after: Vec::new(),
        after_absent: Vec::new(),
        prefix: Vec::new(),
        line_blocks,
    };
    loop {
        let next = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(Work {
            job,
            buf,
            rows,
            reply,
        }) = next
        else {
            return;
        };
        let mut out = Rendered {
            job,
            buf,
            rows,
            error: None,
        };
        if let Err(e) = w.render(cfg, &mut out) {
            out.error = Some(e);
        }
        // The processor may have stopped waiting (an earlier job failed).
        let _ = reply.send(out);
    }
}

struct Worker {
    scratch: RowScratch,
    before: Vec<Cell>,
    before_absent: Vec<bool>,
    after: Vec<Cell>,
    after_absent: Vec<bool>,
    /// The start of every line of the rows event being rendered.
    prefix: Vec<u8>,
    /// End every line with `\n` (outside its range): the buffer is then
    /// the producer's block as it is.
    line_blocks: bool,
}

impl Worker {
    fn render(&mut self, cfg: &OutputConfig, out: &mut Rendered) -> Result<(), PipelineError> {
        let Rendered { job, buf, rows, .. } = out;
        buf.reserve(job.bytes * 3);
        for (ti, txn) in job.txns.iter().enumerate() {
            let info = CommitInfo {
                xid: txn.xid,
                position: &txn.position,
                gtid: txn.gtid.as_deref(),
                server_id: txn.server_id,
                thread_id: txn.thread_id,
                schema_id: txn.schema_id,
            };
            // The transaction's last row carries `"commit":true`.
            let last_event = txn
                .events
                .iter()
                .rposition(|e| e.hdr.rows_offset < e.body.len());
            let mut index = 0u64;
            // A row's line starts with the same bytes for every row of its
            // rows event (table, type, ts) and transaction (xid): written
            // once per event, copied per row.
            let prefix = &mut self.prefix;
            for (ei, e) in txn.events.iter().enumerate() {
                let position = || {
                    let h = &e.header;
                    let start = u64::from(h.log_pos).saturating_sub(u64::from(h.event_size));
                    format!("{}:{}", txn.file, start)
                };
                let t = txn.tables.get(e.table_index as usize).ok_or_else(|| {
                    PipelineError::Definite {
                        position: position(),
                        message: "rows event of a table the transaction does not know".into(),
                    }
                })?;
                let body = &e.body;
                let mut pos = e.hdr.rows_offset;
                let event_cx = RowContext {
                    cfg,
                    body,
                    timestamp: e.header.timestamp,
                    table: t,
                    table_index: e.table_index,
                    kind: e.hdr.kind,
                    row_query: e.row_query.as_deref(),
                };
                prefix.clear();
                write_head(&event_cx, prefix);
                cfg.write_xid(prefix, &info);
                while pos < body.len() {
                    let binlog = |source: sluice_binlog::SourceError| PipelineError::Binlog {
                        position: position(),
                        source,
                    };
                    pos = read_row_image(
                        body,
                        pos,
                        &t.map,
                        &e.hdr.present,
                        &mut self.before,
                        &mut self.before_absent,
                    )
                    .map_err(binlog)?;
                    if e.hdr.kind == RowsKind::Update {
                        pos = read_row_image(
                            body,
                            pos,
                            &t.map,
                            &e.hdr.present_after,
                            &mut self.after,
                            &mut self.after_absent,
                        )
                        .map_err(binlog)?;
                    }
                    let img = Images {
                        before: &self.before,
                        before_absent: &self.before_absent,
                        after: &self.after,
                        after_absent: &self.after_absent,
                    };
                    let last = Some(ei) == last_event && pos >= body.len();
                    let at = self
                        .scratch
                        .render_line(&event_cx, &img, buf, |out| {
                            out.extend_from_slice(prefix);
                            cfg.write_commit_fields_after_xid(out, &info, index, last)
                        })
                        .map_err(|(column, message)| PipelineError::Decode {
                            table: format!("{}.{}", t.database, t.table),
                            column: t.columns[column].name.clone(),
                            position: position(),
                            message,
                        })?;
                    if self.line_blocks {
                        buf.push(b'\n');
                    }
                    rows.push(RowOut {
                        txn: ti as u32,
                        table: e.table_index,
                        kind: e.hdr.kind.as_str(),
                        line: at.line,
                        pk: at.pk,
                        partition_values: at.partition_values,
                    });
                    index += 1;
                }
            }
        }
        Ok(())
    }
}

struct InFlight {
    done: Receiver<Rendered>,
    bytes: usize,
    /// The transaction boundary after the job (and after whatever followed
    /// it without rows), once known.
    boundary: Option<BinlogPosition>,
}

/// The processor's side: the job being filled, the jobs in flight in
/// submission order, and the checkpoint they hold back.
pub(crate) struct Ordered {
    pool: Pool,
    max_jobs: usize,
    batch: Job,
    batch_boundary: Option<BinlogPosition>,
    in_flight: VecDeque<InFlight>,
    in_flight_bytes: usize,
    /// Buffers of delivered jobs, for the next jobs.
    spare: Vec<(Vec<u8>, Vec<RowOut>)>,
    /// Jobs are rendered as blocks of `\n`-ended lines for a producer that
    /// takes them whole (`Producer::send_lines`).
    pub line_blocks: bool,
    /// While work is queued: the boundary before which every row has been
    /// handed to the producer (`None`: nothing queued, the processor's own
    /// boundary holds).
    pub handed: Option<BinlogPosition>,
}

impl Ordered {
    pub fn new(workers: usize, cfg: OutputConfig, line_blocks: bool) -> std::io::Result<Self> {
        Ok(Ordered {
            pool: Pool::new(workers, cfg, line_blocks)?,
            max_jobs: workers * 2 + 2,
            batch: Job::default(),
            batch_boundary: None,
            in_flight: VecDeque::new(),
            in_flight_bytes: 0,
            spare: Vec::new(),
            line_blocks,
            handed: None,
        })
    }

    /// Nothing queued.
    pub fn idle(&self) -> bool {
        self.batch.txns.is_empty() && self.in_flight.is_empty()
    }

    /// Queues a committed transaction; `before` is the boundary before it.
    /// Returns whether the job is full (time to `dispatch`).
    pub fn push(&mut self, txn: TxnWork, bytes: usize, before: &BinlogPosition) -> bool {
        if self.idle() {
            self.handed = Some(before.clone());
        }
        self.batch.txns.push(txn);
        self.batch.bytes += bytes;
        self.batch.bytes >= JOB_BYTES
    }

    /// A new transaction boundary while work is queued: it holds once the
    /// last queued job is handed over.
    pub fn note_boundary(&mut self, b: BinlogPosition) {
        if !self.batch.txns.is_empty() {
            self.batch_boundary = Some(b);
        } else if let Some(last) = self.in_flight.back_mut() {
            last.boundary = Some(b);
        }
    }

    /// Hands the job being filled to the pool.
    pub fn dispatch(&mut self) -> Result<(), PipelineError> {
        if self.batch.txns.is_empty() {
            return Ok(());
        }
        let job = std::mem::take(&mut self.batch);
        let bytes = job.bytes;
        let (reply, done) = mpsc::sync_channel(1);
        let (buf, rows) = self.spare.pop().unwrap_or_default();
        let work = Work {
            job,
            buf,
            rows,
            reply,
        };
        let sent = self
            .pool
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(work).is_ok());
        if !sent {
            return Err(stopped());
        }
        self.in_flight.push_back(InFlight {
            done,
            bytes,
            boundary: self.batch_boundary.take(),
        });
        self.in_flight_bytes += bytes;
        Ok(())
    }

    /// Whether the oldest job must be taken before more is queued.
    pub fn full(&self) -> bool {
        self.in_flight.len() >= self.max_jobs || self.in_flight_bytes >= MAX_IN_FLIGHT_BYTES
    }

    pub fn has_in_flight(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// The oldest job once rendered (waiting for it if `block`), with the
    /// boundary that holds after it. A failed job ends the queue: nothing
    /// after it is handed over.
    pub fn next(
        &mut self,
        block: bool,
    ) -> Result<Option<(Rendered, Option<BinlogPosition>)>, PipelineError> {
        let Some(front) = self.in_flight.front() else {
            return Ok(None);
        };
        let got = if block {
            front.done.recv().map_err(|_| stopped())
        } else {
            match front.done.try_recv() {
                Ok(r) => Ok(r),
                Err(TryRecvError::Empty) => return Ok(None),
                Err(TryRecvError::Disconnected) => Err(stopped()),
            }
        };
        let Some(front) = self.in_flight.pop_front() else {
            return Ok(None);
        };
        self.in_flight_bytes -= front.bytes;
        let mut rendered = match got {
            Ok(r) => r,
            Err(e) => {
                self.clear();
                return Err(e);
            }
        };
        if let Some(e) = rendered.error.take() {
            self.clear();
            return Err(e);
        }
        Ok(Some((rendered, front.boundary)))
    }

    /// Takes a delivered job's buffers back for the next jobs (as many as
    /// can be in flight, none larger than a usual job needs).
    pub fn recycle(&mut self, rendered: Rendered) {
        if self.spare.len() < self.max_jobs
            && rendered.buf.capacity() <= MAX_SPARE_BUF_BYTES
            && rendered.rows.capacity() <= MAX_SPARE_ROWS
        {
            let Rendered {
                mut buf, mut rows, ..
            } = rendered;
            buf.clear();
            rows.clear();
            self.spare.push((buf, rows));
        }
    }

    /// Drops everything queued (after a failure).
    pub fn clear(&mut self) {
        self.batch = Job::default();
        self.batch_boundary = None;
        self.in_flight.clear();
        self.in_flight_bytes = 0;
    }
}

fn stopped() -> PipelineError {
    PipelineError::Definite {
        position: String::new(),
        message: "a rendering worker thread stopped".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivered(buf_capacity: usize, rows_capacity: usize) -> Rendered {
        Rendered {
            job: Job::default(),
            buf: Vec::with_capacity(buf_capacity),
            rows: Vec::with_capacity(rows_capacity),
            error: None,
        }
    }

    #[test]
    fn delivered_buffers_are_kept_up_to_a_usual_jobs_size_and_count() {
        let mut ordered = Ordered::new(1, OutputConfig::default(), false).unwrap();
        ordered.recycle(delivered(1024 * 1024, 4096));
        assert_eq!(ordered.spare.len(), 1, "a usual job's buffers are kept");
        // A big transaction's buffers are freed, not kept at that size.
        ordered.recycle(delivered(MAX_SPARE_BUF_BYTES + 1, 16));
        ordered.recycle(delivered(1024, MAX_SPARE_ROWS + 1));
        assert_eq!(ordered.spare.len(), 1);
        // At most as many as can be in flight.
        for _ in 0..10 {
            ordered.recycle(delivered(1024, 16));
        }
        assert_eq!(ordered.spare.len(), ordered.max_jobs);
        assert!(ordered
            .spare
            .iter()
            .all(|(b, r)| b.is_empty() && r.is_empty()));
    }
}
