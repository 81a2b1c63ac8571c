//! The daemon as a library: `sluice::run` with a configuration and a
//! shutdown future (or a request channel), in this process, against the
//! private MariaDB. A stop request ends it cleanly with everything before
//! it delivered; a reload streams again with the re-read configuration.

use std::sync::mpsc;
use std::time::Duration;

use sluice::config::{parse, Parsed};
use sluice::{Controls, Request};

use crate::common::*;

fn config(args: &[String]) -> sluice::Config {
    match parse(args, &Default::default()) {
        Ok(Parsed::Run(c)) => *c,
        _ => panic!("bad configuration"),
    }
}

fn args(out: &std::path::Path) -> Vec<String> {
    vec![
        "--host=127.0.0.1".into(),
        format!("--port={}", ensure_mariadb()),
        "--user=sluice".into(),
        "--password=sluice".into(),
        unique_server_id(),
        unique_client_id(),
        "--http_port=0".into(),
        "--producer=file".into(),
        format!("--output_file={}", out.display()),
    ]
}

#[test]
fn run_until_a_shutdown_future_completes() {
    let _gate = crate::common::module_gate(module_path!());
    ensure_mariadb();
    let rt = runtime();
    let db = format!("lib{}", std::process::id());
    fresh_database(&rt, &db, &["t (id INT PRIMARY KEY)"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let cfg = config(&args(&out));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = std::thread::spawn(move || {
        let shutdown = Box::pin(async {
            let _ = stopped.await;
        });
        sluice::run(cfg, Controls::Shutdown(shutdown), &|| {
            Err(sluice::config::ConfigError::Usage("no reload".into()))
        })
    });
    let mut n = 0;
    let streaming = wait_for(Duration::from_secs(30), || {
        n += 1;
        sql_at(
            &rt,
            mysql_port(),
            &[format!("INSERT INTO {db}.t VALUES ({n})")],
        );
        std::thread::sleep(Duration::from_millis(100));
        read_lines(&out)
            .iter()
            .any(|r| r["database"] == db.as_str())
    });
    assert!(streaming, "the in-process daemon did not stream");
    stop.send(()).unwrap();
    let result = daemon.join().expect("the daemon thread panicked");
    assert!(result.is_ok(), "{result:?}");
    // Every row inserted once streaming had begun, up to the stop, was
    // delivered (the first inserts may predate the start position).
    let ids: Vec<i64> = read_lines(&out)
        .iter()
        .filter(|r| r["database"] == db.as_str())
        .map(|r| r["data"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, (ids[0]..=n).collect::<Vec<_>>());
}

#[test]
fn a_reload_request_streams_again_with_the_new_configuration() {
    let _gate = crate::common::module_gate(module_path!());
    ensure_mariadb();
    let rt = runtime();
    let db = format!("libr{}", std::process::id());
    fresh_database(&rt, &db, &["t (id INT PRIMARY KEY)"]);
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let base = args(&first);
    let client = base
        .iter()
        .find(|a| a.starts_with("--client_id"))
        .unwrap()
        .clone();
    let server = base
        .iter()
        .find(|a| a.starts_with("--replica_server_id"))
        .unwrap()
        .clone();
    let cfg = config(&base);
    let mut reloaded = args(&second);
    reloaded.retain(|a| !a.starts_with("--client_id") && !a.starts_with("--replica_server_id"));
    reloaded.extend([client, server]);
    let (requests, controls) = Controls::channel();
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let reload = move || Ok(config(&reloaded));
        done_tx.send(sluice::run(cfg, controls, &reload)).unwrap();
    });
    let insert_until_seen = |file: &std::path::Path, from: i64| {
        let mut n = from;
        wait_for(Duration::from_secs(30), || {
            n += 1;
            sql_at(
                &rt,
                mysql_port(),
                &[format!("INSERT INTO {db}.t VALUES ({n})")],
            );
            std::thread::sleep(Duration::from_millis(100));
            read_lines(file)
                .iter()
                .any(|r| r["database"] == db.as_str())
        });
        n
    };
    let n = insert_until_seen(&first, 0);
    assert!(n > 0 && !read_lines(&first).is_empty());
    requests.send(Request::Reload).unwrap();
    let m = insert_until_seen(&second, 1_000);
    assert!(
        read_lines(&second)
            .iter()
            .any(|r| r["database"] == db.as_str()),
        "no row reached the reloaded configuration's file"
    );
    requests.send(Request::Stop).unwrap();
    let result = done
        .recv_timeout(Duration::from_secs(30))
        .expect("the daemon stopped");
    assert!(result.is_ok(), "{result:?}");
    // Nothing lost across the reload: every id is in one file or the other.
    let mut ids: Vec<i64> = read_lines(&first)
        .into_iter()
        .chain(read_lines(&second))
        .filter(|r| r["database"] == db.as_str())
        .map(|r| r["data"]["id"].as_i64().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    let expected: Vec<i64> = (ids[0]..=n).chain(1_001..=m).collect();
    assert_eq!(ids, expected);
}
