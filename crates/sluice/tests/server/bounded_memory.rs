//! A single transaction of 5 M rows streams through with the process's peak
//! RSS (from the OS: sluice's own `VmHWM`, see `wait_measured`) at most
//! 200 MB.

use std::io::BufRead;
use std::process::{Command, Stdio};

use crate::common::*;
use mysql_async::prelude::Queryable;

const ROWS: u64 = 5_000_000;
const LIMIT_BYTES: u64 = 200 * 1024 * 1024;

#[test]
fn five_million_row_transaction_in_bounded_memory() {
    let _gate = crate::common::module_gate(module_path!());
    let rt = runtime();
    let (start, end) = rt.block_on(async {
        let mut c = root_conn().await;
        c.query_drop("DROP DATABASE IF EXISTS memtest").await.unwrap();
        c.query_drop("CREATE DATABASE memtest").await.unwrap();
        c.query_drop(
            "CREATE TABLE memtest.t (id BIGINT PRIMARY KEY, a INT, b VARCHAR(64), c DATETIME, d DOUBLE, e INT)",
        )
        .await
        .unwrap();
        let start = master_position(&mut c).await;
        // One statement, one transaction, 5 M rows.
        c.query_drop(format!(
            "INSERT INTO memtest.t SELECT seq, seq % 1000, CONCAT('value-', seq), \
             TIMESTAMP'2020-01-01 00:00:00' + INTERVAL seq SECOND, seq / 3, seq FROM memtest.seq_1_to_{ROWS}"
        ))
        .await
        .unwrap();
        let end = master_position(&mut c).await;
        c.query_drop("DROP DATABASE memtest").await.unwrap();
        (start, end)
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let (status, peak) = run_measured(
        Command::new(sluice_bin())
            .arg("--http_port=0")
            .args([
                "--host=127.0.0.1",
                &format!("--port={}", ensure_mariadb()),
                "--user=sluice",
                "--password=sluice",
                "--log_level=warn",
                "--txn_buffer_bytes=16777216",
                &unique_server_id(),
                &unique_client_id(),
                &format!("--init_position={start}"),
                &format!("--stop_position={end}"),
                "--producer=file",
                &format!("--output_file={}", out.display()),
            ])
            .stdout(Stdio::null()),
    );
    assert!(status.success(), "sluice failed: {status}");
    eprintln!(
        "sluice peak RSS: {:.1} MB for {ROWS} rows in one transaction",
        peak as f64 / 1048576.0
    );
    assert!(
        peak > 0 && peak <= LIMIT_BYTES,
        "peak RSS {peak} bytes exceeds {LIMIT_BYTES}"
    );

    // Every row arrived, in order, with one xid, and only the last commits.
    let f = std::io::BufReader::new(std::fs::File::open(&out).unwrap());
    let (mut n, mut xid, mut last) = (0u64, None, String::new());
    for line in f.lines() {
        let line = line.unwrap();
        n += 1;
        if n == 1 || n == ROWS / 2 {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["data"]["id"], serde_json::json!(n));
            assert!(v.get("commit").is_none());
            if xid.is_none() {
                xid = Some(v["xid"].clone());
            }
            assert_eq!(Some(v["xid"].clone()), xid);
        }
        last = line;
    }
    assert_eq!(n, ROWS);
    let v: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(v["data"]["id"], serde_json::json!(ROWS));
    assert_eq!(v["commit"], serde_json::json!(true));
    assert_eq!(Some(v["xid"].clone()), xid);
}
