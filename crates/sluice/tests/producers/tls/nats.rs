//! NATS over TLS (nats-server with a `tls` block: it requires TLS, and
//! starts it after its INFO), and logins by NKey. Rows are read back by a
//! subscriber of the test's own over TLS.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rustls::{ClientConnection, StreamOwned};
use sluice_producers::nats_auth::{KeyKind, NKey};
use sluice_secure::tls::{SslMode, TlsOptions};

use super::*;

/// Good certificate, client certificates required.
const GOOD: u16 = 23435;
const EXPIRED: u16 = 23436;
const WRONG_HOST: u16 = 23437;
/// Plain text, one NKey user.
const NKEY: u16 = 23438;

fn start(port: u16, cert: &str, client_auth: bool) {
    script(
        "nats.sh",
        "start",
        &[
            ("SLUICE_NATS_PORT", port.to_string()),
            ("SLUICE_NATS_TLS", cert.to_string()),
            (
                "SLUICE_TLS_CLIENT_AUTH",
                if client_auth { "yes" } else { "no" }.to_string(),
            ),
        ],
    );
}

fn stop(port: u16) {
    script("nats.sh", "stop", &[("SLUICE_NATS_PORT", port.to_string())]);
}

/// A subscriber over TLS (with the client certificate): the payloads of
/// the messages on `subject`, read for `window` or until `want` arrived.
struct Subscriber {
    tls: BufReader<StreamOwned<ClientConnection, TcpStream>>,
}

impl Subscriber {
    fn connect(port: u16, subject: &str) -> Subscriber {
        let tcp = eventually(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        tcp.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut plain = BufReader::new(tcp.try_clone().unwrap());
        let mut info = String::new();
        plain.read_line(&mut info).unwrap();
        assert!(info.contains("\"tls_required\":true"), "{info}");
        let options = TlsOptions {
            mode: SslMode::VerifyIdentity,
            ca: Some(certs().join("ca.pem")),
            cert: Some(certs().join("client.pem")),
            key: Some(certs().join("client.key")),
            option_prefix: String::new(),
        };
        let conn = ClientConnection::new(
            options.client_config().unwrap(),
            options.server_name("localhost").unwrap(),
        )
        .unwrap();
        let mut s = BufReader::new(StreamOwned::new(conn, tcp));
        write!(
            s.get_mut(),
            "CONNECT {{\"verbose\":false}}\r\nSUB {subject} 1\r\nPING\r\n"
        )
        .unwrap();
        s.get_mut().flush().unwrap();
        let mut sub = Subscriber { tls: s };
        let mut pong = false;
        sub.read(Duration::from_secs(10), |line, _| {
            pong |= line.starts_with("PONG");
            pong
        });
        assert!(pong, "no PONG from the server");
        sub
    }

    /// Reads lines (and message bodies) until `done` says so or `timeout`.
    fn read(&mut self, timeout: Duration, mut done: impl FnMut(&str, Option<&[u8]>) -> bool) {
        let start = Instant::now();
        let mut line = String::new();
        while start.elapsed() < timeout {
            match self.tls.read_line(&mut line) {
                Ok(0) => return,
                Ok(_) if line.ends_with('\n') => {
                    let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
                    let mut body = None;
                    if words.first().map(String::as_str) == Some("MSG") {
                        let n: usize = words.last().unwrap().parse().unwrap();
                        let mut b = vec![0u8; n + 2];
                        let mut got = 0;
                        while got < b.len() {
                            match std::io::Read::read(&mut self.tls, &mut b[got..]) {
                                Ok(k) => got += k,
                                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                                Err(e) => panic!("{e}"),
                            }
                        }
                        b.truncate(n);
                        body = Some(b);
                    } else if words.first().map(String::as_str) == Some("PING") {
                        self.tls.get_mut().write_all(b"PONG\r\n").unwrap();
                        self.tls.get_mut().flush().unwrap();
                    }
                    let stop = done(&line, body.as_deref());
                    line.clear();
                    if stop {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("subscriber: {e}"),
            }
        }
    }
}

fn tls_args(url: &str, mode: &str, ca: &str, db: &str) -> Vec<String> {
    vec![
        "--producer=nats".into(),
        format!("--nats_url={url}"),
        format!("--nats_ssl={mode}"),
        format!("--nats_ssl_ca={}", cert(ca)),
        format!("--nats_subject={db}.%{{table}}"),
    ]
}

#[test]
fn rows_reach_nats_over_tls_with_a_client_certificate() {
    let _gate = crate::common::module_gate(module_path!());
    start(GOOD, "server", true);
    let rt = runtime();
    let db = format!("ntls{}", std::process::id());
    database(&rt, &db);
    let mut sub = Subscriber::connect(GOOD, &format!("{db}.t"));
    // tls:// asks for TLS: VERIFY_IDENTITY of "localhost" by default.
    let mut args = tls_args(
        &format!("tls://localhost:{GOOD}"),
        "DISABLED",
        "ca.pem",
        &db,
    );
    args.extend([
        format!("--nats_ssl_cert={}", cert("client.pem")),
        format!("--nats_ssl_key={}", cert("client.key")),
    ]);
    let s = streaming(&rt, &db, &args, 100);
    let mut ids = Vec::new();
    sub.read(Duration::from_secs(20), |_, body| {
        if let Some(b) = body {
            let v: serde_json::Value = serde_json::from_slice(b).unwrap();
            ids.push(v["data"]["id"].as_i64().unwrap());
        }
        ids.len() >= 100
    });
    let (_, log) = s.stop();
    assert_eq!(ids, (1..=100).collect::<Vec<_>>(), "{log}");

    // A nats:// URL to a server that requires TLS: upgraded (VERIFY_IDENTITY,
    // so the CA must be given); without the client certificate the server
    // ends the handshake, naming the options.
    refused(
        &rt,
        &db,
        &tls_args(
            &format!("nats://127.0.0.1:{GOOD}"),
            "DISABLED",
            "ca.pem",
            &db,
        ),
        &["nats_ssl_cert", "nats_ssl_key"],
    );
    stop(GOOD);
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}

#[test]
fn wrong_ca_wrong_host_and_expired_certificates_are_refused_naming_the_option() {
    let _gate = crate::common::module_gate(module_path!());
    bad_certificates_test(
        "nats",
        EXPIRED,
        WRONG_HOST,
        |port, c| start(port, c, false),
        stop,
        |port, mode, ca, db| tls_args(&format!("nats://127.0.0.1:{port}"), mode, ca, db),
    );
}

#[test]
fn an_nkey_user_logs_in_by_signing_the_nonce_and_its_seed_is_never_logged() {
    let _gate = crate::common::module_gate(module_path!());
    let dir = tempfile::tempdir().unwrap();
    let seed: [u8; 32] = std::array::from_fn(|i| {
        (std::process::id() as u8)
            .wrapping_mul(31)
            .wrapping_add(i as u8)
    });
    let user = NKey::new(KeyKind::User, seed);
    let stranger = NKey::new(KeyKind::User, [9; 32]);
    let auth = dir.path().join("auth.conf");
    std::fs::write(
        &auth,
        format!(
            "authorization {{ users = [ {{ nkey: \"{}\" }} ] }}\n",
            user.public_key()
        ),
    )
    .unwrap();
    script(
        "nats.sh",
        "start",
        &[
            ("SLUICE_NATS_PORT", NKEY.to_string()),
            ("SLUICE_NATS_AUTH", auth.display().to_string()),
        ],
    );
    let rt = runtime();
    let db = format!("nkey{}", std::process::id());
    database(&rt, &db);
    let seed_file = |key: &NKey, name: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("{}\n", key.seed_text())).unwrap();
        p.display().to_string()
    };
    let args = |seed: String| {
        vec![
            "--producer=nats".into(),
            format!("--nats_url=nats://127.0.0.1:{NKEY}"),
            format!("--nats_nkey={seed}"),
            format!("--nats_subject={db}.%{{table}}"),
        ]
    };
    let log = delivers(&rt, &db, &args(seed_file(&user, "user.nk")));
    no_secret(&log, &[&user.seed_text()]);
    let log = refused(
        &rt,
        &db,
        &args(seed_file(&stranger, "stranger.nk")),
        &["Authorization Violation", "nats_nkey"],
    );
    no_secret(&log, &[&stranger.seed_text()]);
    // Without a key the server refuses too: the login is what let it in.
    refused(
        &rt,
        &db,
        &[
            "--producer=nats".into(),
            format!("--nats_url=nats://127.0.0.1:{NKEY}"),
        ],
        &["Authorization Violation"],
    );
    stop(NKEY);
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}

/// A JWT of `claims` signed by `issuer`, as nsc writes them.
fn jwt(issuer: &NKey, claims: serde_json::Value) -> String {
    use base64::Engine;
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let head = b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = b64(claims.to_string().as_bytes());
    let sig = issuer.sign(format!("{head}.{body}").as_bytes());
    format!("{head}.{body}.{sig}")
}

#[test]
fn a_credentials_file_logs_in_to_a_server_of_an_operator() {
    let _gate = crate::common::module_gate(module_path!());
    const CREDS: u16 = 23439;
    let pid = std::process::id() as u8;
    let operator = NKey::new(KeyKind::Operator, [pid.wrapping_add(1); 32]);
    let account = NKey::new(KeyKind::Account, [pid.wrapping_add(2); 32]);
    let user = NKey::new(KeyKind::User, [pid.wrapping_add(3); 32]);
    // JetStream (on in scripts/nats.sh) needs a system account.
    let system = NKey::new(KeyKind::Account, [pid.wrapping_add(4); 32]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |jti: &str, iss: &NKey, sub: &NKey, nats: serde_json::Value| {
        serde_json::json!({"jti": jti, "iat": now, "iss": iss.public_key(), "name": jti,
            "sub": sub.public_key(), "nats": nats})
    };
    let unlimited = serde_json::json!({"subs": -1, "data": -1, "payload": -1});
    let op_jwt = jwt(
        &operator,
        claims(
            "OPERATOR",
            &operator,
            &operator,
            serde_json::json!({"type": "operator", "version": 2}),
        ),
    );
    let mut limits = unlimited.clone();
    limits["imports"] = (-1).into();
    limits["exports"] = (-1).into();
    limits["wildcards"] = true.into();
    limits["conn"] = (-1).into();
    limits["leaf"] = (-1).into();
    let acc_jwt = jwt(
        &operator,
        claims(
            "ACCOUNT",
            &operator,
            &account,
            serde_json::json!({"limits": limits, "type": "account", "version": 2}),
        ),
    );
    let sys_jwt = jwt(
        &operator,
        claims(
            "SYS",
            &operator,
            &system,
            serde_json::json!({"limits": limits, "type": "account", "version": 2}),
        ),
    );
    let mut user_nats = unlimited;
    user_nats["pub"] = serde_json::json!({});
    user_nats["sub"] = serde_json::json!({});
    user_nats["type"] = "user".into();
    user_nats["version"] = 2.into();
    let user_jwt = jwt(&account, claims("USER", &account, &user, user_nats));
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.conf");
    std::fs::write(
        &auth,
        format!(
            "operator: \"{op_jwt}\"\nsystem_account: {sys}\nresolver: MEMORY\nresolver_preload: {{ {acc}: \"{acc_jwt}\", {sys}: \"{sys_jwt}\" }}\n",
            acc = account.public_key(),
            sys = system.public_key(),
        ),
    )
    .unwrap();
    let creds = dir.path().join("sluice.creds");
    std::fs::write(
        &creds,
        format!(
            "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
            user.seed_text()
        ),
    )
    .unwrap();
    script(
        "nats.sh",
        "start",
        &[
            ("SLUICE_NATS_PORT", CREDS.to_string()),
            ("SLUICE_NATS_AUTH", auth.display().to_string()),
        ],
    );
    let rt = runtime();
    let db = format!("creds{}", std::process::id());
    database(&rt, &db);
    let args = |extra: String| {
        vec![
            "--producer=nats".into(),
            format!("--nats_url=nats://127.0.0.1:{CREDS}"),
            format!("--nats_subject={db}.%{{table}}"),
            extra,
        ]
    };
    let log = delivers(&rt, &db, &args(format!("--nats_creds={}", creds.display())));
    no_secret(&log, &[&user.seed_text()]);
    // The user's key alone is not enough here: the server wants the JWT.
    let seed = dir.path().join("user.nk");
    std::fs::write(&seed, user.seed_text()).unwrap();
    refused(
        &rt,
        &db,
        &args(format!("--nats_nkey={}", seed.display())),
        &["Authorization Violation"],
    );
    stop(CREDS);
    sql_at(&rt, mysql_port(), &[format!("DROP DATABASE {db}")]);
}
