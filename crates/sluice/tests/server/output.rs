//! Column rendering and Maxwell's output options, end to end: statements run
//! on the private MariaDB, then sluice replays exactly that binlog range.

use std::time::Duration;

use crate::common::*;
use mysql_async::prelude::Queryable;
use serde_json::{json, Value};

/// Runs `sql` (each statement on its own) and returns sluice's output lines
/// for exactly the binlog range they wrote, plus the raw lines.
fn replay(db: &str, sql: &[&str], options: &[&str]) -> (Vec<Value>, Vec<String>) {
    // One replay at a time: sluice starts without schema history and takes
    // the server's current catalog as the schema at `start`, so another
    // test's DDL run in the meantime (the module gate lets this module's
    // tests run together) would already be in that catalog and its replay
    // would then fail ("column already exists").
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let rt = runtime();
    let (start, end) = rt.block_on(async {
        let mut c = root_conn().await;
        c.query_drop(format!("DROP DATABASE IF EXISTS {db}"))
            .await
            .unwrap();
        c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
        c.query_drop(format!("USE {db}")).await.unwrap();
        c.query_drop("SET time_zone = '+00:00'").await.unwrap();
        let start = master_position(&mut c).await;
        for s in sql {
            c.query_drop(*s)
                .await
                .unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        let end = master_position(&mut c).await;
        (start, end)
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let port = ensure_mariadb();
    let mut args = vec![
        "--host=127.0.0.1".to_string(),
        format!("--port={port}"),
        "--user=sluice".into(),
        "--password=sluice".into(),
        unique_server_id(),
        unique_client_id(),
        format!("--init_position={start}"),
        format!("--stop_position={end}"),
        "--producer=file".into(),
        format!("--output_file={}", out.display()),
    ];
    args.extend(options.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, err) = run_sluice(&refs, Duration::from_secs(60));
    assert_eq!(code, Some(0), "sluice failed: {err}");
    let raw: Vec<String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let rows: Vec<Value> = read_lines(&out)
        .into_iter()
        .filter(|v| v["database"] == db)
        .collect();
    (rows, raw)
}

#[test]
fn every_column_type_renders_as_maxwell_does() {
    let _gate = crate::common::module_gate(module_path!());
    let (rows, raw) = replay(
        "types_db",
        &[
            "CREATE TABLE t (
               ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED, mi MEDIUMINT, mu MEDIUMINT UNSIGNED,
               i INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED,
               f FLOAT, d DOUBLE, dec1 DECIMAL(12,4), dec2 DECIMAL(65,30), b1 BIT(1), b64 BIT(64),
               y YEAR, dt DATE, t0 TIME, t3 TIME(3), dtm DATETIME, dtm6 DATETIME(6), ts2 TIMESTAMP(2) NULL,
               c CHAR(5), vc VARCHAR(300), tx TEXT CHARACTER SET utf8mb4, bin BINARY(4), vb VARBINARY(10), bl BLOB,
               l1 VARCHAR(10) CHARACTER SET latin1, e ENUM('x','y'), s SET('a','b','c'), j JSON, g GEOMETRY)",
            "INSERT INTO t VALUES (-128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
               -9223372036854775808, 18446744073709551615, 1.25, -2.5e-300, -12345678.1234,
               12345678901234567890123456789012345.123456789012345678901234567891, b'1', b'1000000000000000000000000000000000000000000000000000000000000001',
               2155, '2024-02-29', '-838:59:59', '100:00:00.5', '9999-12-31 23:59:59', '2000-01-01 00:00:00.000001',
               '2038-01-19 03:14:07.99', 'ab', REPEAT('x', 300), '😀 \"quoted\"\\n', x'00ff0000', x'', x'DEADBEEF',
               'ÀÉ', 'y', 'a,c', '[1, {\"k\": null}]', ST_GeomFromText('POLYGON((0 0,4 0,4 4,0 4,0 0),(1 1,2 1,2 2,1 1))'))",
            "INSERT INTO t (ti) VALUES (NULL)",
        ],
        &[],
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    let d = &rows[0]["data"];
    let expect = json!({
        "ti": -128, "tu": 255, "si": -32768, "su": 65535, "mi": -8388608, "mu": 16777215,
        "i": -2147483648i64, "iu": 4294967295u64, "bi": i64::MIN, "bu": u64::MAX,
        "f": 1.25, "d": -2.5e-300, "b1": 1, "b64": 9223372036854775809u64,
        "y": 2155, "dt": "2024-02-29", "t0": "-838:59:59", "t3": "100:00:00.500", "dtm": "9999-12-31 23:59:59",
        "dtm6": "2000-01-01 00:00:00.000001", "ts2": "2038-01-19 03:14:07.99",
        "c": "ab", "vc": "x".repeat(300), "tx": "😀 \"quoted\"\n", "bin": "AP8=", // BINARY pads with 0x00, which the binlog (and so Maxwell) drops "vb": "", "bl": "3q2+7w==",
        "l1": "ÀÉ", "e": "y", "s": ["a", "c"], "j": [1, {"k": null}],
        "g": "POLYGON ((0 0, 4 0, 4 4, 0 4, 0 0), (1 1, 2 1, 2 2, 1 1))"
    });
    for (k, v) in expect.as_object().unwrap() {
        assert_eq!(&d[k], v, "column {k}");
    }
    // Decimals keep their exact digits and scale: compare the raw text.
    let raw = raw
        .iter()
        .find(|l| l.contains("\"types_db\"") && l.contains("\"dec2\""))
        .unwrap();
    assert!(raw.contains("\"dec1\":-12345678.1234"), "{raw}");
    assert!(
        raw.contains("\"dec2\":12345678901234567890123456789012345.123456789012345678901234567891"),
        "{raw}"
    );
    // NULLs are present as null.
    assert_eq!(rows[1]["data"]["ti"], Value::Null);
    assert_eq!(rows[1]["data"]["j"], Value::Null);
    assert!(rows[1]["data"].as_object().unwrap().contains_key("g"));
}

#[test]
fn transactions_updates_and_field_order() {
    let _gate = crate::common::module_gate(module_path!());
    let (rows, raw) = replay(
        "txn_db",
        &[
            "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10), b INT, secret VARCHAR(10))",
            "BEGIN",
            "INSERT INTO t VALUES (1, 'one', 10, 's1'), (2, 'two', 20, 's2')",
            "INSERT INTO t VALUES (3, NULL, 30, 's3')",
            "COMMIT",
            "UPDATE t SET b = b + 1 WHERE id = 1",
            "UPDATE t SET id = 5, a = NULL WHERE id = 2",
            "DELETE FROM t WHERE id = 3",
        ],
        &[
            "--output_xoffset=true",
            "--output_binlog_position=true",
            "--output_gtid_position=true",
            "--output_server_id=true",
            "--output_primary_keys=true",
            "--output_primary_key_columns=true",
            "--output_push_timestamp=true",
            "--exclude_columns=secret",
        ],
    );
    assert_eq!(rows.len(), 6, "{rows:?}");
    // One transaction of three rows: same xid, xoffset 0 and 1, commit on the last only.
    let xid = &rows[0]["xid"];
    assert!(xid.is_u64());
    assert_eq!(&rows[1]["xid"], xid);
    assert_eq!(&rows[2]["xid"], xid);
    assert_eq!(rows[0]["xoffset"], json!(0));
    assert_eq!(rows[1]["xoffset"], json!(1));
    assert!(rows[2].get("xoffset").is_none() && rows[2]["commit"] == json!(true));
    assert!(rows[0].get("commit").is_none() && rows[1].get("commit").is_none());
    assert_ne!(&rows[3]["xid"], xid);
    // Update: data is the new row, old only what changed; primary key change.
    assert_eq!(rows[3]["data"], json!({"id": 1, "a": "one", "b": 11}));
    assert_eq!(rows[3]["old"], json!({"b": 10}));
    assert_eq!(rows[4]["data"], json!({"id": 5, "a": null, "b": 20}));
    assert_eq!(rows[4]["old"], json!({"id": 2, "a": "two"}));
    assert_eq!(rows[4]["primary_key"], json!([5]));
    assert_eq!(rows[5]["type"], "delete");
    assert_eq!(rows[5]["data"], json!({"id": 3, "a": null, "b": 30}));
    for r in &rows {
        assert!(
            r["data"].get("secret").is_none(),
            "excluded column leaked: {r}"
        );
        assert_eq!(r["primary_key_columns"], json!(["id"]));
        assert_eq!(r["server_id"], json!(1));
        assert!(r["gtid"].as_str().unwrap().starts_with("0-1-"), "{r}");
        let pos = r["position"].as_str().unwrap();
        assert!(
            pos.starts_with("mysql-bin.") && pos.split(':').nth(1).unwrap().parse::<u64>().is_ok(),
            "{pos}"
        );
        assert!(r["_push_timestamp"].as_f64().unwrap() > 1.6e9);
    }
    // Maxwell's field order.
    let line = raw
        .iter()
        .find(|l| l.contains("\"txn_db\"") && l.contains("\"xoffset\":0"))
        .unwrap();
    let order = [
        "\"database\"",
        "\"table\"",
        "\"type\"",
        "\"ts\"",
        "\"xid\"",
        "\"xoffset\"",
        "\"position\"",
        "\"gtid\"",
        "\"server_id\"",
        "\"_push_timestamp\"",
        "\"primary_key\"",
        "\"primary_key_columns\"",
        "\"data\"",
    ];
    let idx: Vec<usize> = order
        .iter()
        .map(|k| {
            line.find(k)
                .unwrap_or_else(|| panic!("{k} missing: {line}"))
        })
        .collect();
    assert!(
        idx.windows(2).all(|w| w[0] < w[1]),
        "fields out of order: {line}"
    );
}

#[test]
fn commit_info_nulls_and_zero_dates_options() {
    let _gate = crate::common::module_gate(module_path!());
    let sql = [
        "CREATE TABLE t (id INT PRIMARY KEY, n VARCHAR(5), d DATE, dt DATETIME(2), ts TIMESTAMP NULL)",
        "SET SESSION sql_mode = ''",
        "INSERT INTO t VALUES (1, NULL, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00')",
    ];
    let (rows, _) = replay("opts_db", &sql, &[]);
    assert_eq!(
        rows[0]["data"],
        json!({"id": 1, "n": null, "d": "0000-00-00", "dt": "0000-00-00 00:00:00.00", "ts": "0000-00-00 00:00:00"})
    );
    assert!(rows[0].get("xid").is_some() && rows[0]["commit"] == json!(true));
    let (rows, _) = replay(
        "opts_db",
        &sql,
        &[
            "--output_commit_info=false",
            "--output_nulls=false",
            "--output_null_zerodates=true",
        ],
    );
    assert!(
        rows[0].get("xid").is_none() && rows[0].get("commit").is_none(),
        "{}",
        rows[0]
    );
    assert_eq!(rows[0]["data"], json!({"id": 1}));
}

/// Maxwell's formatting options: `output_schema_id` (the schema's id, which
/// changes with a DDL), `output_naming_strategy=underscore_to_camelcase`
/// (column names and the row's fields) and `row_query_max_length`.
#[test]
fn schema_id_naming_strategy_and_row_query_length() {
    let _gate = crate::common::module_gate(module_path!());
    let sql = [
        "CREATE TABLE t (user_id INT PRIMARY KEY, First_Name VARCHAR(10))",
        "INSERT INTO t VALUES (1, 'a')",
        "ALTER TABLE t ADD COLUMN last_seen INT",
        "INSERT INTO t VALUES (2, 'b', 3)",
    ];
    let (rows, _) = replay(
        "fmtopts",
        &sql,
        &[
            "--output_schema_id",
            "--output_server_id",
            "--output_primary_keys",
            "--output_naming_strategy=underscore_to_camelcase",
            "--output_row_query",
            "--row_query_max_length=11",
        ],
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["data"], json!({"userId": 1, "firstName": "a"}));
    assert_eq!(
        rows[1]["data"],
        json!({"userId": 2, "firstName": "b", "lastSeen": 3})
    );
    for r in &rows {
        assert!(
            r.get("serverId").is_some() && r.get("server_id").is_none(),
            "{r}"
        );
        assert!(r.get("primaryKey").is_some(), "{r}");
        assert_eq!(r["query"], json!("INSERT INTO"), "{r}");
    }
    let (a, b) = (&rows[0]["schemaId"], &rows[1]["schemaId"]);
    assert!(a.is_u64() && b.is_u64(), "{a} {b}");
    assert!(
        b.as_u64() > a.as_u64(),
        "the ALTER moves the schema id on: {a} then {b}"
    );
}
