//! A drop-in Maxwell configuration: Maxwell's own example file
//! (`testdata/maxwell/config.properties.example`: producer=kafka,
//! kafka.compression.type=snappy, the Java-only
//! kafka.metadata.fetch.timeout.ms, kafka.retries=0, kafka.acks=1) plus a
//! filter written with Java-properties escaping, pointed at the private
//! MariaDB and Kafka-API broker by command-line options. sluice starts,
//! filters, delivers to Kafka, and says what it did with each setting it
//! cannot take as it is.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::kafka::{bootstrap, consume, kafka_script};
use mysql_async::prelude::Queryable;

#[test]
fn maxwells_example_config_with_a_filter_starts_filters_and_explains() {
    let _gate = crate::common::module_gate(module_path!());
    kafka_script(&["start"]);
    let pid = std::process::id();
    let (db, topic) = (format!("mxcfg_{pid}"), format!("mxcfg_{pid}"));
    kafka_script(&["topic", &topic, "1"]);
    let rt = runtime();
    sql_at(
        &rt,
        ensure_mariadb(),
        &[
            format!("DROP DATABASE IF EXISTS {db}"),
            format!("CREATE DATABASE {db}"),
            format!("CREATE TABLE {db}.keep_1 (id INT PRIMARY KEY)"),
            format!("CREATE TABLE {db}.other (id INT PRIMARY KEY)"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.properties");
    let mut text =
        std::fs::read_to_string(repo_root().join("testdata/maxwell/config.properties.example"))
            .unwrap();
    // `\\d` in the file is `\d` in the filter (Maxwell #702).
    text.push_str(&format!(
        "\n# the test's filter\nfilter=exclude: {db}.*, include: {db}./keep_\\\\d+/\n"
    ));
    std::fs::write(&config, text).unwrap();
    let child = Command::new(sluice_bin())
        .args([
            format!("--config={}", config.display()),
            "--host=127.0.0.1".into(),
            format!("--port={}", mysql_port()),
            "--user=sluice".into(),
            "--password=sluice".into(),
            format!("--kafka.bootstrap.servers={}", bootstrap()),
            format!("--kafka_topic={topic}"),
            "--http_port=0".into(),
            unique_client_id(),
            unique_server_id(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ids = |want: usize| -> Vec<(String, i64)> {
        consume(&topic, 1, want, Duration::from_secs(2))
            .into_iter()
            .map(|(_, _, v)| {
                (
                    v["table"].as_str().unwrap_or_default().to_string(),
                    v["data"]["id"].as_i64().unwrap_or(-1),
                )
            })
            .collect()
    };
    // Streaming once a row of keep_1 comes back from Kafka.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    let mut streaming = false;
    while !streaming && Instant::now() < deadline {
        n += 1;
        rt.block_on(async {
            root_conn()
                .await
                .query_drop(format!("INSERT INTO {db}.keep_1 VALUES ({n})"))
                .await
                .unwrap()
        });
        streaming = !ids(1).is_empty();
    }
    sql_at(
        &rt,
        mysql_port(),
        &[
            format!("INSERT INTO {db}.other VALUES (1), (2)"),
            format!("INSERT INTO {db}.keep_1 VALUES (100000)"),
        ],
    );
    let mut got = Vec::new();
    let arrived = streaming
        && crate::common::wait_for(Duration::from_secs(30), || {
            got = ids(n as usize + 1);
            got.iter().any(|(_, id)| *id == 100000)
        });
    let output = stop(child);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(arrived, "rows did not arrive: {got:?}\n{err}");
    assert!(output.status.success(), "{err}");
    assert!(got.iter().all(|(t, _)| t == "keep_1"), "{got:?}");
    for said in [
        // Java-only: not passed to librdkafka, which would refuse it.
        "kafka.metadata.fetch.timeout.ms (from ",
        "is ignored: a Java client setting",
        // acks=1 costs idempotence, said with what that costs.
        "kafka.acks=1: the idempotent producer needs acks=all, so idempotence is off",
        // retries=0 without idempotence: what happens on a failed send.
        "kafka.retries=0: librdkafka does not retry a failed send",
    ] {
        assert!(err.contains(said), "not said: {said:?}\n{err}");
    }
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}
