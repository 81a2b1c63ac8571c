//! Redis over TLS (`redis-server --tls-port`, scripts/redis.sh with
//! SLUICE_REDIS_TLS): rows read back with `redis-cli --tls` (hiredis and
//! OpenSSL: a client that is not sluice's).

use std::process::Command;
use std::time::Duration;

use super::*;

/// Good certificate, client certificates required, a password.
const GOOD: u16 = 23385;
const EXPIRED: u16 = 23386;
const WRONG_HOST: u16 = 23387;
const PASSWORD: &str = "Redis-Sekr3t-pw";

fn start(port: u16, cert: &str, client_auth: bool) {
    let mut env = vec![
        ("SLUICE_REDIS_PORT", port.to_string()),
        ("SLUICE_REDIS_TLS", cert.to_string()),
        (
            "SLUICE_TLS_CLIENT_AUTH",
            if client_auth { "yes" } else { "no" }.to_string(),
        ),
    ];
    if client_auth {
        env.push(("SLUICE_REDIS_PASSWORD", PASSWORD.to_string()));
    }
    script("redis.sh", "start", &env);
}

fn stop(port: u16) {
    script(
        "redis.sh",
        "stop",
        &[("SLUICE_REDIS_PORT", port.to_string())],
    );
}

/// The list at `key` on the good server, read with redis-cli over TLS.
fn list(key: &str) -> Vec<serde_json::Value> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &GOOD.to_string(), "--tls"])
        .args(["--cacert", &cert("ca.pem"), "--cert", &cert("client.pem")])
        .args([
            "--key",
            &cert("client.key"),
            "--no-auth-warning",
            "-a",
            PASSWORD,
        ])
        .args(["LRANGE", key, "0", "-1"])
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn tls_args(port: u16, mode: &str, ca: &str, db: &str) -> Vec<String> {
    vec![
        "--producer=redis".into(),
        "--redis_host=127.0.0.1".into(),
        format!("--redis_port={port}"),
        format!("--redis_ssl={mode}"),
        format!("--redis_ssl_ca={}", cert(ca)),
        "--redis_type=rpush".into(),
        format!("--redis_key={db}.%{{table}}"),
    ]
}

#[test]
fn rows_reach_redis_over_tls_with_a_client_certificate_and_no_secret_is_logged() {
    let _gate = crate::common::module_gate(module_path!());
    start(GOOD, "server", true);
    let rt = runtime();
    let db = format!("rtls{}", std::process::id());
    database(&rt, &db);
    // rediss:// asks for TLS: VERIFY_IDENTITY of "localhost" by default.
    let mut s = Running::start(&[
        "--producer=redis".into(),
        format!("--redis_url=rediss://:{PASSWORD}@localhost:{GOOD}/0"),
        format!("--redis_ssl_ca={}", cert("ca.pem")),
        format!("--redis_ssl_cert={}", cert("client.pem")),
        format!("--redis_ssl_key={}", cert("client.key")),
        "--redis_type=rpush".into(),
        format!("--redis_key={db}.%{{table}}"),
    ]);
    assert!(until_marker_seen(&rt, &db, || !list(&format!("{db}.m"))
        .is_empty()
        || s.exited()));
    sql_at(
        &rt,
        mysql_port(),
        &[format!(
            "INSERT INTO {db}.t SELECT seq FROM {db}.seq_1_to_100"
        )],
    );
    let key = format!("{db}.t");
    let arrived = wait_for(Duration::from_secs(20), || list(&key).len() >= 100);
    let (_, log) = s.stop();
    assert!(arrived, "{} of 100 rows:\n{log}", list(&key).len());
    let ids: Vec<i64> = list(&key)
        .iter()
        .map(|v| v["data"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, (1..=100).collect::<Vec<_>>());
    no_secret(&log, &[PASSWORD]);

    // Without a client certificate the server ends the handshake: definite,
    // naming the options.
    let mut args = tls_args(GOOD, "VERIFY_IDENTITY", "ca.pem", &db);
    args.push(format!("--redis_auth={PASSWORD}"));
    let log = refused(&rt, &db, &args, &["redis_ssl_cert", "redis_ssl_key"]);
    no_secret(&log, &[PASSWORD]);
    // A wrong password: refused, the password not repeated.
    let mut args = tls_args(GOOD, "VERIFY_IDENTITY", "ca.pem", &db);
    args.extend([
        format!("--redis_ssl_cert={}", cert("client.pem")),
        format!("--redis_ssl_key={}", cert("client.key")),
        "--redis_auth=Wrong-Sekr3t".into(),
    ]);
    let log = refused(&rt, &db, &args, &["redis_auth"]);
    no_secret(&log, &["Wrong-Sekr3t"]);
    stop(GOOD);
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}

#[test]
fn wrong_ca_wrong_host_and_expired_certificates_are_refused_naming_the_option() {
    let _gate = crate::common::module_gate(module_path!());
    bad_certificates_test(
        "redis",
        EXPIRED,
        WRONG_HOST,
        |port, c| start(port, c, false),
        stop,
        tls_args,
    );
}
