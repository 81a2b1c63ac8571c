//! The event-by-event state machine: tracks the binlog position and the open
//! transaction, decodes rows into the transaction buffer, and emits every row
//! of a transaction, in order, when its commit arrives.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use sluice_binlog::event::{self, types, Event};
use sluice_binlog::rows::{col, read_row_image, Cell, RowsHeader, RowsKind, TableMap};
use sluice_binlog::{BinlogPosition, GtidState};
use sluice_core::{Message, PrimaryKey, Producer, ProducerError};
use sluice_schema::ddl::{self, Change, Flavor};
use sluice_schema::serial::{self, Op};
use sluice_schema::{Catalog, Table};

use crate::encode::{CommitInfo, OutputConfig};
use crate::encrypt::{EncryptError, EncryptMode, Encryptor};
use crate::filter::{ColumnValue, Filter, TableFilter, ValueKind};
use crate::parallel::{DeferredRows, Ordered, Rendered, TxnWork, MAX_DEFERRED_TXN_BYTES};
use crate::render::{write_cell, Images, RowContext, RowScratch};
use crate::snapshot::{SnapshotSource, SnapshotState, Watermark};
use crate::table::{resolve, DecodeTable, ResolveError};
use crate::txn::TxnBuffer;
use crate::values::RenderOptions;

mod mysql;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cannot decode {table}.{column} at binlog position {position}: {message}")]
    Decode {
        table: String,
        column: String,
        position: String,
        message: String,
    },
    #[error("schema drift at binlog position {position}: {message}. Sluice stops rather than emit misaligned columns: the schema it follows disagrees with the binlog (a DDL skipped with ddl_parse_errors=skip, or an edited schema history). To start over from the server's current catalog, delete this client_id's rows from the schema_history table of schema_database and restart")]
    Drift { position: String, message: String },
    #[error("at binlog position {position}: {message}")]
    Definite { position: String, message: String },
    #[error("malformed binlog event at {position}: {source}")]
    Binlog {
        position: String,
        #[source]
        source: sluice_binlog::SourceError,
    },
    #[error("unsupported binlog event type {event_type} at {position}: {what}")]
    Unsupported {
        event_type: u8,
        position: String,
        what: &'static str,
    },
    #[error("schema capture: {0}")]
    Schema(String),
    #[error("cannot follow the DDL at binlog position {position} (database '{database}'): {message}\n  statement: {sql}\n  Sluice stops rather than decode rows with a schema it is unsure of. If the statement changes no table sluice must decode, restart with --ddl_parse_errors=skip: the tables it names are then re-captured from the server's current catalog")]
    Ddl {
        position: String,
        database: String,
        sql: String,
        message: String,
    },
    #[error("schema history: {0}")]
    History(String),
    #[error(transparent)]
    Producer(#[from] ProducerError),
    #[error("transaction spill file: {0}")]
    Spill(#[from] std::io::Error),
    #[error("encryption: {0}")]
    Encrypt(#[from] EncryptError),
}

/// The server's live catalog and the schema history.
pub trait SchemaSource {
    /// The table as the server has it now (`None`: it does not exist).
    fn recapture(&mut self, database: &str, table: &str) -> Result<Option<Table>, String>;
    /// Makes a schema change durable in the history, at the position after
    /// the DDL (`catalog` is the schema after it, for snapshots); returns
    /// the history's id of the change, if it keeps ids (`output_schema_id`).
    fn record(
        &mut self,
        _at: &BinlogPosition,
        _ops: &[Op],
        _sql: &str,
        _catalog: &Catalog,
    ) -> Result<Option<u64>, String> {
        Ok(None)
    }
}

/// One of sluice's own control rows: the JSON text of the columns asked
/// for (`None`: NULL or not in the row image).
type ControlRow<const N: usize> = [Option<Vec<u8>>; N];

pub struct ProcessorOptions {
    pub output: OutputConfig,
    /// Bytes of an open transaction held in memory before spilling to disk.
    pub txn_memory_bytes: usize,
    pub tmp_dir: Option<PathBuf>,
    /// sluice's own state database (`schema_database`): its rows are never
    /// output, and transactions touching only it do not move the checkpoint
    /// (else every position write would cause another).
    pub internal_database: Option<String>,
    /// sluice's heartbeats (rows of `<internal_database>.heartbeats` with
    /// this client_id) are recognised: a transaction carrying one moves the
    /// checkpoint, so an idle position is still confirmed.
    pub heartbeat_client_id: Option<String>,
    /// How the server spells types (MariaDB's JSON is LONGTEXT).
    pub flavor: Flavor,
    /// A DDL that cannot be followed is skipped (its tables re-captured)
    /// instead of stopping sluice.
    pub skip_bad_ddl: bool,
}

struct OpenTxn {
    gtid: Option<String>,
    thread_id: Option<u32>,
    server_id: u32,
    /// No row of the transaction so far is outside the internal database.
    internal_only: bool,
    /// The value of our own heartbeat written by this transaction.
    heartbeat: Option<u64>,
    /// Tables touched by the transaction; rows refer to them by index.
    tables: Vec<Arc<DecodeTable>>,
    /// A snapshot watermark of this stream written by the transaction.
    watermark: Option<Watermark>,
    /// Rows events kept for the rendering workers (`worker_threads` ≥ 2),
    /// and their bytes.
    deferred: Vec<DeferredRows>,
    deferred_bytes: usize,
    /// Rendered on the processor thread into the transaction buffer (a
    /// row filter, a snapshot, encryption, or too big to keep).
    inline: bool,
}

pub struct Processor<S: Producer, C: SchemaSource> {
    out_cfg: OutputConfig,
    producer: S,
    schema: C,
    /// The schema in force at the current binlog position.
    catalog: Catalog,
    flavor: Flavor,
    skip_bad_ddl: bool,
    ddl_applied: u64,
    ddl_skipped: u64,
    tables: HashMap<u64, Arc<DecodeTable>>,
    file: String,
    next_offset: u64,
    txn_gtid: Option<String>,
    txn: TxnBuffer,
    open: Option<OpenTxn>,
    row_query: Option<String>,
    /// The schema history's id of the schema in force (`output_schema_id`).
    schema_id: Option<u64>,
    scratch: RowScratch,
    // Reused buffers: no allocation per row on the hot path.
    before: Vec<Cell>,
    before_absent: Vec<bool>,
    after: Vec<Cell>,
    after_absent: Vec<bool>,
    line: Vec<u8>,
    rows_emitted: u64,
    /// The position after the last transaction boundary handled, and the
    /// GTID of the last transaction: where a restart may resume.
    boundary: BinlogPosition,
    last_gtid: Option<String>,
    internal_database: Option<String>,
    /// Set by the commit of a transaction that only touched the internal
    /// database: the checkpoint stays where it was.
    skip_boundary: bool,
    heartbeat_client_id: Option<String>,
    gtid_state: GtidState,
    txn_mariadb_gtid: Option<event::MariadbGtid>,
    /// MySQL: the executed GTID set, once known (PREVIOUS_GTIDS or seeded),
    /// and the GTID of the transaction being read.
    mysql_gtids: Option<sluice_binlog::mysql_gtid::GtidSet>,
    txn_mysql_gtid: Option<sluice_binlog::mysql_gtid::MysqlGtid>,
    /// The last own heartbeat read (committed), not yet taken.
    heartbeat_read: Option<u64>,
    /// Commit timestamp of the last transaction (binlog header, seconds).
    last_commit_ts: u32,
    /// The `filter` option (`None`: every table, every row).
    filter: Option<Filter>,
    /// Tables the filter leaves out, by table id: their rows are skipped
    /// without decoding (the map is kept only to count them).
    filtered_tables: HashMap<u64, TableMap>,
    /// Decoded tables with column-value rules: evaluated row by row.
    row_filters: HashMap<u64, Arc<TableFilter>>,
    rows_filtered: u64,
    /// Transactions the binlog abandoned before their commit (see `begin`).
    dropped_transactions: u64,
    filter_scratch: Vec<u8>,
    /// `encrypt=data|all`.
    encryptor: Option<Encryptor>,
    crypt: Vec<u8>,
    /// Snapshots (bootstrap) reconciled with the binlog at watermarks.
    snapshot: Option<SnapshotState>,
    /// The rendering workers and the jobs queued for them (`None`: rows are
    /// rendered on this thread).
    parallel: Option<Ordered>,
}

impl<S: Producer, C: SchemaSource> Processor<S, C> {
    pub fn new(
        opts: ProcessorOptions,
        producer: S,
        schema: C,
        catalog: Catalog,
        start_file: &str,
        start_offset: u64,
    ) -> Self {
        Processor {
            scratch: RowScratch::new(RenderOptions {
                null_zero_dates: opts.output.null_zero_dates,
            }),
            out_cfg: opts.output,
            producer,
            schema,
            catalog,
            flavor: opts.flavor,
            skip_bad_ddl: opts.skip_bad_ddl,
            ddl_applied: 0,
            ddl_skipped: 0,
            tables: HashMap::new(),
            file: start_file.to_string(),
            next_offset: start_offset,
            txn_gtid: None,
            txn: TxnBuffer::new(opts.txn_memory_bytes, opts.tmp_dir),
            open: None,
            row_query: None,
            schema_id: None,
            before: Vec::new(),
            before_absent: Vec::new(),
            after: Vec::new(),
            after_absent: Vec::new(),
            line: Vec::new(),
            rows_emitted: 0,
            boundary: BinlogPosition::new(start_file, start_offset),
            last_gtid: None,
            internal_database: opts.internal_database,
            skip_boundary: false,
            heartbeat_client_id: opts.heartbeat_client_id,
            heartbeat_read: None,
            gtid_state: GtidState::default(),
            txn_mariadb_gtid: None,
            mysql_gtids: None,
            txn_mysql_gtid: None,
            last_commit_ts: 0,
            filter: None,
            filtered_tables: HashMap::new(),
            row_filters: HashMap::new(),
            rows_filtered: 0,
            dropped_transactions: 0,
            filter_scratch: Vec::new(),
            encryptor: None,
            crypt: Vec::new(),
            snapshot: None,
            parallel: None,
        }
    }

    /// Renders rows on `workers` threads (at least 2; fewer: on the
    /// processor thread). Call before the first event, with the producer in
    /// place: one that takes line blocks gets each job's buffer whole.
    pub fn set_workers(&mut self, workers: usize) -> std::io::Result<()> {
        // Keyed producers need each row's routing data beside its line.
        let line_blocks = self.producer.takes_line_blocks() && !self.out_cfg.routing;
        self.parallel = if workers >= 2 {
            Some(Ordered::new(workers, self.out_cfg.clone(), line_blocks)?)
        } else {
            None
        };
        Ok(())
    }

    /// Whether rendered rows wait to be handed to the producer.
    pub fn has_pending(&self) -> bool {
        self.parallel.as_ref().is_some_and(|p| !p.idle())
    }

    /// Hands every queued row to the producer, in order (waiting for the
    /// workers); afterwards the checkpoint is the last boundary read.
    pub fn deliver_pending(&mut self) -> Result<(), PipelineError> {
        while self.has_pending() {
            self.deliver_next(true)?;
        }
        Ok(())
    }

    /// Hands the oldest queued job to the producer, waiting for it if
    /// `block`; the job being filled is handed to the workers first.
    /// Returns whether a job was delivered.
    pub fn deliver_next(&mut self, block: bool) -> Result<bool, PipelineError> {
        let Some(par) = self.parallel.as_mut() else {
            return Ok(false);
        };
        if block && !par.has_in_flight() {
            par.dispatch()?;
        }
        let Some((mut r, boundary)) = par.next(block)? else {
            return Ok(false);
        };
        if boundary.is_some() {
            par.handed = boundary;
        }
        if par.idle() {
            par.handed = None;
        }
        let (sent, result) = if par.line_blocks {
            self.send_block(&mut r)
        } else {
            self.send_rows(&r)
        };
        self.rows_emitted += sent;
        if let Some(par) = self.parallel.as_mut() {
            match result {
                Ok(()) => par.recycle(r),
                Err(e) => {
                    par.clear();
                    return Err(e.into());
                }
            }
        }
        Ok(true)
    }

    /// Sends a job's rows one message each, with their routing data;
    /// returns how many went before an error.
    fn send_rows(&mut self, r: &Rendered) -> (u64, Result<(), ProducerError>) {
        let mut sent = 0u64;
        for row in &r.rows {
            let (Some(txn), pk, pv) = (
                r.job.txns.get(row.txn as usize),
                &r.buf[row.pk.clone()],
                &r.buf[row.partition_values.clone()],
            ) else {
                continue;
            };
            let Some(table) = txn.tables.get(row.table as usize) else {
                continue;
            };
            let res = self.producer.send(&Message {
                json: &r.buf[row.line.clone()],
                database: &table.database,
                table: &table.table,
                kind: row.kind,
                primary_key: (!pk.is_empty()).then_some(PrimaryKey {
                    columns: &table.primary_key_names,
                    values_json: pk,
                }),
                partition_values: (!pv.is_empty()).then_some(pv),
                xid: txn.xid,
            });
            if let Err(e) = res {
                return (sent, Err(e));
            }
            sent += 1;
        }
        (sent, Ok(()))
    }

    /// Hands a job rendered as a block of lines to the producer whole, and
    /// keeps the empty buffer it gives back for a next job.
    fn send_block(&mut self, r: &mut Rendered) -> (u64, Result<(), ProducerError>) {
        match self.producer.send_lines(std::mem::take(&mut r.buf)) {
            Ok(spare) => {
                r.buf = spare;
                (r.rows.len() as u64, Ok(()))
            }
            Err(e) => (0, Err(e)),
        }
    }

    /// Takes part in snapshots: watermarks written with `session` are acted
    /// on (see [`crate::snapshot`]), chunks come from `source`.
    pub fn set_snapshots(&mut self, session: u64, source: Box<dyn SnapshotSource>) {
        self.snapshot = Some(SnapshotState::new(session, source));
    }

    /// The producer flushed: snapshot work handed to it is delivered.
    pub fn snapshots_flushed(&mut self) {
        if let Some(s) = self.snapshot.as_mut() {
            s.flushed();
        }
    }

    /// Applies the `encrypt` and `secret_key` options (`None`: plaintext).
    /// DDL events stay plaintext, as in Maxwell.
    pub fn set_encryption(&mut self, encryptor: Option<Encryptor>) {
        self.encryptor = encryptor;
    }

    /// The schema history's id of the schema at the start position (each
    /// recorded DDL moves it on).
    pub fn set_schema_id(&mut self, id: Option<u64>) {
        self.schema_id = id;
    }

    /// Applies the `filter` option. Blacklisted tables leave the followed
    /// schema: they are never decoded and their DDL is never applied.
    pub fn set_filter(&mut self, filter: Option<Filter>) {
        if let Some(f) = &filter {
            self.catalog
                .tables
                .retain(|_, t| !f.is_table_blacklisted(&t.database, &t.name));
        }
        self.filter = filter;
        self.tables.clear();
        self.filtered_tables.clear();
        self.row_filters.clear();
    }

    /// Transactions dropped because the binlog went on without their
    /// commit (each logged as a warning with its position).
    pub fn dropped_transactions(&self) -> u64 {
        self.dropped_transactions
    }

    /// Rows the filter left out so far (they count as delivered: the
    /// checkpoint moves past them).
    pub fn rows_filtered(&self) -> u64 {
        self.rows_filtered
    }

    pub fn producer_mut(&mut self) -> &mut S {
        &mut self.producer
    }

    pub fn rows_emitted(&self) -> u64 {
        self.rows_emitted
    }

    /// The position after the last event handled.
    pub fn position(&self) -> String {
        format!("{}:{}", self.file, self.next_offset)
    }

    /// Whether the stream has passed `file:offset`, outside any transaction.
    pub fn reached(&self, file: &str, offset: u64) -> bool {
        self.open.is_none() && (self.file.as_str(), self.next_offset) >= (file, offset)
    }

    /// Rows of the open transaction not yet emitted (buffered or spilled).
    pub fn buffered_rows(&self) -> u64 {
        self.txn.rows() + self.open.as_ref().map_or(0, |o| o.deferred.len() as u64)
    }

    fn event_position(&self, ev: &Event) -> String {
        let start = (ev.header.log_pos as u64).saturating_sub(ev.header.event_size as u64);
        format!("{}:{}", self.file, start)
    }

    fn binlog_err(&self, ev: &Event, source: sluice_binlog::SourceError) -> PipelineError {
        PipelineError::Binlog {
            position: self.event_position(ev),
            source,
        }
    }

    /// Handles one event; the rows of a transaction are handed to the producer
    /// when its commit arrives.
    /// A rows event kept for the workers keeps its body: it is moved out of
    /// `ev` (left empty), not copied, so the caller is done with an event
    /// once it is handled (its header stays).
    pub fn handle(&mut self, ev: &mut Event) -> Result<(), PipelineError> {
        self.skip_boundary = false;
        self.handle_event(ev)?;
        if self.open.is_none() && !self.skip_boundary {
            self.boundary = BinlogPosition {
                file: self.file.clone(),
                offset: self.next_offset,
                gtid: self.last_gtid.clone(),
            };
            if let Some(par) = self.parallel.as_mut().filter(|p| !p.idle()) {
                par.note_boundary(self.boundary.clone());
            }
        }
        Ok(())
    }

    /// Where to resume so that nothing emitted so far is lost and nothing
    /// half-read is emitted: the last transaction boundary. Everything
    /// before it has been handed to the producer (durable once it is flushed).
    pub fn checkpoint(&self) -> &BinlogPosition {
        match self.parallel.as_ref().and_then(|p| p.handed.as_ref()) {
            Some(handed) => handed,
            None => &self.boundary,
        }
    }

    fn handle_event(&mut self, ev: &mut Event) -> Result<(), PipelineError> {
        let h = ev.header;
        match h.event_type {
            types::ROTATE => {
                let rot = event::Rotate::parse(&ev.body).map_err(|e| self.binlog_err(ev, e))?;
                // A new session that starts where the open transaction
                // began (the reader resumes there after a lost connection)
                // reads it again whole: what was held of it is not lost.
                if h.is_artificial()
                    && self.open.is_some()
                    && rot.file == self.boundary.file
                    && rot.position == self.boundary.offset
                {
                    self.txn.clear();
                    self.open = None;
                }
                self.file = rot.file;
                self.next_offset = rot.position;
                return Ok(());
            }
            types::MARIADB_GTID => {
                let g =
                    event::MariadbGtid::parse(&h, &ev.body).map_err(|e| self.binlog_err(ev, e))?;
                self.txn_gtid = Some(g.to_string());
                self.txn_mariadb_gtid = Some(g);
                if !g.standalone {
                    self.begin(None, h.server_id);
                }
            }
            types::MARIADB_GTID_LIST => {
                self.gtid_state
                    .apply_list(&ev.body)
                    .map_err(|e| self.binlog_err(ev, e))?;
                if !self.gtid_state.is_empty() {
                    self.last_gtid = Some(self.gtid_state.to_string());
                }
            }
            types::MYSQL_GTID | types::MYSQL_GTID_TAGGED => self.mysql_gtid(ev)?,
            types::MYSQL_PREVIOUS_GTIDS => self.previous_gtids(ev)?,
            types::QUERY => self.query(ev)?,
            types::TABLE_MAP => self.table_map(ev)?,
            types::WRITE_ROWS_V1
            | types::UPDATE_ROWS_V1
            | types::DELETE_ROWS_V1
            | types::WRITE_ROWS
            | types::UPDATE_ROWS
            | types::DELETE_ROWS => self.rows(ev)?,
            types::MARIADB_ANNOTATE_ROWS | types::ROWS_QUERY => {
                let q = event::row_query_text(h.event_type, &ev.body);
                self.row_query = Some(String::from_utf8_lossy(q).into_owned());
            }
            types::XID => {
                let xid = event::parse_xid(&ev.body).map_err(|e| self.binlog_err(ev, e))?;
                self.advance(ev);
                self.last_commit_ts = ev.header.timestamp;
                return self.commit(Some(xid));
            }
            types::TRANSACTION_PAYLOAD => return self.transaction_payload(ev),
            types::PARTIAL_UPDATE_ROWS => self.partial_update_rows(ev)?,
            types::MARIADB_START_ENCRYPTION => {
                return Err(self.unsupported(ev, "encrypted binlogs (encrypt_binlog=ON)"))
            }
            t if (types::MARIADB_QUERY_COMPRESSED..=types::MARIADB_DELETE_ROWS_COMPRESSED_V1)
                .contains(&t) =>
            {
                return Err(self.unsupported(
                    ev,
                    "compressed binlog events (log_bin_compress=ON); turn compression off",
                ))
            }
            _ => {}
        }
        self.advance(ev);
        Ok(())
    }

    fn advance(&mut self, ev: &Event) {
        if ev.header.log_pos != 0 && !ev.header.is_artificial() {
            self.next_offset = ev.header.log_pos as u64;
        }
    }

    fn unsupported(&self, ev: &Event, what: &'static str) -> PipelineError {
        PipelineError::Unsupported {
            event_type: ev.header.event_type,
            position: self.event_position(ev),
            what,
        }
    }

    /// The open transaction has no rows yet.
    fn txn_empty(&self) -> bool {
        self.txn.is_empty() && self.open.as_ref().is_none_or(|o| o.deferred.is_empty())
    }

    fn begin(&mut self, thread_id: Option<u32>, server_id: u32) {
        // A transaction that never committed is dropped, never emitted:
        // the binlog went on with another one (a server that crashed or
        // was killed mid-transaction, then started a new file). Said
        // loudly: its rows reach no consumer.
        if !self.txn.is_empty() {
            self.dropped_transactions += 1;
            tracing::warn!(
                began = %self.boundary,
                gtid = self.open.as_ref().and_then(|o| o.gtid.as_deref()).unwrap_or(""),
                rows = self.txn.rows(),
                next_at = %format!("{}:{}", self.file, self.next_offset),
                "a transaction never committed: the binlog goes on with the next one (did the server crash mid-transaction?); its rows are dropped, not emitted"
            );
        }
        self.txn.clear();
        self.open = Some(OpenTxn {
            gtid: self.txn_gtid.clone(),
            thread_id,
            server_id,
            internal_only: true,
            heartbeat: None,
            tables: Vec::new(),
            watermark: None,
            deferred: Vec::new(),
            deferred_bytes: 0,
            inline: false,
        });
    }

    fn query(&mut self, ev: &Event) -> Result<(), PipelineError> {
        let q = event::Query::parse(&ev.body).map_err(|e| self.binlog_err(ev, e))?;
        match event::query_kind(q.sql) {
            event::QueryKind::Begin => {
                if self.open.is_none() || !self.txn_empty() {
                    self.begin(Some(q.thread_id), ev.header.server_id);
                } else if let Some(o) = self.open.as_mut() {
                    o.thread_id = Some(q.thread_id);
                }
            }
            // Non-transactional tables end with COMMIT instead of an XID;
            // a ROLLBACK in the binlog keeps the non-transactional rows that
            // were logged.
            event::QueryKind::Commit => {
                self.advance(ev);
                self.last_commit_ts = ev.header.timestamp;
                return self.commit(None);
            }
            event::QueryKind::TxnControl => {}
            event::QueryKind::Other => {
                if self.open.is_none() {
                    if let Some(g) = self.txn_gtid.clone() {
                        self.gtid_done(g);
                    }
                }
                self.ddl(ev, &q)?;
                // Table ids are re-resolved against the new schema.
                self.tables.clear();
                self.filtered_tables.clear();
                self.row_filters.clear();
                if self.open.is_some() && self.txn_empty() {
                    self.open = None;
                }
            }
        }
        Ok(())
    }

    /// Follows a statement that is not part of a row transaction: parses
    /// it, applies it to the schema, records the change in the history and
    /// emits DDL events (`output_ddl`).
    fn ddl(&mut self, ev: &Event, q: &event::Query) -> Result<(), PipelineError> {
        let sql = String::from_utf8_lossy(q.sql);
        let database = String::from_utf8_lossy(q.database);
        let server_charset = q
            .collation_server
            .and_then(|id| self.catalog.charset_of_collation(u32::from(id)))
            .map(str::to_string);
        let ctx = ddl::Context {
            default_db: (!database.is_empty()).then_some(database.as_ref()),
            server_charset: server_charset.as_deref(),
            flavor: self.flavor,
        };
        let parsed = ddl::parse(&sql).map_err(|e| e.to_string());
        if matches!(parsed, Ok(ddl::Statement::NoSchemaChange(_))) {
            return Ok(());
        }
        // Blacklisted tables and databases: their DDL is never applied.
        let mut recapture = Vec::new();
        let parsed = match (parsed, &self.filter) {
            (Ok(st), Some(f)) => {
                let kept = crate::filter::ddl::without_blacklisted(f, st, ctx.default_db);
                recapture = kept.recapture;
                match kept.statement {
                    Some(st) => Ok(st),
                    None if recapture.is_empty() => return Ok(()),
                    None => Ok(ddl::Statement::NoSchemaChange(String::new())),
                }
            }
            (Err(message), Some(_)) if self.names_only_blacklisted(&sql, &database) => {
                tracing::warn!(position = %self.event_position(ev), sql = %sql, error = %message,
                    "DDL sluice cannot parse skipped: it names only blacklisted tables, whose DDL is never applied");
                return Ok(());
            }
            (p, _) => p,
        };
        // Applied to a copy: a statement that fails halfway leaves the
        // schema as it was.
        let mut next = self.catalog.clone();
        let applied =
            parsed.and_then(|st| ddl::apply(&mut next, &st, &ctx).map_err(|e| e.to_string()));
        let mut changes = match applied {
            Ok(c) => c,
            Err(message) => {
                if !self.skip_bad_ddl {
                    return Err(PipelineError::Ddl {
                        position: self.event_position(ev),
                        database: database.into_owned(),
                        sql: sql.into_owned(),
                        message,
                    });
                }
                self.ddl_skipped += 1;
                tracing::warn!(position = %self.event_position(ev), database = %database, sql = %sql, error = %message,
                    "DDL skipped (ddl_parse_errors=skip): re-capturing the tables it names from the server's current catalog");
                next = self.catalog.clone();
                named_tables(&sql, &database, &next)
                    .into_iter()
                    .map(|(database, table)| Change::Recapture { database, table })
                    .collect()
            }
        };
        changes.extend(
            recapture
                .into_iter()
                .map(|(database, table)| Change::Recapture { database, table }),
        );
        // Only the server knows some results (CREATE TABLE … SELECT, or a
        // skipped statement): those tables are captured from it.
        for c in changes.iter_mut() {
            if let Change::Recapture { database, table } = c {
                let old = next.get(database, table).cloned();
                let now = self
                    .schema
                    .recapture(database, table)
                    .map_err(PipelineError::Schema)?;
                *c = match (old, now) {
                    (_, Some(t)) => {
                        next.put(t);
                        let def = next.get(database, table).cloned();
                        match def {
                            Some(def) => Change::TableCreate { def },
                            None => continue,
                        }
                    }
                    (Some(_), None) => {
                        next.remove(database, table);
                        Change::TableDrop {
                            database: database.clone(),
                            table: table.clone(),
                        }
                    }
                    (None, None) => continue,
                };
            }
        }
        changes.retain(|c| !matches!(c, Change::Recapture { .. }));
        self.catalog = next;
        let ops = serial::delta(&changes, &self.catalog);
        if !ops.is_empty() {
            let at = BinlogPosition {
                file: self.file.clone(),
                offset: u64::from(ev.header.log_pos),
                gtid: self.last_gtid.clone(),
            };
            let id = self
                .schema
                .record(&at, &ops, &sql, &self.catalog)
                .map_err(PipelineError::History)?;
            if id.is_some() {
                self.schema_id = id;
            }
            self.ddl_applied += 1;
        }
        if self.out_cfg.ddl {
            // Rows queued for the workers go out before the DDL event.
            self.deliver_pending()?;
            let position = format!("{}:{}", self.file, ev.header.log_pos);
            let info = crate::ddl_json::DdlInfo {
                sql: &sql,
                ts_ms: u64::from(ev.header.timestamp) * 1000,
                position: self.out_cfg.binlog_position.then_some(position.as_str()),
                gtid: if self.out_cfg.gtid_position {
                    self.txn_gtid.as_deref()
                } else {
                    None
                },
            };
            for c in &changes {
                if let Some(f) = &self.filter {
                    if !crate::filter::ddl::change_included(f, c) {
                        continue;
                    }
                }
                if let Some((db, table, json)) = crate::ddl_json::render(c, &info) {
                    self.producer.send(&Message {
                        json: &json,
                        database: &db,
                        table: &table,
                        kind: crate::ddl_json::kind(c),
                        primary_key: None,
                        partition_values: None,
                        xid: None,
                    })?;
                }
            }
        }
        Ok(())
    }

    /// Every table an unparseable statement names is blacklisted.
    fn names_only_blacklisted(&self, sql: &str, database: &str) -> bool {
        let Some(f) = &self.filter else {
            return false;
        };
        let named = named_tables(sql, database, &self.catalog);
        !named.is_empty() && named.iter().all(|(d, t)| f.is_table_blacklisted(d, t))
    }

    /// DDL statements followed and skipped so far.
    pub fn ddl_counts(&self) -> (u64, u64) {
        (self.ddl_applied, self.ddl_skipped)
    }

    /// The table as the schema at this position has it. A table the
    /// history does not know (created by a statement skipped with
    /// `ddl_parse_errors=skip`) is captured from the server once.
    fn catalog_table(
        &mut self,
        db: &str,
        table: &str,
    ) -> Result<Option<Arc<Table>>, PipelineError> {
        if let Some(t) = self.catalog.get(db, table) {
            return Ok(Some(t.clone()));
        }
        let captured = self
            .schema
            .recapture(db, table)
            .map_err(PipelineError::Schema)?;
        if let Some(t) = captured {
            tracing::warn!(table = %format!("{db}.{table}"), "table unknown to the schema history; captured from the server's current catalog");
            self.catalog.put(t);
        }
        Ok(self.catalog.get(db, table).cloned())
    }

    fn table_map(&mut self, ev: &Event) -> Result<(), PipelineError> {
        let map = TableMap::parse(&ev.body).map_err(|e| self.binlog_err(ev, e))?;
        if let Some(t) = self.tables.get(&map.table_id) {
            if t.map.database == map.database
                && t.map.table == map.table
                && t.map.columns == map.columns
                && t.map.metadata == map.metadata
            {
                return Ok(());
            }
        }
        if let Some(m) = self.filtered_tables.get(&map.table_id) {
            if m.database == map.database
                && m.table == map.table
                && m.columns == map.columns
                && m.metadata == map.metadata
            {
                return Ok(());
            }
        }
        let table_id = map.table_id;
        let (db, name) = (map.database.clone(), map.table.clone());
        // Left-out tables are skipped before their schema is looked at: a
        // table the schema does not know is no error then.
        let table_filter = match self.filter_verdict(&db, &name) {
            Verdict::Skip => {
                self.skip_table(map);
                return Ok(());
            }
            Verdict::Read(tf) => tf,
        };
        let cat = self.catalog_table(&db, &name)?;
        // The schema is the one in force at this position: a disagreement
        // with the binlog is a definite error, never a reason to guess.
        let resolved =
            resolve(map, &self.catalog, cat.as_deref(), &self.out_cfg).map_err(|e| match e {
                ResolveError::Drift(message) => PipelineError::Drift {
                    position: self.event_position(ev),
                    message,
                },
                ResolveError::Definite(message) => PipelineError::Definite {
                    position: self.event_position(ev),
                    message,
                },
            })?;
        if let Some(tf) = &table_filter {
            if !tf.includes() && !tf.could_include(resolved.columns.iter().map(|c| c.name.as_str()))
            {
                self.skip_table(resolved.map);
                return Ok(());
            }
        }
        self.filtered_tables.remove(&table_id);
        match table_filter.filter(|tf| tf.has_column_rules()) {
            Some(tf) => self.row_filters.insert(table_id, Arc::new(tf)),
            None => self.row_filters.remove(&table_id),
        };
        self.tables.insert(table_id, Arc::new(resolved));
        Ok(())
    }

    /// What the filter says about a table before anything is decoded.
    fn filter_verdict(&self, db: &str, table: &str) -> Verdict {
        // RDS's heartbeat tables are never read (as in Maxwell, filter or not).
        if crate::filter::is_system_blacklisted(db, table) {
            return Verdict::Skip;
        }
        let Some(f) = &self.filter else {
            return Verdict::Read(None);
        };
        let internal = self
            .internal_database
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case(db));
        if internal || f.is_system_whitelisted(db, table) {
            return Verdict::Read(None);
        }
        if f.is_table_blacklisted(db, table) {
            return Verdict::Skip;
        }
        let tf = f.for_table(db, table);
        if !tf.includes() && !tf.has_include_column_rules() {
            return Verdict::Skip;
        }
        Verdict::Read(Some(tf))
    }

    fn skip_table(&mut self, map: TableMap) {
        self.tables.remove(&map.table_id);
        self.row_filters.remove(&map.table_id);
        self.filtered_tables.insert(map.table_id, map);
    }

    /// Rows of a table the filter leaves out: counted, never decoded. The
    /// transaction still moves the checkpoint (they count as delivered).
    fn skip_rows(&mut self, ev: &Event, hdr: &RowsHeader) -> Result<(), PipelineError> {
        if self.open.is_none() {
            self.begin(None, ev.header.server_id);
        }
        if let Some(o) = self.open.as_mut() {
            o.internal_only = false;
        }
        if let Some(map) = self.filtered_tables.get(&hdr.table_id) {
            self.rows_filtered += count_rows(
                &ev.body,
                map,
                hdr,
                &mut self.before,
                &mut self.before_absent,
            );
        }
        if hdr.flags & sluice_binlog::rows::STMT_END_F != 0 {
            self.row_query = None;
        }
        Ok(())
    }

    /// Column-value rules on the row just read; `data` is the after image
    /// of an update (a column absent from it skips its rule, as in Maxwell).
    fn row_included(
        &mut self,
        ev: &Event,
        t: &DecodeTable,
        tf: &TableFilter,
        kind: RowsKind,
    ) -> Result<bool, PipelineError> {
        let (cells, absent) = if kind == RowsKind::Update {
            (&self.after, &self.after_absent)
        } else {
            (&self.before, &self.before_absent)
        };
        let renderer = &mut self.scratch.renderer;
        let mut json = std::mem::take(&mut self.filter_scratch);
        let mut failed = None;
        let included = tf.includes_row(|column, text| {
            let Some(i) = t.columns.iter().position(|c| c.name == column) else {
                return ColumnValue::Absent;
            };
            if absent.get(i).copied().unwrap_or(true) {
                return ColumnValue::Absent;
            }
            let c = &t.columns[i];
            json.clear();
            let cell = cells.get(i).copied().flatten();
            if let Err(m) = write_cell(renderer, &mut json, c, &ev.body, cell) {
                failed = Some((i, m));
                return ColumnValue::Absent;
            }
            let kind = if c.is_json {
                ValueKind::Json
            } else if c.ty.code == col::SET {
                ValueKind::Set
            } else {
                ValueKind::Scalar
            };
            crate::filter::value_text(&json, kind, text)
        });
        self.filter_scratch = json;
        if let Some((i, m)) = failed {
            return Err(self.decode_err(ev, t, i, m));
        }
        Ok(included)
    }

    fn rows(&mut self, ev: &mut Event) -> Result<(), PipelineError> {
        let body = &ev.body;
        let hdr =
            RowsHeader::parse(ev.header.event_type, body).map_err(|e| self.binlog_err(ev, e))?;
        let table = match self.tables.get(&hdr.table_id) {
            Some(t) => t.clone(),
            None if self.filtered_tables.contains_key(&hdr.table_id) => {
                return self.skip_rows(ev, &hdr);
            }
            None => {
                return Err(PipelineError::Definite {
                    position: self.event_position(ev),
                    message: format!(
                        "rows event for table id {} without a preceding TABLE_MAP",
                        hdr.table_id
                    ),
                })
            }
        };
        if hdr.column_count != table.columns.len() {
            return Err(PipelineError::Drift {
                position: self.event_position(ev),
                message: format!(
                    "{}.{}: rows event has {} columns, table map has {}",
                    table.database,
                    table.table,
                    hdr.column_count,
                    table.columns.len()
                ),
            });
        }
        if self.open.is_none() {
            // Rows outside BEGIN/COMMIT: treat the statement as its own transaction.
            self.begin(None, ev.header.server_id);
        }
        let internal = self
            .internal_database
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case(&table.database));
        // Inserts into Maxwell's bootstrap table are emitted like any row
        // (Maxwell does); nothing else of the internal database is.
        let request = internal
            && hdr.kind == RowsKind::Insert
            && table
                .table
                .eq_ignore_ascii_case(crate::snapshot::REQUEST_TABLE);
        if request {
            if let Some(s) = self.snapshot.as_mut() {
                s.request_seen();
            }
        }
        if internal && !request {
            if table.table.eq_ignore_ascii_case("heartbeats") && self.heartbeat_client_id.is_some()
            {
                let beat = self.read_heartbeat(ev, &table, &hdr)?;
                if let (Some(v), Some(o)) = (beat, self.open.as_mut()) {
                    o.heartbeat = Some(v);
                }
            }
            if self.snapshot.is_some()
                && table
                    .table
                    .eq_ignore_ascii_case(crate::snapshot::WATERMARK_TABLE)
            {
                let mark = self.read_watermark(ev, &table, &hdr)?;
                if let (Some(w), Some(o)) = (mark, self.open.as_mut()) {
                    o.watermark = Some(w);
                }
            }
            return Ok(());
        }
        if let Some(o) = self.open.as_mut() {
            o.internal_only = false;
        }
        let table_index = {
            let open = self
                .open
                .as_mut()
                .ok_or_else(|| PipelineError::Schema("no open transaction".into()))?;
            match open.tables.iter().position(|t| Arc::ptr_eq(t, &table)) {
                Some(i) => i,
                None => {
                    open.tables.push(table.clone());
                    open.tables.len() - 1
                }
            }
        };
        let row_filter = self.row_filters.get(&hdr.table_id).cloned();
        // While a snapshot chunk of this table is between its watermarks,
        // the keys of the rows changed here are recorded (None inside: a
        // key column the table map lacks).
        let snapshot_key: Option<Option<Vec<usize>>> = self
            .snapshot
            .as_ref()
            .and_then(|s| s.watching(&table.database, &table.table))
            .map(|cols| {
                cols.iter()
                    .map(|c| {
                        table
                            .columns
                            .iter()
                            .position(|d| d.name.eq_ignore_ascii_case(c))
                    })
                    .collect()
            });
        let stmt_end = hdr.flags & sluice_binlog::rows::STMT_END_F != 0;
        let defer = self.parallel.is_some()
            && row_filter.is_none()
            && snapshot_key.is_none()
            && self.encryptor.is_none()
            && self.open.as_ref().is_some_and(|o| {
                !o.inline && o.deferred_bytes + body.len() <= MAX_DEFERRED_TXN_BYTES
            });
        if defer {
            // Decoded and rendered by a worker once the transaction commits.
            let row_query = if self.out_cfg.row_query {
                self.row_query.clone()
            } else {
                None
            };
            if let Some(o) = self.open.as_mut() {
                o.deferred_bytes += ev.body.len();
                o.deferred.push(DeferredRows {
                    header: ev.header,
                    body: std::mem::take(&mut ev.body),
                    hdr,
                    table_index: table_index as u32,
                    row_query,
                });
            }
        } else {
            self.undefer()?;
            self.render_rows(
                ev,
                &table,
                &hdr,
                table_index,
                row_filter.as_ref(),
                snapshot_key.as_ref(),
            )?;
        }
        if stmt_end {
            // A row query annotates the rows of one statement only.
            self.row_query = None;
        }
        Ok(())
    }

    /// Switches the open transaction to rendering on this thread: the rows
    /// events kept for the workers are rendered first, in order.
    fn undefer(&mut self) -> Result<(), PipelineError> {
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        open.inline = true;
        if open.deferred.is_empty() {
            return Ok(());
        }
        let deferred = std::mem::take(&mut open.deferred);
        open.deferred_bytes = 0;
        let tables = open.tables.clone();
        let saved = self.row_query.take();
        let mut result = Ok(());
        for d in deferred {
            let Some(table) = tables.get(d.table_index as usize) else {
                continue;
            };
            self.row_query = d.row_query;
            let ev = Event {
                header: d.header,
                body: d.body,
            };
            result = self.render_rows(&ev, table, &d.hdr, d.table_index as usize, None, None);
            if result.is_err() {
                break;
            }
        }
        self.row_query = saved;
        result
    }

    /// Decodes and renders the rows of a rows event into the transaction
    /// buffer (rows a column-value rule excludes are counted, not kept).
    fn render_rows(
        &mut self,
        ev: &Event,
        table: &Arc<DecodeTable>,
        hdr: &RowsHeader,
        table_index: usize,
        row_filter: Option<&Arc<TableFilter>>,
        snapshot_key: Option<&Option<Vec<usize>>>,
    ) -> Result<(), PipelineError> {
        let mut pos = hdr.rows_offset;
        while pos < ev.body.len() {
            pos = self.read_row(ev, table, hdr, pos)?;
            if let Some(key) = snapshot_key {
                self.record_snapshot_key(ev, table, hdr.kind, key.as_deref())?;
            }
            if let Some(tf) = row_filter {
                if !self.row_included(ev, table, tf, hdr.kind)? {
                    self.rows_filtered += 1;
                    continue;
                }
            }
            self.render_row(ev, table, table_index as u32, hdr.kind)?;
            self.txn.push(&self.scratch.head, &self.scratch.tail)?;
        }
        Ok(())
    }

    /// Our own heartbeat value in a rows event on the heartbeats table, if
    /// the event carries one (another client's heartbeat is not ours).
    fn read_heartbeat(
        &mut self,
        ev: &Event,
        table: &DecodeTable,
        hdr: &RowsHeader,
    ) -> Result<Option<u64>, PipelineError> {
        let Some(client) = self.heartbeat_client_id.as_deref() else {
            return Ok(None);
        };
        let wanted = serde_json::Value::String(client.to_string()).to_string();
        let Some(rows) = self.control_rows(ev, table, hdr, ["client_id", "heartbeat"])? else {
            return Ok(None);
        };
        let mut found = None;
        for [client, beat] in rows {
            if client.as_deref() == Some(wanted.as_bytes()) {
                found = beat
                    .as_deref()
                    .and_then(|t| std::str::from_utf8(t).ok())
                    .and_then(|t| t.parse().ok());
            }
        }
        Ok(found)
    }

    /// A watermark row of the snapshot table written by this stream, if
    /// the event inserts one.
    fn read_watermark(
        &mut self,
        ev: &Event,
        table: &DecodeTable,
        hdr: &RowsHeader,
    ) -> Result<Option<Watermark>, PipelineError> {
        if hdr.kind != RowsKind::Insert {
            return Ok(None);
        }
        let names = ["session", "task_id", "chunk", "mark"];
        let Some(rows) = self.control_rows(ev, table, hdr, names)? else {
            return Ok(None);
        };
        let mut found = None;
        for fields in rows {
            let [s, t, c, m] = fields
                .map(|f| f.map(|t| String::from_utf8_lossy(&t).trim_matches('"').to_string()));
            let parsed = (|| {
                Some(Watermark {
                    session: s?.parse().ok()?,
                    task: t?.parse().ok()?,
                    chunk: c?.parse().ok()?,
                    mark: crate::snapshot::Mark::parse(&m?)?,
                })
            })();
            if parsed.is_some() {
                found = parsed;
            }
        }
        Ok(found)
    }

    /// Reads the row at `pos` of a rows event into `before` (and, for an
    /// update, its after image into `after`); returns where the next row
    /// starts.
    fn read_row(
        &mut self,
        ev: &Event,
        table: &DecodeTable,
        hdr: &RowsHeader,
        pos: usize,
    ) -> Result<usize, PipelineError> {
        let body = &ev.body;
        let mut pos = read_row_image(
            body,
            pos,
            &table.map,
            &hdr.present,
            &mut self.before,
            &mut self.before_absent,
        )
        .map_err(|e| self.binlog_err(ev, e))?;
        if hdr.kind == RowsKind::Update {
            pos = read_row_image(
                body,
                pos,
                &table.map,
                &hdr.present_after,
                &mut self.after,
                &mut self.after_absent,
            )
            .map_err(|e| self.binlog_err(ev, e))?;
        }
        Ok(pos)
    }

    /// Sluice's own control rows (heartbeats, snapshot watermarks): the
    /// JSON text of the columns `names` (`None`: NULL or not in the image)
    /// of each row an insert adds or an update leaves (its after image);
    /// deletes give none. `None` when the table lacks one of the columns.
    fn control_rows<const N: usize>(
        &mut self,
        ev: &Event,
        table: &DecodeTable,
        hdr: &RowsHeader,
        names: [&str; N],
    ) -> Result<Option<Vec<ControlRow<N>>>, PipelineError> {
        let mut cols = [0usize; N];
        for (col, name) in cols.iter_mut().zip(names) {
            match table
                .columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
            {
                Some(i) => *col = i,
                None => return Ok(None),
            }
        }
        let body = &ev.body;
        let mut rows = Vec::new();
        let mut pos = hdr.rows_offset;
        while pos < body.len() {
            pos = self.read_row(ev, table, hdr, pos)?;
            let image = match hdr.kind {
                RowsKind::Update => &self.after,
                RowsKind::Insert => &self.before,
                _ => continue,
            };
            let mut row: ControlRow<N> = std::array::from_fn(|_| None);
            for (value, &i) in row.iter_mut().zip(&cols) {
                let Some(cell) = image.get(i).copied().flatten() else {
                    continue;
                };
                let mut text = Vec::new();
                write_cell(
                    &mut self.scratch.renderer,
                    &mut text,
                    &table.columns[i],
                    body,
                    Some(cell),
                )
                .map_err(|m| self.decode_err(ev, table, i, m))?;
                *value = Some(text);
            }
            rows.push(row);
        }
        Ok(Some(rows))
    }

    /// Records the key of the row just read for the snapshot window open on
    /// its table: the before image, and for an update the after image too.
    fn record_snapshot_key(
        &mut self,
        ev: &Event,
        table: &DecodeTable,
        kind: RowsKind,
        key: Option<&[usize]>,
    ) -> Result<(), PipelineError> {
        let before = self.snapshot_key_of(ev, table, key, false)?;
        let after = if kind == RowsKind::Update {
            Some(self.snapshot_key_of(ev, table, key, true)?)
        } else {
            None
        };
        if let Some(s) = self.snapshot.as_mut() {
            s.record(&table.database, &table.table, before.as_deref());
            if let Some(a) = after {
                s.record(&table.database, &table.table, a.as_deref());
            }
        }
        Ok(())
    }

    /// The key values of the current image as a JSON array (the after
    /// image completed by the before image, as `data` is); None when the
    /// image lacks a key column.
    fn snapshot_key_of(
        &mut self,
        ev: &Event,
        table: &DecodeTable,
        key: Option<&[usize]>,
        after: bool,
    ) -> Result<Option<Vec<u8>>, PipelineError> {
        let Some(key) = key else {
            return Ok(None);
        };
        let mut out = vec![b'['];
        for (k, &i) in key.iter().enumerate() {
            let present = |cells: &[Cell], absent: &[bool]| {
                (!absent.get(i).copied().unwrap_or(true)).then(|| cells.get(i).copied().flatten())
            };
            let cell = if after {
                present(&self.after, &self.after_absent)
                    .or_else(|| present(&self.before, &self.before_absent))
            } else {
                present(&self.before, &self.before_absent)
            };
            let Some(cell) = cell else {
                return Ok(None);
            };
            if k > 0 {
                out.push(b',');
            }
            write_cell(
                &mut self.scratch.renderer,
                &mut out,
                &table.columns[i],
                &ev.body,
                cell,
            )
            .map_err(|m| self.decode_err(ev, table, i, m))?;
        }
        out.push(b']');
        Ok(Some(out))
    }

    /// The transaction with GTID `g` is complete: the checkpoint's GTID is
    /// MariaDB's per-domain position, or MySQL's last GTID.
    fn gtid_done(&mut self, g: String) {
        match self.txn_mariadb_gtid.take() {
            Some(mg) => {
                self.gtid_state.apply(&mg);
                self.last_gtid = Some(self.gtid_state.to_string());
            }
            None => self.mysql_gtid_done(g),
        }
    }

    /// The MariaDB GTID position at the start position (from
    /// `BINLOG_GTID_POS`), so the checkpoint carries every domain.
    pub fn seed_gtid_state(&mut self, state: GtidState) {
        if !state.is_empty() {
            self.last_gtid = Some(state.to_string());
            self.boundary.gtid = self.last_gtid.clone();
        }
        self.gtid_state = state;
    }

    /// The value of the last own heartbeat read back from the binlog since
    /// the previous call.
    pub fn take_heartbeat(&mut self) -> Option<u64> {
        self.heartbeat_read.take()
    }

    /// Commit timestamp (unix seconds) of the last transaction committed.
    pub fn last_commit_ts(&self) -> u32 {
        self.last_commit_ts
    }

    fn decode_err(
        &self,
        ev: &Event,
        table: &DecodeTable,
        column: usize,
        message: String,
    ) -> PipelineError {
        PipelineError::Decode {
            table: format!("{}.{}", table.database, table.table),
            column: table.columns[column].name.clone(),
            position: self.event_position(ev),
            message,
        }
    }

    /// Renders the current row image(s) into `head` (before the commit
    /// fields) and `tail` (after them), `data` and `old` encrypted with
    /// `encrypt=data`.
    fn render_row(
        &mut self,
        ev: &Event,
        t: &DecodeTable,
        table_index: u32,
        kind: RowsKind,
    ) -> Result<(), PipelineError> {
        let data_at = self
            .render_row_parts(ev, t, table_index, kind)
            .map_err(|(column, message)| self.decode_err(ev, t, column, message))?;
        if let Some(e) = self.encryptor.as_ref() {
            if e.mode() == EncryptMode::Data {
                crate::encode::encrypt_data_part(
                    e,
                    &mut self.scratch.tail,
                    data_at,
                    &mut self.crypt,
                )?;
            }
        }
        Ok(())
    }

    /// `render_row`'s work: where `data` starts in `tail`, or the column
    /// index and the problem.
    fn render_row_parts(
        &mut self,
        ev: &Event,
        t: &DecodeTable,
        table_index: u32,
        kind: RowsKind,
    ) -> Result<usize, (usize, String)> {
        let cx = RowContext {
            cfg: &self.out_cfg,
            body: &ev.body,
            timestamp: ev.header.timestamp,
            table: t,
            table_index,
            kind,
            row_query: self.row_query.as_deref(),
        };
        let img = Images {
            before: &self.before,
            before_absent: &self.before_absent,
            after: &self.after,
            after_absent: &self.after_absent,
        };
        self.scratch.render(&cx, &img)
    }

    /// Emits every buffered row of the open transaction.
    fn commit(&mut self, xid: Option<u64>) -> Result<(), PipelineError> {
        let mut open = self.open.take();
        let watermark = open.as_mut().and_then(|o| o.watermark.take());
        self.emit_commit(xid, open)?;
        if watermark.is_some() {
            self.deliver_pending()?;
        }
        // Snapshot rows go out after the watermark's transaction, in binlog order.
        if let (Some(w), Some(s)) = (watermark, self.snapshot.as_mut()) {
            self.rows_emitted += s.on_watermark(
                w,
                &self.catalog,
                &self.out_cfg,
                self.encryptor.as_ref(),
                self.schema_id,
                &mut self.producer,
            )?;
        }
        Ok(())
    }

    /// Queues a committed transaction for the workers; hands finished jobs
    /// to the producer, waiting when too much is queued.
    fn queue_commit(
        &mut self,
        xid: Option<u64>,
        open: OpenTxn,
        gtid: Option<String>,
    ) -> Result<(), PipelineError> {
        let Some(par) = self.parallel.as_mut() else {
            return Err(PipelineError::Schema(
                "rows kept without rendering workers".into(),
            ));
        };
        let bytes = open.deferred_bytes;
        let txn = TxnWork {
            events: open.deferred,
            tables: open.tables,
            xid,
            position: format!("{}:{}", self.file, self.next_offset),
            gtid: open.gtid.or(gtid),
            server_id: open.server_id,
            thread_id: open.thread_id,
            schema_id: self.schema_id,
            file: self.file.clone(),
        };
        if par.push(txn, bytes, &self.boundary) {
            par.dispatch()?;
        }
        while self.deliver_next(false)? {}
        while self.parallel.as_ref().is_some_and(|p| p.full()) {
            self.deliver_next(true)?;
        }
        Ok(())
    }

    fn emit_commit(
        &mut self,
        xid: Option<u64>,
        open: Option<OpenTxn>,
    ) -> Result<(), PipelineError> {
        self.row_query = None;
        let gtid = self.txn_gtid.take();
        if let Some(g) = open.as_ref().and_then(|o| o.gtid.clone()).or(gtid.clone()) {
            self.gtid_done(g);
        }
        let Some(open) = open else {
            self.txn.clear();
            return Ok(());
        };
        if open.internal_only && open.heartbeat.is_none() {
            self.skip_boundary = true;
        }
        if open.heartbeat.is_some() {
            self.heartbeat_read = open.heartbeat;
        }
        if !open.deferred.is_empty() {
            return self.queue_commit(xid, open, gtid);
        }
        if self.txn.is_empty() {
            return Ok(());
        }
        // Rows queued for the workers go out before these.
        self.deliver_pending()?;
        let position = format!("{}:{}", self.file, self.next_offset);
        let info = CommitInfo {
            xid,
            position: &position,
            gtid: open.gtid.as_deref().or(gtid.as_deref()),
            server_id: open.server_id,
            thread_id: open.thread_id,
            schema_id: self.schema_id,
        };
        let total = self.txn.rows();
        let cfg = &self.out_cfg;
        let line = &mut self.line;
        let producer = &mut self.producer;
        let encrypt_all = self
            .encryptor
            .as_ref()
            .filter(|e| e.mode() == EncryptMode::All);
        let crypt = &mut self.crypt;
        let mut emitted = 0u64;
        self.txn.drain::<PipelineError>(|i, head, tail| {
            let meta = RowMeta::read(head);
            let table = &open.tables[meta.table_index.min(open.tables.len() - 1)];
            line.clear();
            line.extend_from_slice(meta.json_head);
            cfg.write_commit_fields(line, &info, i, total);
            line.extend_from_slice(tail);
            let json: &[u8] = match encrypt_all {
                Some(e) => {
                    crate::encode::encrypt_line(e, line, crypt)?;
                    crypt
                }
                None => line,
            };
            producer.send(&Message {
                json,
                database: &table.database,
                table: &table.table,
                kind: meta.kind,
                primary_key: (!meta.pk.is_empty()).then_some(PrimaryKey {
                    columns: &table.primary_key_names,
                    values_json: meta.pk,
                }),
                partition_values: (!meta.partition_values.is_empty())
                    .then_some(meta.partition_values),
                xid,
            })?;
            emitted += 1;
            Ok(())
        })?;
        self.rows_emitted += emitted;
        Ok(())
    }
}

/// What the filter says about a table at its TABLE_MAP.
enum Verdict {
    /// Blacklisted or excluded: rows are counted, never decoded.
    Skip,
    /// Decoded; with the table's rules if column-value rules may apply.
    Read(Option<TableFilter>),
}

/// Rows in a rows event, walked with the binlog's own table map (no schema
/// needed). The table is not decoded, so an image that cannot be walked
/// only ends the count.
fn count_rows(
    body: &[u8],
    map: &TableMap,
    hdr: &RowsHeader,
    cells: &mut Vec<Cell>,
    absent: &mut Vec<bool>,
) -> u64 {
    let mut n = 0;
    let mut pos = hdr.rows_offset;
    while pos < body.len() {
        let Ok(next) = read_row_image(body, pos, map, &hdr.present, cells, absent) else {
            return n + 1;
        };
        pos = next;
        if hdr.kind == RowsKind::Update {
            let Ok(next) = read_row_image(body, pos, map, &hdr.present_after, cells, absent) else {
                return n + 1;
            };
            pos = next;
        }
        n += 1;
    }
    n
}

/// What a buffered row's head holds before its JSON: the table index, the
/// row kind, and (for keyed producers) the primary key values and the
/// partition column values as JSON arrays.
pub(crate) struct RowMeta<'a> {
    pub table_index: usize,
    pub kind: &'static str,
    pub pk: &'a [u8],
    pub partition_values: &'a [u8],
    pub json_head: &'a [u8],
}

impl<'a> RowMeta<'a> {
    pub(crate) fn read(head: &'a [u8]) -> Self {
        let u32_at = |i: usize| {
            head.get(i..i + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .unwrap_or(0)
        };
        let kind = match head.get(4) {
            Some(&k) if k == RowsKind::Update as u8 => "update",
            Some(&k) if k == RowsKind::Delete as u8 => "delete",
            _ => "insert",
        };
        let (pk_len, pv_len) = (u32_at(5), u32_at(9));
        let start = 13usize.min(head.len());
        let pk_end = (start + pk_len).min(head.len());
        let pv_end = (pk_end + pv_len).min(head.len());
        RowMeta {
            table_index: u32_at(0),
            kind,
            pk: &head[start..pk_end],
            partition_values: &head[pk_end..pv_end],
            json_head: &head[pv_end..],
        }
    }
}

/// Tables a statement sluice could not follow may have touched: every
/// `db.table` it names, known tables of the default database it names, and
/// names right after TABLE, EXISTS, TO, LIKE or a comma (new tables).
fn named_tables(sql: &str, default_db: &str, cat: &Catalog) -> Vec<(String, String)> {
    use ddl::lex::Tok;
    let toks = ddl::lex::tokenize(sql).unwrap_or_default();
    let word = |i: usize| match toks.get(i) {
        Some(Tok::Word { text, .. }) => Some(text.as_str()),
        _ => None,
    };
    let mut out: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if let Some(w) = word(i) {
            if toks.get(i + 1) == Some(&Tok::Punct('.')) {
                if let Some(t) = word(i + 2) {
                    out.push((w.to_string(), t.to_string()));
                    i += 3;
                    continue;
                }
            }
            let introduced = i > 0
                && (toks[i - 1] == Tok::Punct(',')
                    || ["TABLE", "TABLES", "EXISTS", "TO", "LIKE"]
                        .iter()
                        .any(|k| toks[i - 1].is_kw(k)));
            if !default_db.is_empty() && (introduced || cat.get(default_db, w).is_some()) {
                out.push((default_db.to_string(), w.to_string()));
            }
        }
        i += 1;
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::{Arc as StdArc, Mutex};

    /// Collects what the pipeline emits; with `.1`, as a line sink that
    /// takes blocks of lines (counted in `.2`).
    #[derive(Clone, Default)]
    struct Collect(
        StdArc<Mutex<Vec<String>>>,
        bool,
        StdArc<std::sync::atomic::AtomicUsize>,
    );

    impl Producer for Collect {
        fn send(&mut self, msg: &Message<'_>) -> Result<(), ProducerError> {
            let mut line = String::from_utf8(msg.json.to_vec()).unwrap();
            // Keyed producers' routing data, when the pipeline gives it.
            if let Some(pk) = &msg.primary_key {
                line.push_str(&format!(
                    "\tpk={} {:?} partition={}",
                    String::from_utf8_lossy(pk.values_json),
                    pk.columns,
                    String::from_utf8_lossy(msg.partition_values.unwrap_or(b"-"))
                ));
            }
            self.0.lock().unwrap().push(line);
            Ok(())
        }
        fn flush(&mut self) -> Result<(), ProducerError> {
            Ok(())
        }
        fn takes_line_blocks(&self) -> bool {
            self.1
        }
        fn send_lines(&mut self, block: Vec<u8>) -> Result<Vec<u8>, ProducerError> {
            assert!(self.1, "blocks only for a producer that takes them");
            let text = String::from_utf8(block).unwrap();
            let lines = text
                .strip_suffix('\n')
                .expect("a block ends with a line's end");
            let mut out = self.0.lock().unwrap();
            out.extend(lines.split('\n').map(str::to_string));
            self.2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(Vec::new())
        }
    }

    /// No catalog: these events carry full row metadata.
    struct NoCatalog;

    impl SchemaSource for NoCatalog {
        fn recapture(&mut self, _: &str, _: &str) -> Result<Option<Table>, String> {
            Ok(None)
        }
    }

    fn event(event_type: u8, log_pos: u32, body: Vec<u8>) -> Event {
        Event::new(event_type, 1_700_000_000, log_pos, body)
    }

    fn lenenc_str(out: &mut Vec<u8>, s: &[u8]) {
        out.push(s.len() as u8);
        out.extend_from_slice(s);
    }

    /// TABLE_MAP for db1.t1 (id INT, s VARCHAR(40) utf8mb4) with column names.
    fn table_map() -> Vec<u8> {
        table_map_in(b"db1")
    }

    fn table_map_in(db: &[u8]) -> Vec<u8> {
        let mut b = vec![7, 0, 0, 0, 0, 0, 1, 0];
        b.push(db.len() as u8);
        b.extend_from_slice(db);
        b.push(0);
        b.push(2);
        b.extend_from_slice(b"t1\0");
        b.push(2); // columns
        b.extend_from_slice(&[3, 15]); // LONG, VARCHAR
        b.extend_from_slice(&[2, 160, 0]); // metadata: VARCHAR max 160 bytes
        b.push(0b10); // nullable
        let mut names = Vec::new();
        lenenc_str(&mut names, b"id");
        lenenc_str(&mut names, b"s");
        b.push(4);
        b.push(names.len() as u8);
        b.extend_from_slice(&names);
        b.extend_from_slice(&[3, 1, 45]); // COLUMN_CHARSET: utf8mb4_general_ci
        b
    }

    fn write_rows(columns: u8, id: u32, s: &[u8]) -> Vec<u8> {
        let mut b = vec![7, 0, 0, 0, 0, 0, 1, 0, 2, 0, columns, 0b11, 0];
        b.extend_from_slice(&id.to_le_bytes());
        b.push(s.len() as u8);
        b.extend_from_slice(s);
        b
    }

    fn options() -> ProcessorOptions {
        ProcessorOptions {
            output: OutputConfig::default(),
            txn_memory_bytes: 1 << 20,
            tmp_dir: None,
            internal_database: Some("maxwell".into()),
            heartbeat_client_id: None,
            flavor: Flavor::MariaDb,
            skip_bad_ddl: false,
        }
    }

    fn processor(producer: Collect) -> Processor<Collect, NoCatalog> {
        let mut catalog = Catalog::default();
        catalog.collations.insert(45, "utf8mb4".into());
        Processor::new(
            options(),
            producer,
            NoCatalog,
            catalog,
            "mysql-bin.000001",
            4,
        )
    }

    /// A catalog column of `data_type` (no charset, signed, not JSON).
    pub(crate) fn column(name: &str, data_type: &str) -> sluice_schema::Column {
        sluice_schema::Column {
            name: name.into(),
            data_type: data_type.into(),
            column_type: data_type.into(),
            charset: None,
            unsigned: false,
            values: vec![],
            is_json: false,
        }
    }

    fn gtid() -> Vec<u8> {
        let mut b = 42u64.to_le_bytes().to_vec();
        b.extend_from_slice(&0u32.to_le_bytes());
        b.push(0);
        b
    }

    #[test]
    fn emits_rows_at_commit_with_xid() {
        let producer = Collect::default();
        let mut p = processor(producer.clone());
        p.handle(&mut event(types::MARIADB_GTID, 100, gtid()))
            .unwrap();
        p.handle(&mut event(types::TABLE_MAP, 200, table_map()))
            .unwrap();
        p.handle(&mut event(
            types::WRITE_ROWS,
            300,
            write_rows(2, 5, "é".as_bytes()),
        ))
        .unwrap();
        assert!(
            producer.0.lock().unwrap().is_empty(),
            "rows must wait for the commit"
        );
        p.handle(&mut event(types::XID, 331, 99u64.to_le_bytes().to_vec()))
            .unwrap();
        let out = producer.0.lock().unwrap().clone();
        assert_eq!(
            out,
            vec![
                r#"{"database":"db1","table":"t1","type":"insert","ts":1700000000,"xid":99,"commit":true,"data":{"id":5,"s":"é"}}"#
            ]
        );
        assert_eq!(p.position(), "mysql-bin.000001:331");
    }

    #[test]
    fn a_transaction_without_commit_is_dropped_and_counted_unless_read_again() {
        let producer = Collect::default();
        let mut p = processor(producer.clone());
        // Read up to its rows, then the connection is lost: the new session
        // starts where it began (artificial ROTATE), and it comes again.
        p.handle(&mut event(types::MARIADB_GTID, 100, gtid()))
            .unwrap();
        p.handle(&mut event(types::TABLE_MAP, 200, table_map()))
            .unwrap();
        p.handle(&mut event(types::WRITE_ROWS, 300, write_rows(2, 1, b"a")))
            .unwrap();
        let mut rotate = 4u64.to_le_bytes().to_vec();
        rotate.extend_from_slice(b"mysql-bin.000001");
        p.handle(&mut event(types::ROTATE, 0, rotate)).unwrap();
        assert_eq!(p.dropped_transactions(), 0, "it is read again");
        p.handle(&mut event(types::MARIADB_GTID, 100, gtid()))
            .unwrap();
        p.handle(&mut event(types::TABLE_MAP, 200, table_map()))
            .unwrap();
        p.handle(&mut event(types::WRITE_ROWS, 300, write_rows(2, 1, b"a")))
            .unwrap();
        // Its commit never comes: the binlog goes on with another one.
        p.handle(&mut event(types::MARIADB_GTID, 400, gtid()))
            .unwrap();
        p.handle(&mut event(types::TABLE_MAP, 500, table_map()))
            .unwrap();
        p.handle(&mut event(types::WRITE_ROWS, 600, write_rows(2, 2, b"b")))
            .unwrap();
        p.handle(&mut event(types::XID, 631, 7u64.to_le_bytes().to_vec()))
            .unwrap();
        assert_eq!(p.dropped_transactions(), 1);
        let out = producer.0.lock().unwrap().clone();
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].contains(r#""id":2"#), "{out:?}");
    }

    #[test]
    fn own_state_database_is_neither_output_nor_checkpointed() {
        let producer = Collect::default();
        let mut p = processor(producer.clone());
        p.handle(&mut event(types::MARIADB_GTID, 100, gtid()))
            .unwrap();
        p.handle(&mut event(types::TABLE_MAP, 200, table_map_in(b"maxwell")))
            .unwrap();
        p.handle(&mut event(types::WRITE_ROWS, 300, write_rows(2, 5, b"x")))
            .unwrap();
        p.handle(&mut event(types::XID, 331, 99u64.to_le_bytes().to_vec()))
            .unwrap();
        assert!(producer.0.lock().unwrap().is_empty());
        assert_eq!(p.checkpoint(), &BinlogPosition::new("mysql-bin.000001", 4));
        // A user transaction afterwards moves the checkpoint past both.
        p.handle(&mut event(types::MARIADB_GTID, 400, gtid()))
            .unwrap();
        p.handle(&mut event(types::TABLE_MAP, 500, table_map()))
            .unwrap();
        p.handle(&mut event(types::WRITE_ROWS, 600, write_rows(2, 6, b"y")))
            .unwrap();
        p.handle(&mut event(types::XID, 631, 100u64.to_le_bytes().to_vec()))
            .unwrap();
        assert_eq!(producer.0.lock().unwrap().len(), 1);
        assert_eq!(p.checkpoint().offset, 631);
    }

    #[test]
    fn undecodable_value_names_table_column_and_position() {
        let mut p = processor(Collect::default());
        p.handle(&mut event(types::MARIADB_GTID, 100, gtid()))
            .unwrap();
        p.handle(&mut event(types::TABLE_MAP, 200, table_map()))
            .unwrap();
        let rows = write_rows(2, 5, &[0xC3, 0x28]);
        let size = 19 + rows.len() as u32;
        let err = p
            .handle(&mut event(types::WRITE_ROWS, 200 + size, rows))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("db1.t1.s")
                && err.contains("mysql-bin.000001:200")
                && err.contains("UTF-8"),
            "{err}"
        );
    }

    #[test]
    fn column_count_drift_stops_instead_of_misaligning() {
        let mut p = processor(Collect::default());
        p.handle(&mut event(types::TABLE_MAP, 200, table_map()))
            .unwrap();
        let err = p
            .handle(&mut event(types::WRITE_ROWS, 300, write_rows(3, 5, b"x")))
            .unwrap_err();
        assert!(matches!(err, PipelineError::Drift { .. }), "{err}");
        assert!(err.to_string().contains("db1.t1"), "{err}");
    }

    #[test]
    fn rows_without_table_map_are_a_definite_error() {
        let mut p = processor(Collect::default());
        let err = p
            .handle(&mut event(types::WRITE_ROWS, 300, write_rows(2, 5, b"x")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("without a preceding TABLE_MAP"), "{err}");
    }

    // ------------------------------------------------------------ filter

    /// TABLE_MAP for `db.table` (id INT, s VARCHAR(40) utf8mb4), with or
    /// without column names (without them, the schema must know the table).
    fn table_map_for(db: &[u8], table: &[u8], names: bool) -> Vec<u8> {
        let mut b = vec![7, 0, 0, 0, 0, 0, 1, 0];
        b.push(db.len() as u8);
        b.extend_from_slice(db);
        b.push(0);
        b.push(table.len() as u8);
        b.extend_from_slice(table);
        b.push(0);
        b.push(2);
        b.extend_from_slice(&[3, 15]);
        b.extend_from_slice(&[2, 160, 0]);
        b.push(0b10);
        if names {
            let mut n = Vec::new();
            lenenc_str(&mut n, b"id");
            lenenc_str(&mut n, b"s");
            b.push(4);
            b.push(n.len() as u8);
            b.extend_from_slice(&n);
        }
        b.extend_from_slice(&[3, 1, 45]);
        b
    }

    /// WRITE_ROWS with one row per (id, s).
    fn write_many(rows: &[(u32, &[u8])]) -> Vec<u8> {
        let mut b = vec![7, 0, 0, 0, 0, 0, 1, 0, 2, 0, 2, 0b11];
        for (id, s) in rows {
            b.push(0);
            b.extend_from_slice(&id.to_le_bytes());
            b.push(s.len() as u8);
            b.extend_from_slice(s);
        }
        b
    }

    /// A QUERY event body: `sql` run with default database `db`.
    fn query_body(db: &str, sql: &str) -> Vec<u8> {
        let mut b = 1u32.to_le_bytes().to_vec();
        b.extend_from_slice(&0u32.to_le_bytes());
        b.push(db.len() as u8);
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(db.as_bytes());
        b.push(0);
        b.extend_from_slice(sql.as_bytes());
        b
    }

    fn filtered(sink: Collect, filter: &str) -> Processor<Collect, NoCatalog> {
        let mut p = processor(sink);
        p.out_cfg.ddl = true;
        p.set_filter(Some(crate::Filter::parse(filter, "maxwell").unwrap()));
        p
    }

    /// One transaction writing `rows` to `db.table`, starting at `at`.
    fn insert(
        p: &mut Processor<Collect, NoCatalog>,
        at: u32,
        db: &[u8],
        table: &[u8],
        rows: &[(u32, &[u8])],
    ) -> Result<(), PipelineError> {
        p.handle(&mut event(types::MARIADB_GTID, at, gtid()))?;
        p.handle(&mut event(
            types::TABLE_MAP,
            at + 100,
            table_map_for(db, table, true),
        ))?;
        p.handle(&mut event(types::WRITE_ROWS, at + 200, write_many(rows)))?;
        p.handle(&mut event(
            types::XID,
            at + 231,
            7u64.to_le_bytes().to_vec(),
        ))
    }

    fn ddl(
        p: &mut Processor<Collect, NoCatalog>,
        at: u32,
        db: &str,
        sql: &str,
    ) -> Result<(), PipelineError> {
        p.handle(&mut event(types::QUERY, at, query_body(db, sql)))
    }

    fn emitted(sink: &Collect) -> Vec<String> {
        sink.0.lock().unwrap().clone()
    }

    /// The commit position a line carries (`output_binlog_position`).
    fn line_offset(line: &str) -> Option<u64> {
        const AT: &str = "\"position\":\"mysql-bin.000001:";
        let at = line.find(AT)? + AT.len();
        line[at..].split('"').next()?.parse().ok()
    }

    /// The same bytes in the same order whether rows are rendered on the
    /// processor thread or by 2 or 4 workers: transactions of 1 to 23 rows,
    /// DDL between them, an excluded database, a column-value rule (whose
    /// table is rendered on the processor thread), several rows events per
    /// transaction and one transaction too big to keep for the workers. At
    /// no point does the checkpoint pass a row not yet handed over.
    #[test]
    fn workers_emit_the_same_bytes_in_the_same_order() {
        // `blocks`: a line sink (no routing data) taking whole blocks.
        let run = |workers: usize, blocks: bool| {
            let sink = Collect(Default::default(), blocks, Default::default());
            let mut p = filtered(sink.clone(), "exclude: db3.*, exclude: db2.t1.s=reject");
            p.out_cfg.xoffset = true;
            p.out_cfg.binlog_position = true;
            // Keyed producers' routing data travels with each line too.
            p.out_cfg.routing = !blocks;
            p.out_cfg.partition_columns = vec!["s".into()];
            p.set_workers(workers).unwrap();
            let mut seen = Vec::new();
            let mut at = 100u32;
            for i in 0..600u32 {
                let db: &[u8] = match i % 5 {
                    0 => b"db2",
                    1 => b"db3",
                    _ => b"db1",
                };
                let rows: Vec<(u32, Vec<u8>)> = (0..1 + i * 7 % 23)
                    .map(|k| {
                        let s = match k % 4 {
                            0 => b"reject".to_vec(),
                            _ => format!("v{i}-{k}-\u{e9}\"\\").into_bytes(),
                        };
                        (i * 1000 + k, s)
                    })
                    .collect();
                let refs: Vec<(u32, &[u8])> = rows.iter().map(|(a, b)| (*a, &b[..])).collect();
                if i % 50 == 7 {
                    // Several rows events in one transaction.
                    p.handle(&mut event(types::MARIADB_GTID, at, gtid()))
                        .unwrap();
                    p.handle(&mut event(
                        types::TABLE_MAP,
                        at + 100,
                        table_map_for(db, b"t1", true),
                    ))
                    .unwrap();
                    for (k, r) in refs.chunks(3).enumerate() {
                        p.handle(&mut event(
                            types::WRITE_ROWS,
                            at + 200 + k as u32,
                            write_many(r),
                        ))
                        .unwrap();
                    }
                    p.handle(&mut event(
                        types::XID,
                        at + 231,
                        7u64.to_le_bytes().to_vec(),
                    ))
                    .unwrap();
                } else {
                    insert(&mut p, at, db, b"t1", &refs).unwrap();
                }
                at += 1000;
                if i % 97 == 3 {
                    ddl(&mut p, at, "db1", &format!("create table t{i} (i int)")).unwrap();
                    at += 1000;
                }
                if i == 300 {
                    // About 5 MB of rows events: rendered on this thread.
                    let big: Vec<(u32, &[u8])> = (0..60).map(|k| (k, &[b'x'; 120][..])).collect();
                    let body = write_many(&big);
                    p.handle(&mut event(types::MARIADB_GTID, at, gtid()))
                        .unwrap();
                    p.handle(&mut event(
                        types::TABLE_MAP,
                        at + 100,
                        table_map_for(b"db1", b"t1", true),
                    ))
                    .unwrap();
                    for k in 0..700 {
                        p.handle(&mut event(types::WRITE_ROWS, at + 200 + k, body.clone()))
                            .unwrap();
                    }
                    p.handle(&mut event(
                        types::XID,
                        at + 931,
                        8u64.to_le_bytes().to_vec(),
                    ))
                    .unwrap();
                    at += 1000;
                }
                seen.push((p.checkpoint().offset, sink.0.lock().unwrap().len()));
            }
            p.deliver_pending().unwrap();
            let out = emitted(&sink);
            let offsets: Vec<u64> = out.iter().filter_map(|l| line_offset(l)).collect();
            for (checkpoint, handed) in seen {
                let before = offsets.iter().filter(|&&o| o <= checkpoint).count();
                assert!(
                    before <= handed,
                    "{workers} workers: checkpoint {checkpoint} passed rows not handed over"
                );
            }
            let blocks_taken = sink.2.load(std::sync::atomic::Ordering::Relaxed);
            assert_eq!(
                blocks_taken > 0,
                blocks && workers >= 2,
                "{workers} workers, blocks {blocks}: {blocks_taken} blocks"
            );
            (
                out,
                p.checkpoint().clone(),
                p.rows_emitted(),
                p.rows_filtered(),
            )
        };
        let one = run(1, false);
        assert!(one.0.len() > 40_000, "{}", one.0.len());
        assert!(
            one.0
                .iter()
                .filter(|l| l.contains("\"type\":\"insert\""))
                .all(|l| l.contains("\tpk=[") && !l.ends_with("partition=-")),
            "every row carries its routing data"
        );
        assert!(one.0.iter().any(|l| l.contains("table-create")));
        assert!(one.3 > 0, "the column-value rule filtered rows");
        for (workers, blocks) in [(2, false), (4, false), (1, true), (2, true), (4, true)] {
            let many = run(workers, blocks);
            assert_eq!(many.0.len(), one.0.len(), "{workers} workers");
            for (a, b) in one.0.iter().zip(&many.0) {
                // A line sink gets the line without the routing data.
                let a = if blocks {
                    a.split('\t').next().unwrap()
                } else {
                    a
                };
                assert_eq!(a, b, "{workers} workers, blocks {blocks}");
            }
            assert_eq!(
                (many.1, many.2, many.3),
                (one.1.clone(), one.2, one.3),
                "{workers} workers"
            );
        }
    }

    #[test]
    fn excluded_rows_are_counted_not_emitted_and_the_checkpoint_moves() {
        let sink = Collect::default();
        let mut p = filtered(sink.clone(), "exclude: db1.*");
        insert(&mut p, 100, b"db1", b"t1", &[(1, b"a"), (2, b"b")]).unwrap();
        assert!(emitted(&sink).is_empty());
        assert_eq!(p.rows_filtered(), 2);
        assert_eq!(
            p.checkpoint().offset,
            331,
            "filtered rows count as delivered"
        );
        insert(&mut p, 400, b"db2", b"t1", &[(3, b"c")]).unwrap();
        assert_eq!(emitted(&sink).len(), 1);
        assert!(emitted(&sink)[0].contains(r#""database":"db2""#));
        assert_eq!((p.rows_emitted(), p.rows_filtered()), (1, 2));
    }

    #[test]
    fn excluded_tables_without_a_schema_are_skipped_without_error() {
        // No column names in the binlog and no schema for `gone.t1`.
        let bare = || event(types::TABLE_MAP, 200, table_map_for(b"gone", b"t1", false));
        let mut p = processor(Collect::default());
        assert!(matches!(
            p.handle(&mut bare()),
            Err(PipelineError::Drift { .. })
        ));

        let sink = Collect::default();
        let mut p = filtered(sink.clone(), "exclude: gone.*");
        p.handle(&mut event(types::MARIADB_GTID, 100, gtid()))
            .unwrap();
        p.handle(&mut bare()).unwrap();
        p.handle(&mut event(types::WRITE_ROWS, 300, write_many(&[(1, b"x")])))
            .unwrap();
        p.handle(&mut event(types::XID, 331, 7u64.to_le_bytes().to_vec()))
            .unwrap();
        assert!(emitted(&sink).is_empty());
        assert_eq!(p.rows_filtered(), 1);
    }

    #[test]
    fn blacklisted_tables_are_not_decoded_and_their_ddl_not_applied() {
        let sink = Collect::default();
        let mut p = processor(sink.clone());
        p.catalog.put(Table {
            database: "db1".into(),
            name: "noseeum".into(),
            charset: None,
            columns: Vec::new(),
            primary_key: Vec::new(),
        });
        p.out_cfg.ddl = true;
        p.set_filter(Some(
            crate::Filter::parse("blacklist: *.noseeum", "maxwell").unwrap(),
        ));
        assert!(
            p.catalog.get("db1", "noseeum").is_none(),
            "left the followed schema"
        );

        ddl(&mut p, 100, "db1", "create table noseeum (i int)").unwrap();
        ddl(&mut p, 200, "db1", "create table oicu (i int)").unwrap();
        assert!(p.catalog.get("db1", "noseeum").is_none());
        assert!(p.catalog.get("db1", "oicu").is_some());
        let events = emitted(&sink);
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(events[0].contains(r#""table":"oicu""#));

        // A statement sluice cannot parse is skipped when it names only
        // blacklisted tables; anywhere else it still stops sluice.
        ddl(&mut p, 300, "db1", "alter table noseeum add column (").unwrap();
        assert!(matches!(
            ddl(&mut p, 400, "db1", "alter table oicu add column ("),
            Err(PipelineError::Ddl { .. })
        ));

        // Rows of the blacklisted table: counted, never decoded or output.
        insert(&mut p, 500, b"db1", b"noseeum", &[(1, b"x")]).unwrap();
        assert_eq!(emitted(&sink).len(), 1);
        assert_eq!(p.rows_filtered(), 1);
    }

    #[test]
    fn ddl_events_of_excluded_tables_are_not_output() {
        let sink = Collect::default();
        let mut p = filtered(sink.clone(), "exclude: *.chicken");
        ddl(&mut p, 100, "", "create database d3").unwrap();
        ddl(&mut p, 200, "d3", "create table chicken (i int)").unwrap();
        ddl(&mut p, 300, "d3", "create table burger (i int)").unwrap();
        let events = emitted(&sink);
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(events[0].contains(r#""type":"database-create""#));
        assert!(events[1].contains(r#""table":"burger""#));
        // Excluded (not blacklisted) tables' DDL is applied all the same.
        assert!(p.catalog.get("d3", "chicken").is_some());

        let sink = Collect::default();
        let mut p = filtered(sink.clone(), "exclude: *.TestTableCreate4");
        ddl(&mut p, 100, "db", "create table TestTableCreate3 (i int)").unwrap();
        ddl(
            &mut p,
            200,
            "db",
            "rename table TestTableCreate3 to TestTableCreate4",
        )
        .unwrap();
        let events = emitted(&sink);
        assert_eq!(
            events.len(),
            1,
            "the rename needs both names included: {events:?}"
        );
        assert!(events[0].contains(r#""type":"table-create""#));
    }

    #[test]
    fn column_value_rules_are_evaluated_on_each_row() {
        for filter in [
            "exclude: db1.t1.s=reject",
            "exclude: db1.t1, include: db1.t1.s=accept",
            "exclude: db1.t1.s=*, include: db1.t1.s=accept",
            "exclude: *.*, include: *.*.s=/^acc/",
        ] {
            let sink = Collect::default();
            let mut p = filtered(sink.clone(), filter);
            insert(
                &mut p,
                100,
                b"db1",
                b"t1",
                &[(1, b"accept"), (2, b"reject")],
            )
            .unwrap();
            let rows = emitted(&sink);
            assert_eq!(rows.len(), 1, "{filter}: {rows:?}");
            assert!(rows[0].contains(r#""s":"accept""#), "{filter}: {rows:?}");
            assert_eq!(p.rows_filtered(), 1, "{filter}");
            assert_eq!(p.checkpoint().offset, 331, "{filter}");
        }
        // A rule on a column the table does not have is ignored.
        let sink = Collect::default();
        let mut p = filtered(sink.clone(), "exclude: db1.t1.notacolumn=*");
        insert(&mut p, 100, b"db1", b"t1", &[(1, b"a"), (2, b"b")]).unwrap();
        assert_eq!(emitted(&sink).len(), 2);
    }

    #[test]
    fn rds_heartbeat_tables_are_never_read() {
        let sink = Collect::default();
        let mut p = processor(sink.clone());
        insert(&mut p, 100, b"mysql", b"rds_heartbeat2", &[(1, b"x")]).unwrap();
        insert(&mut p, 400, b"mysql", b"ha_health_check", &[(1, b"x")]).unwrap();
        assert!(emitted(&sink).is_empty());
        assert_eq!(p.rows_filtered(), 2);
    }

    // -------------------------------------------------------- encryption

    fn encrypting(sink: Collect, mode: &str) -> Processor<Collect, NoCatalog> {
        let mut p = processor(sink);
        p.out_cfg.ddl = true;
        p.set_encryption(Encryptor::from_options(mode, Some("aaaaaaaaaaaaaaaa")).unwrap());
        p
    }

    #[test]
    fn encrypt_data_keeps_metadata_plaintext() {
        let sink = Collect::default();
        let mut p = encrypting(sink.clone(), "data");
        insert(&mut p, 100, b"db1", b"t1", &[(5, b"x")]).unwrap();
        let out = emitted(&sink);
        assert!(
            out[0].starts_with(
                r#"{"database":"db1","table":"t1","type":"insert","ts":1700000000,"xid":7,"commit":true,"encrypted":{"iv":""#
            ),
            "{out:?}"
        );
        let v: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
        assert!(v.get("data").is_none());
        assert_eq!(
            crate::encrypt::test_decrypt_field(&v["encrypted"]),
            r#"{"data":{"id":5,"s":"x"}}"#
        );
    }

    #[test]
    fn encrypt_all_encrypts_rows_but_not_ddl() {
        let sink = Collect::default();
        let mut p = encrypting(sink.clone(), "all");
        insert(&mut p, 100, b"db1", b"t1", &[(5, b"x")]).unwrap();
        ddl(&mut p, 400, "db1", "create table t2 (i int)").unwrap();
        let out = emitted(&sink);
        let v: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1, "{out:?}");
        assert_eq!(
            crate::encrypt::test_decrypt_field(&v["encrypted"]),
            r#"{"database":"db1","table":"t1","type":"insert","ts":1700000000,"xid":7,"commit":true,"data":{"id":5,"s":"x"}}"#
        );
        assert!(out[1].starts_with(r#"{"type":"table-create""#), "{out:?}");
    }

    /// The snapshot side as a test sees it: one task, given chunks, and
    /// what the stream reports back.
    struct Snapshots {
        chunks: std::collections::HashMap<(u64, u64), crate::snapshot::Chunk>,
        handed: StdArc<Mutex<Vec<crate::snapshot::Delivered>>>,
    }

    impl SnapshotSource for Snapshots {
        fn task(&self, task: u64) -> Option<crate::snapshot::TaskInfo> {
            (task == 1).then(|| crate::snapshot::TaskInfo {
                task: 1,
                database: "db1".into(),
                table: "t1".into(),
                comment: None,
                key_columns: vec!["id".into()],
            })
        }
        fn take_chunk(&mut self, task: u64, chunk: u64) -> Option<crate::snapshot::Chunk> {
            self.chunks.remove(&(task, chunk))
        }
        fn handed(&mut self, what: crate::snapshot::Delivered) {
            self.handed.lock().unwrap().push(what);
        }
        fn flushed(&mut self) {}
        fn request_seen(&mut self) {}
    }

    /// TABLE_MAP of maxwell.bootstrap_watermarks (session, task_id, chunk
    /// BIGINT UNSIGNED, mark VARCHAR) with column names.
    fn watermark_map() -> Vec<u8> {
        let mut b = vec![8, 0, 0, 0, 0, 0, 1, 0];
        lenenc_str(&mut b, b"maxwell");
        b.push(0);
        lenenc_str(&mut b, b"bootstrap_watermarks");
        b.push(0);
        b.push(4);
        b.extend_from_slice(&[8, 8, 8, 15]);
        b.extend_from_slice(&[2, 64, 0]);
        b.push(0);
        b.extend_from_slice(&[1, 1, 0b1110_0000]); // SIGNEDNESS: three unsigned
        let mut names = Vec::new();
        for n in [&b"session"[..], b"task_id", b"chunk", b"mark"] {
            lenenc_str(&mut names, n);
        }
        b.push(4);
        b.push(names.len() as u8);
        b.extend_from_slice(&names);
        b.extend_from_slice(&[3, 1, 45]);
        b
    }

    fn watermark_row(session: u64, chunk: u64, mark: &[u8]) -> Vec<u8> {
        let mut b = vec![8, 0, 0, 0, 0, 0, 1, 0, 2, 0, 4, 0b1111, 0];
        for v in [session, 1, chunk] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.push(mark.len() as u8);
        b.extend_from_slice(mark);
        b
    }

    #[test]
    fn chunk_rows_the_binlog_changed_inside_the_window_are_dropped() {
        use crate::snapshot::{Chunk, Delivered, SnapValue};
        let producer = Collect::default();
        let mut catalog = Catalog::default();
        catalog.collations.insert(45, "utf8mb4".into());
        catalog.put(Table {
            database: "db1".into(),
            name: "t1".into(),
            charset: None,
            columns: vec![column("id", "int"), column("s", "varchar")],
            primary_key: vec!["id".into()],
        });
        let mut p = Processor::new(
            options(),
            producer.clone(),
            NoCatalog,
            catalog,
            "mysql-bin.000001",
            4,
        );
        let handed = StdArc::new(Mutex::new(Vec::new()));
        let row =
            |id: i64, s: &str| vec![SnapValue::Int(id), SnapValue::Bytes(s.as_bytes().to_vec())];
        let chunks = [(
            (1, 10),
            Chunk {
                task: 1,
                chunk: 10,
                columns: vec!["id".into(), "s".into()],
                rows: vec![row(1, "a"), row(2, "b"), row(3, "c")],
            },
        )]
        .into_iter()
        .collect();
        p.set_snapshots(
            7,
            Box::new(Snapshots {
                chunks,
                handed: handed.clone(),
            }),
        );
        let mut pos = 100;
        let mut txn = |p: &mut Processor<Collect, NoCatalog>, map: Vec<u8>, rows: Vec<u8>| {
            for (t, body) in [
                (types::MARIADB_GTID, gtid()),
                (types::TABLE_MAP, map),
                (types::WRITE_ROWS, rows),
                (types::XID, 5u64.to_le_bytes().to_vec()),
            ] {
                pos += 100;
                p.handle(&mut event(t, pos, body)).unwrap();
            }
        };
        txn(&mut p, watermark_map(), watermark_row(7, 10, b"low"));
        // Another stream's watermark (a run before a restart): ignored.
        txn(&mut p, watermark_map(), watermark_row(99, 10, b"high"));
        txn(&mut p, table_map(), write_rows(2, 2, b"B"));
        txn(&mut p, watermark_map(), watermark_row(7, 10, b"high"));
        let out: Vec<serde_json::Value> = producer
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let seen: Vec<(String, serde_json::Value)> = out
            .iter()
            .map(|v| (v["type"].as_str().unwrap().to_string(), v["data"].clone()))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("insert".to_string(), serde_json::json!({"id": 2, "s": "B"})),
                (
                    "bootstrap-insert".into(),
                    serde_json::json!({"id": 1, "s": "a"})
                ),
                (
                    "bootstrap-insert".into(),
                    serde_json::json!({"id": 3, "s": "c"})
                ),
            ]
        );
        assert_eq!(
            *handed.lock().unwrap(),
            vec![Delivered::Chunk {
                task: 1,
                chunk: 10,
                emitted: 2,
                superseded: 1
            }]
        );
        assert_eq!(p.rows_emitted(), 3);
        assert!(out[1].get("xid").is_none() && out[1].get("commit").is_none());
    }
}
