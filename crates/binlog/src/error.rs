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
    #[error("the binlog at {position} is no longer on the server (purged): {message}. Restart from a position the server still has with --init_position FILE:POS (SHOW BINARY LOGS lists them), accepting the gap, or re-bootstrap the tables")]
    BinlogPurged { position: String, message: String },
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
