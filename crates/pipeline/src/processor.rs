//! The event-by-event state machine: tracks the binlog position and the open
//! transaction, decodes rows into the transaction buffer, and emits every row
//! of a transaction, in order, when its commit arrives.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use sluice_binlog::event::{self, types, Event};
use sluice_binlog::rows::{read_row_image, Cell, RowsHeader, RowsKind, TableMap};
use sluice_binlog::{BinlogPosition, GtidState};
use sluice_schema::ddl::{self, Change, Flavor};
use sluice_schema::serial::{self, Op};
use sluice_schema::{Catalog, Table};
use sluice_sinks::{Message, PrimaryKey, Sink, SinkError};

use crate::encode::{CommitInfo, OutputConfig};
use crate::json;
use crate::table::{resolve, DecodeTable, ResolveError};
use crate::txn::TxnBuffer;
use crate::values::{ColumnDecode, RenderOptions, Renderer};

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
    Sink(#[from] SinkError),
    #[error("transaction spill file: {0}")]
    Spill(#[from] std::io::Error),
}

/// The server's live catalog and the schema history.
pub trait SchemaSource {
    /// The table as the server has it now (`None`: it does not exist).
    fn recapture(&mut self, database: &str, table: &str) -> Result<Option<Table>, String>;
    /// Makes a schema change durable in the history, at the position after
    /// the DDL (`catalog` is the schema after it, for snapshots).
    fn record(
        &mut self,
        _at: &BinlogPosition,
        _ops: &[Op],
        _sql: &str,
        _catalog: &Catalog,
    ) -> Result<(), String> {
        Ok(())
    }
}

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
}

pub struct Processor<S: Sink, C: SchemaSource> {
    out_cfg: OutputConfig,
    sink: S,
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
    renderer: Renderer,
    // Reused buffers: no allocation per row on the hot path.
    before: Vec<Cell>,
    before_absent: Vec<bool>,
    after: Vec<Cell>,
    after_absent: Vec<bool>,
    head: Vec<u8>,
    tail: Vec<u8>,
    line: Vec<u8>,
    meta: Vec<u8>,
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
    /// The last own heartbeat read (committed), not yet taken.
    heartbeat_read: Option<u64>,
    /// Commit timestamp of the last transaction (binlog header, seconds).
    last_commit_ts: u32,
}

/// Appends a cell's JSON value (`null` for NULL).
fn write_cell(
    renderer: &mut Renderer,
    out: &mut Vec<u8>,
    c: &ColumnDecode,
    body: &[u8],
    cell: Cell,
) -> Result<(), String> {
    match cell {
        None => {
            out.extend_from_slice(b"null");
            Ok(())
        }
        Some((s, e)) => renderer.render(out, c, &body[s as usize..e as usize]),
    }
}

fn same_cell(body: &[u8], a: Cell, b: Cell) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some((s1, e1)), Some((s2, e2))) => {
            body[s1 as usize..e1 as usize] == body[s2 as usize..e2 as usize]
        }
        _ => false,
    }
}

impl<S: Sink, C: SchemaSource> Processor<S, C> {
    pub fn new(
        opts: ProcessorOptions,
        sink: S,
        schema: C,
        catalog: Catalog,
        start_file: &str,
        start_offset: u64,
    ) -> Self {
        Processor {
            renderer: Renderer::new(RenderOptions {
                null_zero_dates: opts.output.null_zero_dates,
            }),
            out_cfg: opts.output,
            sink,
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
            before: Vec::new(),
            before_absent: Vec::new(),
            after: Vec::new(),
            after_absent: Vec::new(),
            head: Vec::new(),
            tail: Vec::new(),
            line: Vec::new(),
            meta: Vec::new(),
            rows_emitted: 0,
            boundary: BinlogPosition::new(start_file, start_offset),
            last_gtid: None,
            internal_database: opts.internal_database,
            skip_boundary: false,
            heartbeat_client_id: opts.heartbeat_client_id,
            heartbeat_read: None,
            gtid_state: GtidState::default(),
            txn_mariadb_gtid: None,
            last_commit_ts: 0,
        }
    }

    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
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
        self.txn.rows()
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

    /// Handles one event; the rows of a transaction are handed to the sink
    /// when its commit arrives.
    pub fn handle(&mut self, ev: &Event) -> Result<(), PipelineError> {
        self.skip_boundary = false;
        self.handle_event(ev)?;
        if self.open.is_none() && !self.skip_boundary {
            self.boundary = BinlogPosition {
                file: self.file.clone(),
                offset: self.next_offset,
                gtid: self.last_gtid.clone(),
            };
        }
        Ok(())
    }

    /// Where to resume so that nothing emitted so far is lost and nothing
    /// half-read is emitted: the last transaction boundary. Everything
    /// before it has been handed to the sink (durable once it is flushed).
    pub fn checkpoint(&self) -> &BinlogPosition {
        &self.boundary
    }

    fn handle_event(&mut self, ev: &Event) -> Result<(), PipelineError> {
        let h = ev.header;
        match h.event_type {
            types::ROTATE => {
                let rot = event::Rotate::parse(&ev.body).map_err(|e| self.binlog_err(ev, e))?;
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
            types::MYSQL_GTID => {
                self.txn_gtid =
                    Some(event::parse_mysql_gtid(&ev.body).map_err(|e| self.binlog_err(ev, e))?);
            }
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
            types::TRANSACTION_PAYLOAD => return Err(self.unsupported(
                ev,
                "compressed transactions (binlog_transaction_compression=ON); turn compression off",
            )),
            types::PARTIAL_UPDATE_ROWS => {
                return Err(self.unsupported(
                    ev,
                    "partial JSON updates (binlog_row_value_options=PARTIAL_JSON); turn it off",
                ))
            }
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

    fn begin(&mut self, thread_id: Option<u32>, server_id: u32) {
        // A transaction that never committed (a partial one cut by a
        // reconnect) is dropped, never emitted.
        self.txn.clear();
        self.open = Some(OpenTxn {
            gtid: self.txn_gtid.clone(),
            thread_id,
            server_id,
            internal_only: true,
            heartbeat: None,
            tables: Vec::new(),
        });
    }

    fn query(&mut self, ev: &Event) -> Result<(), PipelineError> {
        let q = event::Query::parse(&ev.body).map_err(|e| self.binlog_err(ev, e))?;
        match event::query_kind(q.sql) {
            event::QueryKind::Begin => {
                if self.open.is_none() || !self.txn.is_empty() {
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
                if self.open.as_ref().is_some_and(|_| self.txn.is_empty()) {
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
            self.schema
                .record(&at, &ops, &sql, &self.catalog)
                .map_err(PipelineError::History)?;
            self.ddl_applied += 1;
        }
        if self.out_cfg.ddl {
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
                if let Some((db, table, json)) = crate::ddl_json::render(c, &info) {
                    self.sink.send(&Message {
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
        let table_id = map.table_id;
        let (db, name) = (map.database.clone(), map.table.clone());
        let cat = self.catalog_table(&db, &name)?;
        // The schema is the one in force at this position: a disagreement
        // with the binlog is a definite error, never a reason to guess.
        let resolved = resolve(
            map,
            &self.catalog,
            cat.as_deref(),
            &self.out_cfg.exclude_columns,
        )
        .map_err(|e| match e {
            ResolveError::Drift(message) => PipelineError::Drift {
                position: self.event_position(ev),
                message,
            },
            ResolveError::Definite(message) => PipelineError::Definite {
                position: self.event_position(ev),
                message,
            },
        })?;
        self.tables.insert(table_id, Arc::new(resolved));
        Ok(())
    }

    fn rows(&mut self, ev: &Event) -> Result<(), PipelineError> {
        let body = &ev.body;
        let hdr =
            RowsHeader::parse(ev.header.event_type, body).map_err(|e| self.binlog_err(ev, e))?;
        let table = match self.tables.get(&hdr.table_id) {
            Some(t) => t.clone(),
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
        if internal {
            if table.table.eq_ignore_ascii_case("heartbeats") && self.heartbeat_client_id.is_some()
            {
                let beat = self.read_heartbeat(ev, &table, &hdr)?;
                if let (Some(v), Some(o)) = (beat, self.open.as_mut()) {
                    o.heartbeat = Some(v);
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
        let mut pos = hdr.rows_offset;
        while pos < body.len() {
            pos = read_row_image(
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
            self.render_row(ev, &table, table_index as u32, hdr.kind)?;
            self.txn.push(&self.head, &self.tail)?;
        }
        if hdr.flags & sluice_binlog::rows::STMT_END_F != 0 {
            // A row query annotates the rows of one statement only.
            self.row_query = None;
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
        let col = |name: &str| {
            table
                .columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
        };
        let (Some(ci), Some(hi)) = (col("client_id"), col("heartbeat")) else {
            return Ok(None);
        };
        let body = &ev.body;
        let wanted = serde_json::Value::String(client.to_string()).to_string();
        let mut found = None;
        let mut pos = hdr.rows_offset;
        let mut text = Vec::new();
        while pos < body.len() {
            pos = read_row_image(
                body,
                pos,
                &table.map,
                &hdr.present,
                &mut self.before,
                &mut self.before_absent,
            )
            .map_err(|e| self.binlog_err(ev, e))?;
            let image = if hdr.kind == RowsKind::Update {
                pos = read_row_image(
                    body,
                    pos,
                    &table.map,
                    &hdr.present_after,
                    &mut self.after,
                    &mut self.after_absent,
                )
                .map_err(|e| self.binlog_err(ev, e))?;
                &self.after
            } else if hdr.kind == RowsKind::Insert {
                &self.before
            } else {
                continue;
            };
            let (Some(c), Some(h)) = (image.get(ci).copied(), image.get(hi).copied()) else {
                continue;
            };
            text.clear();
            write_cell(&mut self.renderer, &mut text, &table.columns[ci], body, c)
                .map_err(|m| self.decode_err(ev, table, ci, m))?;
            if text != wanted.as_bytes() {
                continue;
            }
            text.clear();
            write_cell(&mut self.renderer, &mut text, &table.columns[hi], body, h)
                .map_err(|m| self.decode_err(ev, table, hi, m))?;
            found = std::str::from_utf8(&text).ok().and_then(|t| t.parse().ok());
        }
        Ok(found)
    }

    /// The transaction with GTID `g` is complete: the checkpoint's GTID is
    /// MariaDB's per-domain position, or MySQL's last GTID.
    fn gtid_done(&mut self, g: String) {
        match self.txn_mariadb_gtid.take() {
            Some(mg) => {
                self.gtid_state.apply(&mg);
                self.last_gtid = Some(self.gtid_state.to_string());
            }
            None => self.last_gtid = Some(g),
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
    /// fields) and `tail` (after them).
    fn render_row(
        &mut self,
        ev: &Event,
        t: &DecodeTable,
        table_index: u32,
        kind: RowsKind,
    ) -> Result<(), PipelineError> {
        self.render_row_parts(ev, t, table_index, kind)
            .map_err(|(column, message)| self.decode_err(ev, t, column, message))
    }

    /// `render_row`'s work; an error names the column index and the problem.
    fn render_row_parts(
        &mut self,
        ev: &Event,
        t: &DecodeTable,
        table_index: u32,
        kind: RowsKind,
    ) -> Result<(), (usize, String)> {
        let body = &ev.body;
        let cfg = &self.out_cfg;
        let head = &mut self.head;
        head.clear();
        head.extend_from_slice(&table_index.to_le_bytes());
        head.push(kind as u8);
        // Routing data for keyed producers (see `RowMeta`); empty otherwise.
        let meta_at = head.len();
        head.extend_from_slice(&[0u8; 8]);
        head.extend_from_slice(&t.head);
        if cfg.row_query {
            if let Some(q) = &self.row_query {
                head.extend_from_slice(b",\"query\":");
                json::write_str(head, q);
            }
        }
        head.extend_from_slice(b",\"type\":\"");
        head.extend_from_slice(kind.as_str().as_bytes());
        head.extend_from_slice(b"\",\"ts\":");
        json::write_int(head, ev.header.timestamp);

        // For updates, `data` is the after image completed by before-image
        // columns the after image lacks (MINIMAL images); `old` holds the
        // columns present in both whose value changed.
        let is_update = kind == RowsKind::Update;
        let (data_cells, data_absent) = if is_update {
            (&self.after, &self.after_absent)
        } else {
            (&self.before, &self.before_absent)
        };
        let tail = &mut self.tail;
        tail.clear();
        let value_of = |i: usize| -> Option<Cell> {
            if !data_absent[i] {
                Some(data_cells[i])
            } else if is_update && !self.before_absent[i] {
                Some(self.before[i])
            } else {
                None
            }
        };
        if cfg.routing {
            // [pk values] and [partition column values], lengths in the
            // 8 reserved bytes after the kind.
            let mut meta = std::mem::take(&mut self.meta);
            meta.clear();
            meta.push(b'[');
            for (k, &i) in t.primary_key.iter().enumerate() {
                if k > 0 {
                    meta.push(b',');
                }
                write_cell(
                    &mut self.renderer,
                    &mut meta,
                    &t.columns[i],
                    body,
                    value_of(i).flatten(),
                )
                .map_err(|m| (i, m))?;
            }
            meta.push(b']');
            let pk_len = meta.len() as u32;
            if !cfg.partition_columns.is_empty() {
                meta.push(b'[');
                for (k, name) in cfg.partition_columns.iter().enumerate() {
                    if k > 0 {
                        meta.push(b',');
                    }
                    match t
                        .columns
                        .iter()
                        .position(|c| c.name.eq_ignore_ascii_case(name))
                    {
                        Some(i) => write_cell(
                            &mut self.renderer,
                            &mut meta,
                            &t.columns[i],
                            body,
                            value_of(i).flatten(),
                        )
                        .map_err(|m| (i, m))?,
                        None => meta.extend_from_slice(b"null"),
                    }
                }
                meta.push(b']');
            }
            let pv_len = meta.len() as u32 - pk_len;
            head[meta_at..meta_at + 4].copy_from_slice(&pk_len.to_le_bytes());
            head[meta_at + 4..meta_at + 8].copy_from_slice(&pv_len.to_le_bytes());
            head.splice(meta_at + 8..meta_at + 8, meta.iter().copied());
            self.meta = meta;
        }
        if cfg.primary_keys {
            tail.extend_from_slice(b",\"primary_key\":[");
            for (k, &i) in t.primary_key.iter().enumerate() {
                if k > 0 {
                    tail.push(b',');
                }
                write_cell(
                    &mut self.renderer,
                    tail,
                    &t.columns[i],
                    body,
                    value_of(i).flatten(),
                )
                .map_err(|m| (i, m))?;
            }
            tail.push(b']');
        }
        if cfg.primary_key_columns {
            tail.extend_from_slice(b",\"primary_key_columns\":[");
            for (k, &i) in t.primary_key.iter().enumerate() {
                if k > 0 {
                    tail.push(b',');
                }
                json::write_str(tail, &t.columns[i].name);
            }
            tail.push(b']');
        }
        tail.extend_from_slice(b",\"data\":{");
        let mut first = true;
        for (i, c) in t.columns.iter().enumerate() {
            if c.excluded {
                continue;
            }
            let Some(cell) = value_of(i) else { continue };
            if cell.is_none() && !cfg.nulls {
                continue;
            }
            let mark = tail.len();
            if !first {
                tail.push(b',');
            }
            tail.extend_from_slice(&c.key);
            let value_at = tail.len();
            write_cell(&mut self.renderer, tail, c, body, cell).map_err(|m| (i, m))?;
            // A zero date rendered as null (output_null_zerodates) is a null too.
            if !cfg.nulls && &tail[value_at..] == b"null" {
                tail.truncate(mark);
                continue;
            }
            first = false;
        }
        tail.push(b'}');
        if is_update {
            let mut opened = false;
            for (i, c) in t.columns.iter().enumerate() {
                if c.excluded || self.before_absent[i] || self.after_absent[i] {
                    continue;
                }
                if same_cell(body, self.before[i], self.after[i]) {
                    continue;
                }
                let cell = self.before[i];
                if cell.is_none() && !cfg.nulls {
                    continue;
                }
                tail.extend_from_slice(if opened { b"," } else { b",\"old\":{" });
                opened = true;
                tail.extend_from_slice(&c.key);
                write_cell(&mut self.renderer, tail, c, body, cell).map_err(|m| (i, m))?;
            }
            if opened {
                tail.push(b'}');
            }
        }
        tail.push(b'}');
        Ok(())
    }

    /// Emits every buffered row of the open transaction.
    fn commit(&mut self, xid: Option<u64>) -> Result<(), PipelineError> {
        let open = self.open.take();
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
        if self.txn.is_empty() {
            return Ok(());
        }
        let position = format!("{}:{}", self.file, self.next_offset);
        let info = CommitInfo {
            xid,
            position: &position,
            gtid: open.gtid.as_deref().or(gtid.as_deref()),
            server_id: open.server_id,
            thread_id: open.thread_id,
        };
        let total = self.txn.rows();
        let cfg = &self.out_cfg;
        let line = &mut self.line;
        let sink = &mut self.sink;
        let mut emitted = 0u64;
        self.txn.drain::<PipelineError>(|i, head, tail| {
            let meta = RowMeta::read(head);
            let table = &open.tables[meta.table_index.min(open.tables.len() - 1)];
            line.clear();
            line.extend_from_slice(meta.json_head);
            cfg.write_commit_fields(line, &info, i, total);
            line.extend_from_slice(tail);
            sink.send(&Message {
                json: line,
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

/// What a buffered row's head holds before its JSON: the table index, the
/// row kind, and (for keyed producers) the primary key values and the
/// partition column values as JSON arrays.
struct RowMeta<'a> {
    table_index: usize,
    kind: &'static str,
    pk: &'a [u8],
    partition_values: &'a [u8],
    json_head: &'a [u8],
}

impl<'a> RowMeta<'a> {
    fn read(head: &'a [u8]) -> Self {
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
mod tests {
    use super::*;
    use std::sync::{Arc as StdArc, Mutex};

    /// Collects what the pipeline emits.
    #[derive(Clone, Default)]
    struct Collect(StdArc<Mutex<Vec<String>>>);

    impl Sink for Collect {
        fn send(&mut self, msg: &Message<'_>) -> Result<(), SinkError> {
            self.0
                .lock()
                .unwrap()
                .push(String::from_utf8(msg.json.to_vec()).unwrap());
            Ok(())
        }
        fn flush(&mut self) -> Result<(), SinkError> {
            Ok(())
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

    fn processor(sink: Collect) -> Processor<Collect, NoCatalog> {
        let mut catalog = Catalog::default();
        catalog.collations.insert(45, "utf8mb4".into());
        let opts = ProcessorOptions {
            output: OutputConfig::default(),
            txn_memory_bytes: 1 << 20,
            tmp_dir: None,
            internal_database: Some("maxwell".into()),
            heartbeat_client_id: None,
            flavor: Flavor::MariaDb,
            skip_bad_ddl: false,
        };
        Processor::new(opts, sink, NoCatalog, catalog, "mysql-bin.000001", 4)
    }

    fn gtid() -> Vec<u8> {
        let mut b = 42u64.to_le_bytes().to_vec();
        b.extend_from_slice(&0u32.to_le_bytes());
        b.push(0);
        b
    }

    #[test]
    fn emits_rows_at_commit_with_xid() {
        let sink = Collect::default();
        let mut p = processor(sink.clone());
        p.handle(&event(types::MARIADB_GTID, 100, gtid())).unwrap();
        p.handle(&event(types::TABLE_MAP, 200, table_map()))
            .unwrap();
        p.handle(&event(
            types::WRITE_ROWS,
            300,
            write_rows(2, 5, "é".as_bytes()),
        ))
        .unwrap();
        assert!(
            sink.0.lock().unwrap().is_empty(),
            "rows must wait for the commit"
        );
        p.handle(&event(types::XID, 331, 99u64.to_le_bytes().to_vec()))
            .unwrap();
        let out = sink.0.lock().unwrap().clone();
        assert_eq!(
            out,
            vec![
                r#"{"database":"db1","table":"t1","type":"insert","ts":1700000000,"xid":99,"commit":true,"data":{"id":5,"s":"é"}}"#
            ]
        );
        assert_eq!(p.position(), "mysql-bin.000001:331");
    }

    #[test]
    fn own_state_database_is_neither_output_nor_checkpointed() {
        let sink = Collect::default();
        let mut p = processor(sink.clone());
        p.handle(&event(types::MARIADB_GTID, 100, gtid())).unwrap();
        p.handle(&event(types::TABLE_MAP, 200, table_map_in(b"maxwell")))
            .unwrap();
        p.handle(&event(types::WRITE_ROWS, 300, write_rows(2, 5, b"x")))
            .unwrap();
        p.handle(&event(types::XID, 331, 99u64.to_le_bytes().to_vec()))
            .unwrap();
        assert!(sink.0.lock().unwrap().is_empty());
        assert_eq!(p.checkpoint(), &BinlogPosition::new("mysql-bin.000001", 4));
        // A user transaction afterwards moves the checkpoint past both.
        p.handle(&event(types::MARIADB_GTID, 400, gtid())).unwrap();
        p.handle(&event(types::TABLE_MAP, 500, table_map()))
            .unwrap();
        p.handle(&event(types::WRITE_ROWS, 600, write_rows(2, 6, b"y")))
            .unwrap();
        p.handle(&event(types::XID, 631, 100u64.to_le_bytes().to_vec()))
            .unwrap();
        assert_eq!(sink.0.lock().unwrap().len(), 1);
        assert_eq!(p.checkpoint().offset, 631);
    }

    #[test]
    fn undecodable_value_names_table_column_and_position() {
        let mut p = processor(Collect::default());
        p.handle(&event(types::MARIADB_GTID, 100, gtid())).unwrap();
        p.handle(&event(types::TABLE_MAP, 200, table_map()))
            .unwrap();
        let rows = write_rows(2, 5, &[0xC3, 0x28]);
        let size = 19 + rows.len() as u32;
        let err = p
            .handle(&event(types::WRITE_ROWS, 200 + size, rows))
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
        p.handle(&event(types::TABLE_MAP, 200, table_map()))
            .unwrap();
        let err = p
            .handle(&event(types::WRITE_ROWS, 300, write_rows(3, 5, b"x")))
            .unwrap_err();
        assert!(matches!(err, PipelineError::Drift { .. }), "{err}");
        assert!(err.to_string().contains("db1.t1"), "{err}");
    }

    #[test]
    fn rows_without_table_map_are_a_definite_error() {
        let mut p = processor(Collect::default());
        let err = p
            .handle(&event(types::WRITE_ROWS, 300, write_rows(2, 5, b"x")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("without a preceding TABLE_MAP"), "{err}");
    }
}
