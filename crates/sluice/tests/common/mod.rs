//! Shared test plumbing: the private MariaDB (started by the project's own
//! script), a root SQL connection, and running the sluice binary.
#![allow(dead_code)]

pub mod corpus;
pub mod ops;
pub mod proxy;
pub mod replay;
pub mod replica;

/// Tests of one module may run together; tests of different modules may
/// not. The modules of a test binary were separate binaries once, and
/// some stream everything the shared server writes: another module's rows
/// (an oversized one, say) must not reach them.
pub fn module_gate(module: &'static str) -> ModuleGuard {
    use std::sync::{Condvar, Mutex};
    static STATE: Mutex<(Option<&'static str>, usize)> = Mutex::new((None, 0));
    static CHANGED: Condvar = Condvar::new();
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    while state.0.is_some_and(|m| m != module) {
        state = CHANGED.wait(state).unwrap_or_else(|e| e.into_inner());
    }
    state.0 = Some(module);
    state.1 += 1;
    ModuleGuard {
        release: || {
            let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
            state.1 -= 1;
            if state.1 == 0 {
                state.0 = None;
                CHANGED.notify_all();
            }
        },
    }
}

/// Leaves the module gate when dropped (also when the test panics).
pub struct ModuleGuard {
    release: fn(),
}

impl Drop for ModuleGuard {
    fn drop(&mut self) {
        (self.release)()
    }
}

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

pub fn mysql_port() -> u16 {
    std::env::var("SLUICE_MYSQL_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(23306)
}

/// Starts the private MariaDB once per test process (the script is
/// idempotent and takes a lock, so parallel test binaries share it).
pub fn ensure_mariadb() -> u16 {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let st = Command::new(repo_root().join("scripts/mariadb.sh"))
            .arg("start")
            .stdout(Stdio::null())
            .status()
            .expect("run scripts/mariadb.sh");
        assert!(st.success(), "scripts/mariadb.sh start failed");
    });
    mysql_port()
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

pub async fn root_conn() -> mysql_async::Conn {
    let port = ensure_mariadb();
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some("root"))
        .prefer_socket(false);
    mysql_async::Conn::new(opts)
        .await
        .expect("root connection to the private MariaDB")
}

/// Runs `stmts` as root on the private MariaDB at `port`; a statement that
/// fails fails the test, naming it.
pub fn sql_at(rt: &tokio::runtime::Runtime, port: u16, stmts: &[String]) {
    rt.block_on(async {
        let mut conn = root_conn_at(port).await.expect("root connection");
        for s in stmts {
            conn.query_drop(s)
                .await
                .unwrap_or_else(|e| panic!("{s}: {e}"));
        }
    })
}

/// Creates database `db` afresh with `tables` (`name (columns)` each).
pub fn fresh_database(rt: &tokio::runtime::Runtime, db: &str, tables: &[&str]) {
    let mut stmts = vec![
        format!("DROP DATABASE IF EXISTS {db}"),
        format!("CREATE DATABASE {db}"),
    ];
    stmts.extend(tables.iter().map(|t| format!("CREATE TABLE {db}.{t}")));
    sql_at(rt, mysql_port(), &stmts);
}

/// Writes marker rows into `db.m (n INT)` until `seen` says one arrived:
/// from then on sluice streams.
pub fn until_marker_seen(
    rt: &tokio::runtime::Runtime,
    db: &str,
    mut seen: impl FnMut() -> bool,
) -> bool {
    let mut n = 0;
    wait_for(Duration::from_secs(30), || {
        n += 1;
        sql_at(
            rt,
            mysql_port(),
            &[format!("INSERT INTO {db}.m VALUES ({n})")],
        );
        std::thread::sleep(Duration::from_millis(200));
        seen()
    })
}

pub async fn master_position(conn: &mut mysql_async::Conn) -> String {
    let row: mysql_async::Row = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .unwrap()
        .expect("binlog on");
    let file: String = row.get(0).unwrap();
    let pos: u64 = row.get(1).unwrap();
    format!("{file}:{pos}")
}

pub fn sluice_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sluice"))
}

/// A replica server id no other sluice of this test run uses: the server
/// disconnects a replica when another registers with the same id.
pub fn unique_server_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "--replica_server_id={}",
        10_000 + (std::process::id() % 100_000) * 100 + n % 100
    )
}

/// A client id of its own, so no stored position of another run applies.
pub fn unique_client_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "--client_id=test-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Tests run many sluices at once: each serves HTTP on a free port of its
/// own unless the test names one.
fn http_port_unless_given(args: &[&str]) -> Option<&'static str> {
    (!args.iter().any(|a| a.starts_with("--http_port"))).then_some("--http_port=0")
}

/// A port nobody listens on right now (for a sluice's HTTP endpoint).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// GET `path` from a sluice's HTTP endpoint: (status, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// The options that log in to the MariaDB on `port` as the
/// least-privileged user the scripts create (`sluice`).
pub fn login_args(port: u16) -> [String; 4] {
    [
        "--host=127.0.0.1".into(),
        format!("--port={port}"),
        "--user=sluice".into(),
        "--password=sluice".into(),
    ]
}

/// Starts sluice against the private MariaDB as the least-privileged user.
pub fn spawn_sluice(extra: &[&str]) -> Child {
    Command::new(sluice_bin())
        .args(login_args(ensure_mariadb()))
        .arg("--log_level=warn")
        .arg(unique_server_id())
        .arg(unique_client_id())
        .args(http_port_unless_given(extra))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice")
}

/// The complete lines of sluice's output file, parsed. A last line without
/// its newline is still being written (the file may be read while sluice
/// appends to it) and is left for the next read; a row sluice never
/// finished writing shows as a missing row.
pub fn read_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("sluice wrote invalid JSON ({e}): {l}"))
        })
        .collect()
}

/// sluice's log as text, without the terminal colour sequences around
/// field names and values.
pub fn plain_log(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... m
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

pub fn stop(mut child: Child) -> std::process::Output {
    // Only a child not reaped yet still owns its pid: once `try_wait` has
    // collected it, the pid may belong to any new process (a broker the
    // next test needs), so it must not be signalled.
    if let Ok(None) = child.try_wait() {
        unsafe_kill(child.id(), 15);
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait_with_output().expect("sluice output")
}

pub fn unsafe_kill(pid: u32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// Starts an extra private MariaDB on `port` with `SLUICE_MYSQL_BINLOG=mode`.
pub fn ensure_extra_mariadb(port: u16, mode: &str) -> u16 {
    let st = Command::new(repo_root().join("scripts/mariadb.sh"))
        .arg("start")
        .env("SLUICE_MYSQL_PORT", port.to_string())
        .env("SLUICE_MYSQL_BINLOG", mode)
        .env("SLUICE_MYSQL_BUFFER_POOL", "32M")
        .stdout(Stdio::null())
        .status()
        .expect("run scripts/mariadb.sh");
    assert!(st.success(), "scripts/mariadb.sh start ({mode}) failed");
    port
}

/// Runs sluice to completion with a time limit; returns (exit code, stderr).
pub fn run_sluice(args: &[&str], timeout: Duration) -> (Option<i32>, String) {
    let mut child = Command::new(sluice_bin())
        .args(http_port_unless_given(args))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice");
    let start = Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("sluice output");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A root connection to an extra private MariaDB.
pub async fn root_conn_at(port: u16) -> Result<mysql_async::Conn, mysql_async::Error> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some("root"))
        .prefer_socket(false);
    mysql_async::Conn::new(opts).await
}

pub fn stop_extra_mariadb(port: u16) {
    let st = Command::new(repo_root().join("scripts/mariadb.sh"))
        .arg("stop")
        .env("SLUICE_MYSQL_PORT", port.to_string())
        .status()
        .expect("run scripts/mariadb.sh");
    assert!(st.success());
}

pub fn server_pid(port: u16) -> u32 {
    let pid_file = repo_root().join(format!(".run/mariadb-{port}/mysqld.pid"));
    std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid")
}

/// Sends SIGCONT to a frozen process when dropped, whatever happened.
pub struct Thaw(pub u32);

impl Drop for Thaw {
    fn drop(&mut self) {
        unsafe_kill(self.0, 18);
    }
}

/// Runs `cmd` to its end; returns its exit status and its peak RSS in
/// bytes.
pub fn run_measured(cmd: &mut Command) -> (std::process::ExitStatus, u64) {
    let mut child = cmd.spawn().expect("spawn");
    wait_measured(&mut child, None).expect("no deadline")
}

/// Waits for `child` (killing it past `limit`: `None` then); returns its
/// exit status and its own peak RSS in bytes. The peak is sluice's
/// `VmHWM`, polled while it runs: wait4's `ru_maxrss` also counts this
/// (large, many-threaded) test process's memory at the moment it forked
/// the child, which overstated a 40 MB sluice as 350 MB.
pub fn wait_measured(
    child: &mut std::process::Child,
    limit: Option<Duration>,
) -> Option<(std::process::ExitStatus, u64)> {
    use std::os::unix::process::ExitStatusExt;
    let began = std::time::Instant::now();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut hwm = 0u64;
    // SAFETY: rusage is plain data wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 writes only into the two values passed; the child
        // is ours and reaped only here.
        let rc = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if rc == pid {
            break;
        }
        assert_eq!(rc, 0, "wait4 failed");
        hwm = hwm.max(vm_hwm(pid).unwrap_or(0));
        if limit.is_some_and(|l| began.elapsed() > l) {
            let _ = child.kill();
            // SAFETY: as above.
            unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let peak = if hwm > 0 {
        hwm
    } else {
        usage.ru_maxrss as u64 * 1024 // kilobytes on Linux
    };
    Some((std::process::ExitStatus::from_raw(status), peak))
}

/// A process's peak resident memory so far (`VmHWM`), in bytes.
pub fn vm_hwm(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
