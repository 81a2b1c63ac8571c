//! The NATS producer against a private nats-server with JetStream
//! (`scripts/nats.sh`): rows published to core NATS and to a JetStream
//! stream are read back by a client of the test's own and replayed against
//! the source; a server restart mid-stream loses no row of the stream; a
//! row the server cannot take (over max_payload) stops progress, goes to
//! the dead-letter subject, or is dropped and counted, as configured.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::replay;
use crate::common::*;
use base64::Engine;
use serde_json::{json, Value};

const NATS_PORT: u16 = 23422;

/// One test at a time: one of them stops and restarts the server.
static SERIAL: Mutex<()> = Mutex::new(());

fn nats_script(arg: &str) {
    nats_script_at(NATS_PORT, arg)
}

fn nats_script_at(port: u16, arg: &str) {
    let st = Command::new(repo_root().join("scripts/nats.sh"))
        .arg(arg)
        .env("SLUICE_NATS_PORT", port.to_string())
        .stdout(Stdio::null())
        .status()
        .expect("run scripts/nats.sh");
    assert!(st.success(), "scripts/nats.sh {arg} failed");
}

/// (subject, payload) of every message a client received.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A minimal NATS client of the test's own: subscriptions collected in the
/// background, and request/reply for the JetStream API.
struct Client {
    w: TcpStream,
    /// (subject, payload) of every message received.
    got: Received,
    next_sid: u32,
    /// Stream messages read so far, by sequence.
    stored: Vec<Value>,
}

impl Client {
    fn connect() -> Client {
        Client::connect_to(NATS_PORT)
    }

    fn connect_to(port: u16) -> Client {
        let mut s = None;
        for _ in 0..100 {
            if let Ok(c) = TcpStream::connect(("127.0.0.1", port)) {
                s = Some(c);
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let s = s.expect("nats-server answers");
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut info = String::new();
        r.read_line(&mut info).unwrap();
        assert!(info.starts_with("INFO"), "{info}");
        let mut w = s;
        w.write_all(b"CONNECT {\"verbose\":false,\"headers\":true}\r\n")
            .unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let mut pong = w.try_clone().unwrap();
        std::thread::spawn(move || loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.first().copied() {
                Some("PING") => {
                    let _ = pong.write_all(b"PONG\r\n");
                }
                Some("MSG") | Some("HMSG") => {
                    let total: usize = words.last().unwrap().parse().unwrap();
                    let hdr: usize = if words[0] == "HMSG" {
                        words[words.len() - 2].parse().unwrap()
                    } else {
                        0
                    };
                    let mut body = vec![0u8; total + 2];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    body.truncate(total);
                    let payload = body.split_off(hdr);
                    sink.lock().unwrap().push((words[1].to_string(), payload));
                }
                _ => {}
            }
        });
        Client {
            w,
            got,
            next_sid: 1,
            stored: Vec::new(),
        }
    }

    fn sub(&mut self, subject: &str) {
        let sid = self.next_sid;
        self.next_sid += 1;
        write!(self.w, "SUB {subject} {sid}\r\nPING\r\n").unwrap();
        // The server handles commands in order: a request round trip
        // after this proves the subscription is in place.
        self.request("$JS.API.INFO", b"");
    }

    fn request(&mut self, subject: &str, payload: &[u8]) -> Value {
        let inbox = format!("_INBOX.test.{}", self.next_sid);
        let sid = self.next_sid;
        self.next_sid += 1;
        write!(
            self.w,
            "SUB {inbox} {sid}\r\nPUB {subject} {inbox} {}\r\n",
            payload.len()
        )
        .unwrap();
        self.w.write_all(payload).unwrap();
        self.w.write_all(b"\r\n").unwrap();
        let mut answer = None;
        assert!(
            wait_for(Duration::from_secs(10), || {
                let got = self.got.lock().unwrap();
                answer = got
                    .iter()
                    .find(|(s, _)| *s == inbox)
                    .map(|(_, p)| p.clone());
                answer.is_some()
            }),
            "no answer to {subject}"
        );
        serde_json::from_slice(&answer.unwrap()).unwrap_or(Value::Null)
    }

    /// Payloads received on subjects starting with `prefix`, as JSON.
    fn received(&self, prefix: &str) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| s.starts_with(prefix))
            .map(|(_, p)| serde_json::from_slice(p).expect("JSON"))
            .collect()
    }

    /// Every message stored in `stream`, in order, read with the
    /// JetStream API: the messages not read yet are asked for all at once.
    fn stream_messages(&mut self, stream: &str) -> Vec<Value> {
        let info = self.request(&format!("$JS.API.STREAM.INFO.{stream}"), b"");
        let last = info["state"]["last_seq"].as_u64().unwrap_or(0);
        let first = self.stored.len() as u64 + 1;
        if last >= first {
            let sid = self.next_sid;
            self.next_sid += 1;
            let inbox = format!("_INBOX.get{sid}");
            let mut out = format!("SUB {inbox}.* {sid}\r\n");
            for seq in first..=last {
                let req = json!({"seq": seq}).to_string();
                out.push_str(&format!(
                    "PUB $JS.API.STREAM.MSG.GET.{stream} {inbox}.{seq} {}\r\n{req}\r\n",
                    req.len()
                ));
            }
            self.w.write_all(out.as_bytes()).unwrap();
            let want = (last - first + 1) as usize;
            let prefix = format!("{inbox}.");
            let answered = wait_for(Duration::from_secs(30), || {
                self.got
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(s, _)| s.starts_with(&prefix))
                    .count()
                    >= want
            });
            assert!(answered, "the stream did not answer every MSG.GET");
            let mut answers: Vec<(u64, Value)> = self
                .got
                .lock()
                .unwrap()
                .iter()
                .filter_map(|(s, p)| {
                    let seq = s.strip_prefix(&prefix)?.parse().ok()?;
                    let m: Value = serde_json::from_slice(p).ok()?;
                    let data = m["message"]["data"].as_str()?;
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .ok()?;
                    Some((seq, serde_json::from_slice(&bytes).ok()?))
                })
                .collect();
            answers.sort_by_key(|(seq, _)| *seq);
            assert_eq!(answers.len(), want, "a stored message is not JSON");
            self.stored.extend(answers.into_iter().map(|(_, v)| v));
        }
        self.stored.clone()
    }
}

fn sluice(extra: &[&str]) -> std::process::Child {
    let url = format!("--nats_url=nats://127.0.0.1:{NATS_PORT}");
    let mut args = vec!["--producer=nats", url.as_str()];
    args.extend_from_slice(extra);
    spawn_sluice(&args)
}

#[test]
fn core_nats_rows_replay_to_the_source() {
    let _gate = crate::common::module_gate(module_path!());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    nats_script("start");
    let rt = runtime();
    let db = format!("nats_core_{}", std::process::id());
    replay::create_tables_with_markers(&rt, &db);
    let mut client = Client::connect();
    client.sub(&format!("{db}.>"));
    let child = sluice(&[]);
    assert!(until_marker_seen(&rt, &db, || !client
        .received(&format!("{db}.m"))
        .is_empty()));
    let load = replay::Background::start(&db);
    std::thread::sleep(Duration::from_secs(4));
    load.finish();
    let expected = replay::source_now(&rt, &db);
    // Subjects are Maxwell's default %{database}.%{table}.
    let result = replay::converges_with(
        || replay::without_markers(client.received(&format!("{db}."))),
        &db,
        &expected,
        Duration::from_secs(30),
    );
    let out = stop(child);
    assert!(
        result.is_ok(),
        "{}\n{}",
        result.unwrap_err(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(client
        .received(&format!("{db}.a"))
        .iter()
        .all(|v| v["table"] == "a"));
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}

#[test]
fn jetstream_acknowledged_rows_survive_a_server_restart() {
    let _gate = crate::common::module_gate(module_path!());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    nats_script("start");
    let rt = runtime();
    let pid = std::process::id();
    let db = format!("nats_js_{pid}");
    let stream = format!("SLUICE_{pid}");
    replay::create_tables_with_markers(&rt, &db);
    let mut client = Client::connect();
    let created = client.request(
        &format!("$JS.API.STREAM.CREATE.{stream}"),
        json!({"name": stream, "subjects": [format!("js.{db}.>")], "storage": "file"})
            .to_string()
            .as_bytes(),
    );
    assert!(created.get("error").is_none(), "{created}");
    let child = sluice(&[
        "--nats_jetstream=true",
        "--nats_subject=js.%{database}.%{table}",
    ]);
    assert!(until_marker_seen(&rt, &db, || {
        client.request(&format!("$JS.API.STREAM.INFO.{stream}"), b"")["state"]["messages"]
            .as_u64()
            .unwrap_or(0)
            > 0
    }));
    let load = replay::Background::start(&db);
    std::thread::sleep(Duration::from_secs(2));
    // The server goes away while rows keep coming, then comes back with
    // its store: what it acknowledged is there, the rest is sent again.
    nats_script("stop");
    std::thread::sleep(Duration::from_secs(3));
    nats_script("start");
    std::thread::sleep(Duration::from_secs(2));
    load.finish();
    let expected = replay::source_now(&rt, &db);
    let mut client = Client::connect();
    let result = replay::converges_with(
        || replay::without_markers(client.stream_messages(&stream)),
        &db,
        &expected,
        Duration::from_secs(60),
    );
    let out = stop(child);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(result.is_ok(), "{}\n{log}", result.unwrap_err());
    assert!(
        log.contains("reconnecting"),
        "the outage was not noticed:\n{log}"
    );
    client.request(&format!("$JS.API.STREAM.DELETE.{stream}"), b"");
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}

/// A text of `n` bytes, over the server's max_payload (1 MiB) as a row.
fn big_row(db: &str, id: i64, n: usize) -> String {
    format!("INSERT INTO {db}.big VALUES ({id}, REPEAT('x', {n}))")
}

#[test]
fn a_row_over_max_payload_stops_or_is_dead_lettered_or_dropped() {
    let _gate = crate::common::module_gate(module_path!());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    nats_script("start");
    let rt = runtime();
    let db = format!("nats_big_{}", std::process::id());
    fresh_database(
        &rt,
        &db,
        &["m (n INT)", "big (id INT PRIMARY KEY, t MEDIUMTEXT)"],
    );
    let mut client = Client::connect();
    client.sub(&format!("{db}.>"));
    client.sub(&format!("dead.{db}"));

    // Default: progress stops, naming the row and the way out.
    let mut child = sluice(&[]);
    assert!(until_marker_seen(&rt, &db, || !client
        .received(&format!("{db}.m"))
        .is_empty()));
    sql_at(&rt, mysql_port(), &[big_row(&db, 1, 1_500_000)]);
    let exited = wait_for(Duration::from_secs(30), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    let out = stop(child);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(exited, "sluice went on:\n{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    for needle in [
        "max_payload",
        &format!("{db}.big"),
        "Progress stops here",
        "--dead_letter_topic",
        "--ignore_producer_error",
    ] {
        assert!(err.contains(needle), "'{needle}' missing:\n{err}");
    }

    // A sluice that streams with `args`: a big row, then a small one;
    // asserts that the small one arrives, and returns sluice's /metrics
    // from just before it is stopped.
    let refuse_then_deliver = |args: &[&str], big: i64, small: i64| -> String {
        let http = free_port();
        let http_arg = format!("--http_port={http}");
        let mut all = args.to_vec();
        all.push(&http_arg);
        let child = sluice(&all);
        let before = client.received(&format!("{db}.m")).len();
        assert!(until_marker_seen(&rt, &db, || client
            .received(&format!("{db}.m"))
            .len()
            > before));
        sql_at(
            &rt,
            mysql_port(),
            &[
                big_row(&db, big, 1_500_000),
                format!("INSERT INTO {db}.big VALUES ({small}, 'small')"),
            ],
        );
        let seen = wait_for(Duration::from_secs(20), || {
            client
                .received(&format!("{db}.big"))
                .iter()
                .any(|v| v["data"]["id"] == small)
        });
        let metrics = http_get(http, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default();
        let out = stop(child);
        assert!(seen, "{}", String::from_utf8_lossy(&out.stderr));
        metrics
    };

    // Dead letter: the skeleton goes to its subject, the stream goes on.
    let dead = format!("--dead_letter_topic=dead.{db}");
    refuse_then_deliver(&[&dead], 2, 3);
    let letters = client.received(&format!("dead.{db}"));
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["database"], db.as_str());
    assert_eq!(letters[0]["table"], "big");
    assert_eq!(letters[0]["data"], json!({"id": 2}));
    assert!(letters[0]["reason"]
        .as_str()
        .unwrap()
        .contains("max_payload"));

    // Drop and count.
    let metrics = refuse_then_deliver(&["--ignore_producer_error=true"], 4, 5);
    assert!(
        metrics
            .lines()
            .any(|l| l == "sluice_producer_dropped_total 1"),
        "{metrics}"
    );
    assert!(client
        .received(&format!("{db}.big"))
        .iter()
        .all(|v| v["data"]["id"] != 4));
    assert_eq!(client.received(&format!("dead.{db}")).len(), 1);
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}

/// Ids of table t received by `client`.
fn ids(client: &Client, db: &str) -> Vec<i64> {
    client
        .received(&format!("{db}.t"))
        .iter()
        .filter_map(|v| v["data"]["id"].as_i64())
        .collect()
}

#[test]
fn sighup_moves_to_a_new_server_named_in_the_config_file() {
    let _gate = crate::common::module_gate(module_path!());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let second = 23423u16;
    nats_script("start");
    let rt = runtime();
    let db = format!("nats_hup_{}", std::process::id());
    fresh_database(&rt, &db, &["m (n INT)", "t (id INT PRIMARY KEY)"]);
    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("sluice.properties");
    let write_url = |port: u16| {
        std::fs::write(
            &props,
            format!("producer=nats\nnats_url=nats://127.0.0.1:{port}\n"),
        )
        .unwrap()
    };
    write_url(NATS_PORT);
    let mut first = Client::connect();
    first.sub(&format!("{db}.>"));
    let http = free_port();
    let config = format!("--config={}", props.display());
    let http_arg = format!("--http_port={http}");
    let mut child = spawn_sluice(&[&config, &http_arg]);
    assert!(until_marker_seen(&rt, &db, || !first
        .received(&format!("{db}.m"))
        .is_empty()));
    let insert = |from: i64, to: i64| {
        sql_at(
            &rt,
            mysql_port(),
            &[format!(
                "INSERT INTO {db}.t SELECT seq FROM {db}.seq_{from}_to_{to}"
            )],
        )
    };
    insert(1, 100);
    assert!(wait_for(Duration::from_secs(20), || ids(&first, &db).len() >= 100));

    // The server goes away with rows coming; a new one elsewhere; the
    // config file names it; SIGHUP.
    nats_script("stop");
    insert(101, 200);
    nats_script_at(second, "start");
    let mut moved = Client::connect_to(second);
    moved.sub(&format!("{db}.>"));
    write_url(second);
    unsafe_kill(child.id(), 1);
    let arrived = wait_for(Duration::from_secs(60), || {
        (101..=200).all(|i| ids(&moved, &db).contains(&i))
    });
    let still_running = matches!(child.try_wait(), Ok(None));
    let metrics = http_get(http, "/metrics")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let out = stop(child);
    nats_script_at(second, "stop");
    nats_script("start");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(still_running, "sluice exited:\n{log}");
    let seen: Vec<i64> = ids(&first, &db)
        .into_iter()
        .chain(ids(&moved, &db))
        .collect();
    let missing: Vec<i64> = (1..=200).filter(|i| !seen.contains(i)).collect();
    assert!(
        arrived && missing.is_empty(),
        "rows lost: {missing:?}\n{log}"
    );
    assert!(
        metrics.contains("sluice_producer_rebuilds_total 1"),
        "{metrics}"
    );
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}
