//! Wiring: preflight, schema capture, the binlog reader (async, on the
//! runtime) and the processor (a thread of its own), joined by a bounded
//! channel so a slow producer slows the reader instead of growing memory.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_binlog::{BinlogPosition, Event, GtidState, SessionOptions};
use sluice_pipeline::{Processor, ProcessorOptions, SchemaSource};
use sluice_schema::serial::Op;
use sluice_schema::{Catalog, Table};
use sluice_sinks::{FileSink, Sink, StdoutSink};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::config::{Config, Producer};
use crate::ha::{campaign, HaConfig};
use crate::http::HttpServer;
use crate::positions::{Heartbeater, PositionStore, StoreError};
use crate::preflight;
use crate::reader::{read_binlog, server_identity, ReaderConfig, ReaderEnd};
use crate::schema_history::SchemaHistory;
use crate::telemetry::{unix_millis, Role, Telemetry};

/// The server's live catalog (for tables only the server knows) and the
/// schema history.
struct LiveSchema {
    /// A pool, so a connection lost to a server restart is replaced.
    pool: mysql_async::Pool,
    history: SchemaHistory,
    /// The server the history entries belong to (changes on a GTID failover).
    server_id: Arc<AtomicU32>,
    handle: Handle,
}

/// One schema query may take this long before it is abandoned and retried
/// (a frozen server or a half-open connection must not stall the pipeline
/// forever).
const SCHEMA_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `call` until it succeeds, an attempt at a time under
/// SCHEMA_CALL_TIMEOUT; an answer from the server that is an error is final
/// (`Err(Ok(message))`), a server that is away is waited for: the binlog
/// reader is reconnecting meanwhile.
fn with_retries<T, F, Fut>(handle: &Handle, what: &str, mut call: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, (bool, String)>>,
{
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let fut = call();
        let tried = handle.block_on(async { tokio::time::timeout(SCHEMA_CALL_TIMEOUT, fut).await });
        let failure = match tried {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err((true, message))) => return Err(message),
            Ok(Err((false, message))) => message,
            Err(_) => format!("no answer within {SCHEMA_CALL_TIMEOUT:?}"),
        };
        tracing::warn!(what, attempt, error = %failure, "schema call failed; retrying");
        std::thread::sleep(Duration::from_millis(200u64 << attempt.min(5)));
    }
}

/// Whether a MySQL error is the server's definite answer (retrying will not
/// change it) rather than a lost connection.
fn is_final(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(_))
}

impl SchemaSource for LiveSchema {
    fn recapture(&mut self, database: &str, table: &str) -> Result<Option<Table>, String> {
        let pool = self.pool.clone();
        with_retries(&self.handle, "capturing a table", || {
            let pool = pool.clone();
            async move {
                let mut conn = pool.get_conn().await.map_err(|e| (false, e.to_string()))?;
                sluice_schema::capture_table(&mut conn, database, table)
                    .await
                    .map_err(|e| match &e {
                        sluice_schema::CaptureError::Sql(m) => (is_final(m), e.to_string()),
                        sluice_schema::CaptureError::Value(_) => (true, e.to_string()),
                    })
            }
        })
    }

    fn record(
        &mut self,
        at: &BinlogPosition,
        ops: &[Op],
        sql: &str,
        catalog: &Catalog,
    ) -> Result<(), String> {
        self.history.set_server_id(self.server_id.load(Relaxed));
        let history = &mut self.history;
        let handle = self.handle.clone();
        // A plain loop rather than with_retries: the history is borrowed
        // mutably by every attempt.
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let tried = handle.block_on(async {
                tokio::time::timeout(SCHEMA_CALL_TIMEOUT, history.record(at, ops, sql, catalog))
                    .await
            });
            let failure = match tried {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(crate::schema_history::HistoryError::Sql(e))) if !is_final(&e) => {
                    e.to_string()
                }
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => format!("no answer within {SCHEMA_CALL_TIMEOUT:?}"),
            };
            tracing::warn!(attempt, error = %failure, "cannot record a schema change; retrying");
            std::thread::sleep(Duration::from_millis(200u64 << attempt.min(5)));
        }
    }
}

#[cfg(feature = "kafka")]
fn kafka_sink(
    k: &crate::config::KafkaConfig,
    telemetry: &Telemetry,
) -> anyhow::Result<Box<dyn Sink>> {
    use sluice_sinks::kafka::{KafkaOptions, KafkaSink};
    use sluice_sinks::route::Partitioner;
    let stats = telemetry.producer.get_or_init(Default::default).clone();
    let opts = KafkaOptions {
        topic: k.topic.clone(),
        ddl_topic: k.ddl_topic.clone(),
        key_format: k.key_format,
        partitioner: Partitioner {
            by: k.partition_by,
            fallback: k.partition_by_fallback,
            columns: k.partition_columns.clone(),
            hash: k.partition_hash,
        },
        refusal: k.refusal.clone(),
        client: k.client.clone(),
    };
    Ok(Box::new(KafkaSink::new(opts, stats)?))
}

#[cfg(not(feature = "kafka"))]
fn kafka_sink(_: &crate::config::KafkaConfig, _: &Telemetry) -> anyhow::Result<Box<dyn Sink>> {
    anyhow::bail!("producer=kafka: this sluice was built without Kafka support; build it with `cargo build --release --features kafka`")
}

/// The schema at `start`: restored from the history, or (first start, or
/// a position older than the history) captured from the server and
/// recorded as the history's first snapshot.
async fn schema_at(
    conn: &mut Conn,
    history: &mut SchemaHistory,
    start: &BinlogPosition,
) -> anyhow::Result<Catalog> {
    let server = sluice_schema::capture_server(conn)
        .await
        .context("reading the server's collations")?;
    let began = Instant::now();
    if let Some(r) = history.restore(start).await? {
        let mut catalog = r.catalog;
        catalog.collations = server.collations;
        catalog.case_insensitive = server.case_insensitive;
        tracing::info!(tables = catalog.tables.len(), snapshot = %r.snapshot_at, changes = r.changes_applied,
            elapsed_ms = began.elapsed().as_millis() as u64, "schema restored from the history at the resume position");
        if r.changes_applied >= 100 {
            history.snapshot(start, &catalog).await?;
        }
        return Ok(catalog);
    }
    let catalog = sluice_schema::capture_catalog(conn)
        .await
        .context("capturing the schema")?;
    tracing::info!(tables = catalog.tables.len(), position = %start,
        "no schema history at this position: captured the server's current catalog as the schema here");
    history.snapshot(start, &catalog).await?;
    Ok(catalog)
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

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM, SIGINT.
    Stop,
    /// SIGHUP: re-read the configuration and rebuild the producer.
    Reload,
}

/// SIGTERM, SIGINT and SIGHUP, registered as soon as the process starts so
/// that a signal during startup is not fatal: it is seen once streaming
/// begins and handled cleanly.
pub struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    pub async fn recv(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Stop,
            _ = self.int.recv() => Signal::Stop,
            _ = self.hup.recv() => Signal::Reload,
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
    telemetry: Arc<Telemetry>,
    /// An own heartbeat read back and not stored yet.
    heartbeat: Option<u64>,
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
        let t = &self.telemetry;
        t.producer_flushes.fetch_add(1, Relaxed);
        t.rows_emitted.store(p.rows_emitted(), Relaxed);
        let (applied, skipped) = p.ddl_counts();
        t.ddl_applied.store(applied, Relaxed);
        t.ddl_skipped.store(skipped, Relaxed);
        t.last_commit_ts
            .store(u64::from(p.last_commit_ts()), Relaxed);
        if let Some(beat) = p.take_heartbeat() {
            let now = unix_millis();
            t.heartbeats_read.fetch_add(1, Relaxed);
            t.heartbeat_read_delay_ms
                .store(now.saturating_sub(beat), Relaxed);
            t.heartbeat_read_ms.store(beat, Relaxed);
            self.heartbeat = Some(beat);
        }
        t.set_processed_position(p.checkpoint().to_string());
        if force || self.due() {
            self.last = Instant::now();
            if *p.checkpoint() != self.stored {
                let pos = p.checkpoint().clone();
                match self.handle.block_on(self.store.store(&pos, self.heartbeat)) {
                    Ok(()) => {
                        t.position_stores.fetch_add(1, Relaxed);
                        t.set_stored_position(pos.to_string());
                        self.stored = pos;
                        self.heartbeat = None;
                    }
                    Err(e @ StoreError::Fenced { .. }) => return Err(e.into()),
                    // The rows are delivered; a later write will catch up.
                    Err(e) => {
                        t.position_store_failures.fetch_add(1, Relaxed);
                        tracing::warn!(error = %e, "could not store the position; will retry")
                    }
                }
            }
        }
        Ok(())
    }
}

/// Writes a heartbeat into the binlog every `every` while this node leads.
async fn write_heartbeats(beats: Heartbeater, every: Duration, telemetry: Arc<Telemetry>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        if telemetry.role() != Role::Leader {
            continue;
        }
        let value = unix_millis();
        match beats.beat(value).await {
            Ok(()) => {
                telemetry.heartbeats_written.fetch_add(1, Relaxed);
                telemetry.heartbeat_written_ms.store(value, Relaxed);
                failing = false;
            }
            // The binlog reader reports the outage; say it once here.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "cannot write a heartbeat; retrying");
            }
            Err(_) => {}
        }
    }
}

/// MariaDB's GTID position at a file position (empty on MySQL, or when the
/// server cannot tell).
async fn gtid_state_at(conn: &mut Conn, pos: &BinlogPosition) -> GtidState {
    let found: Result<Option<Option<String>>, _> = conn
        .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&pos.file, pos.offset))
        .await;
    match found {
        Ok(Some(Some(text))) => GtidState::parse(&text).unwrap_or_default(),
        _ => GtidState::default(),
    }
}

/// Re-reads the configuration (SIGHUP); an error names what is wrong.
pub type Reload<'a> = &'a dyn Fn() -> Result<Config, String>;

pub fn run(cfg: Config, reload: Reload) -> anyhow::Result<()> {
    let mut cfg = cfg;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut signals = rt
        .block_on(async { ShutdownSignals::install() })
        .context("cannot install signal handlers")?;
    // HTTP answers from the start: a node is observable while it connects,
    // waits or fails.
    let telemetry = Arc::new(Telemetry::new(&cfg.client_id, &cfg.metrics_prefix));
    let http = rt.block_on(HttpServer::bind(
        &cfg.http_bind_address,
        cfg.http_port,
        &cfg.http_path_prefix,
    ))?;
    tracing::info!(address = %http.address, "http endpoint listening");
    let http_address = http.address.clone();
    rt.spawn(http.serve(telemetry.clone()));
    let mut rebuilds_in_a_row = 0u32;
    let result = loop {
        let began = Instant::now();
        let ended = match cfg.ha.clone() {
            None => stream(
                &rt,
                &cfg,
                &mut signals,
                telemetry.clone(),
                EPOCH_WITHOUT_HA,
                None,
            ),
            Some(ha) => {
                let ha = HaConfig {
                    zookeeper: ha.zookeeper,
                    session_timeout: ha.session_timeout,
                    connection_timeout: ha.connection_timeout,
                    base_sleep: ha.base_sleep,
                    max_retries: ha.max_retries,
                    root: ha.root,
                    client_id: cfg.client_id.clone(),
                    identity: crate::telemetry::node_identity(),
                    http_address: http_address.clone(),
                };
                lead_when_elected(&rt, &cfg, &ha, &mut signals, &telemetry)
            }
        };
        match ended {
            Ok(ReaderEnd::Reload) => {
                telemetry.producer_rebuilds.fetch_add(1, Relaxed);
                match reload() {
                    Ok(new) => {
                        tracing::info!(
                            "configuration re-read; streaming again with a new producer"
                        );
                        cfg = new;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "SIGHUP: the configuration is invalid; keeping the previous one")
                    }
                }
            }
            Err(e) if is_unconfirmed_delivery(&e) => {
                // Nothing after the stored position counts as delivered: a
                // new producer streams it again. Repeated failures back off.
                telemetry.producer_rebuilds.fetch_add(1, Relaxed);
                if began.elapsed() > Duration::from_secs(60) {
                    rebuilds_in_a_row = 0;
                }
                rebuilds_in_a_row += 1;
                let wait = Duration::from_secs(1 << rebuilds_in_a_row.min(5));
                tracing::warn!(error = %format!("{e:#}"), wait_s = wait.as_secs(),
                    "deliveries not confirmed; rebuilding the producer and streaming again from the stored position");
                let stop = rt.block_on(async {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => None,
                        sig = signals.recv() => Some(sig),
                    }
                });
                match stop {
                    Some(Signal::Stop) => break Ok(()),
                    Some(Signal::Reload) => match reload() {
                        Ok(new) => cfg = new,
                        Err(e) => {
                            tracing::error!(error = %e, "SIGHUP: the configuration is invalid; keeping the previous one")
                        }
                    },
                    None => {}
                }
            }
            other => break other.map(|_| ()),
        }
    };
    telemetry.set_role(Role::Stopping);
    if let Err(e) = &result {
        telemetry.set_fatal(format!("{e:#}"));
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

/// A producer that retried as long as it was told and still has
/// unconfirmed deliveries: worth a new producer, not an exit.
fn is_unconfirmed_delivery(e: &anyhow::Error) -> bool {
    use sluice_pipeline::PipelineError;
    use sluice_sinks::SinkError;
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<SinkError>(),
            Some(SinkError::Unconfirmed { .. })
        ) || matches!(
            c.downcast_ref::<PipelineError>(),
            Some(PipelineError::Sink(SinkError::Unconfirmed { .. }))
        )
    })
}

/// With --ha: stand by until elected, lead until the term is lost, stand by
/// again — until a signal stops the process.
fn lead_when_elected(
    rt: &tokio::runtime::Runtime,
    cfg: &Config,
    ha: &HaConfig,
    signals: &mut ShutdownSignals,
    telemetry: &Arc<Telemetry>,
) -> anyhow::Result<ReaderEnd> {
    // The newest epoch seen in the position store.
    let mut floor = 0u64;
    loop {
        telemetry.set_role(Role::Standby);
        let term = rt.block_on(async {
            tokio::select! {
                t = campaign(ha, telemetry, floor) => Ok(t),
                sig = signals.recv() => Err(sig),
            }
        });
        let term = match term {
            Ok(t) => t,
            Err(Signal::Stop) => {
                tracing::info!("signal received while standing by: stopping");
                return Ok(ReaderEnd::Stopped);
            }
            Err(Signal::Reload) => return Ok(ReaderEnd::Reload),
        };
        let ended = stream(
            rt,
            cfg,
            signals,
            telemetry.clone(),
            term.epoch,
            Some(term.lost.clone()),
        );
        telemetry.set_role(Role::Standby);
        rt.block_on(term.resign());
        match ended {
            Ok(end @ (ReaderEnd::Stopped | ReaderEnd::Reload)) => return Ok(end),
            Ok(ReaderEnd::LeadershipLost) => {
                tracing::warn!("stepped down; campaigning again with a new session")
            }
            Err(e) => match e.downcast_ref::<StoreError>() {
                Some(StoreError::Fenced { theirs, .. }) => {
                    floor = floor.max(*theirs);
                    tracing::warn!(error = %e, "a newer epoch owns the position: stepped down");
                }
                _ => return Err(e),
            },
        }
    }
}

fn stream(
    rt: &tokio::runtime::Runtime,
    cfg: &Config,
    signals: &mut ShutdownSignals,
    telemetry: Arc<Telemetry>,
    epoch: u64,
    lost: Option<tokio::sync::watch::Receiver<bool>>,
) -> anyhow::Result<ReaderEnd> {
    let addr = format!("{}:{}", cfg.host, cfg.port);
    let server_id = Arc::new(AtomicU32::new(0));
    let (conn, store, start, catalog, identity, history, flavor) = rt.block_on(async {
        let mut conn = tokio::time::timeout(cfg.connect_timeout, Conn::new(mysql_opts(cfg)))
            .await
            .map_err(|_| anyhow::anyhow!("connecting to MySQL at {addr} timed out"))?
            .with_context(|| format!("cannot connect to MySQL at {addr} as '{}'", cfg.user))?;
        let info = preflight::check(&mut conn, &addr).await?;
        tracing::info!(server = %addr, version = %info.version, server_id = info.server_id, row_image = %info.row_image,
            row_metadata = info.row_metadata.as_deref().unwrap_or("n/a"), client_id = %cfg.client_id, schema_database = %cfg.schema_database, "connected");
        server_id.store(info.server_id, Relaxed);
        let mut store = PositionStore::open(
            mysql_opts(cfg),
            &cfg.schema_database,
            server_id.clone(),
            &cfg.client_id,
            epoch,
            cfg.gtid_mode,
        )
        .await
        .with_context(|| format!("opening the position store in database '{}' (the user needs all rights on it)", cfg.schema_database))?;
        if epoch > EPOCH_WITHOUT_HA {
            store.claim_epoch().await?;
        }
        // The stored position wins, then --init_position, then the server's.
        let stored = store.load().await?;
        let first_start = stored.is_none();
        let mut start = match (stored, &cfg.init_position) {
            (Some(p), _) => {
                tracing::info!(position = %p, gtid = p.gtid.as_deref().unwrap_or(""), client_id = %cfg.client_id, "resuming from the stored position");
                p
            }
            (None, Some(p)) => p.clone(),
            (None, None) => preflight::current_position(&mut conn).await?,
        };
        if start.gtid.is_none() {
            let state = gtid_state_at(&mut conn, &start).await;
            start.gtid = (!state.is_empty()).then(|| state.to_string());
        }
        if cfg.gtid_mode && start.gtid.is_none() {
            tracing::warn!(position = %start, "gtid_mode: the server reports no GTID position here; starting by file and offset");
        }
        let mut history = SchemaHistory::open(mysql_opts(cfg), &cfg.schema_database, &cfg.client_id, info.server_id, cfg.gtid_mode)
            .await
            .with_context(|| format!("opening the schema history in database '{}'", cfg.schema_database))?;
        let catalog = schema_at(&mut conn, &mut history, &start).await?;
        if first_start {
            // Stored at once: a sluice that stops before its first
            // checkpoint resumes here, not at a later current position.
            store.store(&start, None).await?;
        }
        let identity = server_identity(&mut conn).await.context("reading the server's identity")?;
        let flavor = if info.version.to_ascii_lowercase().contains("mariadb") {
            sluice_schema::ddl::Flavor::MariaDb
        } else {
            sluice_schema::ddl::Flavor::MySql
        };
        anyhow::Ok((conn, store, start, catalog, identity, history, flavor))
    })?;

    let producer_stats = || telemetry.producer.get_or_init(Default::default).clone();
    let mut sink: Box<dyn Sink> = match &cfg.producer {
        Producer::Stdout => Box::new(StdoutSink::new()?),
        Producer::File(p) => Box::new(FileSink::open(p)?),
        Producer::Kafka(k) => kafka_sink(k, &telemetry)?,
        Producer::Redis(r) => Box::new(sluice_sinks::redis::sink(r.clone(), producer_stats())),
        Producer::RabbitMq(r) => {
            Box::new(sluice_sinks::rabbitmq::sink(r.clone(), producer_stats()))
        }
        Producer::Nats(n) => Box::new(sluice_sinks::nats::sink(n.clone(), producer_stats())),
    };
    sink.prepare()?;
    let abort = sink.abort_handle();
    let session_opts = SessionOptions {
        host: cfg.host.clone(),
        port: cfg.port,
        user: cfg.user.clone(),
        password: cfg.password.clone(),
        server_id: cfg.replica_server_id,
        start: start.clone(),
        heartbeat: cfg.heartbeat,
        connect_timeout: cfg.connect_timeout,
        gtid_mode: cfg.gtid_mode,
    };
    // At most 16 batches of at most 1 MiB wait between reader and processor:
    // memory stays bounded when the producer is slower than the binlog.
    let (tx, mut rx) = mpsc::channel::<Vec<Event>>(16);
    let proc_opts = ProcessorOptions {
        output: cfg.output.clone(),
        txn_memory_bytes: cfg.txn_buffer_bytes,
        tmp_dir: cfg.tmp_dir.clone(),
        internal_database: Some(cfg.schema_database.clone()),
        heartbeat_client_id: Some(cfg.client_id.clone()),
        flavor,
        skip_bad_ddl: cfg.skip_bad_ddl,
    };
    // The startup connection is done; recaptures use a pool of their own.
    drop(conn);
    let schema = LiveSchema {
        pool: mysql_async::Pool::new(mysql_opts(cfg)),
        history,
        server_id: server_id.clone(),
        handle: rt.handle().clone(),
    };
    let heartbeats = cfg.heartbeat_interval.map(|every| {
        rt.spawn(write_heartbeats(
            store.heartbeater(),
            every,
            telemetry.clone(),
        ))
    });
    let start_gtid = start
        .gtid
        .as_deref()
        .and_then(|g| GtidState::parse(g).ok())
        .unwrap_or_default();
    let (start_file, start_offset) = (start.file.clone(), start.offset);
    let stop_at = cfg.stop_position.clone();
    let handle = rt.handle().clone();
    let ptelemetry = telemetry.clone();
    // A leader that lost its term hands nothing more to the producer.
    let plost = lost.clone();
    let processor = std::thread::Builder::new()
        .name("processor".into())
        .spawn(move || -> anyhow::Result<u64> {
            let mut p = Processor::new(proc_opts, sink, schema, catalog, &start_file, start_offset);
            p.seed_gtid_state(start_gtid);
            let mut ckpt = Checkpointer {
                stored: p.checkpoint().clone(),
                last: Instant::now(),
                store,
                handle,
                telemetry: ptelemetry,
                heartbeat: None,
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
                if plost.as_ref().is_some_and(|l| *l.borrow()) {
                    tracing::warn!("leadership lost: events not processed are left to the next leader");
                    break;
                }
                if ckpt.due() {
                    ckpt.run(&mut p, false)?;
                }
                for ev in &batch {
                    if let Err(e) = p.handle(ev) {
                        // Deliver and record what came before the event
                        // that cannot be handled: a restart resumes at it.
                        if let Err(store) = ckpt.run(&mut p, true) {
                            tracing::warn!(error = %store, "could not store the position before stopping");
                        }
                        return Err(e.into());
                    }
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
        mysql: mysql_opts(cfg),
        identity,
        max_retries: cfg.reconnect_retries,
        max_backoff: cfg.reconnect_max_backoff,
        server_id,
        telemetry: telemetry.clone(),
        lost,
    };
    // This node leads once its state is restored.
    telemetry.set_epoch(epoch);
    telemetry.set_role(Role::Leader);
    let reader = rt.block_on(read_binlog(reader_cfg, tx, signals));
    if reader
        .as_ref()
        .is_ok_and(|e| *e == ReaderEnd::LeadershipLost)
    {
        telemetry.set_role(Role::Standby);
    }
    let reloading = reader.as_ref().is_ok_and(|e| *e == ReaderEnd::Reload);
    // Reading stopped (signal, reload, lost term): the producer gets a few
    // seconds to deliver what it holds (then the position is stored as
    // usual). A producer whose brokers are gone is abandoned: its
    // unacknowledged messages stay after the stored position and are read
    // again by the next run (or the new producer after SIGHUP).
    let grace = Instant::now();
    while !processor.is_finished() && grace.elapsed() < STOP_GRACE {
        std::thread::sleep(Duration::from_millis(50));
    }
    let abandoned = abort.is_some() && !processor.is_finished();
    if let Some(a) = &abort {
        a.store(true, Relaxed);
    }
    let processed = match processor.join() {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!("the processor thread panicked")),
    };
    if let Some(h) = heartbeats {
        h.abort();
    }
    match processed {
        Err(e) if reloading => {
            tracing::info!(error = %format!("{e:#}"), "old producer abandoned; streaming again from the stored position")
        }
        // Nothing is lost: the position stayed before every row the
        // brokers did not acknowledge.
        Err(e) if abandoned => tracing::warn!(error = %format!("{e:#}"),
            "producer abandoned while stopping (no acknowledgement within {STOP_GRACE:?}); unacknowledged rows are after the stored position and are sent again on the next start"),
        other => {
            other?;
        }
    }
    reader
}

/// How long a producer may take to deliver what it holds once reading has
/// stopped (SIGTERM, SIGHUP) before it is abandoned.
const STOP_GRACE: Duration = Duration::from_secs(5);
