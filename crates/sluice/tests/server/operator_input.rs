//! What an operator or a local client hands sluice cannot stop, damage or
//! mislead it: idle and slow HTTP clients under a low open-file limit, an
//! `output_file` sluice did not write, special files, a mistyped
//! `--init_position` (never stored), `sluice reset-position`, and a log
//! that says "stored" only when it was.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use mysql_async::prelude::Queryable;

const T: Duration = Duration::from_secs(30);

/// The connection options of the least-privileged user.
fn server() -> Vec<String> {
    vec![
        "--host=127.0.0.1".into(),
        format!("--port={}", ensure_mariadb()),
        "--user=sluice".into(),
        "--password=sluice".into(),
    ]
}

fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn rows_of(out: &Path, db: &str, table: &str) -> usize {
    read_lines(out)
        .iter()
        .filter(|v| v["database"] == db && v["table"] == table)
        .count()
}

/// Starts sluice with `args` and at most `nofile` open files (as
/// `ulimit -n` would), its log at `level` on stderr.
fn spawn_limited(args: &[String], nofile: Option<u64>, level: &str) -> Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(sluice_bin());
    cmd.arg(unique_server_id())
        .args(args)
        .args((!args.iter().any(|a| a.starts_with("--http_port"))).then_some("--http_port=0"))
        .arg(format!("--log_level={level}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(n) = nofile {
        // SAFETY: setrlimit is async-signal-safe and touches only the child.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: n,
                    rlim_max: n,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd.spawn().expect("spawn sluice")
}

/// This test process holds hundreds of sockets: its own limit goes up to
/// the hard one.
fn raise_own_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

#[test]
fn idle_http_connections_leave_the_pipeline_its_descriptors() {
    let _gate = crate::common::module_gate(module_path!());
    raise_own_nofile();
    let rt = runtime();
    let db = "opin_fd";
    fresh_database(
        &rt,
        db,
        &[
            "m (n INT)",
            "big (id INT AUTO_INCREMENT PRIMARY KEY, b TEXT)",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let spill = dir.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    let http = free_port();
    let mut args = server();
    args.extend([
        unique_server_id(),
        unique_client_id(),
        "--producer=file".into(),
        format!("--output_file={}", out.display()),
        // Every transaction below spills: each needs a new descriptor.
        "--txn_buffer_bytes=4096".into(),
        format!("--tmp_dir={}", spill.display()),
        format!("--http_port={http}"),
    ]);
    let mut child = spawn_limited(&args, Some(256), "warn");
    assert!(
        until_marker_seen(&rt, db, || rows_of(&out, db, "m") > 0),
        "sluice did not stream"
    );
    // 400 clients that connect and say nothing.
    let idle: Vec<TcpStream> = (0..400)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", http)).ok())
        .collect();
    assert!(idle.len() >= 300, "only {} connections", idle.len());
    let values = vec!["(REPEAT('x', 1000))"; 20].join(",");
    for _ in 0..10 {
        sql_at(
            &rt,
            mysql_port(),
            &[format!("INSERT INTO {db}.big (b) VALUES {values}")],
        );
    }
    assert!(
        wait_for(T, || rows_of(&out, db, "big") == 200
            || child.try_wait().ok().flatten().is_some()),
        "rows stopped"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "sluice exited while idle HTTP clients held connections"
    );
    assert_eq!(rows_of(&out, db, "big"), 200);
    // The idle ones are closed by sluice (after the head deadline)...
    let mut first = idle.into_iter().next().unwrap();
    first.set_read_timeout(Some(T)).unwrap();
    let began = Instant::now();
    let mut buf = Vec::new();
    let _ = first.read_to_end(&mut buf);
    assert!(began.elapsed() < Duration::from_secs(15), "idle kept open");
    // ... and HTTP answers again.
    assert!(
        wait_for(T, || http_get(http, "/ping").is_some_and(|(s, _)| s == 200)),
        "HTTP does not answer after the idle clients"
    );
    let o = stop(child);
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(!log.contains("Too many open files"), "{log}");
}

/// Seconds until sluice closes a connection that behaves as `client` does
/// (it is called once a second until the connection is closed).
fn closed_after(http: u16, mut client: impl FnMut(&mut TcpStream)) -> (Duration, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", http)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let began = Instant::now();
    let mut answer = Vec::new();
    while began.elapsed() < T {
        client(&mut s);
        let mut buf = [0u8; 4096];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    (began.elapsed(), answer)
}

#[test]
fn slow_silent_and_oversized_http_clients_are_cut_off() {
    let _gate = crate::common::module_gate(module_path!());
    let http = free_port();
    let mut args = server();
    args.push(format!("--http_port={http}"));
    let child = spawn_sluice(&refs(&args));
    assert!(wait_for(T, || http_get(http, "/ping").is_some()));
    // Slowloris: a header line a second, never the blank line.
    let mut sent = false;
    let (took, answer) = closed_after(http, |s| {
        let line: &[u8] = if sent {
            b"X-a: b\r\n"
        } else {
            b"GET /ping HTTP/1.1\r\n"
        };
        sent = true;
        let _ = s.write_all(line);
    });
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(8),
        "slowloris closed after {took:?}"
    );
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    // Silent: closed after the idle timeout.
    let (took, _) = closed_after(http, |_| {});
    assert!(
        took < Duration::from_secs(6),
        "silent client closed after {took:?}"
    );
    // A head larger than 16 KiB: 431, not read on and on. (Exactly one
    // byte too many: bytes sluice leaves unread would turn its close into
    // a reset, which can discard the answer.)
    let mut s = TcpStream::connect(("127.0.0.1", http)).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let mut head = b"GET /ping HTTP/1.1\r\nX-a: ".to_vec();
    head.resize(16 * 1024 + 1, b'a');
    let _ = s.write_all(&head);
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
    // Still serving.
    assert_eq!(http_get(http, "/ping"), Some((200, "pong\n".into())));
    stop(child);
}

#[test]
fn an_output_file_sluice_did_not_write_is_refused_and_left_alone() {
    let _gate = crate::common::module_gate(module_path!());
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("app.conf");
    let text = "listen = 80\nmax_connections = 5";
    std::fs::write(&conf, text).unwrap();
    let mut args = server();
    args.extend([
        unique_client_id(),
        "--producer=file".into(),
        format!("--output_file={}", conf.display()),
    ]);
    let (code, err) = run_sluice(&refs(&args), T);
    assert_eq!(code, Some(1), "{err}");
    let err = plain_log(&err);
    let said = "was not written by sluice";
    assert!(
        err.contains(said)
            && err.contains(&conf.display().to_string())
            && err.contains("--output_file"),
        "{err}"
    );
    assert_eq!(err.matches(said).count(), 1, "said more than once: {err}");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), text);
}

#[test]
fn rows_go_to_a_fifo() {
    let _gate = crate::common::module_gate(module_path!());
    let rt = runtime();
    let db = "opin_fifo";
    fresh_database(&rt, db, &["m (n INT)"]);
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("rows");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let (fifo, lines) = (fifo.clone(), lines.clone());
        std::thread::spawn(move || {
            use std::io::BufRead;
            let Ok(f) = std::fs::File::open(&fifo) else {
                return;
            };
            for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        })
    };
    let mut args = server();
    args.extend([
        "--producer=file".into(),
        format!("--output_file={}", fifo.display()),
    ]);
    let mut child = spawn_sluice(&refs(&args));
    let seen = until_marker_seen(&rt, db, || {
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(&format!("\"database\":\"{db}\"")))
    });
    let alive = child.try_wait().unwrap().is_none();
    let o = stop(child);
    // A reader still waiting for a writer (sluice never opened the FIFO)
    // gets one, and its end.
    drop(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo),
    );
    let _ = reader.join();
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(seen && alive, "{log}");
    assert!(!log.contains("Invalid argument"), "{log}");
}

/// The stored position of `client_id`, if any.
fn stored(rt: &tokio::runtime::Runtime, client_id: &str) -> Option<String> {
    rt.block_on(async {
        let mut c = root_conn().await;
        let row: Option<(Option<String>, Option<u64>)> = c
            .exec_first(
                "SELECT binlog_file, binlog_position FROM maxwell.positions WHERE client_id = ? \
                 AND binlog_file IS NOT NULL",
                (client_id,),
            )
            .await
            .unwrap_or(None);
        row.and_then(|(f, p)| Some(format!("{}:{}", f?, p?)))
    })
}

fn client_id(name: &str) -> String {
    format!("opin-{name}-{}", std::process::id())
}

#[test]
fn a_mistyped_init_position_is_refused_and_never_stored() {
    let _gate = crate::common::module_gate(module_path!());
    let rt = runtime();
    let (file, end) = rt.block_on(async {
        let mut c = root_conn().await;
        c.query_drop("FLUSH BINARY LOGS").await.unwrap();
        c.query_drop("CREATE DATABASE IF NOT EXISTS opin_init")
            .await
            .unwrap();
        let at = master_position(&mut c).await;
        let (file, end) = at.split_once(':').unwrap();
        (file.to_string(), end.parse::<u64>().unwrap())
    });
    let id = client_id("typo");
    for (position, why) in [
        (
            "mysql-bin.999999:4".to_string(),
            "mysql-bin.999999 was not found on the server".to_string(),
        ),
        // Far beyond: the file grows while the test runs.
        (
            format!("{file}:{}", end + 100_000_000),
            "beyond the end".to_string(),
        ),
        (format!("{file}:5"), "not the start of an event".to_string()),
    ] {
        let mut args = server();
        args.extend([
            format!("--client_id={id}"),
            format!("--init_position={position}"),
        ]);
        let (code, err) = run_sluice(&refs(&args), T);
        let err = plain_log(&err);
        assert_eq!(code, Some(1), "{position}: {err}");
        assert!(
            err.contains(&why)
                && err.contains("--init_position")
                && err.contains("nothing was stored"),
            "{position}: {err}"
        );
        assert_eq!(err.matches(&why).count(), 1, "said more than once: {err}");
        assert_eq!(stored(&rt, &id), None, "{position} was stored");
    }
    // Offsets beyond 32 bits are refused, not clamped.
    let mut args = server();
    args.extend([
        format!("--client_id={id}"),
        format!("--init_position={file}:4294967300"),
    ]);
    let (code, err) = run_sluice(&refs(&args), T);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("'init_position'") && err.contains("32-bit"),
        "{err}"
    );
    assert_eq!(stored(&rt, &id), None);
}

#[test]
fn reset_position_lets_the_next_start_begin_at_init_position() {
    let _gate = crate::common::module_gate(module_path!());
    let rt = runtime();
    let db = "opin_reset";
    fresh_database(&rt, db, &["m (n INT)"]);
    let start = rt.block_on(async { master_position(&mut root_conn().await).await });
    sql_at(
        &rt,
        mysql_port(),
        &[format!("INSERT INTO {db}.m VALUES (-1)")],
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let id = client_id("reset");
    let mut args = server();
    args.extend([
        format!("--client_id={id}"),
        "--producer=file".into(),
        format!("--output_file={}", out.display()),
    ]);
    // A first run stores a position after the row above.
    let child = spawn_sluice(&refs(&args));
    assert!(until_marker_seen(&rt, db, || rows_of(&out, db, "m") > 0));
    stop(child);
    let before = stored(&rt, &id).expect("a stored position");
    assert_eq!(
        read_lines(&out)
            .iter()
            .filter(|v| v["data"]["n"] == -1)
            .count(),
        0,
        "the first run started before the row"
    );
    // --init_position alone cannot move it, and says how.
    let mut with_init = args.clone();
    with_init.push(format!("--init_position={start}"));
    let child = spawn_limited(&with_init, None, "warn");
    let before_second = rows_of(&out, db, "m");
    let seen = until_marker_seen(&rt, db, || rows_of(&out, db, "m") > before_second);
    let log = plain_log(&String::from_utf8_lossy(&stop(child).stderr));
    assert!(seen, "{log}");
    assert!(
        log.contains("init_position is ignored") && log.contains("sluice reset-position"),
        "{log}"
    );
    // reset-position forgets it...
    let o = Command::new(sluice_bin())
        .arg("reset-position")
        .args(&args)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        said.contains("forgot the stored position") && said.contains(&id),
        "{said}"
    );
    assert_ne!(stored(&rt, &id), Some(before));
    assert_eq!(stored(&rt, &id), None);
    // ... and the next start begins at --init_position: the row is sent.
    let child = spawn_sluice(&refs(&with_init));
    let resent = wait_for(T, || {
        read_lines(&out)
            .iter()
            .any(|v| v["database"] == db && v["data"]["n"] == -1)
    });
    stop(child);
    assert!(resent, "not started at --init_position");
    // Nothing stored: said so, exit 0.
    let o = Command::new(sluice_bin())
        .arg("reset-position")
        .args(&args)
        .arg(format!("--client_id={}", client_id("never")))
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("no stored position"));
}

#[test]
fn the_log_says_stored_only_when_the_position_was_stored() {
    let _gate = crate::common::module_gate(module_path!());
    let rt = runtime();
    let db = "opin_honest";
    let state = "opin_honest_state";
    fresh_database(&rt, db, &["m (n INT)"]);
    sql_at(
        &rt,
        mysql_port(),
        &[format!("DROP DATABASE IF EXISTS {state}")],
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let http = free_port();
    let args = vec![
        "--host=127.0.0.1".to_string(),
        format!("--port={}", mysql_port()),
        "--user=root".into(),
        format!("--schema_database={state}"),
        unique_server_id(),
        unique_client_id(),
        "--producer=file".into(),
        format!("--output_file={}", out.display()),
        format!("--http_port={http}"),
    ];
    let child = spawn_limited(&args, None, "info");
    assert!(until_marker_seen(&rt, db, || rows_of(&out, db, "m") > 0));
    // The position store goes away; rows still flow and are delivered.
    sql_at(
        &rt,
        mysql_port(),
        &[format!("DROP TABLE {state}.positions")],
    );
    let before = rows_of(&out, db, "m");
    assert!(until_marker_seen(&rt, db, || rows_of(&out, db, "m") > before));
    let behind = wait_for(T, || {
        let Some((200, body)) = http_get(http, "/status") else {
            return false;
        };
        let s: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        s["position"]["processed"] != s["position"]["stored"]
    });
    let log = plain_log(&String::from_utf8_lossy(&stop(child).stderr));
    assert!(behind, "{log}");
    assert!(log.contains("could not store the position"), "{log}");
    assert!(!log.contains("position stored"), "{log}");
    assert!(
        log.contains("the position could NOT be stored")
            && log.contains("sends the rows after it again"),
        "{log}"
    );
}

#[test]
fn a_tmp_dir_that_cannot_take_spill_files_stops_sluice_at_start() {
    let _gate = crate::common::module_gate(module_path!());
    let (code, err) = run_sluice(&["--tmp_dir=/nonexistent/sluice-spill"], T);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("'tmp_dir'")
            && err.contains("does not exist")
            && err.contains("/nonexistent/sluice-spill"),
        "{err}"
    );
    let (code, err) = run_sluice(&["--http_path_prefix=/cdc?x"], T);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("'http_path_prefix'") && err.contains("?"),
        "{err}"
    );
}

#[test]
fn a_fatal_error_is_said_once_without_repeating_its_cause() {
    let _gate = crate::common::module_gate(module_path!());
    // Nothing listens on port 1: the connection is refused.
    let (code, err) = run_sluice(&["--host=127.0.0.1", "--port=1", "--user=x"], T);
    assert_eq!(code, Some(1), "{err}");
    let err = plain_log(&err);
    assert_eq!(err.matches("Connection refused").count(), 1, "{err}");
    assert_eq!(err.matches("Input/output error").count(), 1, "{err}");
    assert_eq!(err.matches("ERROR").count(), 1, "{err}");
}
