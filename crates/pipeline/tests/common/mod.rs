//! Driving the processor over binlog files of the MySQL corpus
//! (`testdata/mysql-binlogs`): a catalog from CREATE statements, a sink that
//! collects the JSON rows, the file reader as the event source.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sluice_binlog::event::Event;
use sluice_binlog::file::BinlogFile;
use sluice_core::{Message, Producer, ProducerError};
use sluice_pipeline::{OutputConfig, PipelineError, Processor, ProcessorOptions, SchemaSource};
use sluice_schema::ddl::{self, Flavor};
use sluice_schema::{Catalog, Table};

pub fn corpus(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/mysql-binlogs")
        .join(rel)
}

/// Collects what the pipeline emits.
#[derive(Clone, Default)]
pub struct Collect(pub Arc<Mutex<Vec<String>>>);

impl Producer for Collect {
    fn send(&mut self, msg: &Message<'_>) -> Result<(), ProducerError> {
        self.0
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(msg.json).into_owned());
        Ok(())
    }
    fn flush(&mut self) -> Result<(), ProducerError> {
        Ok(())
    }
}

/// No server: every table comes from the files' DDL or the test's schema.
pub struct NoServer;

impl SchemaSource for NoServer {
    fn recapture(&mut self, _: &str, _: &str) -> Result<Option<Table>, String> {
        Ok(None)
    }
}

/// A catalog with MySQL's collation ids and the tables `schema` creates
/// (statements separated by `;`).
pub fn catalog(schema: &str, flavor: Flavor) -> Catalog {
    let mut cat = Catalog {
        collations: sluice_pipeline::collations::builtin_collations(),
        server_charset: "utf8mb4".into(),
        ..Catalog::default()
    };
    let ctx = ddl::Context {
        default_db: None,
        server_charset: Some("utf8mb4"),
        flavor,
    };
    for sql in schema.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let st = ddl::parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        ddl::apply(&mut cat, &st, &ctx).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    cat
}

pub type Proc = Processor<Collect, NoServer>;

pub fn processor(cat: Catalog, flavor: Flavor, output: OutputConfig, sink: Collect) -> Proc {
    let opts = ProcessorOptions {
        output,
        txn_memory_bytes: 1 << 20,
        tmp_dir: None,
        internal_database: None,
        heartbeat_client_id: None,
        flavor,
        skip_bad_ddl: false,
    };
    Processor::new(opts, sink, NoServer, cat, "", 4)
}

/// What a run over a file produced.
pub struct Run {
    /// The rows as emitted, and parsed.
    pub raw: Vec<String>,
    pub rows: Vec<Value>,
    pub error: Option<String>,
    pub processor: Proc,
    pub events: usize,
}

/// Feeds `events` to a processor; stops at the first error.
pub fn run_events<I>(events: I, schema: &str, flavor: Flavor, output: OutputConfig) -> Run
where
    I: IntoIterator<Item = Result<Event, String>>,
{
    let sink = Collect::default();
    let mut p = processor(catalog(schema, flavor), flavor, output, sink.clone());
    let mut error = None;
    let mut n = 0;
    for ev in events {
        let res = ev.and_then(|mut e| p.handle(&mut e).map_err(|e: PipelineError| e.to_string()));
        if let Err(e) = res {
            error = Some(e);
            break;
        }
        n += 1;
    }
    let raw = sink.0.lock().unwrap().clone();
    let rows = raw
        .iter()
        .map(|j| serde_json::from_str(j).unwrap_or_else(|e| panic!("not JSON ({e}): {j}")))
        .collect();
    Run {
        raw,
        rows,
        error,
        processor: p,
        events: n,
    }
}

/// Runs a corpus file through the file reader and the processor.
pub fn run_file(rel: &str, schema: &str, flavor: Flavor, output: OutputConfig) -> Run {
    let f = BinlogFile::open(corpus(rel)).unwrap_or_else(|e| panic!("{e}"));
    run_events(
        f.map(|r| r.map_err(|e| e.to_string())),
        schema,
        flavor,
        output,
    )
}

/// Every file of the corpus, and the schema its tables need beyond the
/// file's own DDL (written from the READMEs), from
/// `testdata/mysql-binlogs/schemas.json` (the daemon's tests read it too).
pub fn corpus_files() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(corpus("schemas.json")).expect("schemas.json");
    let v: Vec<Value> = serde_json::from_str(&text).expect("schemas.json is JSON");
    v.iter()
        .map(|e| {
            (
                e["file"].as_str().expect("file").to_string(),
                e["schema"].as_str().expect("schema").to_string(),
            )
        })
        .collect()
}
