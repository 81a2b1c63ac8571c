//! One leadership term of streaming, wiring only: startup, then the binlog
//! reader (async, on the runtime) and the processor (a thread of its own)
//! joined by a bounded channel, so a slow producer slows the reader instead
//! of growing memory; the heartbeat writer beside them.

use std::sync::Arc;
use std::time::Duration;

use sluice_binlog::mysql_gtid::GtidSet;
use sluice_binlog::{BinlogPosition, Event, GtidState, SessionOptions};
use sluice_pipeline::Processor;
use sluice_schema::ddl::Flavor;
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, watch};

use crate::checkpoint::Checkpointer;
use crate::config::Config;
use crate::control::Control;
use crate::error::{Context, Error};
use crate::heartbeat::{unread_hint, write_heartbeats};
use crate::live_schema::LiveSchema;
use crate::processing::{processor_options, BlockingStore, Processing, StreamProcessor};
use crate::reader::{read_binlog, ReaderConfig, ReaderEnd};
use crate::startup;
use crate::telemetry::{Role, Telemetry};

/// How long a producer may take to deliver what it holds once reading has
/// stopped (SIGTERM, SIGHUP, lost leadership) before it is abandoned.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Batches of at most 256 events / 1 MiB; at most 16 wait between reader
/// and processor.
const CHANNEL_BATCHES: usize = 16;

/// The right to stream: the epoch every position write carries, and (with
/// leader election) the signal that the right is gone.
pub struct Lease {
    pub epoch: u64,
    pub lost: Option<watch::Receiver<bool>>,
}

pub fn stream(
    rt: &Runtime,
    cfg: &Config,
    control: &mut Control,
    telemetry: &Arc<Telemetry>,
    lease: Lease,
) -> Result<ReaderEnd, Error> {
    // A stop request, a reload or a lost leadership ends the startup
    // wherever it waits (each step has a deadline of its own).
    let mut lost = lease.lost.clone();
    let prepared = rt.block_on(async {
        tokio::select! {
            start = startup::prepare(cfg, lease.epoch, telemetry) => Ok(start),
            request = control.recv() => Err(crate::reader::end_for(request)),
            _ = crate::reader::leadership_lost(&mut lost) => Err(ReaderEnd::LeadershipLost),
        }
    });
    let start = match prepared {
        Ok(start) => start?,
        Err(end) => {
            telemetry.set_startup_step(None);
            return Ok(end);
        }
    };
    let stats = telemetry.producer.get_or_init(Default::default).clone();
    let mut producer = cfg.producer.build(stats)?;
    producer.prepare()?;
    let abort = producer.abort_handle();

    let (tx, rx) = mpsc::channel::<Vec<Event>>(CHANNEL_BATCHES);
    // A replay writes nothing: no heartbeat either.
    let heartbeats = cfg.heartbeat_interval.filter(|_| !cfg.replay).map(|every| {
        rt.spawn(write_heartbeats(
            start.store.heartbeater(),
            every,
            telemetry.clone(),
            unread_hint(cfg),
        ))
    });
    let mut processor = Processor::new(
        processor_options(cfg, start.flavor, Some(cfg.client_id.clone())),
        producer,
        LiveSchema {
            pool: Some(mysql_async::Pool::new(start.schema_opts)),
            history: Some(start.history),
            server_id: start.server_id.clone(),
            handle: rt.handle().clone(),
        },
        start.catalog,
        &start.position.file,
        start.position.offset,
    );
    processor.set_schema_id(start.schema_id);
    processor.set_filter(cfg.filter.clone());
    // What Maxwell's /config shows (http_config).
    let filter = cfg.filter.as_ref().map(|f| f.to_string());
    telemetry.set_config_json(serde_json::json!({ "filter": filter }).to_string());
    processor.set_encryption(cfg.encryptor.clone());
    processor.set_workers(cfg.worker_threads)?;
    seed_gtids(&mut processor, &start.position, start.flavor);
    let snapshots = crate::bootstrap::start(rt, cfg, lease.epoch, telemetry, &mut processor);
    let processing = Processing {
        events: rx,
        checkpointer: Checkpointer::new(
            BlockingStore {
                store: start.store,
                handle: rt.handle().clone(),
            },
            processor.checkpoint().clone(),
            telemetry.clone(),
        ),
        processor,
        lost: lease.lost.clone(),
        stop_at: cfg.stop_position.clone(),
        handle: rt.handle().clone(),
        telemetry: telemetry.clone(),
    };
    // Says when the processor thread ends, so stopping waits exactly as
    // long as it takes (the sender drops with the thread, panic included).
    let (ended, processing_ended) = std::sync::mpsc::channel::<()>();
    let processing = std::thread::Builder::new()
        .name("processor".into())
        .spawn(move || {
            let _ended = ended;
            processing.run()
        })
        .context("cannot start the processor thread")?;

    let replication = &cfg.servers.replication;
    let reader = ReaderConfig {
        session: SessionOptions {
            host: replication.endpoint.host.clone(),
            port: replication.endpoint.port,
            user: replication.endpoint.user.clone(),
            password: replication.endpoint.password.clone(),
            server_id: cfg.replica_server_id,
            start: start.position,
            heartbeat: cfg.heartbeat,
            connect_timeout: replication.connect_timeout,
            gtid_mode: cfg.gtid_mode,
            tls: replication.tls.clone(),
            auth: cfg.servers.auth.clone(),
        },
        server: replication.clone(),
        auth: cfg.servers.auth.clone(),
        query_timeout: cfg.servers.query_timeout,
        identity: start.identity,
        max_retries: cfg.reconnect_retries,
        max_backoff: cfg.reconnect_max_backoff,
        server_id: start.server_id,
        telemetry: telemetry.clone(),
        lost: lease.lost,
    };
    // This node leads once its state is restored.
    telemetry.set_epoch(lease.epoch);
    telemetry.set_role(Role::Leader);
    let read = rt.block_on(read_binlog(reader, tx, control));
    if matches!(read, Ok(ReaderEnd::LeadershipLost)) {
        telemetry.set_role(Role::Standby);
    }
    let reloading = matches!(read, Ok(ReaderEnd::Reload));

    // Reading stopped (request, lost term, error): the producer gets a few
    // seconds to deliver what it holds (then the position is stored as
    // usual). A producer whose brokers are gone is abandoned: its
    // unacknowledged messages stay after the stored position and are read
    // again by the next run (or the new producer after SIGHUP).
    let timed_out = matches!(
        processing_ended.recv_timeout(STOP_GRACE),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout)
    );
    let abandoned = abort.is_some() && timed_out;
    if let Some(a) = &abort {
        a.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let processed = processing
        .join()
        .unwrap_or_else(|_| Err(Error::definite("the processor thread panicked")));
    if let Some(h) = heartbeats {
        h.abort();
    }
    if let Some(s) = snapshots {
        s.abort();
    }
    match processed {
        Err(e) if reloading => {
            tracing::info!(error = %e, "old producer abandoned; streaming again from the stored position")
        }
        // Nothing is lost: the position stayed before every row the
        // brokers did not acknowledge.
        Err(e) if abandoned => tracing::warn!(error = %e,
            "producer abandoned while stopping (no acknowledgement within {STOP_GRACE:?}); unacknowledged rows are after the stored position and are sent again on the next start"),
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    read
}

/// The GTIDs already executed at the start: MariaDB's per-domain position,
/// or MySQL's executed set (kept whole, so a stored position can resume by
/// GTID).
fn seed_gtids(processor: &mut StreamProcessor, at: &BinlogPosition, flavor: Flavor) {
    let Some(gtid) = at.gtid.as_deref() else {
        return;
    };
    match flavor {
        Flavor::MariaDb => processor.seed_gtid_state(GtidState::parse(gtid).unwrap_or_default()),
        Flavor::MySql => match GtidSet::parse(gtid) {
            Ok(set) => processor.seed_mysql_gtids(set),
            Err(e) => {
                tracing::warn!(gtid, error = %e, "the start position's GTID set is unreadable; GTIDs are followed from the binlog only")
            }
        },
    }
}
