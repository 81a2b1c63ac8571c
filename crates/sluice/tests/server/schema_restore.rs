//! Restoring the schema history of 10,000 tables at startup takes at most
//! 2 s: a snapshot of that size is written into the history of a client,
//! sluice restarts from its stored position, and the restore time it logs
//! is checked.

use std::time::Duration;

use crate::common::*;
use mysql_async::prelude::Queryable;
use sluice_schema::{serial, Column, Table};

/// The number after `field=` in the log line containing `marker`.
fn logged(log: &str, marker: &str, field: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.contains(marker))?;
    let rest = &line[line.find(&format!("{field}="))? + field.len() + 1..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn column(name: &str, data_type: &str, column_type: &str, charset: Option<&str>) -> Column {
    Column {
        name: name.into(),
        data_type: data_type.into(),
        column_type: column_type.into(),
        charset: charset.map(str::to_string),
        unsigned: false,
        values: Vec::new(),
        is_json: false,
    }
}

#[test]
fn ten_thousand_tables_restore_within_two_seconds() {
    let _gate = crate::common::module_gate(module_path!());
    let port = ensure_mariadb();
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let (client, server_id) = (unique_client_id(), unique_server_id());
    let client_id = client.trim_start_matches("--client_id=").to_string();
    let marker_db = format!("restore{}", std::process::id());
    let start = |log_level: &str| {
        std::process::Command::new(sluice_bin())
            .args(login_args(port))
            .args([
                "--producer=file",
                &format!("--output_file={}", out.display()),
                "--http_port=0",
                &format!("--log_level={log_level}"),
                &client,
                &server_id,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn sluice")
    };
    let sql = |stmts: Vec<String>| sql_at(&rt, port, &stmts);
    sql(vec![
        format!("CREATE DATABASE IF NOT EXISTS {marker_db}"),
        format!("CREATE TABLE IF NOT EXISTS {marker_db}.m (n INT)"),
    ]);
    let until_streaming = |n0: u32| {
        let mut n = n0;
        wait_for(Duration::from_secs(30), || {
            n += 1;
            sql(vec![format!("INSERT INTO {marker_db}.m VALUES ({n})")]);
            std::thread::sleep(Duration::from_millis(200));
            read_lines(&out)
                .iter()
                .any(|l| l["data"]["n"].as_u64().is_some_and(|v| v > u64::from(n0)))
        })
    };
    // A first run creates the history and stores a position.
    let first = start("warn");
    assert!(until_streaming(0));
    let o = stop(first);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // The schema as the history will hold it: the server's tables plus
    // 10,000 more of 8 columns each.
    let (mut catalog, stored) = rt.block_on(async {
        let mut conn = root_conn().await;
        let cat = sluice_schema::capture_catalog(&mut conn).await.unwrap();
        let stored: (String, u64, Option<String>) = conn
            .exec_first(
                "SELECT binlog_file, binlog_position, gtid_set FROM maxwell.positions WHERE client_id = ?",
                (&client_id,),
            )
            .await
            .unwrap()
            .expect("a stored position");
        (cat, stored)
    });
    for i in 0..10_000 {
        catalog.put(Table {
            database: "big".into(),
            name: format!("table_{i:05}"),
            charset: Some("utf8mb4".into()),
            columns: vec![
                column("id", "bigint", "bigint(20)", None),
                column("name", "varchar", "varchar(255)", Some("utf8mb4")),
                column("body", "text", "text", Some("utf8mb4")),
                column("price", "decimal", "decimal(10,2)", None),
                column("created", "datetime", "datetime(6)", None),
                column("flag", "tinyint", "tinyint(1)", None),
                column("blob", "blob", "blob", Some("binary")),
                column("kind", "enum", "enum('a','b','c')", Some("utf8mb4")),
            ],
            primary_key: vec!["id".into()],
        });
    }
    let body = serde_json::to_vec(&serial::snapshot_to_json(&catalog)).unwrap();
    let parts: Vec<&[u8]> = body.chunks(4 << 20).collect();
    rt.block_on(async {
        let mut conn = root_conn().await;
        let insert = "INSERT INTO maxwell.schema_history (client_id, server_id, binlog_file, binlog_position, gtid_set, kind, base_id, part, parts, body) \
                      VALUES (?, 1, ?, ?, ?, 'snapshot', ?, ?, ?, ?)";
        let mut base: Option<u64> = None;
        for (i, p) in parts.iter().enumerate() {
            conn.exec_drop(insert, (&client_id, &stored.0, stored.1, &stored.2, base, i as u32, parts.len() as u32, p.to_vec()))
                .await
                .unwrap();
            if base.is_none() {
                let id = conn.last_insert_id();
                conn.exec_drop("UPDATE maxwell.schema_history SET base_id = id WHERE id = ?", (id,))
                    .await
                    .unwrap();
                base = id;
            }
        }
    });

    let second = start("info");
    assert!(until_streaming(1000), "sluice did not resume");
    let o = stop(second);
    let log = plain_log(&String::from_utf8_lossy(&o.stderr));
    let marker = "schema restored from the history";
    let tables =
        logged(&log, marker, "tables").unwrap_or_else(|| panic!("no restore logged:\n{log}"));
    let ms = logged(&log, marker, "elapsed_ms").expect("restore time logged");
    eprintln!("restored {tables} tables in {ms} ms");
    assert!(tables >= 10_000, "{log}");
    assert!(ms <= 2000, "restoring {tables} tables took {ms} ms");
    sql(vec![
        format!("DROP DATABASE {marker_db}"),
        format!("DELETE FROM maxwell.schema_history WHERE client_id = '{client_id}'"),
    ]);
}
