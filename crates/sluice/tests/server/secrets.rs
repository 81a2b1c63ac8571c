//! Secrets never leave sluice: a MySQL password, `secret_key`,
//! `redis_auth`, and the passwords in `nats_url` and `rabbitmq_uri`, given
//! to a normal run (debug logging) and to failing runs (a wrong password,
//! bad values of secret options, brokers that are not there). Everything
//! the runs write (stderr, stdout, the output file, `/status`, `/metrics`)
//! is searched for them.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;

const MYSQL_PASSWORD: &str = "My5ql-pw-Zq81xT";
const WRONG_PASSWORD: &str = "Wr0ng-pw-Kd72yV";
const SECRET_KEY: &str = "Key-Qp94sR1623ab"; // 16 bytes
const SHORT_KEY: &str = "ShortKey-Xw37u"; // 14 bytes: refused
const REDIS_AUTH: &str = "R3dis-auth-Vb55nM";
const NATS_PASSWORD: &str = "N4ts-pw-Hy08cL";
const RABBIT_PASSWORD: &str = "R4bbit-pw-Jt66eP";
const SECRETS: &[&str] = &[
    MYSQL_PASSWORD,
    WRONG_PASSWORD,
    SECRET_KEY,
    SHORT_KEY,
    REDIS_AUTH,
    NATS_PASSWORD,
    RABBIT_PASSWORD,
];

/// Everything a run wrote, by where it was found.
#[derive(Default)]
struct Written(Vec<(String, String)>);

impl Written {
    fn add(&mut self, what: impl Into<String>, text: impl Into<String>) {
        self.0.push((what.into(), text.into()));
    }

    fn add_file(&mut self, what: &str, path: &Path) {
        self.add(what, std::fs::read_to_string(path).unwrap_or_default());
    }

    fn add_http(&mut self, what: &str, port: u16) {
        for path in ["/status", "/metrics", "/healthcheck", "/leader"] {
            if let Some((_, body)) = http_get(port, path) {
                self.add(format!("{what} {path}"), body);
            }
        }
    }

    fn assert_clean(&self) {
        for (what, text) in &self.0 {
            for secret in SECRETS {
                assert!(
                    !text.contains(secret),
                    "{secret} appears in {what}:\n{text}"
                );
            }
        }
    }
}

fn base_args(password: &str, http: u16) -> Vec<String> {
    vec![
        "--host=127.0.0.1".into(),
        format!("--port={}", mysql_port()),
        "--user=secretive".into(),
        format!("--password={password}"),
        format!("--http_port={http}"),
        unique_client_id(),
        unique_server_id(),
    ]
}

/// Runs sluice with stdout and stderr in files under `dir`.
fn spawn_logged(args: &[String], dir: &Path, name: &str) -> Child {
    let file = |ext: &str| std::fs::File::create(dir.join(format!("{name}.{ext}"))).unwrap();
    Command::new(sluice_bin())
        .args(args)
        .stdout(Stdio::from(file("stdout")))
        .stderr(Stdio::from(file("stderr")))
        .spawn()
        .unwrap()
}

fn finish(child: Child, dir: &Path, name: &str, written: &mut Written) -> Option<i32> {
    let code = stop(child).status.code();
    written.add_file(
        &format!("{name} stdout"),
        &dir.join(format!("{name}.stdout")),
    );
    written.add_file(
        &format!("{name} stderr"),
        &dir.join(format!("{name}.stderr")),
    );
    code
}

fn text(path: &Path) -> String {
    plain_log(&std::fs::read_to_string(path).unwrap_or_default())
}

#[test]
fn no_run_writes_a_secret_anywhere() {
    let _gate = crate::common::module_gate(module_path!());
    let rt = runtime();
    let db = format!("secrets_{}", std::process::id());
    sql_at(
        &rt,
        mysql_port(),
        &[
            "DROP USER IF EXISTS 'secretive'@'127.0.0.1'".into(),
            format!("CREATE USER 'secretive'@'127.0.0.1' IDENTIFIED BY '{MYSQL_PASSWORD}'"),
            "GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'secretive'@'127.0.0.1'"
                .into(),
            "GRANT ALL ON maxwell.* TO 'secretive'@'127.0.0.1'".into(),
            format!("DROP DATABASE IF EXISTS {db}"),
            format!("CREATE DATABASE {db}"),
            format!("CREATE TABLE {db}.m (n INT)"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut written = Written::default();
    let brokers = [
        format!("--redis_auth={REDIS_AUTH}"),
        format!("--nats_url=nats://cdc:{NATS_PASSWORD}@127.0.0.1:1"),
        format!("--rabbitmq_uri=amqp://cdc:{RABBIT_PASSWORD}@127.0.0.1:1/vh"),
    ];

    // A normal run, logging everything, encrypting with secret_key.
    let http = free_port();
    let out = d.join("out.json");
    let mut args = base_args(MYSQL_PASSWORD, http);
    args.extend([
        "--log_level=debug".to_string(),
        "--producer=file".into(),
        format!("--output_file={}", out.display()),
        "--encrypt=data".into(),
        format!("--secret_key={SECRET_KEY}"),
    ]);
    args.extend(brokers.iter().cloned());
    let child = spawn_logged(&args, d, "normal");
    let streamed = until_marker_seen(&rt, &db, || {
        read_lines(&out)
            .iter()
            .any(|v| v["database"] == db.as_str())
    });
    written.add_http("normal", http);
    let code = finish(child, d, "normal", &mut written);
    written.add_file("the output file", &out);
    assert!(streamed, "{}", text(&d.join("normal.stderr")));
    assert_eq!(code, Some(0), "{}", text(&d.join("normal.stderr")));

    // A wrong password: exit 1, naming the user, not the password.
    let http = free_port();
    let mut args = base_args(WRONG_PASSWORD, http);
    args.push("--log_level=debug".into());
    let child = spawn_logged(&args, d, "wrong");
    let mut child = child;
    let exited = wait_for(Duration::from_secs(30), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    let code = finish(child, d, "wrong", &mut written);
    let err = text(&d.join("wrong.stderr"));
    assert!(exited && code == Some(1), "{err}");
    assert!(err.contains("secretive"), "{err}");

    // Bad values of secret options: exit 2, naming the option.
    for (name, bad) in [
        (
            "short_key",
            vec![
                "--encrypt=data".to_string(),
                format!("--secret_key={SHORT_KEY}"),
            ],
        ),
        (
            "nats_no_host",
            vec![
                "--producer=nats".into(),
                format!("--nats_url=nats://cdc:{NATS_PASSWORD}"),
            ],
        ),
        (
            // tls:// with a CA file that cannot be read.
            "nats_tls",
            vec![
                "--producer=nats".into(),
                format!("--nats_url=tls://cdc:{NATS_PASSWORD}@h:1"),
                "--nats_ssl_ca=/nonexistent/ca.pem".into(),
            ],
        ),
        (
            "rabbit_no_host",
            vec![
                "--producer=rabbitmq".into(),
                format!("--rabbitmq_uri=amqp://cdc:{RABBIT_PASSWORD}/vh"),
            ],
        ),
        (
            "rabbit_escape",
            vec![
                "--producer=rabbitmq".into(),
                format!("--rabbitmq_uri=amqp://cdc:{RABBIT_PASSWORD}%zz@h/vh"),
            ],
        ),
    ] {
        let mut args = base_args(MYSQL_PASSWORD, 0);
        args.extend(bad);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, err) = run_sluice(&refs, Duration::from_secs(30));
        assert_eq!(code, Some(2), "{name}: {err}");
        written.add(format!("{name} stderr"), err);
    }

    // Brokers that are not there: sluice retries and says why.
    for (name, producer) in [
        ("redis", "--producer=redis"),
        ("nats", "--producer=nats"),
        ("rabbitmq", "--producer=rabbitmq"),
    ] {
        let http = free_port();
        let mut args = base_args(MYSQL_PASSWORD, http);
        args.extend([
            "--log_level=debug".to_string(),
            producer.into(),
            "--redis_port=1".into(),
        ]);
        args.extend(brokers.iter().cloned());
        let child = spawn_logged(&args, d, name);
        let stderr = d.join(format!("{name}.stderr"));
        // Rows to deliver: the producer tries, fails and says so.
        let mut n = 0;
        let complained = wait_for(Duration::from_secs(30), || {
            n += 1;
            sql_at(
                &rt,
                mysql_port(),
                &[format!("INSERT INTO {db}.m VALUES ({n})")],
            );
            std::thread::sleep(Duration::from_millis(200));
            text(&stderr).contains("cannot deliver")
        });
        written.add_http(name, http);
        finish(child, d, name, &mut written);
        assert!(complained, "{name}: {}", text(&stderr));
    }

    written.assert_clean();
    sql_at(
        &rt,
        mysql_port(),
        &[
            format!("DROP DATABASE {db}"),
            "DROP USER 'secretive'@'127.0.0.1'".into(),
        ],
    );
}
