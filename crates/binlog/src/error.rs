use std::time::Duration;

/// Errors of the replication session, split into the two kinds the
/// supervisor cares about: transient ones (retry with backoff) and definite
/// ones (stop with the message).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("I/O error talking to {addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no data from the server for {0:?} (read deadline derived from the heartbeat period); the connection is considered dead")]
    ReadTimeout(Duration),
    #[error("the server closed the binlog stream")]
    EndOfStream,
    #[error("server error {code} ({state}): {message}")]
    Server {
        code: u16,
        state: String,
        message: String,
    },
    /// Error 1236 "could not find first log file": the file was purged, or
    /// never existed; the caller tells which (SHOW BINARY LOGS, see
    /// [`crate::position::missing_file`]).
    #[error("the binlog file {file} is not on the server (purged, or never there): {message}. SHOW BINARY LOGS lists the files it has; restart from one with --init_position FILE:POS, accepting the gap, or re-bootstrap the tables")]
    BinlogUnavailable { file: String, message: String },
    /// Another replica registered with our server id and the server dropped
    /// this session (MariaDB error 4052, MySQL error 1236 with that text).
    #[error("the server dropped this replication session because another replica registered with the same server id {server_id} ({message}). Every sluice instance and every replica of this server needs its own id: set --replica_server_id to an unused one (SHOW SLAVE HOSTS lists those in use), or stop the other instance")]
    SameServerId { server_id: u32, message: String },
    /// A packet larger than the limit of the connection's phase: read no
    /// further, allocate nothing for it.
    #[error("the server at {addr} sent a packet of {size} bytes, more than the {limit} bytes allowed {phase}: not a MySQL server, or a broken one")]
    PacketTooLarge {
        addr: String,
        size: u64,
        limit: u64,
        phase: &'static str,
    },
    /// What answered is not a MySQL server (an HTTP server, another
    /// service, noise).
    #[error("the peer at {addr} is not a MySQL server (where the MySQL greeting belongs it sent {seen}): check the host and port")]
    NotMysql { addr: String, seen: String },
    #[error("authentication failed for user '{user}': {message}")]
    Auth { user: String, message: String },
    #[error("binlog checksum mismatch in event at {file}:{offset} (expected {expected:#010x}, computed {computed:#010x})")]
    Checksum {
        file: String,
        offset: u64,
        expected: u32,
        computed: u32,
    },
    #[error("protocol error: {0}")]
    Protocol(String),
    /// TLS configuration, the server's certificate or the server's TLS
    /// support: definite, the message names the option to change.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

impl SourceError {
    /// Whether a retry (a new connection) may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            SourceError::Io { .. } | SourceError::ReadTimeout(_) | SourceError::EndOfStream => true,
            // Server shutting down, connection killed, too many connections,
            // lock wait / deadlock: all get better on their own.
            SourceError::Server { code, .. } => {
                matches!(
                    code,
                    1040 | 1053
                        | 1077
                        | 1078
                        | 1079
                        | 1080
                        | 1152
                        | 1153
                        | 1159
                        | 1160
                        | 1161
                        | 1205
                        | 1213
                        | 1927
                        | 2006
                        | 2013
                )
            }
            _ => false,
        }
    }

    pub fn protocol(msg: impl Into<String>) -> Self {
        SourceError::Protocol(msg.into())
    }
}
