//! The RabbitMQ producer against a private broker (`scripts/rabbitmq.sh`,
//! with the queues and bindings of scripts/rabbitmq-definitions.json). Rows
//! are read back with Debian's `amqp-consume` (librabbitmq: a client that is
//! not sluice's) and replayed against the source, across a broker restart;
//! options the broker rejects stop sluice at start; a row over the broker's
//! max_message_size stops progress or goes to the dead-letter routing key.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::replay;
use crate::common::*;
use serde_json::{json, Value};

const PORT: u16 = 23672;

/// One test at a time: one of them stops and restarts the broker.
static SERIAL: Mutex<()> = Mutex::new(());

fn url() -> String {
    format!("amqp://guest:guest@127.0.0.1:{PORT}")
}

fn rabbitmq_script(arg: &str) {
    let st = Command::new(repo_root().join("scripts/rabbitmq.sh"))
        .arg(arg)
        .env("SLUICE_RABBITMQ_PORT", PORT.to_string())
        .stdout(Stdio::null())
        .status()
        .expect("run scripts/rabbitmq.sh");
    assert!(st.success(), "scripts/rabbitmq.sh {arg} failed");
}

/// Reads a queue with `amqp-consume` (each message acknowledged once it is
/// written out), started again whenever it exits (the broker restarted).
struct Consumer {
    bytes: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    child: Arc<Mutex<Option<Child>>>,
}

impl Consumer {
    fn start(queue: &str) -> Consumer {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let child: Arc<Mutex<Option<Child>>> = Arc::new(Mutex::new(None));
        let (b, s, c, queue) = (
            bytes.clone(),
            stop.clone(),
            child.clone(),
            queue.to_string(),
        );
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let spawned = Command::new("amqp-consume")
                    .args(["-u", &url(), "-q", &queue, "-p", "500", "cat"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn();
                let Ok(mut ch) = spawned else {
                    std::thread::sleep(Duration::from_millis(300));
                    continue;
                };
                let mut out = ch.stdout.take().expect("stdout");
                *c.lock().unwrap() = Some(ch);
                let mut buf = [0u8; 65536];
                while let Ok(n) = out.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    b.lock().unwrap().extend_from_slice(&buf[..n]);
                }
                if let Some(mut ch) = c.lock().unwrap().take() {
                    let _ = ch.kill();
                    let _ = ch.wait();
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        Consumer { bytes, stop, child }
    }

    /// The messages received so far (bodies are concatenated JSON objects).
    fn rows(&self) -> Vec<Value> {
        let bytes = self.bytes.lock().unwrap();
        serde_json::Deserializer::from_slice(&bytes)
            .into_iter::<Value>()
            .map_while(Result::ok)
            .collect()
    }

    fn has_marker(&self, db: &str) -> bool {
        self.rows_of(db).iter().any(|v| v["table"] == "m")
    }

    fn rows_of(&self, db: &str) -> Vec<Value> {
        self.rows()
            .into_iter()
            .filter(|v| v["database"] == db)
            .collect()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(mut ch) = self.child.lock().unwrap().take() {
            let _ = ch.kill();
            let _ = ch.wait();
        }
    }
}

fn sluice(extra: &[&str]) -> Child {
    let port = format!("--rabbitmq_port={PORT}");
    let mut args = vec![
        "--producer=rabbitmq",
        "--rabbitmq_host=127.0.0.1",
        port.as_str(),
    ];
    args.extend_from_slice(extra);
    spawn_sluice(&args)
}

#[test]
fn rows_reach_rabbitmq_and_survive_a_broker_restart() {
    let _gate = crate::common::module_gate(module_path!());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    rabbitmq_script("start");
    let rt = runtime();
    let db = format!("rmq_{}", std::process::id());
    replay::create_tables_with_markers(&rt, &db);
    let consumer = Consumer::start("sluice.restart");
    // The exchange exists (durable topic) and is declared again with the
    // same settings; persistent messages to a durable queue survive the
    // broker's restart once confirmed.
    let child = sluice(&[
        "--rabbitmq_exchange=sluice.test.topic",
        "--rabbitmq_exchange_type=topic",
        "--rabbitmq_exchange_durable=true",
        "--rabbitmq_message_persistent=true",
        "--rabbitmq_routing_key_template=sluice_rmq_restart.%db%.%table%",
    ]);
    assert!(
        until_marker_seen(&rt, &db, || consumer.has_marker(&db)),
        "sluice did not start streaming"
    );
    let load = replay::Background::start(&db);
    std::thread::sleep(Duration::from_secs(2));
    rabbitmq_script("stop");
    std::thread::sleep(Duration::from_secs(3));
    rabbitmq_script("start");
    std::thread::sleep(Duration::from_secs(2));
    load.finish();
    let expected = replay::source_now(&rt, &db);
    let result = replay::converges_with(
        || replay::without_markers(consumer.rows_of(&db)),
        &db,
        &expected,
        // A deadline, not a wait: on a loaded machine the broker's restart
        // (an Erlang VM) alone can take most of a minute.
        Duration::from_secs(180),
    );
    let out = stop(child);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(result.is_ok(), "{}\n{log}", result.unwrap_err());
    assert!(
        log.contains("reconnecting"),
        "the outage was not noticed:\n{log}"
    );
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}

#[test]
fn maxwell_defaults_publish_to_a_fanout_exchange() {
    let _gate = crate::common::module_gate(module_path!());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    rabbitmq_script("start");
    let rt = runtime();
    let db = format!("rmqf_{}", std::process::id());
    fresh_database(
        &rt,
        &db,
        &["m (n INT)", "t (id INT PRIMARY KEY, v VARCHAR(10))"],
    );
    let consumer = Consumer::start("sluice.fanout");
    // Maxwell's defaults but the exchange's name: fanout, not durable,
    // declared, routing key %db%.%table%.
    let child = sluice(&["--rabbitmq_exchange=sluice.test.fanout"]);
    assert!(until_marker_seen(&rt, &db, || consumer.has_marker(&db)));
    sql_at(
        &rt,
        mysql_port(),
        &[
            format!("INSERT INTO {db}.t VALUES (1, 'a'), (2, 'b')"),
            format!("UPDATE {db}.t SET v = 'c' WHERE id = 2"),
            format!("DELETE FROM {db}.t WHERE id = 1"),
        ],
    );
    let rows = || -> Vec<Value> {
        consumer
            .rows_of(&db)
            .into_iter()
            .filter(|v| v["table"] == "t")
            .collect()
    };
    let arrived = wait_for(Duration::from_secs(20), || rows().len() >= 4);
    let out = stop(child);
    assert!(
        arrived,
        "{:?}\n{}",
        rows(),
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<(Value, Value)> = rows()
        .iter()
        .map(|v| (v["type"].clone(), v["data"].clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (json!("insert"), json!({"id": 1, "v": "a"})),
            (json!("insert"), json!({"id": 2, "v": "b"})),
            (json!("update"), json!({"id": 2, "v": "c"})),
            (json!("delete"), json!({"id": 1, "v": "a"})),
        ]
    );
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}

#[test]
fn rejected_options_stop_at_start_and_an_oversized_row_is_refused() {
    let _gate = crate::common::module_gate(module_path!());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    rabbitmq_script("start");
    let rt = runtime();
    let db = format!("rmqr_{}", std::process::id());
    fresh_database(
        &rt,
        &db,
        &["m (n INT)", "big (id INT PRIMARY KEY, t MEDIUMTEXT)"],
    );
    let exits = |mut child: Child| -> (Option<i32>, String) {
        let exited = wait_for(Duration::from_secs(30), || {
            matches!(child.try_wait(), Ok(Some(_)))
        });
        let out = stop(child);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(exited, "sluice went on:\n{err}");
        (out.status.code(), err)
    };

    // An existing exchange of another type: refused at start, named.
    let (code, err) = exits(sluice(&[
        "--rabbitmq_exchange=sluice.test.topic",
        "--rabbitmq_exchange_type=fanout",
    ]));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("PRECONDITION_FAILED") && err.contains("rabbitmq_exchange_type"),
        "{err}"
    );
    // A wrong password: refused at start, named.
    let (code, err) = exits(sluice(&[
        "--rabbitmq_pass=wrong",
        "--rabbitmq_exchange=sluice.test.fanout",
    ]));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("ACCESS_REFUSED") && err.contains("rabbitmq_pass"),
        "{err}"
    );

    let consumer = Consumer::start("sluice.refused");
    let dead = Consumer::start("sluice.dead");
    let common = [
        "--rabbitmq_exchange=sluice.test.topic",
        "--rabbitmq_exchange_type=topic",
        "--rabbitmq_exchange_durable=true",
        "--rabbitmq_routing_key_template=sluice_rmq_refused.%db%.%table%",
    ];
    let big = |id: i64| format!("INSERT INTO {db}.big VALUES ({id}, REPEAT('x', 1500000))");

    // A row over the broker's max_message_size (1 MiB here) stops progress.
    let child = sluice(&common);
    assert!(until_marker_seen(&rt, &db, || consumer.has_marker(&db)));
    sql_at(&rt, mysql_port(), &[big(1)]);
    let (code, err) = exits(child);
    assert_eq!(code, Some(1), "{err}");
    for needle in [
        "max size",
        &format!("{db}.big"),
        "Progress stops here",
        "--dead_letter_topic",
    ] {
        assert!(err.contains(needle), "'{needle}' missing:\n{err}");
    }

    // With a dead-letter routing key, the skeleton goes there and the rows
    // around it are delivered.
    let dlq = format!("--dead_letter_topic=dead.{db}");
    let mut args = common.to_vec();
    args.push(&dlq);
    let child = sluice(&args);
    let before = consumer.rows_of(&db).len();
    assert!(wait_for(Duration::from_secs(30), || {
        sql_at(
            &rt,
            mysql_port(),
            &[format!("INSERT INTO {db}.m VALUES (0)")],
        );
        std::thread::sleep(Duration::from_millis(200));
        consumer.rows_of(&db).len() > before
    }));
    sql_at(
        &rt,
        mysql_port(),
        &[
            format!("INSERT INTO {db}.big VALUES (2, 'before')"),
            big(3),
            format!("INSERT INTO {db}.big VALUES (4, 'after')"),
        ],
    );
    let ids = || -> Vec<i64> {
        consumer
            .rows_of(&db)
            .iter()
            .filter(|v| v["table"] == "big")
            .filter_map(|v| v["data"]["id"].as_i64())
            .collect()
    };
    let arrived = wait_for(Duration::from_secs(30), || {
        ids().contains(&4) && !dead.rows_of(&db).is_empty()
    });
    let out = stop(child);
    assert!(
        arrived,
        "{:?}\n{}",
        ids(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ids(), vec![2, 4]);
    let letters = dead.rows_of(&db);
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["table"], "big");
    assert_eq!(letters[0]["data"], json!({"id": 3}));
    assert!(
        letters[0]["reason"].as_str().unwrap().contains("max size"),
        "{letters:?}"
    );
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}

#[test]
fn with_mandatory_an_unroutable_row_is_refused_not_discarded() {
    let _gate = crate::common::module_gate(module_path!());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    rabbitmq_script("start");
    let rt = runtime();
    let db = format!("rmqm_{}", std::process::id());
    fresh_database(&rt, &db, &["m (n INT)", "t (id INT PRIMARY KEY)"]);
    // Routing keys no binding of sluice.test.topic matches.
    let common = [
        "--rabbitmq_exchange=sluice.test.topic",
        "--rabbitmq_exchange_type=topic",
        "--rabbitmq_exchange_durable=true",
        "--rabbitmq_routing_key_template=nowhere.%db%.%table%",
        "--rabbitmq_mandatory=true",
    ];
    let mut child = sluice(&common);
    let exited = wait_for(Duration::from_secs(30), || {
        sql_at(
            &rt,
            mysql_port(),
            &[format!("INSERT INTO {db}.m VALUES (1)")],
        );
        std::thread::sleep(Duration::from_millis(200));
        matches!(child.try_wait(), Ok(Some(_)))
    });
    let out = stop(child);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(exited, "sluice went on past an unroutable row:\n{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "no queue is bound for routing key 'nowhere.{db}.m'"
        )) && err.contains("Progress stops here"),
        "{err}"
    );

    // With a dead-letter routing key that is bound, the skeletons arrive.
    let dead = Consumer::start("sluice.dead");
    let dlq = format!("--dead_letter_topic=dead.{db}");
    let mut args = common.to_vec();
    args.push(&dlq);
    let child = sluice(&args);
    let arrived = wait_for(Duration::from_secs(30), || {
        sql_at(
            &rt,
            mysql_port(),
            &[format!(
                "INSERT INTO {db}.t SELECT COALESCE(MAX(id), 0) + 1 FROM {db}.t"
            )],
        );
        std::thread::sleep(Duration::from_millis(200));
        dead.rows_of(&db).iter().any(|v| v["table"] == "t")
    });
    let out = stop(child);
    assert!(arrived, "{}", String::from_utf8_lossy(&out.stderr));
    let letter = dead
        .rows_of(&db)
        .into_iter()
        .find(|v| v["table"] == "t")
        .unwrap();
    assert!(letter["data"]["id"].is_number(), "{letter}");
    assert!(
        letter["reason"]
            .as_str()
            .unwrap()
            .contains("no queue is bound"),
        "{letter}"
    );
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}
