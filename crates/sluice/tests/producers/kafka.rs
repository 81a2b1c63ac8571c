//! The Kafka producer against a real Kafka-API broker (tansu, started by
//! `scripts/kafka.sh`): rows produced, consumed back and compared with the
//! source, under Maxwell's keys and partitions; a row the broker refuses
//! stops progress by default and goes to the dead-letter topic when one is
//! configured. Built with `--features kafka`.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::proxy;
use crate::common::*;
use mysql_async::prelude::Queryable;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::TopicPartitionList;
use serde_json::Value;
use sluice_producers::route::{java_partition, java_string_hash};

const KAFKA_PORT: u16 = 23392;

pub(crate) fn kafka_script(args: &[&str]) {
    let st = Command::new(repo_root().join("scripts/kafka.sh"))
        .args(args)
        .env("SLUICE_KAFKA_PORT", KAFKA_PORT.to_string())
        .stdout(Stdio::null())
        .status()
        .expect("run scripts/kafka.sh");
    assert!(st.success(), "scripts/kafka.sh {args:?} failed");
}

pub(crate) fn bootstrap() -> String {
    format!("127.0.0.1:{KAFKA_PORT}")
}

/// Every message of `topic` (partitions 0..n), with its partition.
pub(crate) fn consume(
    topic: &str,
    partitions: i32,
    want: usize,
    timeout: Duration,
) -> Vec<(i32, Option<Vec<u8>>, Value)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", format!("test-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let start = Instant::now();
    while out.len() < want && start.elapsed() < timeout {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let v: Value =
                serde_json::from_slice(m.payload().unwrap_or_default()).expect("JSON payload");
            out.push((m.partition(), m.key().map(<[u8]>::to_vec), v));
        }
    }
    out
}

fn sluice(extra: &[String]) -> std::process::Child {
    let port = ensure_mariadb();
    Command::new(sluice_bin())
        .args([
            "--host=127.0.0.1".to_string(),
            format!("--port={port}"),
            "--user=sluice".into(),
            "--password=sluice".into(),
            "--producer=kafka".into(),
            format!("--kafka.bootstrap.servers={}", bootstrap()),
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

/// Inserts marker rows into `db.m` until sluice's output on `topic` shows
/// one: then it streams.
fn until_streaming(rt: &tokio::runtime::Runtime, db: &str, topic: &str) -> bool {
    let mut n = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        n += 1;
        rt.block_on(async {
            let mut c = root_conn().await;
            c.query_drop(format!("INSERT INTO {db}.m VALUES ({n})"))
                .await
                .unwrap();
        });
        if !consume(topic, 1, 1, Duration::from_secs(2)).is_empty() {
            return true;
        }
    }
    false
}

#[test]
fn rows_are_produced_with_maxwells_keys_and_partitions() {
    let _gate = crate::common::module_gate(module_path!());
    kafka_script(&["start"]);
    let rt = runtime();
    let db = format!("kfk{}", std::process::id());
    // Rows of db.t go to t_<pid> (4 partitions), markers to m_<pid>.
    let rows_topic = format!("t_{}", std::process::id());
    let marker_topic = format!("m_{}", std::process::id());
    kafka_script(&["topic", &rows_topic, "4"]);
    kafka_script(&["topic", &marker_topic, "1"]);
    rt.block_on(async {
        let mut c = root_conn().await;
        c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
        c.query_drop(format!(
            "CREATE TABLE {db}.t (id INT PRIMARY KEY, name VARCHAR(20), n BIGINT)"
        ))
        .await
        .unwrap();
        c.query_drop(format!("CREATE TABLE {db}.m (n INT)"))
            .await
            .unwrap();
    });
    let child = sluice(&[
        format!("--kafka_topic=%{{table}}_{}", std::process::id()),
        "--producer_partition_by=primary_key".into(),
    ]);
    assert!(
        until_streaming(&rt, &db, &marker_topic),
        "sluice did not start streaming"
    );
    rt.block_on(async {
        let mut c = root_conn().await;
        for chunk in 0..10 {
            let values: Vec<String> = (0..50)
                .map(|i| {
                    let id = chunk * 50 + i;
                    format!("({id}, 'name-{id}', {})", id as i64 * 1_000_003)
                })
                .collect();
            c.query_drop(format!("INSERT INTO {db}.t VALUES {}", values.join(",")))
                .await
                .unwrap();
        }
        c.query_drop(format!(
            "UPDATE {db}.t SET name = CONCAT(name, '!') WHERE id % 7 = 0"
        ))
        .await
        .unwrap();
        c.query_drop(format!("DELETE FROM {db}.t WHERE id % 11 = 0"))
            .await
            .unwrap();
    });
    let updates = (0..500).filter(|i| i % 7 == 0).count();
    let deletes = (0..500).filter(|i| i % 11 == 0).count();
    let want = 500 + updates + deletes;
    let got = consume(&rows_topic, 4, want, Duration::from_secs(60));
    let out = stop(child);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(got.len(), want, "{log}");
    // Replay: the consumed stream rebuilds the table as the server has it.
    let mut table: HashMap<i64, Value> = HashMap::new();
    for (partition, key, v) in &got {
        let id = v["data"]["id"].as_i64().expect("id");
        assert_eq!(v["database"], db.as_str());
        let k: Value = serde_json::from_slice(key.as_deref().expect("a key")).unwrap();
        assert_eq!(
            k,
            serde_json::json!({"database": db, "table": "t", "pk.id": id}),
            "Maxwell's hash key"
        );
        assert_eq!(
            *partition,
            java_partition(java_string_hash(&id.to_string()), 4),
            "partition of id {id}"
        );
        match v["type"].as_str() {
            Some("insert") | Some("update") => {
                table.insert(id, v["data"].clone());
            }
            Some("delete") => {
                table.remove(&id);
            }
            other => panic!("unexpected type {other:?}"),
        }
    }
    let source: Vec<(i64, String, i64)> = rt.block_on(async {
        let mut c = root_conn().await;
        c.query(format!("SELECT id, name, n FROM {db}.t ORDER BY id"))
            .await
            .unwrap()
    });
    assert_eq!(table.len(), source.len());
    for (id, name, n) in source {
        assert_eq!(
            table[&id],
            serde_json::json!({"id": id, "name": name, "n": n})
        );
    }
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}

#[test]
fn a_refused_row_stops_progress_unless_a_dead_letter_topic_is_set() {
    let _gate = crate::common::module_gate(module_path!());
    kafka_script(&["start"]);
    let rt = runtime();
    let pid = std::process::id();
    let db = format!("kdl{pid}");
    let topic = format!("big_{pid}");
    let dlq = format!("dlq_{pid}");
    for t in [&topic, &dlq] {
        kafka_script(&["topic", t, "1"]);
    }
    fresh_database(
        &rt,
        &db,
        &["m (n INT)", "b (id INT PRIMARY KEY, body TEXT)"],
    );
    let limit = "--kafka.message.max.bytes=4000".to_string();
    // Without a dead-letter topic: sluice stops and says why.
    let mut child = sluice(&[format!("--kafka_topic={topic}"), limit.clone()]);
    assert!(
        until_streaming(&rt, &db, &topic),
        "sluice did not start streaming"
    );
    sql_at(
        &rt,
        mysql_port(),
        &[format!("INSERT INTO {db}.b VALUES (1, REPEAT('x', 10000))")],
    );
    let exited = wait_for(Duration::from_secs(30), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    let out = stop(child);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(exited, "sluice went on past a refused row:\n{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("topic '{topic}' refused a row of {db}.b"))
            && err.contains("dead_letter_topic"),
        "{err}"
    );

    // A sluice with `extra` args: a big row, then a small one; asserts the
    // small one is delivered, returns sluice's /metrics from just before
    // it is stopped.
    let refuse_then_deliver = |extra: &[String], big: i64, small: i64| -> String {
        let http = free_port();
        let mut args = vec![
            format!("--kafka_topic={topic}"),
            limit.clone(),
            format!("--http_port={http}"),
        ];
        args.extend_from_slice(extra);
        let child = sluice(&args);
        assert!(until_streaming(&rt, &db, &topic));
        sql_at(
            &rt,
            mysql_port(),
            &[
                format!("INSERT INTO {db}.b VALUES ({big}, REPEAT('y', 10000))"),
                format!("INSERT INTO {db}.b VALUES ({small}, 'small')"),
            ],
        );
        let delivered = wait_for(Duration::from_secs(30), || {
            consume(&topic, 1, 1000, Duration::from_secs(3))
                .iter()
                .any(|(_, _, v)| v["data"]["id"] == small)
        });
        let metrics = http_get(http, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default();
        let out = stop(child);
        let seen: Vec<String> = consume(&topic, 1, 1000, Duration::from_secs(3))
            .iter()
            .map(|(_, _, v)| v.to_string())
            .collect();
        assert!(
            delivered,
            "row {small} not seen in {topic}: {seen:?}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        metrics
    };

    // With one: the skeleton goes there and the next row is delivered.
    refuse_then_deliver(&[format!("--dead_letter_topic={dlq}")], 2, 3);
    let dead = consume(&dlq, 1, 1, Duration::from_secs(10));
    assert_eq!(dead.len(), 1, "{dead:?}");
    let v = &dead[0].2;
    assert_eq!(v["database"], db.as_str());
    assert_eq!(v["table"], "b");
    assert_eq!(v["data"], serde_json::json!({"id": 2}));
    assert!(v["reason"].as_str().is_some_and(|r| !r.is_empty()), "{v}");

    // Told to ignore refusals: the row is dropped, counted, and the next
    // row is delivered.
    let metrics = refuse_then_deliver(&["--ignore_producer_error=true".into()], 4, 5);
    assert!(
        metrics.contains("sluice_producer_dropped_total 1"),
        "{metrics}"
    );
    assert_eq!(
        consume(&dlq, 1, 2, Duration::from_secs(3)).len(),
        1,
        "dropped, not dead-lettered"
    );
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}

/// `scripts/kafka.sh ARGS` for a broker on `port`, advertising
/// `advertised` (default: its own address).
fn broker(port: u16, args: &[&str], advertised: Option<u16>) {
    let mut cmd = Command::new(repo_root().join("scripts/kafka.sh"));
    cmd.args(args).env("SLUICE_KAFKA_PORT", port.to_string());
    if let Some(a) = advertised {
        cmd.env("SLUICE_KAFKA_ADVERTISED", format!("127.0.0.1:{a}"));
    }
    let st = cmd
        .stdout(Stdio::null())
        .status()
        .expect("run scripts/kafka.sh");
    assert!(st.success(), "scripts/kafka.sh {args:?} on {port} failed");
}

/// Ids of table t on partition 0 of `topic` at `bootstrap`, until `done`
/// holds (or `limit` passes).
fn consume_ids(
    bootstrap: &str,
    topic: &str,
    limit: Duration,
    done: &dyn Fn(&[i64]) -> bool,
) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("ids-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).expect("assign");
    let mut ids = Vec::new();
    let start = Instant::now();
    while !done(&ids) && start.elapsed() < limit {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let v: Value = serde_json::from_slice(m.payload().unwrap_or_default()).unwrap();
            if let Some(id) = v["data"]["id"].as_i64().filter(|_| v["table"] == "t") {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
    }
    ids
}

fn insert_ids(rt: &tokio::runtime::Runtime, db: &str, ids: std::ops::RangeInclusive<i64>) {
    rt.block_on(async {
        let mut c = root_conn().await;
        for id in ids {
            c.query_drop(format!("INSERT INTO {db}.t VALUES ({id})"))
                .await
                .unwrap();
        }
    })
}

/// `done` for `consume_ids`: every id of from..=to seen.
fn all_ids(from: i64, to: i64) -> impl Fn(&[i64]) -> bool {
    move |ids: &[i64]| (from..=to).all(|i| ids.contains(&i))
}

/// Inserts probe rows until one shows up at `bootstrap`: sluice streams.
fn until_ids_stream(rt: &tokio::runtime::Runtime, db: &str, bootstrap: &str, topic: &str) -> bool {
    let mut probe = 1_000_000i64;
    wait_for(Duration::from_secs(30), || {
        probe += 1;
        insert_ids(rt, db, probe..=probe);
        !consume_ids(bootstrap, topic, Duration::from_secs(2), &|ids| {
            !ids.is_empty()
        })
        .is_empty()
    })
}

/// Waits until sluice streams to `bootstrap`, then writes ids 1..=100 and
/// returns them once all are on the broker (phase 1 of the outage tests).
fn first_hundred_delivered(
    rt: &tokio::runtime::Runtime,
    db: &str,
    bootstrap: &str,
    topic: &str,
) -> Vec<i64> {
    assert!(
        until_ids_stream(rt, db, bootstrap, topic),
        "sluice did not start streaming"
    );
    insert_ids(rt, db, 1..=100);
    let seen = consume_ids(bootstrap, topic, Duration::from_secs(60), &all_ids(1, 100));
    assert!(
        (1..=100).all(|i| seen.contains(&i)),
        "phase 1 not delivered to {bootstrap}"
    );
    seen
}

fn kafka_sluice(
    bootstrap_or_config: String,
    topic: &str,
    http: u16,
    extra: &[&str],
) -> std::process::Child {
    let port = ensure_mariadb();
    Command::new(sluice_bin())
        .args([
            "--host=127.0.0.1".to_string(),
            format!("--port={port}"),
            "--user=sluice".into(),
            "--password=sluice".into(),
            "--producer=kafka".into(),
            bootstrap_or_config,
            format!("--kafka_topic={topic}"),
            format!("--http_port={http}"),
            unique_server_id(),
            unique_client_id(),
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice")
}

/// Brokers on new endpoints: the old broker is gone with rows not yet
/// delivered; the config file names the new one and sluice gets SIGHUP. The
/// producer is rebuilt without a process restart, the undelivered rows are
/// read again from the stored position and delivered: every row arrives.
#[test]
fn sighup_moves_the_producer_to_new_endpoints_without_losing_a_row() {
    let _gate = crate::common::module_gate(module_path!());
    let (port_a, port_b) = (23393u16, 23394u16);
    let pid = std::process::id();
    let topic = format!("hup_{pid}");
    let db = format!("khup{pid}");
    broker(port_a, &["start"], None);
    broker(port_a, &["topic", &topic, "1"], None);
    let rt = runtime();
    fresh_database(&rt, &db, &["t (id INT PRIMARY KEY)"]);
    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("sluice.properties");
    std::fs::write(
        &props,
        format!("kafka.bootstrap.servers=127.0.0.1:{port_a}\n"),
    )
    .unwrap();
    let http = free_port();
    let mut child = kafka_sluice(format!("--config={}", props.display()), &topic, http, &[]);
    let (at_a, at_b) = (format!("127.0.0.1:{port_a}"), format!("127.0.0.1:{port_b}"));
    let mut seen = first_hundred_delivered(&rt, &db, &at_a, &topic);

    // The broker goes away; rows keep coming; a new broker elsewhere.
    broker(port_a, &["stop"], None);
    insert_ids(&rt, &db, 101..=200);
    broker(port_b, &["start"], None);
    broker(port_b, &["topic", &topic, "1"], None);
    std::fs::write(
        &props,
        format!("kafka.bootstrap.servers=127.0.0.1:{port_b}\n"),
    )
    .unwrap();
    unsafe_kill(child.id(), 1); // SIGHUP
    seen.extend(consume_ids(
        &at_b,
        &topic,
        Duration::from_secs(60),
        &all_ids(101, 200),
    ));
    let still_running = matches!(child.try_wait(), Ok(None));
    let metrics = http_get(http, "/metrics")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let out = stop(child);
    let log = String::from_utf8_lossy(&out.stderr);
    broker(port_b, &["stop"], None);
    assert!(still_running, "sluice exited:\n{log}");
    let missing: Vec<i64> = (1..=200).filter(|i| !seen.contains(i)).collect();
    assert!(missing.is_empty(), "rows lost: {missing:?}\n{log}");
    assert!(
        metrics.contains("sluice_producer_rebuilds_total 1"),
        "{metrics}"
    );
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}

/// Deliverable 4a: every broker is replaced by one on a new address, and
/// the bootstrap name (a forwarder here, as a DNS name or a load balancer
/// would be) now leads to it. librdkafka finds the cluster again by
/// itself (re-bootstrap): no SIGHUP, no restart, no row lost.
///
/// The test's replacement broker is a new, empty cluster (tansu keeps its
/// data in memory), which does not know the idempotent producer's id: the
/// in-flight rows then time out (`kafka.message.timeout.ms`, short here)
/// and sluice builds a new producer and sends them again from the stored
/// position, still without a restart. A cluster that only moves keeps the
/// producer's state and needs neither.
#[test]
fn brokers_on_new_addresses_behind_the_bootstrap_name_are_found_again() {
    let _gate = crate::common::module_gate(module_path!());
    let (port_a, port_b) = (23396u16, 23397u16);
    let pid = std::process::id();
    let topic = format!("move_{pid}");
    let db = format!("kmove{pid}");
    broker(port_a, &["start"], None);
    broker(port_a, &["topic", &topic, "1"], None);
    let bootstrap = proxy::Proxy::start(port_a);
    let rt = runtime();
    fresh_database(&rt, &db, &["t (id INT PRIMARY KEY)"]);
    let http = free_port();
    let mut child = kafka_sluice(
        format!("--kafka.bootstrap.servers=127.0.0.1:{}", bootstrap.port),
        &topic,
        http,
        &["--kafka.message.timeout.ms=15000"],
    );
    let (at_a, at_b) = (format!("127.0.0.1:{port_a}"), format!("127.0.0.1:{port_b}"));
    let mut seen = first_hundred_delivered(&rt, &db, &at_a, &topic);

    // The only broker goes; rows keep coming; its successor listens (and
    // advertises) elsewhere, reachable under the bootstrap name.
    broker(port_a, &["stop"], None);
    insert_ids(&rt, &db, 101..=200);
    broker(port_b, &["start"], None);
    broker(port_b, &["topic", &topic, "1"], None);
    bootstrap.switch_to(port_b);
    let moved = Instant::now();
    seen.extend(consume_ids(
        &at_b,
        &topic,
        Duration::from_secs(120),
        &all_ids(101, 200),
    ));
    let took = moved.elapsed();
    let still_running = matches!(child.try_wait(), Ok(None));
    let metrics = http_get(http, "/metrics")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let out = stop(child);
    let log = String::from_utf8_lossy(&out.stderr);
    broker(port_b, &["stop"], None);
    assert!(still_running, "sluice exited:\n{log}");
    let missing: Vec<i64> = (1..=200).filter(|i| !seen.contains(i)).collect();
    assert!(missing.is_empty(), "rows lost: {missing:?}\n{log}");
    let rebuilds = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sluice_producer_rebuilds_total "))
        .unwrap_or("?")
        .to_string();
    eprintln!(
        "delivery resumed {took:?} after the bootstrap name moved ({rebuilds} producer rebuilds)"
    );
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}

/// Deliverable 4c: every broker unreachable for 60 s (connections refused
/// at their advertised address), then back: delivery resumes by itself
/// and every row written meanwhile arrives.
#[test]
fn brokers_down_for_a_minute_then_back_resume_by_themselves() {
    let _gate = crate::common::module_gate(module_path!());
    let port = 23398u16;
    let pid = std::process::id();
    let topic = format!("down_{pid}");
    let db = format!("kdown{pid}");
    // The broker is reached only through its advertised address: a
    // forwarder that the test closes and opens again.
    let path = proxy::Proxy::start(port);
    broker(port, &["start"], Some(path.port));
    broker(port, &["topic", &topic, "1"], Some(path.port));
    let rt = runtime();
    fresh_database(&rt, &db, &["t (id INT PRIMARY KEY)"]);
    let http = free_port();
    let at = format!("127.0.0.1:{}", path.port);
    let mut child = kafka_sluice(format!("--kafka.bootstrap.servers={at}"), &topic, http, &[]);
    let mut seen = first_hundred_delivered(&rt, &db, &at, &topic);

    path.switch_to(free_port()); // nothing listens there: refused
    insert_ids(&rt, &db, 101..=200);
    std::thread::sleep(Duration::from_secs(60));
    let during = http_get(http, "/metrics")
        .map(|(_, b)| b)
        .unwrap_or_default();
    path.switch_to(port);
    let back = Instant::now();
    seen.extend(consume_ids(
        &at,
        &topic,
        Duration::from_secs(90),
        &all_ids(101, 200),
    ));
    let took = back.elapsed();
    let still_running = matches!(child.try_wait(), Ok(None));
    let out = stop(child);
    let log = String::from_utf8_lossy(&out.stderr);
    broker(port, &["stop"], None);
    assert!(still_running, "sluice exited:\n{log}");
    let missing: Vec<i64> = (1..=200).filter(|i| !seen.contains(i)).collect();
    assert!(missing.is_empty(), "rows lost: {missing:?}\n{log}");
    // While the brokers were away, what was sent was not counted as
    // delivered (the processor waits on the first unacknowledged batch).
    let counter = |name: &str| {
        during
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(
        counter("sluice_producer_messages_acked_total")
            < counter("sluice_producer_messages_sent_total"),
        "acknowledged while down?\n{during}"
    );
    eprintln!("delivery resumed {took:?} after the brokers came back");
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}

/// SIGTERM while the brokers are gone: sluice does not hang on the
/// unacknowledged rows; it gives the producer a few seconds, leaves the
/// position before them, says so, and exits 0.
#[test]
fn sigterm_with_brokers_gone_does_not_hang() {
    let _gate = crate::common::module_gate(module_path!());
    let port_k = 23395u16;
    let broker = |args: &[&str]| {
        let st = Command::new(repo_root().join("scripts/kafka.sh"))
            .args(args)
            .env("SLUICE_KAFKA_PORT", port_k.to_string())
            .stdout(Stdio::null())
            .status()
            .expect("run scripts/kafka.sh");
        assert!(st.success());
    };
    let pid = std::process::id();
    let topic = format!("term_{pid}");
    let db = format!("kterm{pid}");
    broker(&["start"]);
    broker(&["topic", &topic, "1"]);
    let rt = runtime();
    rt.block_on(async {
        let mut c = root_conn().await;
        c.query_drop(format!("CREATE DATABASE {db}")).await.unwrap();
        c.query_drop(format!("CREATE TABLE {db}.m (n INT)"))
            .await
            .unwrap();
    });
    let port = ensure_mariadb();
    let mut child = Command::new(sluice_bin())
        .args([
            "--host=127.0.0.1".to_string(),
            format!("--port={port}"),
            "--user=sluice".into(),
            "--password=sluice".into(),
            "--producer=kafka".into(),
            format!("--kafka.bootstrap.servers=127.0.0.1:{port_k}"),
            format!("--kafka_topic={topic}"),
            "--http_port=0".into(),
            unique_server_id(),
            unique_client_id(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice");
    let mut n = 0;
    let streaming = wait_for(Duration::from_secs(30), || {
        n += 1;
        rt.block_on(async {
            let mut c = root_conn().await;
            c.query_drop(format!("INSERT INTO {db}.m VALUES ({n})"))
                .await
                .unwrap();
        });
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", format!("127.0.0.1:{port_k}"))
            .set("group.id", format!("term-{pid}"))
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, rdkafka::Offset::Beginning)
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let got = consumer.poll(Duration::from_secs(2));
        matches!(got, Some(Ok(_)))
    });
    assert!(streaming, "sluice did not start streaming");
    broker(&["stop"]);
    rt.block_on(async {
        let mut c = root_conn().await;
        c.query_drop(format!("INSERT INTO {db}.m VALUES (-1)"))
            .await
            .unwrap();
    });
    std::thread::sleep(Duration::from_secs(2));
    let began = Instant::now();
    unsafe_kill(child.id(), 15);
    let exited = wait_for(Duration::from_secs(20), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    let took = began.elapsed();
    let out = stop(child);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(exited, "sluice hung on SIGTERM:\n{log}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("producer abandoned while stopping"), "{log}");
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}
