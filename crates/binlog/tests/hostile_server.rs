//! The replication session against servers that lie, stall or are not
//! MySQL servers at all (the scripted fake server): every case ends in a
//! clear error within a bounded time, without reading (or allocating for)
//! more than the limit of the connection's phase.

use std::time::{Duration, Instant};

use sluice_binlog::{
    AuthOptions, BinlogPosition, BinlogSession, SessionOptions, SourceError, TlsOptions,
};
use sluice_fake_mysql::{err_packet, FakeServer, Greeting, ResultSet, Step};

const SERVER_ID: u32 = 4243;

fn opts(port: u16) -> SessionOptions {
    SessionOptions {
        host: "127.0.0.1".into(),
        port,
        user: "repl".into(),
        password: "pw".into(),
        server_id: SERVER_ID,
        start: BinlogPosition::new("binlog.000042", 4),
        heartbeat: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(3),
        gtid_mode: false,
        tls: TlsOptions::default(),
        auth: AuthOptions::default(),
    }
}

/// Greeting and a login the server accepts, whatever the client sends.
fn login() -> Vec<Step> {
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

/// Login, then answers like a primary (with this max_allowed_packet) until
/// the dump request, which gets `events`.
fn primary(max_allowed_packet: &str, events: Vec<Vec<u8>>) -> Vec<Step> {
    let mut s = login();
    s.push(Step::Replica {
        results: vec![(
            "SELECT @@global.max_allowed_packet".into(),
            ResultSet::new(
                &["@@global.max_allowed_packet"],
                &[&[Some(max_allowed_packet)]],
            ),
        )],
        events,
    });
    s
}

/// Connects and reads until the first error (which every script here ends
/// in), checking it comes within `within`.
async fn first_error(script: Vec<Step>, within: Duration) -> SourceError {
    let server = FakeServer::start(script).await.unwrap();
    let began = Instant::now();
    let err = match BinlogSession::connect(&opts(server.port())).await {
        Err(e) => e,
        Ok(mut session) => loop {
            if let Err(e) = session.next_event().await {
                break e;
            }
        },
    };
    assert!(
        began.elapsed() < within,
        "took {:?} to fail with: {err}",
        began.elapsed()
    );
    err
}

#[tokio::test]
async fn an_http_server_on_the_port_is_named_not_a_mysql_server() {
    let err = first_error(
        vec![Step::SendRaw(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_vec(),
        )],
        Duration::from_secs(2),
    )
    .await;
    let text = err.to_string();
    assert!(matches!(err, SourceError::NotMysql { .. }), "{err:?}");
    assert!(
        text.contains("is not a MySQL server") && text.contains("HTTP/1.1 400"),
        "{text}"
    );
    assert!(!err.is_transient(), "a wrong port does not heal: {err:?}");
}

#[tokio::test]
async fn random_bytes_on_the_port_are_named_not_a_mysql_server() {
    // A plausible length (16 bytes), a wrong sequence id and no protocol 10.
    let noise = vec![
        0x10, 0x00, 0x00, 0x07, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ];
    let err = first_error(vec![Step::SendRaw(noise)], Duration::from_secs(2)).await;
    assert!(matches!(err, SourceError::NotMysql { .. }), "{err:?}");
    assert!(err.to_string().contains("10 00 00 07 de ad"), "{err}");
    // A header announcing a greeting of 16 MiB is refused before reading it.
    let err = first_error(
        vec![Step::SendRaw(vec![0xFF, 0xFF, 0xFF, 0x00, 10, b'8'])],
        Duration::from_secs(2),
    )
    .await;
    assert!(matches!(err, SourceError::NotMysql { .. }), "{err:?}");
}

#[tokio::test]
async fn a_16_mib_packet_during_the_login_is_refused_unread() {
    let mut script = vec![
        Step::Greeting(
            Greeting::mysql8()
                .without_tls()
                .plugin("mysql_native_password"),
        ),
        Step::read(),
    ];
    // The header of a 16 MiB - 1 packet (continued), and a little of it.
    let mut raw = vec![0xFF, 0xFF, 0xFF, 2];
    raw.extend_from_slice(&[0u8; 64]);
    script.push(Step::SendRaw(raw));
    script.push(Step::Sleep(Duration::from_secs(5)));
    let err = first_error(script, Duration::from_secs(2)).await;
    match &err {
        SourceError::PacketTooLarge {
            size, limit, phase, ..
        } => {
            assert_eq!(*size, 0xFF_FFFF);
            assert_eq!(*limit, 1 << 20);
            assert!(phase.contains("handshake"), "{phase}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("16777215 bytes"), "{err}");
}

#[tokio::test]
async fn continuation_packets_past_max_allowed_packet_are_refused_mid_stream() {
    // max_allowed_packet 20 MiB: one 16 MiB - 1 chunk is read, the second
    // would make the packet 32 MiB and is refused at its header.
    let mut script = primary("20971520", vec![]);
    let chunk = 0xFF_FFFFusize;
    let mut raw = vec![0xFF, 0xFF, 0xFF, 1];
    raw.resize(4 + chunk, 0);
    raw.extend_from_slice(&[0xFF, 0xFF, 0xFF, 2]);
    raw.extend_from_slice(&[0u8; 64]);
    script.push(Step::SendRaw(raw));
    script.push(Step::Sleep(Duration::from_secs(5)));
    let err = first_error(script, Duration::from_secs(3)).await;
    match &err {
        SourceError::PacketTooLarge {
            size, limit, phase, ..
        } => {
            assert_eq!(*size, 2 * 0xFF_FFFF);
            assert_eq!(*limit, 20 * 1024 * 1024 + (64 << 10));
            assert!(phase.contains("max_allowed_packet"), "{phase}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_transient());
}

#[tokio::test]
async fn a_server_that_stalls_after_login_times_out() {
    let mut script = login();
    script.push(Step::Sleep(Duration::from_secs(10)));
    let err = first_error(script, Duration::from_secs(5)).await;
    assert!(matches!(err, SourceError::ReadTimeout(_)), "{err:?}");
}

#[tokio::test]
async fn another_replica_with_the_same_id_is_named_with_the_option() {
    for (code, message) in [
        (
            4052,
            "A slave with the same server_uuid/server_id as this slave has connected to the master",
        ),
        (
            1236,
            "A replica with the same server_uuid/server_id as this replica has connected to the source; the first event 'binlog.000042' at 4",
        ),
    ] {
        let mut script = primary("16777216", vec![]);
        script.push(Step::Send(err_packet(code, "HY000", message)));
        let err = first_error(script, Duration::from_secs(3)).await;
        let text = err.to_string();
        assert!(matches!(err, SourceError::SameServerId { .. }), "{err:?}");
        assert!(
            text.contains("--replica_server_id")
                && text.contains(&SERVER_ID.to_string())
                && text.contains("same server"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn error_1236_for_a_missing_file_is_not_called_purged_yet() {
    let mut script = primary("16777216", vec![]);
    script.push(Step::Send(err_packet(
        1236,
        "HY000",
        "Could not find first log file name in binary log index file",
    )));
    let err = first_error(script, Duration::from_secs(3)).await;
    match &err {
        SourceError::BinlogUnavailable { file, .. } => assert_eq!(file, "binlog.000042"),
        other => panic!("{other:?}"),
    }
    // Other 1236 errors keep their text, with the file.
    let mut script = primary("16777216", vec![]);
    script.push(Step::Send(err_packet(
        1236,
        "HY000",
        "binlog truncated in the middle of event",
    )));
    let err = first_error(script, Duration::from_secs(3)).await;
    assert!(
        matches!(err, SourceError::Server { code: 1236, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("binlog.000042"), "{err}");
}

#[tokio::test]
async fn corrupt_events_are_protocol_errors() {
    // A header claiming 1000 bytes on a 30-byte event; then one shorter
    // than a header.
    let mut lying = vec![0u8; 30];
    lying[4] = 30; // WRITE_ROWS
    lying[9..13].copy_from_slice(&1000u32.to_le_bytes());
    for ev in [lying, vec![1, 2, 3]] {
        let err = first_error(primary("16777216", vec![ev]), Duration::from_secs(3)).await;
        assert!(matches!(err, SourceError::Protocol(_)), "{err:?}");
    }
}
