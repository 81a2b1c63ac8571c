//! Maxwell's filter integration cases (spec table F5, ported from
//! `MaxwellIntegrationTest` and `DDLIntegrationTest`) against the private
//! MariaDB: rows and DDL events of the tables a filter leaves out never
//! appear, blacklisted databases never stop sluice, heartbeats survive
//! `blacklist: maxwell.*`, an excluded table whose schema is missing is no
//! error, filtered rows are counted, and `encrypt=data` output decrypts to
//! the row.
//!
//! As Maxwell's `getRowsForSQL` appends `include: test.*`, every filter
//! here ends with `include: <marker db>.*`: a marker row written after the
//! statements proves everything before it has been through the filter.
//! Each case has databases of its own (prefix `f5_<pid>_<case>_`), so cases
//! run side by side; the filters name them.

use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use crate::common::*;
use mysql_async::prelude::Queryable;
use serde_json::Value;

/// The missing-schema case switches the server to MINIMAL row metadata for
/// a moment; the other cases wait meanwhile.
static SERVER_SETTINGS: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// One case's databases.
struct Case {
    p: String,
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    _settings: Option<std::sync::RwLockReadGuard<'static, ()>>,
}

/// What a sluice wrote for a case.
struct Run {
    /// Every line of the case's databases (markers left out).
    lines: Vec<Value>,
    stderr: String,
    exited_ok: bool,
}

impl Run {
    fn tables(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter(|v| !is_ddl(v))
            .map(|v| v["table"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn rows(&self) -> Vec<&Value> {
        self.lines.iter().filter(|v| !is_ddl(v)).collect()
    }

    fn ddl(&self) -> Vec<&Value> {
        self.lines.iter().filter(|v| is_ddl(v)).collect()
    }
}

fn is_ddl(v: &Value) -> bool {
    v["type"].as_str().is_some_and(|t| t.contains('-'))
}

impl Case {
    fn new(name: &str) -> Case {
        let mut c = Case::alone(name);
        c._settings = Some(SERVER_SETTINGS.read().unwrap_or_else(|e| e.into_inner()));
        c
    }

    /// A case that takes the server's settings for itself.
    fn alone(name: &str) -> Case {
        ensure_mariadb();
        Case {
            p: format!("f5_{}_{name}_", std::process::id()),
            dir: tempfile::tempdir().unwrap(),
            rt: runtime(),
            _settings: None,
        }
    }

    fn db(&self, name: &str) -> String {
        format!("{}{name}", self.p)
    }

    fn marker_db(&self) -> String {
        self.db("mk")
    }

    fn sql(&self, stmts: &[String]) {
        sql_at(&self.rt, mysql_port(), stmts);
    }

    /// `foo.bars` and `shard_1.minimal` of Maxwell's tests, and the marker
    /// database (`m` for the start, `done` for the end).
    fn maxwell_schema(&self) {
        let (foo_db, shard, mk) = (self.db("foo"), self.db("shard_1"), self.marker_db());
        let mut stmts = Vec::new();
        for db in [&foo_db, &shard, &mk] {
            stmts.push(format!("DROP DATABASE IF EXISTS {db}"));
            stmts.push(format!("CREATE DATABASE {db}"));
        }
        stmts.extend([
            format!("CREATE TABLE {foo_db}.bars (id INT AUTO_INCREMENT PRIMARY KEY, something TEXT)"),
            format!(
                "CREATE TABLE {shard}.minimal (id INT AUTO_INCREMENT PRIMARY KEY, account_id INT, text_field TEXT)"
            ),
            format!("CREATE TABLE {mk}.m (n INT)"),
            format!("CREATE TABLE {mk}.done (n INT)"),
        ]);
        self.sql(&stmts);
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.json"))
    }

    /// Starts sluice with `filter` (plus the marker include) and `extra`.
    fn start(&self, name: &str, filter: Option<&str>, extra: &[String]) -> Child {
        let mk = self.marker_db();
        let mut args = vec![
            "--producer=file".to_string(),
            format!("--output_file={}", self.out(name).display()),
        ];
        if let Some(f) = filter {
            args.push(format!("--filter={f}, include: {mk}.*"));
        }
        args.extend(extra.iter().cloned());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = spawn_sluice(&refs);
        let out = self.out(name);
        let streaming = until_marker_seen(&self.rt, &mk, || {
            read_lines(&out).iter().any(|v| v["database"] == mk)
        });
        assert!(streaming, "sluice ({name}) did not start streaming");
        child
    }

    /// Writes the end marker and waits for it: every event before it has
    /// been through sluice.
    fn finish(&self, name: &str, child: Child) -> Run {
        let mk = self.marker_db();
        self.sql(&[format!("INSERT INTO {mk}.done VALUES (1)")]);
        let out = self.out(name);
        let done = wait_for(Duration::from_secs(30), || {
            read_lines(&out)
                .iter()
                .any(|v| v["database"] == mk && v["table"] == "done")
        });
        let output = stop(child);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(done, "the end marker never arrived ({name}):\n{stderr}");
        let lines = read_lines(&out)
            .into_iter()
            .filter(|v| {
                v["database"]
                    .as_str()
                    .is_some_and(|d| d.starts_with(&self.p) && d != mk)
            })
            .collect();
        Run {
            lines,
            stderr,
            exited_ok: output.status.success(),
        }
    }

    /// Maxwell's `getRowsForSQL`: sluice with `filter`, `sql` run while it
    /// streams, what came out.
    fn rows_for_sql(&self, name: &str, filter: Option<&str>, sql: &[String]) -> Run {
        let child = self.start(name, filter, &[]);
        self.sql(sql);
        let run = self.finish(name, child);
        assert!(run.exited_ok, "{name}: {}", run.stderr);
        run
    }

    /// The two inserts of the table cases.
    fn bars_and_minimal(&self) -> Vec<String> {
        vec![
            format!("INSERT INTO {}.bars SET something = 'hi'", self.db("foo")),
            format!(
                "INSERT INTO {}.minimal SET account_id = 1, text_field = 'hello'",
                self.db("shard_1")
            ),
        ]
    }

    fn bars_values(&self, values: &[&str]) -> Vec<String> {
        values
            .iter()
            .map(|v| format!("INSERT INTO {}.bars SET something = {v}", self.db("foo")))
            .collect()
    }
}

#[test]
fn table_rules_leave_out_whole_tables() {
    let _gate = crate::common::module_gate(module_path!());
    let c = Case::new("tables");
    c.maxwell_schema();
    let (foo_db, shard) = (c.db("foo"), c.db("shard_1"));
    let cases: [(&str, Option<String>, &[&str]); 5] = [
        ("none", None, &["bars", "minimal"]),
        (
            "only_minimal",
            Some(format!("exclude: *.*, include: {shard}.minimal")),
            &["minimal"],
        ),
        ("not_shard", Some(format!("exclude: {shard}.*")), &["bars"]),
        (
            "any_minimal",
            Some("exclude: *.*, include: *.minimal".to_string()),
            &["minimal"],
        ),
        (
            "no_minimal",
            Some("exclude: *.minimal".to_string()),
            &["bars"],
        ),
    ];
    for (name, filter, expected) in cases {
        let run = c.rows_for_sql(name, filter.as_deref(), &c.bars_and_minimal());
        assert_eq!(run.tables(), expected, "{name}: {filter:?}");
        // The filter never changes what a row looks like.
        for row in run.rows() {
            let want = if row["table"] == "bars" {
                &foo_db
            } else {
                &shard
            };
            assert_eq!(&row["database"], want.as_str());
        }
    }
}

#[test]
fn column_value_rules_decide_row_by_row() {
    let _gate = crate::common::module_gate(module_path!());
    let c = Case::new("columns");
    c.maxwell_schema();
    let foo_db = c.db("foo");
    let accept_reject = c.bars_values(&["'accept'", "'reject'"]);
    let cases = [
        (
            format!("exclude: {foo_db}.bars.something=reject"),
            accept_reject.clone(),
            vec!["accept"],
        ),
        (
            format!("exclude: {foo_db}.bars, include: {foo_db}.bars.something=accept"),
            accept_reject.clone(),
            vec!["accept"],
        ),
        (
            format!("exclude: {foo_db}.bars.something=*, include: {foo_db}.bars.something=accept"),
            accept_reject.clone(),
            vec!["accept"],
        ),
        (
            format!("exclude: {foo_db}.bars.notacolumn=*"),
            accept_reject.clone(),
            vec!["accept", "reject"],
        ),
        (
            format!("exclude: {foo_db}.bars.something=*"),
            c.bars_values(&["NULL", "'accept'"]),
            vec![],
        ),
    ];
    for (i, (filter, sql, expected)) in cases.into_iter().enumerate() {
        let run = c.rows_for_sql(&format!("case{i}"), Some(&filter), &sql);
        let got: Vec<&str> = run
            .rows()
            .iter()
            .map(|v| v["data"]["something"].as_str().unwrap_or("NULL"))
            .collect();
        assert_eq!(got, expected, "{filter}");
    }
}

#[test]
fn blacklisted_tables_and_databases_never_stop_sluice() {
    let _gate = crate::common::module_gate(module_path!());
    let c = Case::new("blacklist");
    c.maxwell_schema();
    let nodb = c.db("nodatabase");
    c.sql(&[format!("DROP DATABASE IF EXISTS {nodb}")]);
    // Created while sluice streams: the blacklisted database and tables are
    // never in its schema.
    let sql = || {
        vec![
            format!("CREATE DATABASE {nodb}"),
            format!("CREATE TABLE {nodb}.noseeum (i INT)"),
            format!("CREATE TABLE {nodb}.oicu (i INT)"),
            format!("INSERT INTO {nodb}.noseeum VALUES (1)"),
            format!("INSERT INTO {nodb}.oicu VALUES (1)"),
        ]
    };
    let run = c.rows_for_sql("tables", Some("blacklist: *.noseeum"), &sql());
    assert_eq!(run.tables(), vec!["oicu"]);
    c.sql(&[format!("DROP DATABASE {nodb}")]);
    let run = c.rows_for_sql("database", Some(&format!("blacklist: {nodb}.*")), &sql());
    assert!(run.rows().is_empty(), "{:?}", run.lines);
    // No error: sluice went on (rows_for_sql checks it exited 0).
    assert!(!run.stderr.contains("ERROR"), "{}", run.stderr);
    c.sql(&[format!("DROP DATABASE {nodb}")]);
}

/// `blacklist: maxwell.*` leaves sluice's own heartbeats alone: they are
/// still read back and stored (Maxwell's `testHeartbeatsWithBlacklist`).
#[test]
fn heartbeats_work_with_the_schema_database_blacklisted() {
    let _gate = crate::common::module_gate(module_path!());
    let c = Case::new("hb");
    c.maxwell_schema();
    let client = unique_client_id();
    let id = client.trim_start_matches("--client_id=").to_string();
    let child = c.start(
        "hb",
        Some("blacklist: maxwell.*"),
        &[client, "--heartbeat_interval_ms=200".into()],
    );
    c.sql(&c.bars_and_minimal());
    let read_back = || -> Option<u64> {
        c.rt.block_on(async {
            root_conn()
                .await
                .exec_first::<Option<u64>, _, _>(
                    "SELECT last_heartbeat_read FROM maxwell.positions WHERE client_id = ?",
                    (&id,),
                )
                .await
                .unwrap()
                .flatten()
        })
    };
    let stored = wait_for(Duration::from_secs(15), || {
        read_back().is_some_and(|v| v > 0)
    });
    let run = c.finish("hb", child);
    assert!(stored, "last_heartbeat_read never set:\n{}", run.stderr);
    assert_eq!(run.tables(), vec!["bars", "minimal"]);
    assert!(run.exited_ok, "{}", run.stderr);
}

/// DDL events with `output_ddl` (Maxwell's `DDLIntegrationTest` filter
/// cases, and the same with CJK names, unquoted in the filter).
#[test]
fn ddl_events_follow_the_filter() {
    let _gate = crate::common::module_gate(module_path!());
    let c = Case::new("ddl");
    c.maxwell_schema();
    let db = c.db("ddl");
    c.sql(&[
        format!("DROP DATABASE IF EXISTS {db}"),
        format!("CREATE DATABASE {db}"),
    ]);
    struct Ddl {
        filter: String,
        sql: Vec<String>,
        /// (type, database, table) of the events expected, in order.
        expected: Vec<(&'static str, String, String)>,
        /// Databases the case creates (dropped before and after).
        creates: Option<String>,
    }
    let mut cases = Vec::new();
    for (create2, create3, create4, dbcreate2, dbcreate3, chicken, burger) in [
        (
            "TestTableCreate2",
            "TestTableCreate3",
            "TestTableCreate4",
            "TestDatabaseCreate2",
            "TestDatabaseCreate3",
            "chicken",
            "burger",
        ),
        (
            "測試表格二",
            "測試表格三",
            "測試表格四",
            "測試資料庫二",
            "測試資料庫三",
            "表格一",
            "表格二",
        ),
    ] {
        let (dbc2, dbc3) = (c.db(dbcreate2), c.db(dbcreate3));
        cases.push(Ddl {
            filter: format!("exclude: *.{create2}"),
            sql: vec![format!(
                "CREATE TABLE `{db}`.`{create2}` (id INT, 欄位 TEXT)"
            )],
            expected: vec![],
            creates: None,
        });
        cases.push(Ddl {
            filter: format!("exclude: *.{create4}"),
            sql: vec![
                format!("CREATE TABLE `{db}`.`{create3}` (id INT)"),
                format!("RENAME TABLE `{db}`.`{create3}` TO `{db}`.`{create4}`"),
            ],
            expected: vec![("table-create", db.clone(), create3.to_string())],
            creates: None,
        });
        cases.push(Ddl {
            filter: format!("exclude: {dbc2}.*"),
            sql: vec![format!("CREATE DATABASE `{dbc2}`")],
            expected: vec![],
            creates: Some(dbc2.clone()),
        });
        cases.push(Ddl {
            filter: format!("exclude: *.{chicken}"),
            sql: vec![
                format!("CREATE DATABASE `{dbc3}`"),
                format!("CREATE TABLE `{dbc3}`.`{chicken}` (中文欄位 INT)"),
                format!("CREATE TABLE `{dbc3}`.`{burger}` (中文欄位 INT)"),
            ],
            expected: vec![
                ("database-create", dbc3.clone(), String::new()),
                ("table-create", dbc3.clone(), burger.to_string()),
            ],
            creates: Some(dbc3.clone()),
        });
    }
    for (i, case) in cases.into_iter().enumerate() {
        let drop_tables: Vec<String> = [
            "TestTableCreate2",
            "TestTableCreate3",
            "TestTableCreate4",
            "測試表格二",
            "測試表格三",
            "測試表格四",
        ]
        .iter()
        .map(|t| format!("DROP TABLE IF EXISTS `{db}`.`{t}`"))
        .chain(
            case.creates
                .iter()
                .map(|d| format!("DROP DATABASE IF EXISTS `{d}`")),
        )
        .collect();
        c.sql(&drop_tables);
        let name = format!("ddl{i}");
        let child = c.start(&name, Some(&case.filter), &["--output_ddl".to_string()]);
        c.sql(&case.sql);
        let run = c.finish(&name, child);
        assert!(run.exited_ok, "{}", run.stderr);
        let got: Vec<(String, String, String)> = run
            .ddl()
            .iter()
            .map(|v| {
                (
                    v["type"].as_str().unwrap_or_default().to_string(),
                    v["database"].as_str().unwrap_or_default().to_string(),
                    v["table"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let want: Vec<(String, String, String)> = case
            .expected
            .iter()
            .map(|(t, d, n)| (t.to_string(), d.clone(), n.clone()))
            .collect();
        assert_eq!(got, want, "filter {:?}: {:?}", case.filter, case.sql);
        if let Some(d) = &case.creates {
            c.sql(&[format!("DROP DATABASE IF EXISTS `{d}`")]);
        }
    }
    c.sql(&[format!("DROP DATABASE {db}")]);
}

/// A table the filter leaves out whose schema sluice cannot find is
/// skipped without error (Maxwell #2057: `Couldn't find table` for an
/// excluded table). The table is created and dropped outside the binlog,
/// so it is neither in the schema followed nor on the server, and its rows
/// are logged with MINIMAL metadata (no column names): a sluice without the
/// filter beside it stops on the same rows, naming the table.
#[test]
fn an_excluded_table_without_a_schema_is_no_error() {
    let _gate = crate::common::module_gate(module_path!());
    let _alone = SERVER_SETTINGS.write().unwrap_or_else(|e| e.into_inner());
    let c = Case::alone("noschema");
    let _full = FullMetadataAgain;
    c.maxwell_schema();
    let gone = c.db("gone");
    c.sql(&[format!("DROP DATABASE IF EXISTS {gone}")]);
    let filtered = c.start("filtered", Some(&format!("exclude: {gone}.*")), &[]);
    let mut unfiltered = c.start("unfiltered", None, &[]);
    c.sql(&[
        "SET sql_log_bin = 0".into(),
        format!("CREATE DATABASE {gone}"),
        format!("CREATE TABLE {gone}.t (i INT)"),
        "SET sql_log_bin = 1".into(),
        "SET GLOBAL binlog_row_metadata = MINIMAL".into(),
        format!("INSERT INTO {gone}.t VALUES (1)"),
        "SET GLOBAL binlog_row_metadata = FULL".into(),
        "SET sql_log_bin = 0".into(),
        format!("DROP DATABASE {gone}"),
        "SET sql_log_bin = 1".into(),
    ]);
    c.sql(&c.bars_and_minimal());
    let run = c.finish("filtered", filtered);
    assert!(run.exited_ok, "{}", run.stderr);
    assert_eq!(run.tables(), vec!["bars", "minimal"]);
    assert!(!run.stderr.contains("ERROR"), "{}", run.stderr);
    // Without the filter the same rows stop sluice (exit 1).
    let exited = wait_for(Duration::from_secs(20), || {
        matches!(unfiltered.try_wait(), Ok(Some(_)))
    });
    let output = stop(unfiltered);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(exited, "the unfiltered sluice went on:\n{err}");
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("{gone}.t")), "{err}");
}

/// Puts the server's row metadata back to FULL, whatever happened.
struct FullMetadataAgain;

impl Drop for FullMetadataAgain {
    fn drop(&mut self) {
        runtime().block_on(async {
            if let Ok(mut c) = root_conn_at(mysql_port()).await {
                let _ = c.query_drop("SET GLOBAL binlog_row_metadata = FULL").await;
            }
        });
    }
}

/// Rows the filter leaves out are counted, in `/metrics`
/// (`sluice_rows_filtered_total`) and when the processor stops, and never
/// output.
#[test]
fn filtered_rows_are_counted() {
    let _gate = crate::common::module_gate(module_path!());
    let c = Case::new("count");
    c.maxwell_schema();
    let foo_db = c.db("foo");
    let port = free_port();
    let child = c.start(
        "count",
        Some(&format!("exclude: {foo_db}.bars.something=reject")),
        &[
            "--log_level=info".to_string(),
            format!("--http_port={port}"),
        ],
    );
    c.sql(&c.bars_values(&["'reject'", "'accept'", "'reject'", "'reject'", "'accept'"]));
    let counted = wait_for(Duration::from_secs(30), || {
        http_get(port, "/metrics")
            .is_some_and(|(_, body)| body.lines().any(|l| l == "sluice_rows_filtered_total 3"))
    });
    let run = c.finish("count", child);
    assert!(run.exited_ok, "{}", run.stderr);
    assert!(counted, "sluice_rows_filtered_total never reached 3");
    assert_eq!(run.rows().len(), 2);
    assert!(
        run.rows()
            .iter()
            .all(|v| v["data"]["something"] == "accept"),
        "{:?}",
        run.lines
    );
    assert!(
        plain_log(&run.stderr).contains("rows_filtered=3"),
        "the count of filtered rows is said at stop:\n{}",
        run.stderr
    );
}

/// `encrypt=data`: the row's data is replaced by an encrypted object whose
/// plaintext is `{"data":{...}}`; the rest of the line stays readable.
#[test]
fn encrypt_data_output_decrypts_to_the_row() {
    let _gate = crate::common::module_gate(module_path!());
    let c = Case::new("encrypt");
    c.maxwell_schema();
    let key = "0123456789abcdef0123456789abcdef";
    let child = c.start(
        "encrypt",
        None,
        &["--encrypt=data".into(), format!("--secret_key={key}")],
    );
    c.sql(&c.bars_values(&["'secret row'"]));
    let run = c.finish("encrypt", child);
    assert!(run.exited_ok, "{}", run.stderr);
    let rows = run.rows();
    assert_eq!(rows.len(), 1, "{:?}", run.lines);
    let row = rows[0];
    assert_eq!(row["table"], "bars");
    assert_eq!(row["type"], "insert");
    assert!(row.get("data").is_none(), "{row}");
    let enc = &row["encrypted"];
    let plain = sluice_pipeline::encrypt::decrypt(
        key,
        enc["iv"].as_str().unwrap(),
        enc["bytes"].as_str().unwrap(),
    )
    .unwrap();
    let plain: Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(
        plain,
        serde_json::json!({"data": {"id": row_id(&c), "something": "secret row"}})
    );
    assert!(!run.stderr.contains(key));
}

/// The id the one row of the encrypt case got.
fn row_id(c: &Case) -> i64 {
    c.rt.block_on(async {
        root_conn()
            .await
            .query_first::<i64, _>(format!("SELECT MAX(id) FROM {}.bars", c.db("foo")))
            .await
            .unwrap()
            .unwrap()
    })
}
