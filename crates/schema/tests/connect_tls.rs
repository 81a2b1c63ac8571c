//! The SQL connections (mysql_async through `connect`) with every ssl mode
//! against private MariaDB servers (ports 24311-24315), and logins against
//! the scripted fake server: caching_sha2_password with a cold cache, and
//! mysql_clear_password, which must not reach a plain connection.
//!
//! Each MariaDB test owns one server and runs its cases in turn, reporting
//! every failed case at the end.

use mysql_async::prelude::Queryable;
use rsa::pkcs8::DecodePrivateKey;
use sluice_binlog::{AuthOptions, SslMode, TlsOptions};
use sluice_fake_mysql::private_mariadb::{tls_dir, MariaDb, ServerTls};
use sluice_fake_mysql::{
    auth_switch, more_data, tls_server_config, FakeServer, Greeting, ResultSet, Step,
};
use sluice_schema::connect::{connect, resolve_opts, ConnectError, Endpoint};

fn tls(mode: SslMode, ca: Option<&str>) -> TlsOptions {
    TlsOptions {
        mode,
        ca: ca.map(|f| tls_dir().join(f)),
        option_prefix: "schema_".into(),
        ..Default::default()
    }
}

fn endpoint(port: u16, user: &str, password: &str) -> Endpoint {
    Endpoint {
        host: "127.0.0.1".into(),
        port,
        user: user.into(),
        password: password.into(),
    }
}

/// Connects and reads the session's TLS version: Ok(whether TLS) or the
/// error's text.
async fn outcome(ep: &Endpoint, tls: &TlsOptions) -> Result<bool, String> {
    match connect(ep, tls, &AuthOptions::default()).await {
        Ok((mut conn, _)) => {
            let row: Option<(String, String)> = conn
                .query_first("SHOW SESSION STATUS LIKE 'Ssl_version'")
                .await
                .map_err(|e| e.to_string())?;
            let _ = conn.disconnect().await;
            Ok(row.is_some_and(|(_, v)| !v.is_empty()))
        }
        Err(e) => {
            let text = e.to_string();
            assert!(
                ep.password == ep.user || !text.contains(&ep.password),
                "password in: {text}"
            );
            Err(text)
        }
    }
}

#[derive(Default)]
struct Report(Vec<String>);

impl Report {
    fn expect_tls(&mut self, name: &str, got: Result<bool, String>, tls: bool) {
        match got {
            Ok(t) if t == tls => {}
            Ok(t) => self
                .0
                .push(format!("{name}: connected, TLS {t} (expected {tls})")),
            Err(e) => self.0.push(format!("{name}: failed: {e}")),
        }
    }

    fn expect_err(&mut self, name: &str, got: Result<bool, String>, needles: &[&str]) {
        match got {
            Ok(_) => self
                .0
                .push(format!("{name}: connected, expected a failure")),
            Err(e) => {
                for n in needles {
                    if !e.contains(n) {
                        self.0.push(format!("{name}: message lacks '{n}': {e}"));
                    }
                }
            }
        }
    }

    fn finish(self) {
        assert!(self.0.is_empty(), "failed cases:\n{}", self.0.join("\n"));
    }
}

#[tokio::test]
async fn server_with_a_good_certificate() {
    let db = MariaDb::start(24311, ServerTls::On("server"));
    let ep = endpoint(db.port, "sluice", "sluice");
    let mut r = Report::default();
    for mode in SslMode::ALL {
        let got = outcome(&ep, &tls(mode, Some("ca.pem"))).await;
        r.expect_tls(
            &format!("{mode} with the right CA"),
            got,
            mode != SslMode::Disabled,
        );
    }
    let by_name = Endpoint {
        host: "localhost".into(),
        ..ep.clone()
    };
    r.expect_tls(
        "VERIFY_IDENTITY by DNS name",
        outcome(&by_name, &tls(SslMode::VerifyIdentity, Some("ca.pem"))).await,
        true,
    );
    for mode in [SslMode::VerifyCa, SslMode::VerifyIdentity] {
        r.expect_err(
            &format!("{mode} with the wrong CA"),
            outcome(&ep, &tls(mode, Some("other-ca.pem"))).await,
            &["not signed by a CA in schema_ssl_ca", "other-ca.pem"],
        );
        r.expect_err(
            &format!("{mode} without ssl_ca"),
            outcome(&ep, &tls(mode, None)).await,
            &["schema_ssl_ca is not set"],
        );
    }
    for mode in [SslMode::Preferred, SslMode::Required] {
        r.expect_tls(
            &format!("{mode} does not verify"),
            outcome(&ep, &tls(mode, Some("other-ca.pem"))).await,
            true,
        );
    }

    db.sql(
        "CREATE USER IF NOT EXISTS 'certuser'@'127.0.0.1' IDENTIFIED BY 'certpw' \
         REQUIRE SUBJECT '/CN=sluice-client'",
    );
    let cert_ep = endpoint(db.port, "certuser", "certpw");
    let mut with_cert = tls(SslMode::VerifyIdentity, Some("ca.pem"));
    with_cert.cert = Some(tls_dir().join("client.pem"));
    with_cert.key = Some(tls_dir().join("client.key"));
    r.expect_tls(
        "client certificate",
        outcome(&cert_ep, &with_cert).await,
        true,
    );
    r.expect_err(
        "no client certificate",
        outcome(&cert_ep, &tls(SslMode::VerifyIdentity, Some("ca.pem"))).await,
        &["certuser", "Access denied"],
    );

    db.install_ed25519();
    db.sql(
        "CREATE USER IF NOT EXISTS 'eduser'@'127.0.0.1' IDENTIFIED VIA ed25519 USING PASSWORD('ed-Secret-1')",
    );
    for mode in [SslMode::Disabled, SslMode::VerifyIdentity] {
        r.expect_tls(
            &format!("ed25519 login, {mode}"),
            outcome(
                &endpoint(db.port, "eduser", "ed-Secret-1"),
                &tls(mode, Some("ca.pem")),
            )
            .await,
            mode != SslMode::Disabled,
        );
        r.expect_err(
            &format!("ed25519 wrong password, {mode}"),
            outcome(
                &endpoint(db.port, "eduser", "ed-Wrong-2"),
                &tls(mode, Some("ca.pem")),
            )
            .await,
            &["Access denied"],
        );
    }
    r.finish();
}

#[tokio::test]
async fn server_with_an_expired_certificate() {
    let db = MariaDb::start(24312, ServerTls::On("expired"));
    let ep = endpoint(db.port, "sluice", "sluice");
    let mut r = Report::default();
    for mode in [SslMode::VerifyCa, SslMode::VerifyIdentity] {
        r.expect_err(
            &format!("{mode} expired"),
            outcome(&ep, &tls(mode, Some("ca.pem"))).await,
            &["certificate has expired", "schema_ssl=REQUIRED"],
        );
    }
    for mode in [SslMode::Preferred, SslMode::Required] {
        r.expect_tls(
            &format!("{mode} does not verify"),
            outcome(&ep, &tls(mode, Some("ca.pem"))).await,
            true,
        );
    }
    r.finish();
}

#[tokio::test]
async fn server_with_a_certificate_for_another_host() {
    let db = MariaDb::start(24313, ServerTls::On("wronghost"));
    let ep = endpoint(db.port, "sluice", "sluice");
    let mut r = Report::default();
    r.expect_err(
        "VERIFY_IDENTITY, wrong host",
        outcome(&ep, &tls(SslMode::VerifyIdentity, Some("ca.pem"))).await,
        &[
            "not valid for host name '127.0.0.1'",
            "schema_ssl=VERIFY_CA",
        ],
    );
    for mode in [SslMode::Preferred, SslMode::Required, SslMode::VerifyCa] {
        r.expect_tls(
            &format!("{mode} ignores the name"),
            outcome(&ep, &tls(mode, Some("ca.pem"))).await,
            true,
        );
    }
    // VERIFY_CA still refuses a certificate its CA did not sign.
    r.expect_err(
        "VERIFY_CA, wrong host and wrong CA",
        outcome(&ep, &tls(SslMode::VerifyCa, Some("other-ca.pem"))).await,
        &["not signed by a CA"],
    );
    // A pool gets options that work for VERIFY_CA.
    let opts = resolve_opts(
        &ep,
        &tls(SslMode::VerifyCa, Some("ca.pem")),
        &AuthOptions::default(),
    )
    .await
    .unwrap();
    let pool = mysql_async::Pool::new(opts);
    let mut conn = pool.get_conn().await.unwrap();
    let one: Option<u8> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    drop(conn);
    pool.disconnect().await.unwrap();
    r.finish();
}

#[tokio::test]
async fn server_without_tls() {
    let db = MariaDb::start(24314, ServerTls::Off);
    let ep = endpoint(db.port, "sluice", "sluice");
    let mut r = Report::default();
    r.expect_tls(
        "DISABLED",
        outcome(&ep, &tls(SslMode::Disabled, None)).await,
        false,
    );
    r.expect_tls(
        "PREFERRED falls back to plain",
        outcome(&ep, &tls(SslMode::Preferred, Some("ca.pem"))).await,
        false,
    );
    for mode in [
        SslMode::Required,
        SslMode::VerifyCa,
        SslMode::VerifyIdentity,
    ] {
        r.expect_err(
            &format!("{mode} without TLS on the server"),
            outcome(&ep, &tls(mode, Some("ca.pem"))).await,
            &["does not offer TLS", &format!("schema_ssl={mode}")],
        );
    }
    // A pool gets plain options for PREFERRED here.
    let opts = resolve_opts(&ep, &tls(SslMode::Preferred, None), &AuthOptions::default())
        .await
        .unwrap();
    assert!(mysql_async::Opts::from(opts.clone()).ssl_opts().is_none());
    let pool = mysql_async::Pool::new(opts);
    let one: Option<u8> = pool
        .get_conn()
        .await
        .unwrap()
        .query_first("SELECT 1")
        .await
        .unwrap();
    assert_eq!(one, Some(1));
    pool.disconnect().await.unwrap();
    r.finish();
}

#[tokio::test]
async fn server_requiring_secure_transport() {
    let db = MariaDb::start(24315, ServerTls::Require);
    let ep = endpoint(db.port, "sluice", "sluice");
    let mut r = Report::default();
    r.expect_err(
        "DISABLED against require_secure_transport=ON",
        outcome(&ep, &tls(SslMode::Disabled, None)).await,
        &["require_secure_transport=ON", "schema_ssl=REQUIRED"],
    );
    for mode in [
        SslMode::Preferred,
        SslMode::Required,
        SslMode::VerifyIdentity,
    ] {
        r.expect_tls(
            &format!("{mode}"),
            outcome(&ep, &tls(mode, Some("ca.pem"))).await,
            true,
        );
    }
    r.finish();
}

// The fake server: what mysql_async sends.

const PASSWORD: &str = "Pa55-w0rd-never-in-clear";
const SCRAMBLE: &[u8; 20] = b"ABCDEFGHIJKLMNOPQRST";

fn settings() -> Step {
    Step::Serve(vec![(
        "SELECT @@max_allowed_packet,@@wait_timeout".into(),
        ResultSet::new(
            &["@@max_allowed_packet", "@@wait_timeout"],
            &[&[Some("16777216"), Some("28800")]],
        ),
    )])
}

fn nul_terminated_password() -> Step {
    Step::expect(|p| {
        let mut expected = PASSWORD.as_bytes().to_vec();
        expected.push(0);
        (p == expected)
            .then_some(())
            .ok_or_else(|| "expected the NUL-terminated password".to_string())
    })
}

#[tokio::test]
async fn mysql_async_cold_cache_caching_sha2_over_rsa() {
    let dir = tls_dir();
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(
        &std::fs::read_to_string(dir.join("server.key")).unwrap(),
    )
    .unwrap();
    let server = FakeServer::start(vec![
        Step::Greeting(Greeting::mysql8().without_tls().scramble(SCRAMBLE)),
        Step::read(),
        Step::Send(more_data(&[4])),
        Step::expect(|p| {
            (p == [2])
                .then_some(())
                .ok_or_else(|| "no key request".into())
        }),
        Step::Send(more_data(
            &std::fs::read(dir.join("rsa-public.pem")).unwrap(),
        )),
        Step::expect(move |p| {
            let plain = key
                .decrypt(rsa::Oaep::new::<sha1::Sha1>(), p)
                .map_err(|e| e.to_string())?;
            let pw: Vec<u8> = plain
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ SCRAMBLE[i % 20])
                .collect();
            (pw == [PASSWORD.as_bytes(), b"\0"].concat())
                .then_some(())
                .ok_or_else(|| "wrong password".to_string())
        }),
        Step::ok(),
        settings(),
    ])
    .await
    .unwrap();
    let ep = endpoint(server.port(), "repl", PASSWORD);
    let (conn, _) = connect(&ep, &TlsOptions::default(), &AuthOptions::default())
        .await
        .unwrap();
    conn.disconnect().await.unwrap();
    let rec = server.finish().await;
    assert_eq!(rec.failure, None);
    assert!(!rec.contains(PASSWORD.as_bytes()));
}

#[tokio::test]
async fn mysql_async_cold_cache_caching_sha2_over_tls() {
    let dir = tls_dir();
    let server = FakeServer::start(vec![
        Step::Greeting(Greeting::mysql8().scramble(SCRAMBLE)),
        Step::AcceptTls(
            tls_server_config(&dir.join("server.pem"), &dir.join("server.key")).unwrap(),
        ),
        Step::read(),
        Step::Send(more_data(&[4])),
        nul_terminated_password(),
        Step::ok(),
        settings(),
    ])
    .await
    .unwrap();
    let ep = endpoint(server.port(), "repl", PASSWORD);
    let (conn, _) = connect(
        &ep,
        &tls(SslMode::VerifyIdentity, Some("ca.pem")),
        &AuthOptions::default(),
    )
    .await
    .unwrap();
    conn.disconnect().await.unwrap();
    let rec = server.finish().await;
    assert_eq!(rec.failure, None);
    assert!(rec.tls);
}

#[tokio::test]
async fn mysql_async_clear_password_on_a_plain_connection_gets_no_password() {
    let server = FakeServer::start(vec![
        Step::Greeting(
            Greeting::mysql8()
                .without_tls()
                .plugin("mysql_native_password")
                .scramble(SCRAMBLE),
        ),
        Step::read(),
        Step::Send(auth_switch("mysql_clear_password", b"")),
        Step::AwaitClose,
    ])
    .await
    .unwrap();
    let ep = endpoint(server.port(), "repl", PASSWORD);
    let err = connect(&ep, &tls(SslMode::Disabled, None), &AuthOptions::default())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ConnectError::Mysql { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("enable_cleartext_plugin") && !msg.contains(PASSWORD),
        "{msg}"
    );
    let rec = server.finish().await;
    assert_eq!(rec.failure, None);
    assert_eq!(rec.packets.len(), 1);
    assert!(
        !rec.contains(PASSWORD.as_bytes()),
        "the password reached the server"
    );
}

#[tokio::test]
async fn mysql_async_clear_password_over_tls_is_sent() {
    let dir = tls_dir();
    let server = FakeServer::start(vec![
        Step::Greeting(
            Greeting::mysql8()
                .plugin("mysql_native_password")
                .scramble(SCRAMBLE),
        ),
        Step::AcceptTls(
            tls_server_config(&dir.join("server.pem"), &dir.join("server.key")).unwrap(),
        ),
        Step::read(),
        Step::Send(auth_switch("mysql_clear_password", b"")),
        nul_terminated_password(),
        Step::ok(),
        settings(),
    ])
    .await
    .unwrap();
    let ep = endpoint(server.port(), "repl", PASSWORD);
    let (conn, _) = connect(&ep, &tls(SslMode::Required, None), &AuthOptions::default())
        .await
        .unwrap();
    conn.disconnect().await.unwrap();
    assert_eq!(server.finish().await.failure, None);
}

#[tokio::test]
async fn mysql_async_panic_on_a_malformed_server_key_fails_only_the_attempt() {
    let server = FakeServer::start(vec![
        Step::Greeting(Greeting::mysql8().without_tls().scramble(SCRAMBLE)),
        Step::read(),
        Step::Send(more_data(&[4])),
        Step::read(),
        Step::Send(more_data(b"this is no PEM key")),
        Step::AwaitClose,
    ])
    .await
    .unwrap();
    let ep = endpoint(server.port(), "repl", PASSWORD);
    let err = connect(&ep, &TlsOptions::default(), &AuthOptions::default())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, ConnectError::ClientPanicked { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("ssl=VERIFY_IDENTITY"), "{err}");
    let rec = server.finish().await;
    assert_eq!(rec.failure, None);
    assert!(!rec.contains(PASSWORD.as_bytes()));
}
