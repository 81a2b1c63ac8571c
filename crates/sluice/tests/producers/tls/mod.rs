//! Every broker producer over TLS, against its real broker with a TLS
//! listener (`scripts/*.sh` with `SLUICE_<BROKER>_TLS=server|expired|
//! wronghost`, the certificates of `scripts/tls.sh`): rows delivered with
//! the good certificate under VERIFY_IDENTITY (and a client certificate where
//! the broker requires one); the wrong CA, the wrong host name and an expired
//! certificate refused under the verifying modes, naming the option to
//! change; REQUIRED accepts any certificate. Secrets never reach the log.

#[cfg(feature = "kafka")]
mod kafka;
mod nats;
mod rabbitmq;
mod redis;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;

/// The directory of the test certificates (made once).
pub fn certs() -> PathBuf {
    sluice_fake_mysql::private_mariadb::tls_dir()
}

/// `name` in the certificate directory, as a string for an option.
pub fn cert(name: &str) -> String {
    certs().join(name).display().to_string()
}

/// Runs `scripts/<script>` with `env`; panics naming the script on failure.
pub fn script(script: &str, arg: &str, env: &[(&str, String)]) {
    let st = Command::new(repo_root().join("scripts").join(script))
        .arg(arg)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("run scripts/{script}: {e}"));
    assert!(st.success(), "scripts/{script} {arg} {env:?} failed");
}

/// The MySQL side of every run: the private MariaDB, a server and client id
/// of its own, an HTTP port to read the metrics from.
fn base_args(http: u16) -> Vec<String> {
    let port = ensure_mariadb();
    vec![
        "--host=127.0.0.1".into(),
        format!("--port={port}"),
        "--user=sluice".into(),
        "--password=sluice".into(),
        "--log_level=debug".into(),
        format!("--http_port={http}"),
        unique_server_id(),
        unique_client_id(),
    ]
}

/// A running sluice whose producer acknowledgements can be read.
pub struct Running {
    child: Child,
    http: u16,
}

impl Running {
    pub fn start(extra: &[String]) -> Running {
        let http = free_port();
        let child = Command::new(sluice_bin())
            .args(base_args(http))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sluice");
        Running { child, http }
    }

    /// Messages the broker acknowledged (`producer_messages_acked_total`).
    pub fn acked(&self) -> u64 {
        let Some((200, body)) = http_get(self.http, "/metrics") else {
            return 0;
        };
        body.lines()
            .find_map(|l| l.strip_prefix("sluice_producer_messages_acked_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
            .unwrap_or(0)
    }

    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Stops it; its exit code and everything it logged.
    pub fn stop(self) -> (Option<i32>, String) {
        let out = stop(self.child);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// A database with a marker table `m (n INT)` and `t (id INT PRIMARY KEY)`.
pub fn database(rt: &tokio::runtime::Runtime, db: &str) {
    ensure_mariadb();
    fresh_database(rt, db, &["m (n INT)", "t (id INT PRIMARY KEY)"]);
}

/// Runs sluice with `extra` until the broker has acknowledged rows (markers
/// written meanwhile): the connection was accepted. Returns the log.
pub fn delivers(rt: &tokio::runtime::Runtime, db: &str, extra: &[String]) -> String {
    let mut s = Running::start(extra);
    let ok = until_marker_seen(rt, db, || s.acked() > 0 || s.exited());
    let acked = s.acked();
    let (_, log) = s.stop();
    assert!(
        ok && acked > 0,
        "nothing was delivered with {extra:?}:\n{log}"
    );
    log
}

/// Runs sluice with `extra`, which must stop it (exit 1) at start or at the
/// first rows: returns the log, which must say `wanted` (each of them).
pub fn refused(
    rt: &tokio::runtime::Runtime,
    db: &str,
    extra: &[String],
    wanted: &[&str],
) -> String {
    let mut s = Running::start(extra);
    let stopped = until_marker_seen(rt, db, || s.exited());
    let (code, log) = s.stop();
    assert!(stopped, "sluice went on with {extra:?}:\n{log}");
    assert_eq!(code, Some(1), "{extra:?}:\n{log}");
    for w in wanted {
        assert!(
            log.contains(w),
            "{extra:?}: the log does not say '{w}':\n{log}"
        );
    }
    log
}

/// Starts sluice with `extra`, waits until the broker acknowledged a marker
/// row, then inserts ids 1..=`rows` into `db.t`.
pub fn streaming(rt: &tokio::runtime::Runtime, db: &str, extra: &[String], rows: u32) -> Running {
    let mut s = Running::start(extra);
    assert!(until_marker_seen(rt, db, || s.acked() > 0 || s.exited()));
    sql_at(
        rt,
        mysql_port(),
        &[format!(
            "INSERT INTO {db}.t SELECT seq FROM {db}.seq_1_to_{rows}"
        )],
    );
    s
}

/// The certificate checks of a producer whose TLS options are `<p>_ssl…`:
/// `args(port, mode, ca)` runs it against the server at `port`. The wrong
/// CA, an expired certificate and (under VERIFY_IDENTITY) one for another
/// host are refused naming the option to change; VERIFY_CA accepts the
/// other host's, REQUIRED any.
pub fn certificate_checks(
    rt: &tokio::runtime::Runtime,
    db: &str,
    p: &str,
    expired: u16,
    wrong_host: u16,
    args: impl Fn(u16, &str, &str) -> Vec<String>,
) {
    for mode in ["VERIFY_CA", "VERIFY_IDENTITY"] {
        let ca_option = format!("{p}_ssl_ca");
        refused(
            rt,
            db,
            &args(wrong_host, mode, "other-ca.pem"),
            &[&ca_option, "not signed by a CA"],
        );
        let relax = format!("{p}_ssl=REQUIRED");
        refused(rt, db, &args(expired, mode, "ca.pem"), &["expired", &relax]);
    }
    let relax = format!("{p}_ssl=VERIFY_CA");
    refused(
        rt,
        db,
        &args(wrong_host, "VERIFY_IDENTITY", "ca.pem"),
        &["not valid for host name '127.0.0.1'", &relax],
    );
    delivers(rt, db, &args(wrong_host, "VERIFY_CA", "ca.pem"));
    delivers(rt, db, &args(expired, "REQUIRED", "other-ca.pem"));
}

/// [`certificate_checks`] against two servers of its own, one with an
/// expired certificate, one with a certificate for another host:
/// `start(port, certificate)` and `stop(port)` run them.
pub fn bad_certificates_test(
    p: &str,
    expired: u16,
    wrong_host: u16,
    start: impl Fn(u16, &str),
    stop: impl Fn(u16),
    args: impl Fn(u16, &str, &str, &str) -> Vec<String>,
) {
    start(expired, "expired");
    start(wrong_host, "wronghost");
    let rt = runtime();
    let db = format!("{p}_tlsx{}", std::process::id());
    database(&rt, &db);
    certificate_checks(&rt, &db, p, expired, wrong_host, |port, mode, ca| {
        args(port, mode, ca, &db)
    });
    stop(expired);
    stop(wrong_host);
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}

/// None of `secrets` is in `log`.
pub fn no_secret(log: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!log.contains(s), "a secret reached the log:\n{log}");
    }
}

/// Retries `f` until it returns `Some` (a broker still starting).
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let mut out = None;
    assert!(
        wait_for(timeout, || {
            out = f();
            out.is_some()
        }),
        "no answer within {timeout:?}"
    );
    out.expect("answered")
}
