//! The Redis producer against a private redis-server (`scripts/redis.sh`):
//! rows pushed to lists and streams, read back and compared with the
//! source; a Redis restart mid-stream loses no row; a command the server
//! refuses stops progress with a message.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;
use mysql_async::prelude::Queryable;
use serde_json::Value;

const REDIS_PORT: u16 = 23379;

/// One test at a time: one of them stops and restarts the server.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn redis_script(arg: &str) {
    let st = Command::new(repo_root().join("scripts/redis.sh"))
        .arg(arg)
        .env("SLUICE_REDIS_PORT", REDIS_PORT.to_string())
        .stdout(Stdio::null())
        .status()
        .expect("run scripts/redis.sh");
    assert!(st.success(), "scripts/redis.sh {arg} failed");
}

/// A RESP reply: bulk strings of an array, or one integer/status as text.
fn reply_from<R: BufRead>(r: &mut R) -> Vec<Vec<u8>> {
    let mut line = String::new();
    r.read_line(&mut line).expect("reply");
    let line = line.trim_end().to_string();
    match &line[..1] {
        "*" => {
            let n: i64 = line[1..].parse().unwrap();
            (0..n.max(0)).flat_map(|_| reply_from(r)).collect()
        }
        "$" => {
            let n: i64 = line[1..].parse().unwrap();
            if n < 0 {
                return vec![];
            }
            let mut b = vec![0u8; n as usize + 2];
            r.read_exact(&mut b).unwrap();
            b.truncate(n as usize);
            vec![b]
        }
        "-" => panic!("redis error: {line}"),
        _ => vec![line.as_bytes()[1..].to_vec()],
    }
}

fn redis(args: &[&str]) -> Vec<Vec<u8>> {
    // A restarting server refuses connections, then answers LOADING.
    for _ in 0..100 {
        if let Some(v) = try_redis(args) {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("redis does not answer {args:?}");
}

fn try_redis(args: &[&str]) -> Option<Vec<Vec<u8>>> {
    let s = TcpStream::connect(("127.0.0.1", REDIS_PORT)).ok()?;
    let mut r = BufReader::new(s);
    let mut cmd = format!("*{}\r\n", args.len());
    for a in args {
        cmd.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    r.get_mut().write_all(cmd.as_bytes()).ok()?;
    let mut first = [0u8; 1];
    r.read_exact(&mut first).ok()?;
    if first[0] == b'-' {
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        assert!(line.starts_with("LOADING"), "redis error: {line}");
        return None;
    }
    // Put the type byte back in front of the rest of the reply.
    let mut rest = Vec::new();
    r.read_until(b'\n', &mut rest).ok()?;
    let mut whole = first.to_vec();
    whole.extend_from_slice(&rest);
    let mut chained = BufReader::new(std::io::Cursor::new(whole).chain(r));
    Some(reply_from(&mut chained))
}

fn sluice(extra: &[String]) -> std::process::Child {
    let port = ensure_mariadb();
    Command::new(sluice_bin())
        .args([
            "--host=127.0.0.1".to_string(),
            format!("--port={port}"),
            "--user=sluice".into(),
            "--password=sluice".into(),
            "--producer=redis".into(),
            "--redis_host=127.0.0.1".into(),
            format!("--redis_port={REDIS_PORT}"),
            "--http_port=0".into(),
            unique_server_id(),
            unique_client_id(),
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice")
}

fn list(key: &str) -> Vec<Value> {
    redis(&["LRANGE", key, "0", "-1"])
        .iter()
        .map(|b| serde_json::from_slice(b).expect("JSON"))
        .collect()
}

fn sql(rt: &tokio::runtime::Runtime, stmts: &[String]) {
    sql_at(rt, mysql_port(), stmts)
}

/// Waits until a marker row written after sluice started shows up in `key`.
fn until_streaming(rt: &tokio::runtime::Runtime, db: &str, key: &str) -> bool {
    until_marker_seen(rt, db, || !list(key).is_empty())
}

#[test]
fn rows_reach_redis_and_survive_a_redis_restart() {
    let _gate = crate::common::module_gate(module_path!());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    redis_script("start");
    let rt = runtime();
    let pid = std::process::id();
    let db = format!("rds{pid}");
    sql(
        &rt,
        &[
            format!("CREATE DATABASE {db}"),
            format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(20))"),
            format!("CREATE TABLE {db}.m (n INT)"),
        ],
    );
    let child = sluice(&[
        "--redis_type=rpush".into(),
        "--redis_key=%{database}.%{table}".into(),
    ]);
    assert!(
        until_streaming(&rt, &db, &format!("{db}.m")),
        "sluice did not start streaming"
    );
    let key = format!("{db}.t");
    sql(
        &rt,
        &[format!(
            "INSERT INTO {db}.t SELECT seq, CONCAT('v', seq) FROM {db}.seq_1_to_300"
        )],
    );
    assert!(wait_for(Duration::from_secs(20), || list(&key).len() >= 300));
    // Redis goes away while rows keep coming, then comes back.
    redis_script("stop");
    sql(
        &rt,
        &[
            format!("UPDATE {db}.t SET v = CONCAT(v, '!') WHERE id % 3 = 0"),
            format!("DELETE FROM {db}.t WHERE id % 5 = 0"),
            format!("INSERT INTO {db}.t SELECT seq, CONCAT('w', seq) FROM {db}.seq_301_to_400"),
        ],
    );
    std::thread::sleep(Duration::from_secs(3));
    redis_script("start");
    let want = 400 + 100 + 60; // inserts, updates (id % 3), deletes (id % 5)
    let arrived = wait_for(Duration::from_secs(60), || list(&key).len() >= want);
    let out = stop(child);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        arrived,
        "only {} of {want} messages:\n{log}",
        list(&key).len()
    );
    // Replayed in order (a message may be there twice: at least once), the
    // list rebuilds the table.
    let mut table: HashMap<i64, Value> = HashMap::new();
    for v in list(&key) {
        let id = v["data"]["id"].as_i64().unwrap();
        match v["type"].as_str() {
            Some("delete") => {
                table.remove(&id);
            }
            _ => {
                table.insert(id, v["data"].clone());
            }
        }
    }
    let source: Vec<(i64, String)> = rt.block_on(async {
        let mut c = root_conn().await;
        c.query(format!("SELECT id, v FROM {db}.t")).await.unwrap()
    });
    assert_eq!(table.len(), source.len());
    for (id, v) in source {
        assert_eq!(table[&id], serde_json::json!({"id": id, "v": v}));
    }
    sql(&rt, &[format!("DROP DATABASE {db}")]);
    redis(&["DEL", &key, &format!("{db}.m")]);
}

#[test]
fn stream_entries_and_a_refused_command() {
    let _gate = crate::common::module_gate(module_path!());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    redis_script("start");
    let rt = runtime();
    let pid = std::process::id();
    let db = format!("rdx{pid}");
    sql(
        &rt,
        &[
            format!("CREATE DATABASE {db}"),
            format!("CREATE TABLE {db}.m (n INT)"),
            format!("CREATE TABLE {db}.t (id INT PRIMARY KEY)"),
        ],
    );
    // xadd: one stream entry per row, the JSON under "message".
    let stream = format!("stream{pid}");
    let child = sluice(&["--redis_type=xadd".into(), format!("--redis_key={stream}")]);
    let streaming = until_marker_seen(&rt, &db, || {
        redis(&["XLEN", &stream]) != vec![b"0".to_vec()]
    });
    assert!(streaming);
    sql(
        &rt,
        &[format!(
            "INSERT INTO {db}.t SELECT seq FROM {db}.seq_1_to_50"
        )],
    );
    let entries = || -> Vec<Value> {
        // XRANGE flattens to: id, field, value, id, field, value…
        redis(&["XRANGE", &stream, "-", "+"])
            .chunks(3)
            .filter(|c| c.len() == 3 && c[1] == b"message")
            .map(|c| serde_json::from_slice(&c[2]).unwrap())
            .collect()
    };
    assert!(wait_for(Duration::from_secs(20), || entries()
        .iter()
        .filter(|v| v["table"] == "t")
        .count()
        == 50));
    drop(stop(child));

    // A key of the wrong type: the server refuses, sluice stops and says so.
    let wrong = format!("wrong{pid}");
    redis(&["SET", &wrong, "a string"]);
    let mut child = sluice(&["--redis_type=rpush".into(), format!("--redis_key={wrong}")]);
    sql(&rt, &[format!("INSERT INTO {db}.t VALUES (1000)")]);
    let exited = wait_for(Duration::from_secs(30), || {
        sql(&rt, &[format!("INSERT INTO {db}.m VALUES (0)")]);
        matches!(child.try_wait(), Ok(Some(_)))
    });
    let out = stop(child);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(exited, "sluice went on:\n{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("WRONGTYPE") && err.contains("Progress stops here"),
        "{err}"
    );

    // With a dead-letter key: the refused rows' skeletons go there, and
    // rows for other keys around them are delivered.
    let dlq = format!("dead{pid}");
    let good = format!("good{pid}");
    let child = sluice(&[
        "--redis_type=rpush".into(),
        format!("--redis_key=%{{table}}{pid}"),
        format!("--dead_letter_topic={dlq}"),
    ]);
    // Table `wrong` routes to the string key, `good` to a list.
    sql(
        &rt,
        &[
            format!("CREATE TABLE {db}.wrong (id INT PRIMARY KEY)"),
            format!("CREATE TABLE {db}.good (id INT PRIMARY KEY)"),
        ],
    );
    let mut n = 0;
    let streaming = wait_for(Duration::from_secs(30), || {
        n += 1;
        sql(&rt, &[format!("INSERT INTO {db}.good VALUES ({n})")]);
        std::thread::sleep(Duration::from_millis(200));
        !list(&good).is_empty()
    });
    assert!(streaming);
    sql(
        &rt,
        &[
            "BEGIN".into(),
            format!("INSERT INTO {db}.good VALUES (1001)"),
            format!("INSERT INTO {db}.wrong VALUES (7)"),
            format!("INSERT INTO {db}.good VALUES (1002)"),
            "COMMIT".into(),
        ],
    );
    let arrived = wait_for(Duration::from_secs(20), || {
        list(&good).iter().any(|v| v["data"]["id"] == 1002) && !list(&dlq).is_empty()
    });
    let out = stop(child);
    assert!(arrived, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(list(&good).iter().any(|v| v["data"]["id"] == 1001));
    let letters = list(&dlq);
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["table"], "wrong");
    assert_eq!(letters[0]["data"], serde_json::json!({"id": 7}));
    assert!(letters[0]["reason"].as_str().unwrap().contains("WRONGTYPE"));
    redis(&["DEL", &dlq, &good]);
    sql(&rt, &[format!("DROP DATABASE {db}")]);
    redis(&["DEL", &stream, &wrong]);
}
