//! The processor thread: takes batches of events from the reader, runs them
//! through the pipeline (decode, transactions, JSON, producer) and makes
//! delivery durable through the checkpointer: when it catches up with the
//! binlog, at least every half second while rows flow, before it stops on an
//! event it cannot handle, and at the end.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use sluice_binlog::{BinlogPosition, Event};
use sluice_pipeline::{Processor, ProcessorOptions};
use sluice_producers::Producer;
use sluice_schema::ddl::Flavor;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};

use crate::checkpoint::{Checkpointer, Final, PositionWriter, Progress};
use crate::error::Error;
use crate::live_schema::LiveSchema;
use crate::positions::{PositionStore, StoreError};
use crate::telemetry::Telemetry;

pub type StreamProcessor = Processor<Box<dyn Producer>, LiveSchema>;

/// The pipeline's options from the configuration; `heartbeat_client_id`:
/// whose heartbeat rows mark progress (none when reading files).
pub fn processor_options(
    cfg: &crate::config::Config,
    flavor: Flavor,
    heartbeat_client_id: Option<String>,
) -> ProcessorOptions {
    ProcessorOptions {
        output: cfg.output.clone(),
        txn_memory_bytes: cfg.txn_buffer_bytes,
        tmp_dir: cfg.tmp_dir.clone(),
        internal_database: Some(cfg.schema_database.clone()),
        heartbeat_client_id,
        flavor,
        skip_bad_ddl: cfg.skip_bad_ddl,
    }
}

/// The position store, written from this (synchronous) thread.
pub struct BlockingStore {
    pub store: PositionStore,
    pub handle: Handle,
}

impl PositionWriter for BlockingStore {
    fn write(&mut self, at: &BinlogPosition, heartbeat: Option<u64>) -> Result<(), StoreError> {
        self.handle.block_on(self.store.store(at, heartbeat))
    }

    fn keeps(&self) -> bool {
        !self.store.is_read_only()
    }
}

/// The processor as the checkpointer sees it; a flush also reports the
/// pipeline's counters.
pub struct Delivering<'a> {
    processor: &'a mut StreamProcessor,
    telemetry: &'a Telemetry,
}

impl<'a> Delivering<'a> {
    pub fn new(processor: &'a mut StreamProcessor, telemetry: &'a Telemetry) -> Self {
        Delivering {
            processor,
            telemetry,
        }
    }
}

impl Progress for Delivering<'_> {
    fn flush(&mut self) -> Result<(), Error> {
        self.processor.deliver_pending()?;
        self.processor.producer_mut().flush()?;
        self.processor.snapshots_flushed();
        let (p, t) = (&self.processor, self.telemetry);
        t.rows_emitted.store(p.rows_emitted(), Relaxed);
        t.set_rows_filtered(p.rows_filtered());
        let (applied, skipped) = p.ddl_counts();
        t.ddl_applied.store(applied, Relaxed);
        t.ddl_skipped.store(skipped, Relaxed);
        t.last_commit_ts
            .store(u64::from(p.last_commit_ts()), Relaxed);
        Ok(())
    }

    fn checkpoint(&self) -> &BinlogPosition {
        self.processor.checkpoint()
    }

    fn take_heartbeat(&mut self) -> Option<u64> {
        self.processor.take_heartbeat()
    }
}

pub struct Processing {
    pub events: mpsc::Receiver<Vec<Event>>,
    pub processor: StreamProcessor,
    pub checkpointer: Checkpointer<BlockingStore>,
    /// With leader election: true once this node must stop.
    pub lost: Option<watch::Receiver<bool>>,
    /// `stop_position`.
    pub stop_at: Option<BinlogPosition>,
    pub handle: Handle,
    pub telemetry: Arc<Telemetry>,
}

impl Processing {
    /// Runs until the reader stops (or the stop position, or an error);
    /// returns the number of rows emitted.
    pub fn run(mut self) -> Result<u64, Error> {
        while let Some(batch) = self.next_batch()? {
            if self.lost.as_ref().is_some_and(|l| *l.borrow()) {
                tracing::warn!("leadership lost: events not processed are left to the next leader");
                break;
            }
            if self.checkpointer.due() {
                self.checkpoint(false)?;
            }
            for mut ev in batch {
                if let Err(e) = self.processor.handle(&mut ev) {
                    let failed = Error::from(e);
                    // Deliver and record what came before the event that
                    // cannot be handled: a restart resumes at it.
                    if let Err(store) = self.checkpoint(true) {
                        let stored = self.checkpointer.stored();
                        // The same failure again (a producer that refused
                        // a row refuses the flush too) is said once, at exit.
                        if store.to_string() == failed.to_string() {
                            tracing::warn!(stored = %stored,
                                "the rows before the failing event could not be delivered either; the next start \
                                 resumes at the stored position");
                        } else {
                            tracing::warn!(error = %store, stored = %stored,
                                "could not store the position before stopping; the next start resumes at the \
                                 stored position");
                        }
                    }
                    return Err(failed);
                }
                if ev.header.event_type == sluice_binlog::event::types::HEARTBEAT {
                    // The heartbeat writer's evidence that the binlog's end
                    // was read (see heartbeat.rs).
                    self.telemetry
                        .binlog_end_reached_ms
                        .store(crate::telemetry::unix_millis(), Relaxed);
                }
                if let Some(stop) = &self.stop_at {
                    if self.processor.reached(&stop.file, stop.offset) {
                        tracing::info!(position = %self.processor.position(), "stop_position reached");
                        self.checkpoint(true)?;
                        return Ok(self.processor.rows_emitted());
                    }
                }
            }
        }
        self.checkpoint(true)?;
        if self.processor.buffered_rows() > 0 {
            tracing::info!(
                rows = self.processor.buffered_rows(),
                began = %self.processor.checkpoint(),
                "uncommitted transaction at shutdown not emitted; the next start reads it again from where it began"
            );
        }
        let (at, rows) = (self.processor.checkpoint(), self.processor.rows_emitted());
        let filtered = self.processor.rows_filtered();
        match self.checkpointer.final_state(at) {
            Final::Stored => tracing::info!(position = %at, rows, rows_filtered = filtered,
                "processor stopped; position stored"),
            Final::NotKept => tracing::info!(position = %at, rows, rows_filtered = filtered,
                "processor stopped; replay: no position stored"),
            Final::Behind { stored } => tracing::warn!(delivered = %at, stored = %stored, rows,
                rows_filtered = filtered,
                "processor stopped; the position could NOT be stored: the next start resumes at the \
                 stored position and sends the rows after it again"),
        }
        Ok(rows)
    }

    /// The next batch; when none is waiting (caught up), delivery is made
    /// visible first, and a position not stored yet is stored once due even
    /// if nothing else arrives. `None`: the reader stopped.
    fn next_batch(&mut self) -> Result<Option<Vec<Event>>, Error> {
        loop {
            match self.events.try_recv() {
                Ok(b) => return Ok(Some(b)),
                Err(mpsc::error::TryRecvError::Disconnected) => return Ok(None),
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            // Caught up: rows the workers render go to the producer first,
            // a job at a time, so that events arriving meanwhile are taken
            // without waiting for the whole queue.
            if self.processor.has_pending() {
                self.processor.deliver_next(true)?;
                continue;
            }
            self.checkpoint(false)?;
            let waited = match self
                .checkpointer
                .wait_for_store(self.processor.checkpoint())
            {
                Some(wait) => {
                    let events = &mut self.events;
                    // Built inside the runtime: the timer needs its context.
                    self.handle
                        .block_on(async { tokio::time::timeout(wait, events.recv()).await })
                }
                None => Ok(self.events.blocking_recv()),
            };
            match waited {
                Ok(batch) => return Ok(batch),
                Err(_) => self.checkpoint(true)?,
            }
        }
    }

    fn checkpoint(&mut self, force: bool) -> Result<(), Error> {
        let mut progress = Delivering {
            processor: &mut self.processor,
            telemetry: &self.telemetry,
        };
        self.checkpointer.run(&mut progress, force)
    }
}
