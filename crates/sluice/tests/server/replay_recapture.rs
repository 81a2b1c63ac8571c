//! Maxwell's operational escape hatches: `replay` streams from
//! `init_position` and writes nothing (no position, no heartbeat, no schema
//! history), so a second replay sends the same rows again; and
//! `recapture_schema` records the server's current catalog as the schema at
//! the start position (with a warning), which gets a sluice whose history
//! disagrees with the binlog going again.

use std::time::{Duration, Instant};

use crate::common::*;
use mysql_async::prelude::Queryable;

fn ids(out: &std::path::Path, db: &str) -> Vec<i64> {
    read_lines(out)
        .iter()
        .filter(|v| v["database"] == db && v["type"] == "insert")
        .filter_map(|v| v["data"]["id"].as_i64())
        .collect()
}

/// Rows of `client` in sluice's state tables: (positions, heartbeats,
/// schema history).
fn state_rows(rt: &tokio::runtime::Runtime, client: &str) -> (u64, u64, u64) {
    rt.block_on(async {
        let mut c = root_conn().await;
        let mut n = [0u64; 3];
        for (i, table) in ["positions", "heartbeats", "schema_history"]
            .iter()
            .enumerate()
        {
            n[i] = c
                .exec_first::<u64, _, _>(
                    format!("SELECT COUNT(*) FROM maxwell.{table} WHERE client_id = ?"),
                    (client,),
                )
                .await
                .unwrap()
                .unwrap_or(0);
        }
        (n[0], n[1], n[2])
    })
}

#[test]
fn replay_writes_no_position_heartbeat_or_schema_history() {
    let _gate = crate::common::module_gate(module_path!());
    let rt = runtime();
    let db = format!("replay_{}", std::process::id());
    sql_at(
        &rt,
        mysql_port(),
        &[
            format!("DROP DATABASE IF EXISTS {db}"),
            format!("CREATE DATABASE {db}"),
            format!("CREATE TABLE {db}.t (id INT PRIMARY KEY)"),
        ],
    );
    let start = rt.block_on(async { master_position(&mut root_conn().await).await });
    sql_at(
        &rt,
        mysql_port(),
        &(1..=3)
            .map(|i| format!("INSERT INTO {db}.t VALUES ({i})"))
            .collect::<Vec<_>>(),
    );
    let client = unique_client_id();
    let id = client.trim_start_matches("--client_id=").to_string();
    let dir = tempfile::tempdir().unwrap();
    let replay = |name: &str, during: &dyn Fn()| -> Vec<i64> {
        let out = dir.path().join(name);
        let began = Instant::now();
        let child = spawn_sluice(&[
            "--replay",
            &format!("--init_position={start}"),
            // Only this test's tables: the other test of this module
            // changes a table outside the binlog on purpose.
            &format!("--filter=exclude: *.*, include: {db}.*"),
            &client,
            "--heartbeat_interval_ms=100",
            "--producer=file",
            &format!("--output_file={}", out.display()),
        ]);
        if !wait_for(Duration::from_secs(30), || ids(&out, &db).len() >= 3) {
            let o = stop(child);
            panic!(
                "replay sent nothing:\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        during();
        // Long enough for several heartbeats and position stores had they
        // been written (every 100 ms and 0.5 s).
        let settled = wait_for(Duration::from_secs(30), || {
            began.elapsed() > Duration::from_secs(2) && ids(&out, &db).len() >= 4
        });
        let output = stop(child);
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(settled && output.status.success(), "{err}");
        ids(&out, &db)
    };
    // A DDL and a row during the first replay: neither is recorded.
    let first = replay("first.json", &|| {
        sql_at(
            &rt,
            mysql_port(),
            &[
                format!("ALTER TABLE {db}.t ADD COLUMN c INT"),
                format!("INSERT INTO {db}.t VALUES (4, 0)"),
            ],
        )
    });
    assert_eq!(first, vec![1, 2, 3, 4]);
    assert_eq!(state_rows(&rt, &id), (0, 0, 0), "replay wrote state");
    // Nothing was stored, so a second replay sends the same rows again.
    // Without a history it starts from the current catalog (as Maxwell):
    // the column goes again, so that catalog fits the rows at the start.
    sql_at(
        &rt,
        mysql_port(),
        &[format!("ALTER TABLE {db}.t DROP COLUMN c")],
    );
    let second = replay("second.json", &|| {});
    assert_eq!(second, vec![1, 2, 3, 4]);
    assert_eq!(state_rows(&rt, &id), (0, 0, 0), "replay wrote state");
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}

#[test]
fn recapture_schema_records_the_current_catalog_at_the_start_position() {
    let _gate = crate::common::module_gate(module_path!());
    let rt = runtime();
    let db = format!("recapture_{}", std::process::id());
    sql_at(
        &rt,
        mysql_port(),
        &[
            format!("DROP DATABASE IF EXISTS {db}"),
            format!("CREATE DATABASE {db}"),
            format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT)"),
        ],
    );
    let client = unique_client_id();
    let id = client.trim_start_matches("--client_id=").to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a = vec![
            client.clone(),
            "--producer=file".to_string(),
            format!("--output_file={}", out.display()),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    // A first run: the position and the schema history are stored.
    let first = args(&[]);
    let child = spawn_sluice(&first.iter().map(String::as_str).collect::<Vec<_>>());
    let mut n = 0;
    let streaming = wait_for(Duration::from_secs(30), || {
        n += 1;
        sql_at(
            &rt,
            mysql_port(),
            &[format!("INSERT INTO {db}.t VALUES ({n}, 0)")],
        );
        std::thread::sleep(Duration::from_millis(200));
        !ids(&out, &db).is_empty()
    });
    let o = stop(child);
    assert!(
        streaming && o.status.success(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The table changes outside the binlog: the history cannot know.
    sql_at(
        &rt,
        mysql_port(),
        &[
            "SET sql_log_bin = 0".into(),
            format!("ALTER TABLE {db}.t ADD COLUMN extra INT"),
            "SET sql_log_bin = 1".into(),
            format!("INSERT INTO {db}.t VALUES (1000, 0, 7)"),
        ],
    );
    // Without recapture_schema the history disagrees with the binlog.
    let plain: Vec<String> = args(&["--log_level=warn"]);
    let mut plain_args = vec![
        "--host=127.0.0.1".to_string(),
        format!("--port={}", mysql_port()),
        "--user=sluice".into(),
        "--password=sluice".into(),
        unique_server_id(),
    ];
    plain_args.extend(plain);
    let refs: Vec<&str> = plain_args.iter().map(String::as_str).collect();
    let (code, err) = run_sluice(&refs, Duration::from_secs(30));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("schema drift"), "{err}");

    // Where the next start begins (the failed run stored what it
    // delivered before the row it could not decode).
    let stored: (String, u64) = rt
        .block_on(async {
            root_conn()
                .await
                .exec_first(
                    "SELECT binlog_file, binlog_position FROM maxwell.positions WHERE client_id = ?",
                    (&id,),
                )
                .await
        })
        .unwrap()
        .unwrap();
    // With it, the current catalog becomes the schema at the stored
    // position, with a warning, and is recorded there.
    let recapture = args(&["--recapture_schema"]);
    let child = spawn_sluice(&recapture.iter().map(String::as_str).collect::<Vec<_>>());
    let row = || {
        read_lines(&out)
            .into_iter()
            .find(|v| v["database"] == db.as_str() && v["data"]["id"] == 1000)
    };
    let arrived = wait_for(Duration::from_secs(30), || row().is_some());
    let o = stop(child);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(arrived && o.status.success(), "{err}");
    assert_eq!(row().unwrap()["data"]["extra"], 7);
    assert!(
        err.contains("recapture_schema: the server's current catalog is recorded as the schema at the start position"),
        "{err}"
    );
    let snapshots_at_start: u64 = rt
        .block_on(async {
            root_conn()
                .await
                .exec_first(
                    "SELECT COUNT(*) FROM maxwell.schema_history WHERE client_id = ? \
                     AND kind = 'snapshot' AND binlog_file = ? AND binlog_position = ?",
                    (&id, &stored.0, stored.1),
                )
                .await
        })
        .unwrap()
        .unwrap();
    assert!(
        snapshots_at_start >= 1,
        "no snapshot recorded at {stored:?}"
    );

    // The recorded capture stays: a plain restart decodes new rows too.
    sql_at(
        &rt,
        mysql_port(),
        &[format!("INSERT INTO {db}.t VALUES (1001, 0, 8)")],
    );
    let child = spawn_sluice(&first.iter().map(String::as_str).collect::<Vec<_>>());
    let arrived = wait_for(Duration::from_secs(30), || {
        read_lines(&out).iter().any(|v| {
            v["database"] == db.as_str() && v["data"]["id"] == 1001 && v["data"]["extra"] == 8
        })
    });
    let o = stop(child);
    assert!(
        arrived && o.status.success(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}
