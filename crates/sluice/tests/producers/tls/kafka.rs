//! Kafka over TLS: tansu behind Debian's stunnel4 (scripts/kafka.sh with
//! SLUICE_KAFKA_TLS; the broker advertises the TLS port, so every client
//! speaks TLS). Rows are consumed back with rdkafka's consumer over TLS.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::TopicPartitionList;

use super::*;

/// Plain ports of the brokers; stunnel serves TLS on the next port.
/// Good certificate, client certificates required.
const GOOD: u16 = 23394;
const EXPIRED: u16 = 23396;
const WRONG_HOST: u16 = 23398;

fn env(port: u16) -> Vec<(&'static str, String)> {
    vec![("SLUICE_KAFKA_PORT", port.to_string())]
}

fn start(port: u16, cert: &str, client_auth: bool) {
    let mut e = env(port);
    e.push(("SLUICE_KAFKA_TLS", cert.to_string()));
    e.push((
        "SLUICE_TLS_CLIENT_AUTH",
        if client_auth { "yes" } else { "no" }.to_string(),
    ));
    script("kafka.sh", "start", &e);
}

fn topic(port: u16, name: &str) {
    let st = std::process::Command::new(repo_root().join("scripts/kafka.sh"))
        .args(["topic", name, "1"])
        .env("SLUICE_KAFKA_PORT", port.to_string())
        .status()
        .expect("scripts/kafka.sh topic");
    assert!(st.success());
}

fn client_cert() -> Vec<String> {
    vec![
        format!("--kafka.ssl.certificate.location={}", cert("client.pem")),
        format!("--kafka.ssl.key.location={}", cert("client.key")),
    ]
}

fn tls_args(port: u16, ca: &str, db: &str) -> Vec<String> {
    vec![
        "--producer=kafka".into(),
        format!("--kafka.bootstrap.servers=127.0.0.1:{}", port + 1),
        "--kafka.security.protocol=ssl".into(),
        format!("--kafka.ssl.ca.location={}", cert(ca)),
        format!("--kafka_topic={db}"),
    ]
}

/// The ids of table t in `topic` on the good broker, consumed over TLS.
fn consume(topic: &str, want: usize) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", format!("127.0.0.1:{}", GOOD + 1))
        .set("security.protocol", "ssl")
        .set("ssl.ca.location", cert("ca.pem"))
        .set("ssl.certificate.location", cert("client.pem"))
        .set("ssl.key.location", cert("client.key"))
        .set("group.id", format!("tls-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).expect("assign");
    let mut ids = Vec::new();
    let start = Instant::now();
    while ids.len() < want && start.elapsed() < Duration::from_secs(30) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let v: serde_json::Value =
                serde_json::from_slice(m.payload().unwrap_or_default()).unwrap();
            if v["table"] == "t" {
                ids.push(v["data"]["id"].as_i64().unwrap());
            }
        }
    }
    ids
}

#[test]
fn rows_reach_kafka_over_tls_and_bad_certificates_are_refused_naming_the_option() {
    let _gate = crate::common::module_gate(module_path!());
    start(GOOD, "server", true);
    start(EXPIRED, "expired", false);
    start(WRONG_HOST, "wronghost", false);
    let rt = runtime();
    let db = format!("ktls{}", std::process::id());
    database(&rt, &db);
    for port in [GOOD, EXPIRED, WRONG_HOST] {
        topic(port, &db);
    }
    // librdkafka verifies the certificate and its name by default.
    let mut args = tls_args(GOOD, "ca.pem", &db);
    args.extend(client_cert());
    let s = streaming(&rt, &db, &args, 50);
    let ids = consume(&db, 50);
    let (_, log) = s.stop();
    assert_eq!(ids, (1..=50).collect::<Vec<_>>(), "{log}");

    refused(
        &rt,
        &db,
        &tls_args(WRONG_HOST, "other-ca.pem", &db),
        &["kafka.ssl.ca.location"],
    );
    refused(&rt, &db, &tls_args(EXPIRED, "ca.pem", &db), &["expired"]);
    refused(
        &rt,
        &db,
        &tls_args(WRONG_HOST, "ca.pem", &db),
        &["kafka.ssl.endpoint.identification.algorithm=none"],
    );
    // VERIFY_CA's and REQUIRED's equivalents deliver.
    let mut args = tls_args(WRONG_HOST, "ca.pem", &db);
    args.push("--kafka.ssl.endpoint.identification.algorithm=none".into());
    delivers(&rt, &db, &args);
    let mut args = tls_args(EXPIRED, "other-ca.pem", &db);
    args.push("--kafka.enable.ssl.certificate.verification=false".into());
    delivers(&rt, &db, &args);
    for port in [GOOD, EXPIRED, WRONG_HOST] {
        script("kafka.sh", "stop", &env(port));
    }
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}

/// A broker that requires SASL (tansu --authentication) behind TLS. tansu
/// refuses the unauthenticated request that would create its first user,
/// so no login can succeed here: the test shows that SASL SCRAM is built
/// in and spoken over TLS, that the refused login stops sluice naming the
/// kafka.sasl.* options, and that the password never reaches the log.
#[test]
fn a_refused_sasl_login_stops_sluice_naming_the_options_and_not_the_password() {
    let _gate = crate::common::module_gate(module_path!());
    const SASL: u16 = 23402;
    let mut e = env(SASL);
    e.extend([
        ("SLUICE_KAFKA_TLS", "server".to_string()),
        ("SLUICE_KAFKA_SASL", "yes".to_string()),
    ]);
    script("kafka.sh", "start", &e);
    let rt = runtime();
    let db = format!("ksasl{}", std::process::id());
    database(&rt, &db);
    let mut args = tls_args(SASL, "ca.pem", &db);
    args.retain(|a| !a.starts_with("--kafka.security.protocol"));
    args.extend([
        "--kafka.security.protocol=sasl_ssl".into(),
        "--kafka.sasl.mechanism=SCRAM-SHA-512".into(),
        "--kafka.sasl.username=alice".into(),
        "--kafka.sasl.password=Kafka-Sekr3t-pw".into(),
    ]);
    let log = refused(
        &rt,
        &db,
        &args,
        &["kafka.sasl.username", "kafka.sasl.password"],
    );
    no_secret(&log, &["Kafka-Sekr3t-pw"]);
    script("kafka.sh", "stop", &env(SASL));
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}
