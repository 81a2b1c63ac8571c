//! `--binlog_files`: binlog files read from disk, in the order given,
//! through the same pipeline and producer as a live stream; sluice exits 0
//! at their end. For offline replays of archived binlogs, audits and
//! debugging, and for tests of binlogs written by servers this machine
//! cannot run.
//!
//! The schema comes from the files' own DDL, from `--schema_file` (CREATE
//! TABLE statements) and, when `--host` is given, from that server for
//! tables neither names. No position, heartbeat or schema history is
//! written.

use std::path::PathBuf;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

use sluice_binlog::file::{BinlogFile, BinlogFiles};
use sluice_binlog::BinlogPosition;
use sluice_core::{declare_options, ConfigError, Opt, Section, Values};
use sluice_pipeline::Processor;
use sluice_schema::ddl::{self, Flavor};
use sluice_schema::Catalog;
use tokio::runtime::Runtime;

use crate::checkpoint::{Checkpointer, PositionWriter};
use crate::config::Config;
use crate::control::{Control, Request};
use crate::error::{Context, Error};
use crate::live_schema::LiveSchema;
use crate::positions::StoreError;
use crate::processing::{processor_options, Delivering};
use crate::telemetry::Telemetry;

declare_options! { OPTIONS;
    BINLOG_FILES: String = Opt::new("binlog_files", Section::Replication, "",
        "read these binlog files (comma-separated, in order) instead of a server's stream, then exit 0; no position is stored");
    SCHEMA_FILE: String = Opt::new("schema_file", Section::Replication, "",
        "with binlog_files: a file of CREATE TABLE statements (;-separated) for the tables the binlog files do not create");
}

/// A schema file larger than this is not a schema file.
const MAX_SCHEMA_FILE_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone)]
pub struct FileSource {
    pub files: Vec<PathBuf>,
    pub schema_file: Option<PathBuf>,
    /// `--host` was given: tables the files and the schema file do not
    /// create are captured from that server.
    pub capture_from_host: bool,
}

impl FileSource {
    pub fn from_options(v: &dyn Values) -> Result<Option<FileSource>, ConfigError> {
        let files: Vec<PathBuf> = BINLOG_FILES
            .get(v)?
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(PathBuf::from)
            .collect();
        let schema_file = SCHEMA_FILE.get(v)?;
        if files.is_empty() {
            if !schema_file.is_empty() {
                return Err(SCHEMA_FILE.error(v, "schema_file goes with binlog_files"));
            }
            return Ok(None);
        }
        for f in &files {
            if !f.is_file() {
                return Err(
                    BINLOG_FILES.error(v, format!("{} is not a readable file", f.display()))
                );
            }
        }
        Ok(Some(FileSource {
            files,
            schema_file: (!schema_file.is_empty()).then(|| PathBuf::from(schema_file)),
            capture_from_host: crate::config::options::HOST.is_set(v),
        }))
    }
}

/// Positions are not stored in file mode.
struct NoWrites;

impl PositionWriter for NoWrites {
    fn write(&mut self, _: &BinlogPosition, _: Option<u64>) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Reads the files through the pipeline into the producer; returns the
/// number of rows emitted.
pub fn run(
    rt: &Runtime,
    cfg: &Config,
    source: &FileSource,
    control: &mut Control,
    telemetry: &Arc<Telemetry>,
) -> Result<u64, Error> {
    let first = source
        .files
        .first()
        .ok_or_else(|| Error::definite("no binlog file"))?;
    let flavor = flavor_of(first)?;
    let catalog = catalog(source, flavor)?;
    let pool = if source.capture_from_host {
        let opts = rt.block_on(cfg.servers.schema.pool_opts(&cfg.servers.auth))?;
        Some(mysql_async::Pool::new(opts))
    } else {
        None
    };
    let stats = telemetry.producer.get_or_init(Default::default).clone();
    let mut producer = cfg.producer.build(stats)?;
    producer.prepare()?;
    let mut processor = Processor::new(
        processor_options(cfg, flavor, None),
        producer,
        LiveSchema {
            pool,
            history: None,
            server_id: Arc::new(AtomicU32::new(0)),
            handle: rt.handle().clone(),
        },
        catalog,
        "",
        4,
    );
    processor.set_filter(cfg.filter.clone());
    processor.set_encryption(cfg.encryptor.clone());
    // The same worker pool as a stream: rows rendered on `worker_threads`
    // threads, handed over in file order (the checkpointer's flush waits for
    // every queued row).
    processor
        .set_workers(cfg.worker_threads)
        .map_err(|e| Error::definite(format!("start the rendering workers: {e}")))?;
    let mut checkpointer =
        Checkpointer::new(NoWrites, processor.checkpoint().clone(), telemetry.clone());
    let files = BinlogFiles::new(source.files.clone());
    let mut n = 0u64;
    for ev in files {
        let handled = ev
            .map_err(Error::definite)
            .and_then(|mut ev| processor.handle(&mut ev).map_err(Error::from));
        if let Err(e) = handled {
            // What came before the event that cannot be read is delivered.
            let mut delivering = Delivering::new(&mut processor, telemetry);
            if let Err(flush) = checkpointer.run(&mut delivering, true) {
                tracing::warn!(error = %flush, "could not deliver the rows before the error");
            }
            return Err(e);
        }
        n += 1;
        // Delivery is made durable as in a stream (at least every 0.5 s),
        // and a stop request is heard between events.
        if n.is_multiple_of(4096) {
            if checkpointer.due() {
                checkpointer.run(&mut Delivering::new(&mut processor, telemetry), false)?;
            }
            if stop_requested(rt, control) {
                tracing::info!(position = %processor.position(), "stop requested: leaving the rest of the files unread");
                break;
            }
        }
    }
    checkpointer.run(&mut Delivering::new(&mut processor, telemetry), true)?;
    if processor.buffered_rows() > 0 {
        tracing::warn!(
            rows = processor.buffered_rows(),
            "the files end inside a transaction: its rows are not emitted"
        );
    }
    tracing::info!(files = source.files.len(), events = n, rows = processor.rows_emitted(),
        position = %processor.position(), "binlog files read");
    Ok(processor.rows_emitted())
}

fn stop_requested(rt: &Runtime, control: &mut Control) -> bool {
    rt.block_on(async {
        tokio::time::timeout(Duration::ZERO, control.recv())
            .await
            .is_ok_and(|r| r == Request::Stop)
    })
}

/// MariaDB or MySQL, from the first file's FORMAT_DESCRIPTION.
fn flavor_of(path: &std::path::Path) -> Result<Flavor, Error> {
    let mut file = BinlogFile::open(path).map_err(Error::definite)?;
    // The artificial rotate comes first, then the format description.
    while file.server_version().is_none() {
        match file.next() {
            Some(ev) => {
                ev.map_err(Error::definite)?;
            }
            None => break,
        }
    }
    let version = file.server_version().unwrap_or("").to_ascii_lowercase();
    Ok(if version.contains("mariadb") {
        Flavor::MariaDb
    } else {
        Flavor::MySql
    })
}

/// The catalog before the first event: every collation sluice knows, and
/// the tables of the schema file.
fn catalog(source: &FileSource, flavor: Flavor) -> Result<Catalog, Error> {
    let mut cat = Catalog {
        collations: sluice_pipeline::collations::builtin_collations(),
        server_charset: "utf8mb4".into(),
        ..Catalog::default()
    };
    let Some(path) = &source.schema_file else {
        return Ok(cat);
    };
    let shown = path.display();
    let meta = std::fs::metadata(path).with_context(|| format!("schema_file {shown}"))?;
    if meta.len() > MAX_SCHEMA_FILE_BYTES {
        return Err(Error::definite(format!(
            "schema_file {shown} is larger than 64 MiB: not a schema file"
        )));
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("schema_file {shown}"))?;
    let mut default_db: Option<String> = None;
    for sql in statements(&text) {
        // `USE db` names the database of unqualified tables that follow.
        if let Some(db) = sql
            .split_once(char::is_whitespace)
            .filter(|(kw, _)| kw.eq_ignore_ascii_case("use"))
            .map(|(_, db)| db.trim().trim_matches('`').to_string())
        {
            default_db = Some(db);
            continue;
        }
        let stmt = ddl::parse(sql).map_err(|e| {
            Error::definite(format!("schema_file {shown}: cannot parse `{sql}`: {e}"))
        })?;
        let ctx = ddl::Context {
            default_db: default_db.as_deref(),
            server_charset: Some("utf8mb4"),
            flavor,
        };
        ddl::apply(&mut cat, &stmt, &ctx)
            .map_err(|e| Error::definite(format!("schema_file {shown}: `{sql}`: {e}")))?;
    }
    Ok(cat)
}

/// The statements of a SQL file: split at `;` outside quotes and comments.
fn statements(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0usize, 0usize);
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' && q != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b';' => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&text[start.min(text.len())..]);
    out.into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty() && !is_only_comments(s))
        .collect()
}

fn is_only_comments(s: &str) -> bool {
    s.lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with("--") || l.starts_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_outside_quotes_and_comments() {
        let text = "CREATE TABLE a (x int COMMENT 'a;b'); -- c;d\n/* e;f */ CREATE TABLE `b;c` (y int);\n# only a comment;\n";
        assert_eq!(
            statements(text),
            [
                "CREATE TABLE a (x int COMMENT 'a;b')",
                "-- c;d\n/* e;f */ CREATE TABLE `b;c` (y int)",
            ]
        );
    }
}
