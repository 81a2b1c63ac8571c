//! Take-over from Maxwell: a schema database holding Maxwell's state tables
//! (`testdata/maxwell/sql/maxwell_schema.sql`) and the position Maxwell
//! stored after delivering some rows. Maxwell stores the end of the rows
//! event of the last row it delivered: here that is inside a transaction
//! whose other table (written by a trigger) Maxwell's filter left out, so
//! the next event is a rows event whose table map came before the position. sluice,
//! pointed at that schema database and client_id with the same filter,
//! continues there: every row written after Maxwell's position comes out
//! exactly once, none before it, and Maxwell's tables stay as Maxwell can
//! use them (the positions row readable and writable with Maxwell's
//! statements, pointing where sluice got to).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::*;
use mysql_async::prelude::Queryable;

type Columns = BTreeMap<String, Vec<(String, String)>>;

/// (column name, column type) of each table of `db`, in order.
async fn columns(c: &mut mysql_async::Conn, db: &str) -> Columns {
    let rows: Vec<(String, String, String)> = c
        .exec(
            "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION",
            (db,),
        )
        .await
        .unwrap();
    let mut out = Columns::new();
    for (t, c, ty) in rows {
        out.entry(t).or_default().push((c, ty));
    }
    out
}

/// Runs Maxwell's schema SQL in `db`.
async fn create_maxwell_tables(c: &mut mysql_async::Conn, db: &str) {
    let sql = std::fs::read_to_string(repo_root().join("testdata/maxwell/sql/maxwell_schema.sql"))
        .unwrap();
    c.query_drop(format!("DROP DATABASE IF EXISTS {db}"))
        .await
        .unwrap();
    c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
    c.query_drop(format!("USE {db}")).await.unwrap();
    let text: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    for stmt in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        c.query_drop(stmt)
            .await
            .unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
}

/// (Pos, Event_type, End_log_pos, Info) of the binlog from `file:pos`.
async fn events(
    c: &mut mysql_async::Conn,
    file: &str,
    pos: u64,
) -> Vec<(u64, String, u64, String)> {
    let rows: Vec<mysql_async::Row> = c
        .query(format!("SHOW BINLOG EVENTS IN '{file}' FROM {pos}"))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.get::<u64, _>(1).unwrap(),
                r.get::<String, _>(2).unwrap(),
                r.get::<u64, _>(4).unwrap(),
                r.get::<Option<String>, _>(5).unwrap().unwrap_or_default(),
            )
        })
        .collect()
}

fn split_position(p: &str) -> (String, u64) {
    let (f, o) = p.split_once(':').unwrap();
    (f.to_string(), o.parse().unwrap())
}

#[test]
fn continues_from_maxwells_position_and_leaves_its_tables_usable() {
    let _gate = crate::common::module_gate(module_path!());
    let rt = runtime();
    let pid = std::process::id();
    let (state, db) = (format!("mxw_state_{pid}"), format!("tko_{pid}"));
    let client = format!("maxwell-takeover-{pid}");
    let filter = format!("exclude: {db}.skipme");
    let mut c = rt.block_on(root_conn());

    // What Maxwell saw and delivered: rows 1..5, then an update of t
    // (delivered) whose trigger writes skipme (left out by the filter).
    let (server_id, maxwell_file, maxwell_pos, tables_before) = rt.block_on(async {
        create_maxwell_tables(&mut c, &state).await;
        c.query_drop(format!("DROP DATABASE IF EXISTS {db}")).await.unwrap();
        c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
        for t in ["t", "skipme"] {
            c.query_drop(format!("CREATE TABLE {db}.{t} (id INT PRIMARY KEY, v VARCHAR(20))"))
                .await
                .unwrap();
        }
        for id in 1..=5 {
            c.query_drop(format!("INSERT INTO {db}.t VALUES ({id}, 'before')"))
                .await
                .unwrap();
        }
        // An audit trigger writes skipme in the same statement, after t.
        c.query_drop(format!(
            "CREATE TRIGGER {db}.t_audit AFTER UPDATE ON {db}.t FOR EACH ROW \
             INSERT INTO {db}.skipme VALUES (NEW.id + 100, 'audit')"
        ))
        .await
        .unwrap();
        let (file, before) = split_position(&master_position(&mut c).await);
        c.query_drop(format!("UPDATE {db}.t SET v = 'updated' WHERE id = 1"))
            .await
            .unwrap();
        // Maxwell's position: the end of t's rows event in that transaction.
        let evs = events(&mut c, &file, before).await;
        let t_map = evs
            .iter()
            .find(|e| e.1 == "Table_map" && e.3.contains(&format!("({db}.t)")))
            .map(|e| e.3.split_whitespace().nth(1).unwrap().to_string())
            .expect("a table map for t");
        let i = evs
            .iter()
            .position(|e| {
                e.1.starts_with("Update_rows") && e.3.split_whitespace().nth(1) == Some(t_map.as_str())
            })
            .expect("t's rows event");
        assert!(
            evs[i + 1].1.starts_with("Write_rows"),
            "skipme's rows must follow t's for this test to mean anything: {evs:?}"
        );
        let server_id: u32 = c.query_first("SELECT @@server_id").await.unwrap().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        c.exec_drop(
            format!(
                "INSERT INTO {state}.positions (server_id, binlog_file, binlog_position, gtid_set, client_id, \
                 heartbeat_at, last_heartbeat_read) VALUES (?, ?, ?, NULL, ?, ?, ?)"
            ),
            (server_id, &file, evs[i].2, &client, now - 5000, now - 6000),
        )
        .await
        .unwrap();
        c.exec_drop(
            format!("INSERT INTO {state}.heartbeats (server_id, client_id, heartbeat) VALUES (?, ?, ?)"),
            (server_id, &client, now - 6000),
        )
        .await
        .unwrap();
        (server_id, file, evs[i].2, columns(&mut c, &state).await)
    });

    // Maxwell has stopped; rows keep coming.
    sql_at(
        &rt,
        mysql_port(),
        &(6..=10)
            .map(|id| format!("INSERT INTO {db}.t VALUES ({id}, 'between')"))
            .collect::<Vec<_>>(),
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let child = std::process::Command::new(sluice_bin())
        .args([
            "--host=127.0.0.1".to_string(),
            format!("--port={}", mysql_port()),
            "--user=root".into(),
            format!("--schema_database={state}"),
            format!("--client_id={client}"),
            format!("--filter={filter}"),
            "--producer=file".into(),
            format!("--output_file={}", out.display()),
            "--heartbeat_interval_ms=200".into(),
            "--log_level=info".into(),
            "--http_port=0".into(),
            unique_server_id(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ids = |out: &std::path::Path| -> Vec<(String, i64)> {
        read_lines(out)
            .iter()
            .filter(|v| v["database"] == db.as_str())
            .map(|v| {
                (
                    format!(
                        "{}.{}",
                        v["table"].as_str().unwrap(),
                        v["type"].as_str().unwrap()
                    ),
                    v["data"]["id"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let caught_up = wait_for(Duration::from_secs(30), || ids(&out).len() >= 5);
    sql_at(
        &rt,
        mysql_port(),
        &(11..=15)
            .map(|id| format!("INSERT INTO {db}.t VALUES ({id}, 'after')"))
            .collect::<Vec<_>>(),
    );
    let end_of_rows = rt.block_on(master_position(&mut c));
    let all_arrived = wait_for(Duration::from_secs(30), || ids(&out).len() >= 10);
    // Idle: the position reaches the end of the rows before the stop.
    let (end_file, end_pos) = split_position(&end_of_rows);
    let stored = |c: &mut mysql_async::Conn| -> (String, u64) {
        rt.block_on(c.exec_first(
            format!("SELECT binlog_file, binlog_position FROM {state}.positions WHERE server_id = ? AND client_id = ?"),
            (server_id, &client),
        ))
        .unwrap()
        .unwrap()
    };
    let reached = wait_for(Duration::from_secs(10), || {
        stored(&mut c) >= (end_file.clone(), end_pos)
    });
    let output = stop(child);
    let err = plain_log(&String::from_utf8_lossy(&output.stderr));
    assert!(
        caught_up && all_arrived,
        "rows missing: {:?}\n{err}",
        ids(&out)
    );
    assert!(output.status.success(), "{err}");

    // Every row after Maxwell's position exactly once, none before it.
    let want: Vec<(String, i64)> = (6..=15).map(|id| ("t.insert".to_string(), id)).collect();
    assert_eq!(ids(&out), want, "{err}");
    assert!(
        err.contains("the stored position is inside a transaction")
            && err.contains(&format!("stored={maxwell_file}:{maxwell_pos}")),
        "{err}"
    );
    assert!(
        reached,
        "stored position {:?} never reached {end_of_rows}",
        stored(&mut c)
    );

    // Maxwell's tables: every column as it was (sluice only adds `epoch`
    // to positions, with a default).
    let tables_after = rt.block_on(columns(&mut c, &state));
    for (table, cols) in &tables_before {
        let after = tables_after
            .get(table)
            .unwrap_or_else(|| panic!("{table} is gone"));
        assert_eq!(&after[..cols.len()], &cols[..], "{table} changed");
        let added: Vec<&str> = after[cols.len()..]
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        let allowed: &[&str] = if table == "positions" {
            &["epoch"]
        } else {
            &[]
        };
        assert_eq!(added, allowed, "{table}: columns added");
    }
    // The positions row as Maxwell reads it, pointing where sluice got to.
    let (file, pos): (String, u64) = rt
        .block_on(c.exec_first(
            format!("SELECT * FROM {state}.positions WHERE server_id = ? AND client_id = ?"),
            (server_id, &client),
        ))
        .unwrap()
        .map(|row: mysql_async::Row| {
            (
                row.get::<String, _>("binlog_file").unwrap(),
                row.get::<u64, _>("binlog_position").unwrap(),
            )
        })
        .unwrap();
    assert!((file.clone(), pos) >= (end_file, end_pos), "{file}:{pos}");
    // Maxwell can write it again: its position upsert and its
    // duplicate-process check on heartbeat_at.
    rt.block_on(async {
        let heartbeat_at: Option<u64> = c
            .exec_first(
                format!("SELECT heartbeat_at FROM {state}.positions WHERE server_id = ? AND client_id = ?"),
                (server_id, &client),
            )
            .await
            .unwrap();
        let heartbeat_at = heartbeat_at.expect("heartbeat_at is set");
        c.exec_drop(
            format!(
                "INSERT INTO {state}.`positions` SET server_id = ?, binlog_file = ?, binlog_position = ?, \
                 last_heartbeat_read = 1, client_id = ? ON DUPLICATE KEY UPDATE last_heartbeat_read = 1, \
                 binlog_file = ?, binlog_position = ?"
            ),
            (server_id, &file, pos, &client, &file, pos),
        )
        .await
        .unwrap();
        let updated = c
            .exec_iter(
                format!(
                    "UPDATE {state}.`positions` SET `heartbeat_at` = ? WHERE `server_id` = ? AND `client_id` = ? \
                     AND `heartbeat_at` = ?"
                ),
                (heartbeat_at + 1, server_id, &client, heartbeat_at),
            )
            .await
            .unwrap()
            .affected_rows();
        assert_eq!(updated, 1);
        c.query_drop(format!("DROP DATABASE {db}")).await.unwrap();
        c.query_drop(format!("DROP DATABASE {state}")).await.unwrap();
    });
}
