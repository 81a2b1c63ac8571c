//! RabbitMQ over TLS (an `listeners.ssl` broker of scripts/rabbitmq.sh with
//! SLUICE_RABBITMQ_TLS): rows read back with `amqp-consume --ssl`
//! (librabbitmq and OpenSSL: a client that is not sluice's).

use std::process::Command;
use std::time::Duration;

use super::*;

/// Good certificate, client certificates required.
const GOOD: u16 = 23673;
const EXPIRED: u16 = 23674;
const WRONG_HOST: u16 = 23675;

fn broker(port: u16, cert: &str, client_auth: bool) -> Vec<(&'static str, String)> {
    vec![
        ("SLUICE_RABBITMQ_PORT", port.to_string()),
        ("SLUICE_RABBITMQ_TLS", cert.to_string()),
        (
            "SLUICE_TLS_CLIENT_AUTH",
            if client_auth { "yes" } else { "no" }.to_string(),
        ),
    ]
}

fn stop(port: u16) {
    script(
        "rabbitmq.sh",
        "stop",
        &[("SLUICE_RABBITMQ_PORT", port.to_string())],
    );
}

/// The good broker's test topology: exchange sluice.test.topic (durable
/// topic), queue sluice.e2e bound to `sluice_rmq_e2e.#`.
fn publish_args(db: &str) -> Vec<String> {
    vec![
        "--producer=rabbitmq".into(),
        "--rabbitmq_exchange=sluice.test.topic".into(),
        "--rabbitmq_exchange_type=topic".into(),
        "--rabbitmq_exchange_durable=true".into(),
        format!("--rabbitmq_routing_key_template=sluice_rmq_e2e.{db}.%table%"),
    ]
}

fn tls_args(port: u16, mode: &str, ca: &str, db: &str) -> Vec<String> {
    let mut a = publish_args(db);
    a.extend([
        "--rabbitmq_host=127.0.0.1".into(),
        format!("--rabbitmq_port={port}"),
        format!("--rabbitmq_ssl={mode}"),
        format!("--rabbitmq_ssl_ca={}", cert(ca)),
    ]);
    a
}

/// The messages of queue sluice.e2e on the good broker, read over TLS for
/// 10 s (earlier runs may have left messages: callers filter).
fn consume() -> Vec<serde_json::Value> {
    let url = format!("amqps://guest:guest@localhost:{GOOD}");
    let out = Command::new("timeout")
        .args(["10", "amqp-consume", "-u", &url, "--ssl"])
        .args([
            "--cacert",
            &cert("ca.pem"),
            "--cert",
            &cert("client.pem"),
            "--key",
            &cert("client.key"),
        ])
        .args(["-q", "sluice.e2e", "cat"])
        .output()
        .expect("amqp-consume");
    serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<serde_json::Value>()
        .map_while(Result::ok)
        .collect()
}

#[test]
fn rows_reach_rabbitmq_over_tls_and_bad_certificates_are_refused_naming_the_option() {
    let _gate = crate::common::module_gate(module_path!());
    // Three brokers start at once (each takes seconds).
    let starting: Vec<_> = [
        (GOOD, "server", true),
        (EXPIRED, "expired", false),
        (WRONG_HOST, "wronghost", false),
    ]
    .into_iter()
    .map(|(port, c, auth)| {
        std::thread::spawn(move || script("rabbitmq.sh", "start", &broker(port, c, auth)))
    })
    .collect();
    for s in starting {
        s.join().unwrap();
    }
    let rt = runtime();
    let db = format!("qtls{}", std::process::id());
    database(&rt, &db);

    // Maxwell's rabbitmq_use_ssl=true: VERIFY_IDENTITY of "localhost", with
    // the client certificate the broker requires.
    let mut args = publish_args(&db);
    args.extend([
        "--rabbitmq_use_ssl=true".into(),
        "--rabbitmq_host=localhost".into(),
        format!("--rabbitmq_port={GOOD}"),
        "--rabbitmq_pass=guest".into(),
        format!("--rabbitmq_ssl_ca={}", cert("ca.pem")),
        format!("--rabbitmq_ssl_cert={}", cert("client.pem")),
        format!("--rabbitmq_ssl_key={}", cert("client.key")),
    ]);
    let mut s = streaming(&rt, &db, &args, 50);
    assert!(wait_for(Duration::from_secs(20), || s.acked() >= 51 || s.exited()));
    let (_, log) = s.stop();
    let rows: Vec<i64> = consume()
        .iter()
        .filter(|v| v["database"] == db.as_str() && v["table"] == "t")
        .map(|v| v["data"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(rows, (1..=50).collect::<Vec<_>>(), "{log}");

    // amqps:// with a password: the same; without the client certificate
    // the broker ends the handshake, naming the options, and the password
    // in the URI is never logged.
    let mut args = publish_args(&db);
    args.extend([
        format!("--rabbitmq_uri=amqps://guest:Rabbit-Sekr3t@localhost:{GOOD}/%2f"),
        format!("--rabbitmq_ssl_ca={}", cert("ca.pem")),
    ]);
    let log = refused(&rt, &db, &args, &["rabbitmq_ssl_cert", "rabbitmq_ssl_key"]);
    no_secret(&log, &["Rabbit-Sekr3t"]);

    certificate_checks(
        &rt,
        &db,
        "rabbitmq",
        EXPIRED,
        WRONG_HOST,
        |port, mode, ca| tls_args(port, mode, ca, &db),
    );
    for port in [GOOD, EXPIRED, WRONG_HOST] {
        stop(port);
    }
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}
