//! Wiring: preflight, schema capture, the binlog reader (async, on the
//! runtime) and the processor (a thread of its own), joined by a bounded
//! channel so a slow producer slows the reader instead of growing memory.

use std::time::{Duration, Instant};

use anyhow::Context;
use mysql_async::Conn;
use sluice_binlog::{BinlogPosition, Event, SessionOptions};
use sluice_pipeline::{Processor, ProcessorOptions, SchemaSource};
use sluice_schema::Table;
use sluice_sinks::{FileSink, Sink, StdoutSink};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::config::{Config, Producer};
use crate::positions::{PositionStore, StoreError};
use crate::preflight;
use crate::reader::{read_binlog, server_identity, ReaderConfig};

/// Re-captures tables from the live catalog (interim schema tracking).
struct LiveSchema {
    /// A pool, so a connection lost to a server restart is replaced.
    pool: mysql_async::Pool,
    handle: Handle,
}

impl SchemaSource for LiveSchema {
    fn recapture(&mut self, database: &str, table: &str) -> Result<Option<Table>, String> {
        self.handle.block_on(async {
            let mut conn = self.pool.get_conn().await.map_err(|e| e.to_string())?;
            sluice_schema::capture_table(&mut conn, database, table)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

pub fn mysql_opts(cfg: &Config) -> mysql_async::OptsBuilder {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname(cfg.host.clone())
        .tcp_port(cfg.port)
        .user(Some(cfg.user.clone()))
        .pass(Some(cfg.password.clone()))
        .prefer_socket(false)
}

/// Without leader election every writer has the same, constant epoch.
const EPOCH_WITHOUT_HA: u64 = 0;

/// How often the delivered position is made durable while rows flow.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// SIGTERM and SIGINT, registered as soon as the process starts so that a
/// signal during startup is not fatal: it is seen once streaming begins and
/// stops sluice cleanly.
pub struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// Makes delivery durable: flushes the producer, then stores the position
/// before which everything is delivered (at most every CHECKPOINT_EVERY,
/// unless forced).
struct Checkpointer {
    store: PositionStore,
    handle: Handle,
    stored: BinlogPosition,
    last: Instant,
}

impl Checkpointer {
    fn due(&self) -> bool {
        self.last.elapsed() >= CHECKPOINT_EVERY
    }

    /// How long until an unstored position is due, if there is one.
    fn wait_for_store(&self, p: &Processor<Box<dyn Sink>, LiveSchema>) -> Option<Duration> {
        (*p.checkpoint() != self.stored)
            .then(|| CHECKPOINT_EVERY.saturating_sub(self.last.elapsed()))
    }

    fn run(
        &mut self,
        p: &mut Processor<Box<dyn Sink>, LiveSchema>,
        force: bool,
    ) -> anyhow::Result<()> {
        p.sink_mut().flush()?;
        if force || self.due() {
            self.last = Instant::now();
            if *p.checkpoint() != self.stored {
                let pos = p.checkpoint().clone();
                match self.handle.block_on(self.store.store(&pos)) {
                    Ok(()) => self.stored = pos,
                    Err(e @ StoreError::Fenced { .. }) => return Err(e.into()),
                    // The rows are delivered; a later write will catch up.
                    Err(e) => {
                        tracing::warn!(error = %e, "could not store the position; will retry")
                    }
                }
            }
        }
        Ok(())
    }
}

pub fn run(cfg: Config) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut signals = rt
        .block_on(async { ShutdownSignals::install() })
        .context("cannot install signal handlers")?;
    let addr = format!("{}:{}", cfg.host, cfg.port);
    let (conn, store, start, catalog, identity) = rt.block_on(async {
        let mut conn = tokio::time::timeout(cfg.connect_timeout, Conn::new(mysql_opts(&cfg)))
            .await
            .map_err(|_| anyhow::anyhow!("connecting to MySQL at {addr} timed out"))?
            .with_context(|| format!("cannot connect to MySQL at {addr} as '{}'", cfg.user))?;
        let info = preflight::check(&mut conn, &addr).await?;
        tracing::info!(server = %addr, version = %info.version, server_id = info.server_id, row_image = %info.row_image,
            row_metadata = info.row_metadata.as_deref().unwrap_or("n/a"), client_id = %cfg.client_id, schema_database = %cfg.schema_database, "connected");
        let mut store = PositionStore::open(
            mysql_opts(&cfg),
            &cfg.schema_database,
            info.server_id,
            &cfg.client_id,
            EPOCH_WITHOUT_HA,
        )
        .await
        .with_context(|| format!("opening the position store in database '{}' (the user needs all rights on it)", cfg.schema_database))?;
        // The stored position wins, then --init_position, then the server's.
        let start = match (store.load().await?, &cfg.init_position) {
            (Some(p), _) => {
                tracing::info!(position = %p, client_id = %cfg.client_id, "resuming from the stored position");
                p
            }
            (None, Some(p)) => p.clone(),
            (None, None) => preflight::current_position(&mut conn).await?,
        };
        let catalog = sluice_schema::capture_catalog(&mut conn).await.context("capturing the schema")?;
        tracing::info!(tables = catalog.tables.len(), "schema captured");
        let identity = server_identity(&mut conn).await.context("reading the server's identity")?;
        anyhow::Ok((conn, store, start, catalog, identity))
    })?;

    let sink: Box<dyn Sink> = match &cfg.producer {
        Producer::Stdout => Box::new(StdoutSink::new()?),
        Producer::File(p) => Box::new(FileSink::open(p)?),
    };
    let session_opts = SessionOptions {
        host: cfg.host.clone(),
        port: cfg.port,
        user: cfg.user.clone(),
        password: cfg.password.clone(),
        server_id: cfg.replica_server_id,
        start: start.clone(),
        heartbeat: cfg.heartbeat,
        connect_timeout: cfg.connect_timeout,
    };
    // At most 16 batches of at most 1 MiB wait between reader and processor:
    // memory stays bounded when the producer is slower than the binlog.
    let (tx, mut rx) = mpsc::channel::<Vec<Event>>(16);
    let proc_opts = ProcessorOptions {
        output: cfg.output.clone(),
        txn_memory_bytes: cfg.txn_buffer_bytes,
        tmp_dir: cfg.tmp_dir.clone(),
        internal_database: Some(cfg.schema_database.clone()),
    };
    // The startup connection is done; recaptures use a pool of their own.
    drop(conn);
    let schema = LiveSchema {
        pool: mysql_async::Pool::new(mysql_opts(&cfg)),
        handle: rt.handle().clone(),
    };
    let (start_file, start_offset) = (start.file.clone(), start.offset);
    let stop_at = cfg.stop_position.clone();
    let handle = rt.handle().clone();
    let processor = std::thread::Builder::new()
        .name("processor".into())
        .spawn(move || -> anyhow::Result<u64> {
            let mut p = Processor::new(proc_opts, sink, schema, catalog, &start_file, start_offset);
            let mut ckpt = Checkpointer {
                stored: p.checkpoint().clone(),
                last: Instant::now(),
                store,
                handle,
            };
            loop {
                let batch = match rx.try_recv() {
                    Ok(b) => b,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        // Caught up with the binlog: make what we wrote visible.
                        ckpt.run(&mut p, false)?;
                        // A position not stored yet is stored once due, even
                        // if nothing else arrives.
                        let waited = match ckpt.wait_for_store(&p) {
                            Some(wait) => ckpt
                                .handle
                                .clone()
                                // Built inside the runtime: the timer needs its context.
                                .block_on(async { tokio::time::timeout(wait, rx.recv()).await }),
                            None => Ok(rx.blocking_recv()),
                        };
                        match waited {
                            Ok(Some(b)) => b,
                            Ok(None) => break,
                            Err(_) => {
                                ckpt.run(&mut p, true)?;
                                continue;
                            }
                        }
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                };
                if ckpt.due() {
                    ckpt.run(&mut p, false)?;
                }
                for ev in &batch {
                    p.handle(ev)?;
                    if let Some(stop) = &stop_at {
                        if p.reached(&stop.file, stop.offset) {
                            tracing::info!(position = %p.position(), "stop_position reached");
                            ckpt.run(&mut p, true)?;
                            return Ok(p.rows_emitted());
                        }
                    }
                }
            }
            ckpt.run(&mut p, true)?;
            if p.buffered_rows() > 0 {
                tracing::info!(
                    rows = p.buffered_rows(),
                    "uncommitted transaction at shutdown not emitted"
                );
            }
            tracing::info!(position = %p.checkpoint(), rows = p.rows_emitted(), "processor stopped; position stored");
            Ok(p.rows_emitted())
        })
        .context("cannot start the processor thread")?;

    let reader_cfg = ReaderConfig {
        session: session_opts,
        mysql: mysql_opts(&cfg),
        identity,
        max_retries: cfg.reconnect_retries,
        max_backoff: cfg.reconnect_max_backoff,
    };
    let reader = rt.block_on(read_binlog(reader_cfg, tx, &mut signals));
    let processed = match processor.join() {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!("the processor thread panicked")),
    };
    rt.shutdown_timeout(Duration::from_secs(1));
    processed?;
    reader
}
