//! Logins against the scripted fake server: caching_sha2_password with a
//! cold cache (full authentication over RSA and over TLS), auth switches,
//! and mysql_clear_password, which must never reach a plain connection.

use std::path::PathBuf;
use std::time::Duration;

use rsa::pkcs8::DecodePrivateKey;
use rsa::{Oaep, RsaPrivateKey};
use sha1::Sha1;
use sluice_binlog::auth::caching_sha2_password;
use sluice_binlog::{
    AuthOptions, BinlogPosition, BinlogSession, SessionOptions, SourceError, SslMode, TlsOptions,
};
use sluice_fake_mysql::private_mariadb::tls_dir;
use sluice_fake_mysql::{
    auth_switch, more_data, tls_server_config, FakeServer, Greeting, Recording, Step,
};

const PASSWORD: &str = "Pa55-w0rd-never-in-clear";
const SCRAMBLE: &[u8; 20] = b"ABCDEFGHIJKLMNOPQRST";
const SWITCH_SCRAMBLE: &[u8; 20] = b"zyxwvutsrqponmlkjihg";

fn opts(port: u16, tls: TlsOptions, auth: AuthOptions) -> SessionOptions {
    SessionOptions {
        host: "127.0.0.1".into(),
        port,
        user: "repl".into(),
        password: PASSWORD.into(),
        server_id: 4242,
        start: BinlogPosition {
            file: "binlog.000001".into(),
            offset: 4,
            gtid: None,
        },
        heartbeat: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(10),
        gtid_mode: false,
        tls,
        auth,
    }
}

fn verify_identity() -> TlsOptions {
    TlsOptions {
        mode: SslMode::VerifyIdentity,
        ca: Some(tls_dir().join("ca.pem")),
        option_prefix: "replication_".into(),
        ..Default::default()
    }
}

fn tls_config() -> std::sync::Arc<rustls::ServerConfig> {
    let dir = tls_dir();
    tls_server_config(&dir.join("server.pem"), &dir.join("server.key")).unwrap()
}

fn private_key() -> RsaPrivateKey {
    let pem = std::fs::read_to_string(tls_dir().join("server.key")).unwrap();
    RsaPrivateKey::from_pkcs8_pem(&pem).unwrap()
}

fn public_key_pem() -> Vec<u8> {
    std::fs::read(tls_dir().join("rsa-public.pem")).unwrap()
}

fn public_key_path() -> PathBuf {
    tls_dir().join("rsa-public.pem")
}

/// The handshake response must end with the plugin name and carry `data`
/// as its auth response.
fn response_with(plugin: &'static str, data: Vec<u8>) -> Step {
    Step::expect(move |p| {
        let mut tail = plugin.as_bytes().to_vec();
        tail.push(0);
        if !p.ends_with(&tail) {
            return Err(format!("handshake response does not name {plugin}"));
        }
        let mut with_len = vec![data.len() as u8];
        with_len.extend_from_slice(&data);
        if !p.windows(with_len.len()).any(|w| w == with_len) {
            return Err("handshake response lacks the expected auth data".into());
        }
        Ok(())
    })
}

/// The next packet must be RSA-OAEP(password + NUL XOR scramble).
fn rsa_password(scramble: &'static [u8]) -> Step {
    let key = private_key();
    Step::expect(move |p| {
        let plain = key
            .decrypt(Oaep::new::<Sha1>(), p)
            .map_err(|e| format!("cannot decrypt the client's reply: {e}"))?;
        let pw: Vec<u8> = plain
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ scramble[i % scramble.len()])
            .collect();
        let mut expected = PASSWORD.as_bytes().to_vec();
        expected.push(0);
        if pw == expected {
            Ok(())
        } else {
            Err("the RSA-encrypted password is wrong".into())
        }
    })
}

fn exact(expected: &'static [u8]) -> Step {
    Step::expect(move |p| {
        if p == expected {
            Ok(())
        } else {
            Err(format!(
                "expected {} bytes of a known reply, got {} bytes",
                expected.len(),
                p.len()
            ))
        }
    })
}

fn nul_terminated_password() -> Step {
    Step::expect(|p| {
        let mut expected = PASSWORD.as_bytes().to_vec();
        expected.push(0);
        if p == expected {
            Ok(())
        } else {
            Err("expected the NUL-terminated password".into())
        }
    })
}

/// A rotate event (what a server sends first on a dump).
fn rotate_event(file: &str) -> Vec<u8> {
    let body_len = 8 + file.len();
    let mut ev = Vec::new();
    ev.extend_from_slice(&0u32.to_le_bytes());
    ev.push(4); // ROTATE_EVENT
    ev.extend_from_slice(&1u32.to_le_bytes());
    ev.extend_from_slice(&((19 + body_len) as u32).to_le_bytes());
    ev.extend_from_slice(&0u32.to_le_bytes());
    ev.extend_from_slice(&0x20u16.to_le_bytes());
    ev.extend_from_slice(&4u64.to_le_bytes());
    ev.extend_from_slice(file.as_bytes());
    ev
}

fn replica(events: Vec<Vec<u8>>) -> Step {
    Step::Replica {
        results: vec![],
        events,
    }
}

fn assert_clean(rec: &Recording) {
    assert!(rec.connected, "the client never connected");
    assert_eq!(rec.failure, None, "the server's script failed");
}

fn assert_no_password_in(err: &SourceError) {
    let text = format!("{err} {err:?}");
    assert!(!text.contains(PASSWORD), "the password leaked into: {text}");
}

#[tokio::test]
async fn caching_sha2_cold_cache_over_rsa_with_the_key_fetched_from_the_server() {
    let server = FakeServer::start(vec![
        Step::Greeting(Greeting::mysql8().without_tls().scramble(SCRAMBLE)),
        response_with(
            "caching_sha2_password",
            caching_sha2_password(PASSWORD.as_bytes(), SCRAMBLE),
        ),
        Step::Send(more_data(&[4])), // cold cache: perform full authentication
        exact(&[2]),                 // the client asks for the public key
        Step::Send(more_data(&public_key_pem())),
        rsa_password(SCRAMBLE),
        Step::ok(),
        replica(vec![]),
    ])
    .await
    .unwrap();
    let session = BinlogSession::connect(&opts(
        server.port(),
        TlsOptions::default(),
        AuthOptions::default(),
    ))
    .await
    .unwrap();
    assert!(!session.is_tls());
    let rec = server.finish().await;
    assert_clean(&rec);
    assert!(
        !rec.contains(PASSWORD.as_bytes()),
        "the password went out in clear"
    );
}

#[tokio::test]
async fn caching_sha2_cold_cache_over_rsa_with_a_configured_key_asks_for_none() {
    let server = FakeServer::start(vec![
        Step::Greeting(Greeting::mysql8().without_tls().scramble(SCRAMBLE)),
        Step::read(),
        Step::Send(more_data(&[4])),
        rsa_password(SCRAMBLE), // directly: no key request
        Step::ok(),
        replica(vec![]),
    ])
    .await
    .unwrap();
    let auth = AuthOptions {
        server_public_key_path: Some(public_key_path()),
        ..Default::default()
    };
    BinlogSession::connect(&opts(server.port(), TlsOptions::default(), auth))
        .await
        .unwrap();
    let rec = server.finish().await;
    assert_clean(&rec);
    assert!(!rec.contains(PASSWORD.as_bytes()));
}

#[tokio::test]
async fn caching_sha2_cold_cache_over_tls_sends_the_password_inside_tls() {
    let server = FakeServer::start(vec![
        Step::Greeting(Greeting::mysql8().scramble(SCRAMBLE)),
        Step::AcceptTls(tls_config()),
        response_with(
            "caching_sha2_password",
            caching_sha2_password(PASSWORD.as_bytes(), SCRAMBLE),
        ),
        Step::Send(more_data(&[4])),
        nul_terminated_password(),
        Step::ok(),
        replica(vec![rotate_event("binlog.000007")]),
    ])
    .await
    .unwrap();
    let mut session = BinlogSession::connect(&opts(
        server.port(),
        verify_identity(),
        AuthOptions::default(),
    ))
    .await
    .unwrap();
    assert!(session.is_tls());
    // The dump stream is read through TLS too.
    let ev = session.next_event().await.unwrap();
    assert_eq!(ev.header.event_type, 4);
    assert_eq!(session.current_file(), "binlog.000007");
    let rec = server.finish().await;
    assert_clean(&rec);
    assert!(rec.tls);
}

#[tokio::test]
async fn caching_sha2_fast_auth_success_needs_no_password() {
    let server = FakeServer::start(vec![
        Step::Greeting(Greeting::mysql8().without_tls().scramble(SCRAMBLE)),
        Step::read(),
        Step::Send(more_data(&[3])), // warm cache
        Step::ok(),
        replica(vec![]),
    ])
    .await
    .unwrap();
    BinlogSession::connect(&opts(
        server.port(),
        TlsOptions::default(),
        AuthOptions::default(),
    ))
    .await
    .unwrap();
    let rec = server.finish().await;
    assert_clean(&rec);
    assert_eq!(
        rec.packets.len(),
        6,
        "handshake response, max_allowed_packet, 2 SETs, register, dump"
    );
}

#[tokio::test]
async fn auth_switch_to_caching_sha2_uses_the_new_scramble_for_rsa() {
    let mut switch_data = SWITCH_SCRAMBLE.to_vec();
    switch_data.push(0);
    let server = FakeServer::start(vec![
        Step::Greeting(
            Greeting::mysql8()
                .without_tls()
                .plugin("mysql_native_password")
                .scramble(SCRAMBLE),
        ),
        Step::read(),
        Step::Send(auth_switch("caching_sha2_password", &switch_data)),
        Step::expect(|p| {
            if p == caching_sha2_password(PASSWORD.as_bytes(), SWITCH_SCRAMBLE) {
                Ok(())
            } else {
                Err("the fast-auth reply does not use the switch's scramble".into())
            }
        }),
        Step::Send(more_data(&[4])),
        exact(&[2]),
        Step::Send(more_data(&public_key_pem())),
        rsa_password(SWITCH_SCRAMBLE),
        Step::ok(),
        replica(vec![]),
    ])
    .await
    .unwrap();
    BinlogSession::connect(&opts(
        server.port(),
        TlsOptions::default(),
        AuthOptions::default(),
    ))
    .await
    .unwrap();
    let rec = server.finish().await;
    assert_clean(&rec);
    assert!(!rec.contains(PASSWORD.as_bytes()));
}

#[tokio::test]
async fn clear_password_requested_by_switch_on_a_plain_connection_gets_no_password() {
    let server = FakeServer::start(vec![
        Step::Greeting(
            Greeting::mysql8()
                .plugin("mysql_native_password")
                .scramble(SCRAMBLE),
        ),
        Step::read(),
        Step::Send(auth_switch("mysql_clear_password", b"")),
        Step::AwaitClose,
    ])
    .await
    .unwrap();
    // PREFERRED against a server that offers TLS would encrypt: DISABLED
    // keeps this connection plain.
    let err = BinlogSession::connect(&opts(
        server.port(),
        TlsOptions::default(),
        AuthOptions::default(),
    ))
    .await
    .err()
    .unwrap();
    let msg = err.to_string();
    assert!(matches!(err, SourceError::Auth { .. }), "{err:?}");
    assert!(msg.contains("enable_cleartext_plugin"), "{msg}");
    assert!(
        msg.contains("replication_ssl=REQUIRED") || msg.contains("ssl=REQUIRED"),
        "{msg}"
    );
    assert_no_password_in(&err);
    let rec = server.finish().await;
    assert_clean(&rec);
    assert_eq!(rec.packets.len(), 1, "only the handshake response was sent");
    assert!(
        !rec.contains(PASSWORD.as_bytes()),
        "the password reached the server"
    );
}

#[tokio::test]
async fn clear_password_proposed_in_the_greeting_on_a_plain_connection_gets_nothing() {
    let server = FakeServer::start(vec![
        Step::Greeting(
            Greeting::mysql8()
                .without_tls()
                .plugin("mysql_clear_password")
                .scramble(SCRAMBLE),
        ),
        Step::AwaitClose,
    ])
    .await
    .unwrap();
    let err = BinlogSession::connect(&opts(
        server.port(),
        TlsOptions::default(),
        AuthOptions::default(),
    ))
    .await
    .err()
    .unwrap();
    assert!(err.to_string().contains("enable_cleartext_plugin"), "{err}");
    assert_no_password_in(&err);
    let rec = server.finish().await;
    assert_clean(&rec);
    assert!(rec.packets.is_empty(), "the client answered the greeting");
}

#[tokio::test]
async fn clear_password_is_sent_over_tls() {
    let server = FakeServer::start(vec![
        Step::Greeting(
            Greeting::mysql8()
                .plugin("mysql_native_password")
                .scramble(SCRAMBLE),
        ),
        Step::AcceptTls(tls_config()),
        Step::read(),
        Step::Send(auth_switch("mysql_clear_password", b"")),
        nul_terminated_password(),
        Step::ok(),
        replica(vec![]),
    ])
    .await
    .unwrap();
    let session = BinlogSession::connect(&opts(
        server.port(),
        verify_identity(),
        AuthOptions::default(),
    ))
    .await
    .unwrap();
    assert!(session.is_tls());
    let rec = server.finish().await;
    assert_clean(&rec);
}

#[tokio::test]
async fn clear_password_on_a_plain_connection_only_when_opted_in_by_name() {
    let server = FakeServer::start(vec![
        Step::Greeting(
            Greeting::mysql8()
                .without_tls()
                .plugin("mysql_native_password")
                .scramble(SCRAMBLE),
        ),
        Step::read(),
        Step::Send(auth_switch("mysql_clear_password", b"")),
        nul_terminated_password(),
        Step::ok(),
        replica(vec![]),
    ])
    .await
    .unwrap();
    let auth = AuthOptions {
        enable_cleartext_plugin: true,
        ..Default::default()
    };
    BinlogSession::connect(&opts(server.port(), TlsOptions::default(), auth))
        .await
        .unwrap();
    assert_clean(&server.finish().await);
}

#[tokio::test]
async fn required_refuses_a_server_without_tls_before_sending_anything() {
    let server = FakeServer::start(vec![
        Step::Greeting(Greeting::mysql8().without_tls().scramble(SCRAMBLE)),
        Step::AwaitClose,
    ])
    .await
    .unwrap();
    let tls = TlsOptions {
        mode: SslMode::Required,
        option_prefix: "replication_".into(),
        ..Default::default()
    };
    let err = BinlogSession::connect(&opts(server.port(), tls, AuthOptions::default()))
        .await
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("does not offer TLS") && msg.contains("replication_ssl=REQUIRED"),
        "{msg}"
    );
    assert!(
        !err.is_transient(),
        "a configuration mismatch is not retried"
    );
    let rec = server.finish().await;
    assert_clean(&rec);
    assert!(rec.packets.is_empty());
}

#[tokio::test]
async fn preferred_falls_back_to_plain_when_the_server_offers_no_tls() {
    let server = FakeServer::start(vec![
        Step::Greeting(Greeting::mysql8().without_tls().scramble(SCRAMBLE)),
        Step::read(),
        Step::Send(more_data(&[3])),
        Step::ok(),
        replica(vec![]),
    ])
    .await
    .unwrap();
    let tls = TlsOptions {
        mode: SslMode::Preferred,
        ..Default::default()
    };
    let session = BinlogSession::connect(&opts(server.port(), tls, AuthOptions::default()))
        .await
        .unwrap();
    assert!(!session.is_tls());
    let rec = server.finish().await;
    assert_clean(&rec);
    assert!(!rec.tls);
}

#[tokio::test]
async fn preferred_uses_tls_when_offered_without_verifying() {
    let server = FakeServer::start(vec![
        Step::Greeting(Greeting::mysql8().scramble(SCRAMBLE)),
        Step::AcceptTls(tls_config()),
        Step::read(),
        Step::Send(more_data(&[3])),
        Step::ok(),
        replica(vec![]),
    ])
    .await
    .unwrap();
    // A CA that did not sign the server's certificate: PREFERRED does not look.
    let tls = TlsOptions {
        mode: SslMode::Preferred,
        ca: Some(tls_dir().join("other-ca.pem")),
        ..Default::default()
    };
    let session = BinlogSession::connect(&opts(server.port(), tls, AuthOptions::default()))
        .await
        .unwrap();
    assert!(session.is_tls());
    assert_clean(&server.finish().await);
}

#[tokio::test]
async fn data_injected_before_the_tls_handshake_is_refused() {
    let mut greeting = Greeting::mysql8().scramble(SCRAMBLE).payload();
    // The greeting and a forged packet in one write.
    let mut raw = (greeting.len() as u32).to_le_bytes()[..3].to_vec();
    raw.push(0);
    raw.append(&mut greeting);
    raw.extend_from_slice(&[1, 0, 0, 2, 0]);
    let server = FakeServer::start(vec![Step::SendRaw(raw), Step::AwaitClose])
        .await
        .unwrap();
    let err = BinlogSession::connect(&opts(
        server.port(),
        verify_identity(),
        AuthOptions::default(),
    ))
    .await
    .err()
    .unwrap();
    assert!(
        err.to_string().contains("before the TLS handshake"),
        "{err}"
    );
    let rec = server.finish().await;
    assert!(
        rec.packets.is_empty(),
        "the client sent something: {:?}",
        rec.packets
    );
}

#[tokio::test]
async fn a_public_key_that_is_no_key_fails_the_login_cleanly() {
    let server = FakeServer::start(vec![
        Step::Greeting(Greeting::mysql8().without_tls().scramble(SCRAMBLE)),
        Step::read(),
        Step::Send(more_data(&[4])),
        exact(&[2]),
        Step::Send(more_data(
            b"-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n",
        )),
        Step::AwaitClose,
    ])
    .await
    .unwrap();
    let err = BinlogSession::connect(&opts(
        server.port(),
        TlsOptions::default(),
        AuthOptions::default(),
    ))
    .await
    .err()
    .unwrap();
    assert!(err.to_string().contains("RSA public key"), "{err}");
    assert_no_password_in(&err);
    let rec = server.finish().await;
    assert_clean(&rec);
    assert!(!rec.contains(PASSWORD.as_bytes()));
}

#[tokio::test]
async fn access_denied_names_the_user_but_not_the_password() {
    let server = FakeServer::start(vec![
        Step::Greeting(Greeting::mysql8().without_tls().scramble(SCRAMBLE)),
        Step::read(),
        Step::Send(more_data(&[4])),
        exact(&[2]),
        Step::Send(more_data(&public_key_pem())),
        Step::read(),
        Step::err(
            1045,
            "28000",
            "Access denied for user 'repl'@'10.0.0.1' (using password: YES)",
        ),
        Step::AwaitClose,
    ])
    .await
    .unwrap();
    let err = BinlogSession::connect(&opts(
        server.port(),
        TlsOptions::default(),
        AuthOptions::default(),
    ))
    .await
    .err()
    .unwrap();
    assert!(
        matches!(err, SourceError::Auth { ref user, .. } if user == "repl"),
        "{err:?}"
    );
    assert_no_password_in(&err);
    assert!(!format!(
        "{:?}",
        opts(1, TlsOptions::default(), AuthOptions::default())
    )
    .contains(PASSWORD));
    assert_clean(&server.finish().await);
}

#[tokio::test]
async fn sha256_password_without_tls_asks_for_the_key_and_sends_it_encrypted() {
    let server = FakeServer::start(vec![
        Step::Greeting(
            Greeting::mysql8()
                .without_tls()
                .plugin("sha256_password")
                .scramble(SCRAMBLE),
        ),
        response_with("sha256_password", vec![1]), // "send me your public key"
        Step::Send(more_data(&public_key_pem())),
        rsa_password(SCRAMBLE),
        Step::ok(),
        replica(vec![]),
    ])
    .await
    .unwrap();
    BinlogSession::connect(&opts(
        server.port(),
        TlsOptions::default(),
        AuthOptions::default(),
    ))
    .await
    .unwrap();
    let rec = server.finish().await;
    assert_clean(&rec);
    assert!(!rec.contains(PASSWORD.as_bytes()));
}
