//! What a server (or whatever answers on the MySQL port) sends must never
//! crash, hang, exhaust or damage sluice: scripted hostile servers (the
//! fake server of crates/fake-mysql) and real MariaDB in odd states. Each
//! case ends in a clear message and an exit within a bounded time, with
//! sluice's own peak RSS bounded; an abort (134) or a panic (101) fails.
//! The binlog session's own limits (oversize and continued packets, corrupt
//! events, stalls) are tested in crates/binlog/tests/hostile_server.rs.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use sluice_fake_mysql::{column_count_packet, Greeting, RepeatingServer, Step};

use crate::common::*;

/// How a sluice run ended.
struct Exit {
    status: ExitStatus,
    peak_rss: u64,
    elapsed: Duration,
    stderr: String,
}

impl Exit {
    /// Exited by itself (no signal: no abort), without a panic.
    fn assert_clean(&self) {
        assert_eq!(
            self.status.signal(),
            None,
            "sluice was killed by a signal (134 = abort): {}",
            self.stderr
        );
        assert_ne!(
            self.status.code(),
            Some(101),
            "sluice panicked: {}",
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("memory allocation"),
            "{}",
            self.stderr
        );
    }
}

/// Runs sluice with `args` (an HTTP port added) until it exits; `meanwhile`
/// runs once after the start with its pid and HTTP port. Fails the test if
/// sluice is still running after `limit` (it is killed then).
fn run_sluice_bounded(args: &[String], limit: Duration, meanwhile: impl FnOnce(u32, u16)) -> Exit {
    let http = free_port();
    let err = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(sluice_bin())
        .args(args)
        .arg(format!("--http_port={http}"))
        .stdout(Stdio::null())
        .stderr(err.reopen().unwrap())
        .spawn()
        .unwrap();
    let began = Instant::now();
    meanwhile(child.id(), http);
    let Some((status, peak_rss)) = wait_measured(&mut child, Some(limit)) else {
        panic!(
            "sluice still ran after {limit:?}: {}",
            std::fs::read_to_string(err.path()).unwrap_or_default()
        );
    };
    Exit {
        status,
        peak_rss,
        elapsed: began.elapsed(),
        stderr: plain_log(&std::fs::read_to_string(err.path()).unwrap_or_default()),
    }
}

fn args_for(port: u16, extra: &[&str]) -> Vec<String> {
    let mut a = vec![
        "--host=127.0.0.1".to_string(),
        format!("--port={port}"),
        "--user=repl".into(),
        "--password=pw".into(),
        "--log_level=warn".into(),
        "--mysql_connect_timeout_ms=5000".into(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// The fake servers' runtime: they answer while the test waits for sluice.
fn fake_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// A login the fake server accepts, and mysql_async's settings query
/// (`SELECT @@max_allowed_packet,@@wait_timeout`) answered with OK.
fn logged_in() -> Vec<Step> {
    vec![
        Step::Greeting(
            Greeting::mysql8()
                .without_tls()
                .plugin("mysql_native_password"),
        ),
        Step::read(),
        Step::ok(),
    ]
}

const MB: u64 = 1 << 20;

#[test]
fn a_result_set_of_2_40_columns_is_an_error_not_an_abort() {
    let _gate = crate::common::module_gate(module_path!());
    let rt = fake_runtime();
    // Every connection: the login, then 2^40 columns announced for the
    // first query (mysql_async's own settings query).
    let server = rt
        .block_on(RepeatingServer::start(|_| {
            let mut s = logged_in();
            s.push(Step::read());
            s.push(Step::Send(column_count_packet(1 << 40)));
            s.push(Step::Sleep(Duration::from_secs(10)));
            s
        }))
        .unwrap();
    let exit = run_sluice_bounded(
        &args_for(server.port(), &[]),
        Duration::from_secs(30),
        |_, _| {},
    );
    exit.assert_clean();
    assert_eq!(exit.status.code(), Some(1), "{}", exit.stderr);
    assert!(
        exit.stderr.contains("1099511627776 columns")
            && exit.stderr.contains("not a MySQL server, or a broken one"),
        "{}",
        exit.stderr
    );
    assert!(
        exit.peak_rss < 100 * MB,
        "peak RSS {} MB",
        exit.peak_rss / MB
    );
}

#[test]
fn an_http_server_on_the_mysql_port_is_named_not_a_mysql_server() {
    let _gate = crate::common::module_gate(module_path!());
    let rt = fake_runtime();
    let server = rt
        .block_on(RepeatingServer::start(|_| {
            vec![
                Step::SendRaw(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\r\nbad request"
                        .to_vec(),
                ),
                Step::AwaitClose,
            ]
        }))
        .unwrap();
    let exit = run_sluice_bounded(
        &args_for(server.port(), &[]),
        Duration::from_secs(20),
        |_, _| {},
    );
    exit.assert_clean();
    assert_eq!(exit.status.code(), Some(1), "{}", exit.stderr);
    assert!(
        exit.stderr.contains("is not a MySQL server")
            && exit.stderr.contains("HTTP/1.1 400")
            && exit.stderr.contains("check the host and port"),
        "{}",
        exit.stderr
    );
    assert!(
        !exit.stderr.contains("max_allowed_packet"),
        "{}",
        exit.stderr
    );
}

#[test]
fn random_bytes_on_the_mysql_port_are_named_not_a_mysql_server() {
    let _gate = crate::common::module_gate(module_path!());
    let rt = fake_runtime();
    let server = rt
        .block_on(RepeatingServer::start(|_| {
            vec![
                Step::SendRaw(vec![
                    0x3c, 0x21, 0x7f, 0x05, 0x99, 0x00, 0x13, 0xee, 0x42, 0x42, 0x42, 0x42,
                ]),
                Step::AwaitClose,
            ]
        }))
        .unwrap();
    let exit = run_sluice_bounded(
        &args_for(server.port(), &[]),
        Duration::from_secs(20),
        |_, _| {},
    );
    exit.assert_clean();
    assert_eq!(exit.status.code(), Some(1), "{}", exit.stderr);
    assert!(
        exit.stderr.contains("is not a MySQL server") && exit.stderr.contains("3c 21 7f 05"),
        "{}",
        exit.stderr
    );
}

/// Login and the settings query answered, then silence (the server runs
/// on the runtime returned with it).
fn stalls_after_login() -> (tokio::runtime::Runtime, RepeatingServer) {
    let rt = fake_runtime();
    let server = rt
        .block_on(RepeatingServer::start(|_| {
            let mut s = logged_in();
            s.push(Step::read());
            s.push(Step::ok());
            s.push(Step::Sleep(Duration::from_secs(60)));
            s
        }))
        .unwrap();
    (rt, server)
}

#[test]
fn a_server_that_stalls_after_login_ends_startup_at_the_deadline() {
    let _gate = crate::common::module_gate(module_path!());
    let (_rt, server) = stalls_after_login();
    let mut health = None;
    let exit = run_sluice_bounded(
        &args_for(server.port(), &["--mysql_query_timeout_ms=3000"]),
        Duration::from_secs(20),
        |_, http| {
            // While it waits: not healthy, and saying what it waits for.
            wait_for(Duration::from_secs(10), || {
                health = http_get(http, "/healthcheck");
                health
                    .as_ref()
                    .is_some_and(|(_, b)| b.contains("checking the replication server's settings"))
            });
        },
    );
    exit.assert_clean();
    let (code, body) = health.expect("no /healthcheck answer while startup waited");
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("checking the replication server's settings"),
        "{body}"
    );
    assert_eq!(exit.status.code(), Some(1), "{}", exit.stderr);
    assert!(
        exit.stderr.contains(
            "no answer from MySQL within 3000 ms while checking the replication server's settings"
        ) && exit.stderr.contains("mysql_query_timeout_ms"),
        "{}",
        exit.stderr
    );
    assert!(exit.elapsed < Duration::from_secs(15), "{:?}", exit.elapsed);
}

#[test]
fn sigterm_ends_a_startup_that_waits_for_a_stalled_server() {
    let _gate = crate::common::module_gate(module_path!());
    let (_rt, server) = stalls_after_login();
    let mut signalled = None;
    let exit = run_sluice_bounded(
        &args_for(server.port(), &[]),
        Duration::from_secs(30),
        |pid, http| {
            assert!(
                wait_for(Duration::from_secs(10), || http_get(http, "/healthcheck")
                    .is_some_and(|(c, b)| c == 503 && b.contains("starting: "))),
                "startup never said what it waits for"
            );
            unsafe_kill(pid, 15);
            signalled = Some(Instant::now());
        },
    );
    exit.assert_clean();
    let took = signalled.map(|s| s.elapsed()).unwrap_or_default();
    assert!(
        took < Duration::from_secs(2),
        "exit took {took:?} after SIGTERM"
    );
    assert_eq!(exit.status.code(), Some(0), "{}", exit.stderr);
}

#[test]
fn flush_tables_with_read_lock_during_startup_is_reported_and_sigterm_exits() {
    let _gate = crate::common::module_gate(module_path!());
    let port = ensure_mariadb();
    let rt = runtime();
    // Another session holds the global read lock while sluice starts.
    let mut locker = rt.block_on(root_conn());
    rt.block_on(mysql_async::prelude::Queryable::query_drop(
        &mut locker,
        "FLUSH TABLES WITH READ LOCK",
    ))
    .unwrap();
    let args: Vec<String> = vec![
        "--host=127.0.0.1".into(),
        format!("--port={port}"),
        "--user=sluice".into(),
        "--password=sluice".into(),
        "--log_level=warn".into(),
        unique_server_id(),
        unique_client_id(),
    ];
    let mut seen = None;
    let mut signalled = None;
    let exit = run_sluice_bounded(&args, Duration::from_secs(60), |pid, http| {
        // Startup waits on the lock: /healthcheck says so, stalled once a
        // step has waited a few seconds.
        wait_for(Duration::from_secs(30), || {
            seen = http_get(http, "/healthcheck");
            seen.as_ref().is_some_and(|(_, b)| b.contains("stalled"))
        });
        unsafe_kill(pid, 15);
        signalled = Some(Instant::now());
    });
    let took = signalled.map(|s| s.elapsed()).unwrap_or_default();
    rt.block_on(mysql_async::prelude::Queryable::query_drop(
        &mut locker,
        "UNLOCK TABLES",
    ))
    .unwrap();
    exit.assert_clean();
    let (code, body) = seen.expect("no /healthcheck answer");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("stalled: startup has waited"), "{body}");
    assert!(
        took < Duration::from_secs(2),
        "exit took {took:?} after SIGTERM"
    );
    assert_eq!(exit.status.code(), Some(0), "{}", exit.stderr);
}

/// A second instance registering with the same replica_server_id makes the
/// server drop the first one's session (MariaDB error 4052): the first one
/// stops, naming the option and the fix.
#[test]
fn a_second_instance_with_the_same_replica_server_id_is_told_apart() {
    let _gate = crate::common::module_gate(module_path!());
    let port = ensure_mariadb();
    let server_id = unique_server_id();
    let args = |client_id: String| -> Vec<String> {
        vec![
            "--host=127.0.0.1".into(),
            format!("--port={port}"),
            "--user=sluice".into(),
            "--password=sluice".into(),
            "--log_level=warn".into(),
            server_id.clone(),
            client_id,
        ]
    };
    let mut second = None;
    let first = run_sluice_bounded(
        &args(unique_client_id()),
        Duration::from_secs(60),
        |_, http| {
            assert!(
                wait_for(Duration::from_secs(30), || http_get(http, "/leader")
                    .is_some_and(|(c, _)| c == 200)),
                "the first instance never streamed"
            );
            let http2 = free_port();
            second = Some(
                Command::new(sluice_bin())
                    .args(args(unique_client_id()))
                    .arg(format!("--http_port={http2}"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            );
        },
    );
    if let Some(second) = second {
        stop(second);
    }
    first.assert_clean();
    assert_eq!(first.status.code(), Some(1), "{}", first.stderr);
    let id = server_id.trim_start_matches("--replica_server_id=");
    assert!(
        first.stderr.contains("--replica_server_id")
            && first.stderr.contains(&format!("same server id {id}")),
        "{}",
        first.stderr
    );
}
