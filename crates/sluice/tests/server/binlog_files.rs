//! `--binlog_files`: the real MySQL binlogs of `testdata/mysql-binlogs`
//! streamed through the daemon to a producer give exactly what the pipeline
//! gives decoding them directly (rows, order, positions, GTIDs), and an
//! event that cannot be decoded stops sluice with the same error after the
//! rows before it are delivered.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_binlog::file::BinlogFile;
use sluice_core::{Message, Producer, ProducerError};
use sluice_pipeline::{OutputConfig, Processor, ProcessorOptions, SchemaSource};
use sluice_schema::ddl::{self, Flavor};
use sluice_schema::{Catalog, Table};

use crate::common::*;

fn corpus(rel: &str) -> PathBuf {
    repo_root().join("testdata/mysql-binlogs").join(rel)
}

#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<String>>>);

impl Producer for Collect {
    fn send(&mut self, msg: &Message<'_>) -> Result<(), ProducerError> {
        let line = String::from_utf8_lossy(msg.json).into_owned();
        self.0.lock().unwrap().push(line);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), ProducerError> {
        Ok(())
    }
}

struct NoServer;

impl SchemaSource for NoServer {
    fn recapture(&mut self, _: &str, _: &str) -> Result<Option<Table>, String> {
        Ok(None)
    }
}

fn output() -> OutputConfig {
    OutputConfig {
        binlog_position: true,
        gtid_position: true,
        commit_info: true,
        nulls: true,
        ..OutputConfig::default()
    }
}

/// The pipeline alone over one file: the rows, and the error if any.
fn direct(file: &str, schema: &str) -> (Vec<String>, Option<String>) {
    let mut f = BinlogFile::open(corpus(file)).unwrap();
    let first: Vec<_> = f.by_ref().take(2).collect();
    let flavor = match f.server_version() {
        Some(v) if v.to_ascii_lowercase().contains("mariadb") => Flavor::MariaDb,
        _ => Flavor::MySql,
    };
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
        ddl::apply(&mut cat, &ddl::parse(sql).unwrap(), &ctx).unwrap();
    }
    let sink = Collect::default();
    let opts = ProcessorOptions {
        output: output(),
        txn_memory_bytes: 16 << 20,
        tmp_dir: None,
        internal_database: Some("maxwell".into()),
        heartbeat_client_id: None,
        flavor,
        skip_bad_ddl: false,
    };
    let mut p = Processor::new(opts, sink.clone(), NoServer, cat, "", 4);
    let mut error = None;
    for ev in first.into_iter().chain(f) {
        let r = ev
            .map_err(|e| e.to_string())
            .and_then(|mut ev| p.handle(&mut ev).map_err(|e| e.to_string()));
        if let Err(e) = r {
            error = Some(e);
            break;
        }
    }
    let rows = sink.0.lock().unwrap().clone();
    (rows, error)
}

#[test]
fn every_corpus_file_through_the_daemon_equals_the_direct_decoding() {
    let _gate = crate::common::module_gate(module_path!());
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(corpus("schemas.json")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut compared_rows = 0;
    for entry in &list {
        let file = entry["file"].as_str().unwrap();
        let schema = entry["schema"].as_str().unwrap();
        let (expected, error) = direct(file, schema);
        let schema_file = dir.path().join("schema.sql");
        std::fs::write(&schema_file, schema).unwrap();
        let expected: Vec<serde_json::Value> = expected
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // On the processor thread and on a pool of rendering workers: the
        // same rows in the same order, the same error.
        for workers in ["--worker_threads=1", "--worker_threads=3"] {
            let out = dir.path().join("out.json");
            let _ = std::fs::remove_file(&out);
            let binlog_files = format!("--binlog_files={}", corpus(file).display());
            let schema_arg = format!("--schema_file={}", schema_file.display());
            let output = format!("--output_file={}", out.display());
            let (code, stderr) = run_sluice(
                &[
                    &binlog_files,
                    &schema_arg,
                    "--producer=file",
                    &output,
                    "--output_binlog_position",
                    "--output_gtid_position",
                    workers,
                ],
                Duration::from_secs(60),
            );
            let got = read_lines(&out);
            assert_eq!(got, expected, "{file} {workers}: rows differ\n{stderr}");
            match &error {
                None => assert_eq!(code, Some(0), "{file} {workers}: {stderr}"),
                Some(e) => {
                    assert_eq!(
                        code,
                        Some(1),
                        "{file} {workers}: expected the error {e}\n{stderr}"
                    );
                    let first_line = e.lines().next().unwrap_or_default();
                    assert!(
                        stderr.contains(first_line),
                        "{file} {workers}: expected {e}\n{stderr}"
                    );
                }
            }
        }
        compared_rows += expected.len();
    }
    assert!(compared_rows > 50, "only {compared_rows} rows compared");
}

#[test]
fn a_truncated_file_names_the_file_and_offset_and_a_missing_schema_names_the_table() {
    let _gate = crate::common::module_gate(module_path!());
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read(corpus("mysql-binlog-connector-rust/mysql-bin.000080")).unwrap();
    let cut = dir.path().join("mysql-bin.000080");
    std::fs::write(&cut, &src[..src.len() - 7]).unwrap();
    let schema = dir.path().join("schema.sql");
    std::fs::write(
        &schema,
        "USE a;\nCREATE TABLE b (id INT); -- the rows' table\n",
    )
    .unwrap();
    let out = dir.path().join("out.json");
    let (code, stderr) = run_sluice(
        &[
            &format!("--binlog_files={}", cut.display()),
            &format!("--schema_file={}", schema.display()),
            "--producer=file",
            &format!("--output_file={}", out.display()),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("mysql-bin.000080") && stderr.contains("truncated"),
        "{stderr}"
    );
    // The last transaction lost its commit to the cut: the six rows of the
    // complete transactions before it are delivered.
    assert_eq!(
        read_lines(&out).len(),
        6,
        "the rows before the cut are delivered\n{stderr}"
    );
    // Without the schema file the table is unknown: named, nothing emitted.
    let (code, stderr) = run_sluice(
        &[
            &format!(
                "--binlog_files={}",
                corpus("mysql-binlog-connector-rust/mysql-bin.000080").display()
            ),
            "--producer=stdout",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("a.b"), "{stderr}");
}
