//! A DDL statement sluice cannot follow: by default sluice stops with a
//! message naming the statement, its database and binlog position and the
//! option that skips it, and stops again the same way on a restart (no
//! silent crash loop, no row decoded with a doubtful schema); with
//! `--ddl_parse_errors=skip` it logs, counts it in a metric, re-captures
//! the tables the statement names and goes on.
//!
//! The statement is real and accepted by the server: MariaDB's Oracle mode
//! types (`VARCHAR2`, `NUMBER`), which sluice does not translate.

use std::time::Duration;

use crate::common::*;
use mysql_async::prelude::Queryable;

/// A server of their own: the statements these tests write to make sluice
/// stop would stop every other test's sluice streaming from the same server.
const OWN_SERVER: u16 = 23315;

/// The tests of this file run one at a time: a sluice of one must not read
/// the statement the other writes to make its sluice stop.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_ddl_sluice_cannot_follow_stops_it_unless_skipped() {
    let _gate = crate::common::module_gate(module_path!());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let port = ensure_extra_mariadb(OWN_SERVER, "row");
    let rt = runtime();
    let db = format!("ddlerr{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let (client, server_id) = (unique_client_id(), unique_server_id());
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec![
            "--host=127.0.0.1".into(),
            format!("--port={port}"),
            "--user=sluice".into(),
            "--password=sluice".into(),
            "--producer=file".into(),
            format!("--output_file={}", out.display()),
            client.clone(),
            server_id.clone(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let sql = |stmts: Vec<String>| sql_at(&rt, port, &stmts);
    sql(vec![
        format!("CREATE DATABASE {db}"),
        format!("CREATE TABLE {db}.before (n INT)"),
    ]);
    let child = std::process::Command::new(sluice_bin())
        .args(args(&["--http_port=0"]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut n = 0;
    let streaming = wait_for(Duration::from_secs(30), || {
        n += 1;
        sql(vec![format!("INSERT INTO {db}.before VALUES ({n})")]);
        std::thread::sleep(Duration::from_millis(200));
        !read_lines(&out).is_empty()
    });
    assert!(streaming, "sluice did not start streaming");
    sql(vec![
        "SET SESSION sql_mode = 'ORACLE'".into(),
        format!("CREATE TABLE {db}.o (a VARCHAR2(10), n NUMBER(5))"),
        "SET SESSION sql_mode = DEFAULT".into(),
        format!("INSERT INTO {db}.o VALUES ('x', 5)"),
    ]);
    // It stops by itself.
    let mut child = child;
    let exited = wait_for(Duration::from_secs(20), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !exited {
        let _ = child.kill();
    }
    let o = child.wait_with_output().unwrap();
    assert!(
        exited,
        "sluice did not stop: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for needle in [
        "cannot follow the DDL at binlog position mysql-bin.",
        &format!("CREATE TABLE {db}.o (a VARCHAR2(10), n NUMBER(5))"),
        "varchar2",
        "--ddl_parse_errors=skip",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    assert!(
        !read_lines(&out).iter().any(|l| l["table"] == "o"),
        "no row of the table is decoded"
    );

    // A restart stops again, saying the same.
    let (code, err2) = run_sluice(
        &args(&[]).iter().map(String::as_str).collect::<Vec<_>>(),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(1), "{err2}");
    assert!(err2.contains("--ddl_parse_errors=skip"), "{err2}");

    // Skipping: the table is captured from the server and its row decoded.
    let http = free_port();
    let child = std::process::Command::new(sluice_bin())
        .args(args(&[
            "--ddl_parse_errors=skip",
            &format!("--http_port={http}"),
            "--log_level=warn",
        ]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let decoded = wait_for(Duration::from_secs(30), || {
        read_lines(&out).iter().any(|l| l["table"] == "o")
    });
    let metrics = http_get(http, "/metrics")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let o = stop(child);
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(decoded, "{log}");
    let row = read_lines(&out)
        .into_iter()
        .find(|l| l["table"] == "o")
        .unwrap();
    assert_eq!(row["data"], serde_json::json!({"a": "x", "n": 5}));
    assert!(log.contains("DDL skipped"), "{log}");
    assert!(metrics.contains("sluice_ddl_skipped_total 1"), "{metrics}");
    sql(vec![format!("DROP DATABASE {db}")]);
}

/// A schema history that disagrees with the binlog (here: a column renamed
/// in the stored snapshot only) stops sluice at the first row of the table,
/// naming the table, the column and the binlog position; nothing of the
/// table is emitted.
#[test]
fn a_schema_that_disagrees_with_the_binlog_stops_sluice() {
    let _gate = crate::common::module_gate(module_path!());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let port = ensure_extra_mariadb(OWN_SERVER, "row");
    let rt = runtime();
    let db = format!("drift{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let (client, server_id) = (unique_client_id(), unique_server_id());
    let client_id = client.trim_start_matches("--client_id=").to_string();
    let args: Vec<String> = vec![
        "--host=127.0.0.1".into(),
        format!("--port={port}"),
        "--user=sluice".into(),
        "--password=sluice".into(),
        "--producer=file".into(),
        format!("--output_file={}", out.display()),
        client.clone(),
        server_id.clone(),
    ];
    let sql = |stmts: Vec<String>| sql_at(&rt, port, &stmts);
    sql(vec![
        format!("CREATE DATABASE {db}"),
        format!("CREATE TABLE {db}.t (a INT, b INT)"),
    ]);
    let child = std::process::Command::new(sluice_bin())
        .args(&args)
        .arg("--http_port=0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut n = 0;
    let streaming = wait_for(Duration::from_secs(30), || {
        n += 1;
        sql(vec![format!("INSERT INTO {db}.t VALUES ({n}, 0)")]);
        std::thread::sleep(Duration::from_millis(200));
        !read_lines(&out).is_empty()
    });
    let o = stop(child);
    assert!(
        streaming && o.status.success(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let seen = read_lines(&out).len();

    // The history's newest snapshot, at the stored position, says `b` is
    // called `wrong`.
    rt.block_on(async {
        let mut conn = root_conn_at(port).await.expect("root connection");
        let mut cat = sluice_schema::capture_catalog(&mut conn).await.unwrap();
        let mut t = (**cat.get(&db, "t").unwrap()).clone();
        t.columns[1].name = "wrong".into();
        cat.put(t);
        let stored: (String, u64, Option<String>) = conn
            .exec_first(
                "SELECT binlog_file, binlog_position, gtid_set FROM maxwell.positions WHERE client_id = ?",
                (&client_id,),
            )
            .await
            .unwrap()
            .unwrap();
        let body = serde_json::to_vec(&sluice_schema::serial::snapshot_to_json(&cat)).unwrap();
        conn.exec_drop(
            "INSERT INTO maxwell.schema_history (client_id, server_id, binlog_file, binlog_position, gtid_set, kind, part, parts, body) \
             VALUES (?, 1, ?, ?, ?, 'snapshot', 0, 1, ?)",
            (&client_id, &stored.0, stored.1, &stored.2, body),
        )
        .await
        .unwrap();
        conn.query_drop("UPDATE maxwell.schema_history SET base_id = id WHERE id = LAST_INSERT_ID()")
            .await
            .unwrap();
    });
    sql(vec![format!("INSERT INTO {db}.t VALUES (1000, 1)")]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, err) = run_sluice(&argv, Duration::from_secs(30));
    assert_eq!(code, Some(1), "{err}");
    for needle in [
        "schema drift at binlog position mysql-bin.",
        &format!("{db}.t: column 2 is named wrong in the schema but b in the binlog"),
        "schema_history",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    assert!(
        !read_lines(&out)[seen..]
            .iter()
            .any(|l| l["data"]["a"] == 1000),
        "no row decoded with the wrong schema"
    );
    sql(vec![
        format!("DROP DATABASE {db}"),
        format!("DELETE FROM maxwell.schema_history WHERE client_id = '{client_id}'"),
    ]);
}
