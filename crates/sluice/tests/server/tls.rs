//! The daemon over TLS against private MariaDB servers with certificates of
//! `scripts/tls.sh` (ports 23318-23320): VERIFY_IDENTITY with the CA streams
//! rows from a server that requires TLS (every connection, the binlog
//! session included); the wrong CA, an expired certificate and a
//! certificate for another host each stop sluice (exit 1) naming the option
//! to change; ssl=DISABLED against require_secure_transport says what to
//! set; VERIFY_CA accepts the certificate of another host.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::common::*;
use sluice_fake_mysql::private_mariadb::{tls_dir, MariaDb, ServerTls};

const REQUIRE: u16 = 23318;
const EXPIRED: u16 = 23319;
const WRONG_HOST: u16 = 23320;
const T: Duration = Duration::from_secs(30);

/// The three servers, for the whole test process (stopped at exit by the
/// test run's `scripts/mariadb.sh stop-all`, or by the next start).
fn servers() -> &'static (MariaDb, MariaDb, MariaDb) {
    static S: OnceLock<(MariaDb, MariaDb, MariaDb)> = OnceLock::new();
    S.get_or_init(|| {
        (
            MariaDb::start(REQUIRE, ServerTls::Require),
            MariaDb::start(EXPIRED, ServerTls::On("expired")),
            MariaDb::start(WRONG_HOST, ServerTls::On("wronghost")),
        )
    })
}

fn ca(name: &str) -> PathBuf {
    tls_dir().join(name)
}

fn args(port: u16, ssl: &[String]) -> Vec<String> {
    let mut a = vec![
        "--host=127.0.0.1".to_string(),
        format!("--port={port}"),
        "--user=sluice".into(),
        "--password=sluice".into(),
        "--log_level=info".into(),
        "--producer=stdout".into(),
        "--mysql_connect_timeout_ms=5000".into(),
        unique_client_id(),
        unique_server_id(),
    ];
    a.extend(ssl.iter().cloned());
    a
}

fn run(port: u16, ssl: &[String]) -> (Option<i32>, String) {
    let a = args(port, ssl);
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, err) = run_sluice(&refs, T);
    (code, plain_log(&err))
}

/// Streams a row from `server` with these TLS options; returns sluice's
/// log. SQL goes over the server's socket (one requires TLS on TCP).
fn streams(server: &MariaDb, ssl: &[String]) -> String {
    streams_from(
        server.port,
        &|q| {
            server.sql(q);
        },
        ssl,
    )
}

/// `streams` from the server at `port`, with `sql` running a statement.
fn streams_from(port: u16, sql: &dyn Fn(&str), ssl: &[String]) -> String {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let db = format!("tls_{}_{port}_{run}", std::process::id());
    for stmt in [
        format!("DROP DATABASE IF EXISTS {db}"),
        format!("CREATE DATABASE {db}"),
        format!("CREATE TABLE {db}.m (n INT)"),
    ] {
        sql(&stmt);
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let mut a = args(port, ssl);
    a.retain(|x| x != "--producer=stdout");
    a.extend([
        "--producer=file".to_string(),
        format!("--output_file={}", out.display()),
    ]);
    let child = std::process::Command::new(sluice_bin())
        .args(&a)
        .arg("--http_port=0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut n = 0;
    let seen = wait_for(T, || {
        n += 1;
        sql(&format!("INSERT INTO {db}.m VALUES ({n})"));
        std::thread::sleep(Duration::from_millis(200));
        read_lines(&out)
            .iter()
            .any(|v| v["database"] == db.as_str())
    });
    let o = stop(child);
    let err = plain_log(&String::from_utf8_lossy(&o.stderr));
    assert!(seen, "no row over TLS:\n{err}");
    assert!(o.status.success(), "{err}");
    sql(&format!("DROP DATABASE {db}"));
    err
}

#[test]
fn verify_identity_with_the_ca_streams_from_a_server_that_requires_tls() {
    let _gate = crate::common::module_gate(module_path!());
    let log = streams(
        &servers().0,
        &[
            "--ssl=VERIFY_IDENTITY".into(),
            format!("--ssl_ca={}", ca("ca.pem").display()),
        ],
    );
    assert!(log.contains("ssl=VERIFY_IDENTITY"), "{log}");
}

#[test]
fn the_wrong_ca_stops_sluice_naming_ssl_ca() {
    let _gate = crate::common::module_gate(module_path!());
    servers();
    for mode in ["VERIFY_CA", "VERIFY_IDENTITY"] {
        let other = ca("other-ca.pem");
        let (code, err) = run(
            REQUIRE,
            &[
                format!("--ssl={mode}"),
                format!("--ssl_ca={}", other.display()),
            ],
        );
        assert_eq!(code, Some(1), "{mode}: {err}");
        assert!(
            err.contains("not signed by a CA in ssl_ca")
                && err.contains(&other.display().to_string()),
            "{mode}: {err}"
        );
    }
}

#[test]
fn an_expired_certificate_stops_sluice() {
    let _gate = crate::common::module_gate(module_path!());
    servers();
    for mode in ["VERIFY_CA", "VERIFY_IDENTITY"] {
        let (code, err) = run(
            EXPIRED,
            &[
                format!("--ssl={mode}"),
                format!("--ssl_ca={}", ca("ca.pem").display()),
            ],
        );
        assert_eq!(code, Some(1), "{mode}: {err}");
        assert!(
            err.contains("has expired") && err.contains("ssl"),
            "{mode}: {err}"
        );
    }
    // REQUIRED encrypts without verifying, as MySQL's client: accepted.
    streams(&servers().1, &["--ssl=REQUIRED".into()]);
}

#[test]
fn a_certificate_for_another_host_fails_verify_identity_only() {
    let _gate = crate::common::module_gate(module_path!());
    servers();
    let (code, err) = run(
        WRONG_HOST,
        &[
            "--ssl=VERIFY_IDENTITY".into(),
            format!("--ssl_ca={}", ca("ca.pem").display()),
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("127.0.0.1") && err.contains("ssl"), "{err}");
    streams(
        &servers().2,
        &[
            "--ssl=VERIFY_CA".into(),
            format!("--ssl_ca={}", ca("ca.pem").display()),
        ],
    );
}

#[test]
fn ssl_disabled_against_require_secure_transport_says_what_to_set() {
    let _gate = crate::common::module_gate(module_path!());
    servers();
    let (code, err) = run(REQUIRE, &["--ssl=DISABLED".into()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("require_secure_transport") && err.contains("ssl=REQUIRED"),
        "{err}"
    );
}

/// PREFERRED as MySQL's client: TLS when the server offers it (a server
/// that requires TLS accepts the connection), plain when it does not (the
/// private MariaDB without certificates).
#[test]
fn preferred_uses_tls_when_offered_and_falls_back_to_plain() {
    let _gate = crate::common::module_gate(module_path!());
    let log = streams(&servers().0, &["--ssl=PREFERRED".into()]);
    assert!(log.contains("ssl=PREFERRED"), "{log}");
    let port = ensure_mariadb();
    let rt = runtime();
    streams_from(
        port,
        &|q| sql_at(&rt, port, &[q.to_string()]),
        &["--ssl=PREFERRED".into()],
    );
    // The same server refuses REQUIRED, naming the option.
    let (code, err) = run(port, &["--ssl=REQUIRED".into()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("ssl"), "{err}");
}
