//! What a leader does before it streams: connect and check the server, open
//! the position store (claiming the epoch), decide where to start (the
//! stored position wins, then `--init_position`, then the server's current
//! one), and restore the schema in force there.

use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Instant;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_binlog::{BinlogPosition, GtidState};
use sluice_schema::ddl::Flavor;
use sluice_schema::Catalog;

use crate::config::Config;
use crate::error::{Context, Error};
use crate::mysql::Steps;
use crate::positions::PositionStore;
use crate::preflight;
use crate::reader::{server_identity, ServerIdentity};
use crate::resume_boundary;
use crate::schema_history::SchemaHistory;
use crate::telemetry::Telemetry;

/// Without leader election every writer has the same, constant epoch.
pub const EPOCH_WITHOUT_HA: u64 = 0;

/// Everything a stream starts from.
pub struct Start {
    pub store: PositionStore,
    pub position: BinlogPosition,
    pub catalog: Catalog,
    pub identity: ServerIdentity,
    pub history: SchemaHistory,
    pub flavor: Flavor,
    /// The server positions and history are written for (changes when a
    /// GTID-mode reader follows a failover).
    pub server_id: Arc<AtomicU32>,
    /// Pool options of the schema host, for captures while streaming.
    pub schema_opts: mysql_async::OptsBuilder,
    /// The history's id of the schema at the start (`output_schema_id`).
    pub schema_id: Option<u64>,
}

/// Every step waits at most `mysql_query_timeout_ms` (the schema at the
/// start ten times that: it may read every table's definition), and is
/// shown by `/healthcheck` while it waits; the caller stops waiting on a
/// stop request.
pub async fn prepare(cfg: &Config, epoch: u64, telemetry: &Telemetry) -> Result<Start, Error> {
    let servers = &cfg.servers;
    let auth = &servers.auth;
    let step = Steps {
        timeout: servers.query_timeout,
        telemetry: Some(telemetry),
    };
    // The replication host: settings, identity, where the binlog is now.
    let addr = servers.replication.address();
    let mut repl = step
        .run(
            "connecting to the replication server",
            servers.replication.connect(auth),
        )
        .await?;
    let info = step
        .run(
            "checking the replication server's settings",
            preflight::check(&mut repl, &addr),
        )
        .await?;
    tracing::info!(server = %addr, version = %info.version, server_id = info.server_id, row_image = %info.row_image,
        row_metadata = info.row_metadata.as_deref().unwrap_or("n/a"), ssl = %servers.replication.tls.mode.as_str(),
        client_id = %cfg.client_id, schema_database = %cfg.schema_database, "connected");
    let server_id = Arc::new(AtomicU32::new(info.server_id));
    // The state host: positions, schema history, heartbeats.
    let state_opts = step
        .run(
            "connecting to the state server",
            servers.state.pool_opts(auth),
        )
        .await?;
    if !cfg.replay && servers.state.address() != addr {
        step.run("checking that the state server is writable", async {
            let mut state = servers.state.connect(auth).await?;
            preflight::check_writable(&mut state, &servers.state.address()).await
        })
        .await?;
    }
    let mut store = step
        .run(
            "opening the position store",
            PositionStore::open(
                state_opts.clone(),
                &cfg.schema_database,
                server_id.clone(),
                &cfg.client_id,
                epoch,
                cfg.gtid_mode,
            ),
        )
        .await
        .with_context(|| {
            format!(
            "opening the position store in database '{}' on {} (the user needs all rights on it)",
            cfg.schema_database,
            servers.state.address()
        )
        })?;
    if cfg.replay {
        store = store.read_only();
    }
    if epoch > EPOCH_WITHOUT_HA {
        step.run(
            "claiming the epoch in the position store",
            store.claim_epoch(),
        )
        .await?;
    }
    let stored = step
        .run("reading the stored position", store.load())
        .await?;
    let first_start = stored.is_none();
    let mut position = match (stored, &cfg.init_position) {
        (Some(p), init) => {
            tracing::info!(position = %p, gtid = p.gtid.as_deref().unwrap_or(""), client_id = %cfg.client_id,
                "resuming from the stored position");
            if let Some(init) = init
                .as_ref()
                .filter(|i| i.file != p.file || i.offset != p.offset)
            {
                tracing::warn!(init_position = %init, stored = %p, client_id = %cfg.client_id,
                    "init_position is ignored: this client_id has a stored position, which wins. To start at \
                     init_position: stop sluice, run `sluice reset-position` with the same options, start it again");
            }
            step.run(
                "looking for the end of the stored position's transaction",
                async {
                    Ok::<_, Error>(inside_transaction_moved(&mut repl, p, cfg.gtid_mode).await)
                },
            )
            .await?
        }
        (None, Some(p)) => {
            step.run(
                "checking init_position against the server",
                crate::init_position::check(&mut repl, p),
            )
            .await?;
            p.clone()
        }
        (None, None) => {
            step.run(
                "reading the server's binlog position",
                preflight::current_position(&mut repl),
            )
            .await?
        }
    };
    let flavor = if info.version.to_ascii_lowercase().contains("mariadb") {
        Flavor::MariaDb
    } else {
        Flavor::MySql
    };
    if position.gtid.is_none() && flavor == Flavor::MariaDb {
        let state = step
            .run("reading the GTID position at the start", async {
                Ok::<_, Error>(gtid_state_at(&mut repl, &position).await)
            })
            .await?;
        position.gtid = (!state.is_empty()).then(|| state.to_string());
    }
    if cfg.gtid_mode && position.gtid.is_none() {
        tracing::warn!(position = %position,
            "gtid_mode: the server reports no GTID position here; starting by file and offset");
    }
    let mut history = step
        .run(
            "opening the schema history",
            SchemaHistory::open(
                state_opts,
                &cfg.schema_database,
                &cfg.client_id,
                info.server_id,
                cfg.gtid_mode,
            ),
        )
        .await
        .with_context(|| {
            format!(
                "opening the schema history in database '{}'",
                cfg.schema_database
            )
        })?;
    if cfg.replay {
        history = history.read_only();
    }
    // The schema host: captures (the replication host unless split).
    let schema_opts = step
        .run(
            "connecting to the schema server",
            servers.schema.pool_opts(auth),
        )
        .await?;
    let own_alter = |c: &mut Catalog| store.as_before_own_alter(c);
    let schema_step = "restoring or capturing the schema at the start position";
    let schema_timeout = servers.query_timeout.saturating_mul(10);
    let (catalog, schema_id) = if servers.schema.address() == addr {
        step.run_for(
            schema_timeout,
            schema_step,
            schema_at(
                &mut repl,
                &mut history,
                &position,
                cfg.recapture_schema,
                &own_alter,
            ),
        )
        .await?
    } else {
        step.run_for(schema_timeout, schema_step, async {
            let mut conn = servers.schema.connect(auth).await?;
            schema_at(
                &mut conn,
                &mut history,
                &position,
                cfg.recapture_schema,
                &own_alter,
            )
            .await
        })
        .await?
    };
    if first_start {
        // Stored at once: a sluice that stops before its first checkpoint
        // resumes here, not at a later current position.
        step.run("storing the start position", store.store(&position, None))
            .await?;
    }
    let identity = step
        .run("reading the server's identity", server_identity(&mut repl))
        .await
        .context("reading the server's identity")?;
    if !cfg.replay {
        step.run(
            "creating the bootstrap tables",
            crate::bootstrap::ensure_tables(cfg),
        )
        .await?;
    }
    Ok(Start {
        store,
        position,
        catalog,
        identity,
        history,
        flavor,
        server_id,
        schema_opts,
        schema_id,
    })
}

/// A stored position inside a transaction (Maxwell's, see
/// [`resume_boundary`]) moved to the transaction's end. With `gtid_mode`
/// the GTID set decides where to resume and the position stays.
async fn inside_transaction_moved(
    conn: &mut Conn,
    stored: BinlogPosition,
    gtid_mode: bool,
) -> BinlogPosition {
    if gtid_mode {
        return stored;
    }
    match resume_boundary::boundary_after(conn, &stored).await {
        Some(end) => {
            tracing::warn!(stored = %stored, resume = %end,
                "the stored position is inside a transaction (as Maxwell stores it: the end of the last row it \
                 delivered, before the commit and before rows its filter left out); resuming at the end of \
                 that transaction");
            // Without a GTID: the one at the new offset is looked up next.
            end
        }
        None => stored,
    }
}

/// The schema at `start`: restored from the history, or (first start, or a
/// position older than the history) captured from the server and recorded
/// as the history's first snapshot. `own_alter` takes sluice's own change
/// of its state tables (made since `start`) out of a capture.
async fn schema_at(
    conn: &mut Conn,
    history: &mut SchemaHistory,
    start: &BinlogPosition,
    recapture: bool,
    own_alter: &dyn Fn(&mut Catalog),
) -> Result<(Catalog, Option<u64>), Error> {
    let server = sluice_schema::capture_server(conn)
        .await
        .map_err(|e| Error::definite(format!("reading the server's collations: {e}")))?;
    let began = Instant::now();
    if recapture {
        let mut catalog = sluice_schema::capture_catalog(conn)
            .await
            .map_err(|e| Error::definite(format!("capturing the schema: {e}")))?;
        own_alter(&mut catalog);
        tracing::warn!(tables = catalog.tables.len(), position = %start,
            "recapture_schema: the server's current catalog is recorded as the schema at the start position; \
             DDL run since that position is already in it");
        let id = history.snapshot(start, &catalog).await?;
        return Ok((catalog, id));
    }
    if let Some(r) = history.restore(start).await? {
        let mut catalog = r.catalog;
        catalog.collations = server.collations;
        catalog.case_insensitive = server.case_insensitive;
        tracing::info!(tables = catalog.tables.len(), snapshot = %r.snapshot_at, changes = r.changes_applied,
            elapsed_ms = began.elapsed().as_millis() as u64, "schema restored from the history at the resume position");
        if r.changes_applied >= 100 {
            // A compaction: the same schema, so the same schema_id.
            history.snapshot(start, &catalog).await?;
        }
        return Ok((catalog, Some(r.schema_id)));
    }
    let mut catalog = sluice_schema::capture_catalog(conn)
        .await
        .map_err(|e| Error::definite(format!("capturing the schema: {e}")))?;
    own_alter(&mut catalog);
    tracing::info!(tables = catalog.tables.len(), position = %start,
        "no schema history at this position: captured the server's current catalog as the schema here");
    let id = history.snapshot(start, &catalog).await?;
    Ok((catalog, id))
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
