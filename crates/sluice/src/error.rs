//! Errors as values whose type says what to do. Every lower-level error is
//! classified once, where it is converted: the supervisor then decides by
//! the variant alone (no downcasting, no string matching).
//!
//! - [`Error::Fenced`]: a newer leader owns the position; step down.
//! - [`Error::Transient`]: worth a new attempt with a new producer and a new
//!   stream from the stored position (deliveries a producer could not
//!   confirm however long it retried).
//! - [`Error::Definite`]: will not get better by retrying; stop (exit 1)
//!   with the message, which names the cause and the fix.
//!
//! Connection losses inside a running stream never get here: the binlog
//! reader reconnects by itself, producers retry, schema calls wait.

use std::fmt::Display;

use sluice_pipeline::PipelineError;
use sluice_producers::ProducerError;

use crate::positions::StoreError;
use crate::schema_history::HistoryError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{message}")]
    Fenced { message: String, theirs: u64 },
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Definite(String),
}

impl Error {
    pub fn definite(message: impl Display) -> Self {
        Error::Definite(message.to_string())
    }

    /// The same kind of error, its message preceded by what was being done.
    pub fn context(self, what: impl Display) -> Self {
        match self {
            Error::Fenced { message, theirs } => Error::Fenced {
                message: format!("{what}: {message}"),
                theirs,
            },
            Error::Transient(m) => Error::Transient(format!("{what}: {m}")),
            Error::Definite(m) => Error::Definite(format!("{what}: {m}")),
        }
    }
}

/// `.context("opening the position store")` on any result whose error
/// converts into [`Error`].
pub trait Context<T> {
    fn context(self, what: impl Display) -> Result<T, Error>;
    fn with_context<D: Display>(self, what: impl FnOnce() -> D) -> Result<T, Error>;
}

impl<T, E: Into<Error>> Context<T> for Result<T, E> {
    fn context(self, what: impl Display) -> Result<T, Error> {
        self.map_err(|e| e.into().context(what))
    }

    fn with_context<D: Display>(self, what: impl FnOnce() -> D) -> Result<T, Error> {
        self.map_err(|e| e.into().context(what()))
    }
}

impl From<ProducerError> for Error {
    fn from(e: ProducerError) -> Self {
        if e.is_transient() {
            Error::Transient(e.to_string())
        } else {
            Error::Definite(e.to_string())
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Fenced { theirs, .. } => Error::Fenced {
                message: e.to_string(),
                theirs,
            },
            other => Error::Definite(other.to_string()),
        }
    }
}

impl From<PipelineError> for Error {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::Producer(p) => p.into(),
            other => Error::Definite(other.to_string()),
        }
    }
}

impl From<HistoryError> for Error {
    fn from(e: HistoryError) -> Self {
        Error::Definite(e.to_string())
    }
}

impl From<sluice_binlog::SourceError> for Error {
    fn from(e: sluice_binlog::SourceError) -> Self {
        match e {
            // Its advice, --init_position, is ignored while a position is
            // stored (the stored one wins at every start).
            sluice_binlog::SourceError::BinlogUnavailable { .. } => Error::Definite(format!(
                "{e}. A stored position wins over --init_position: stop sluice and run \
                 `sluice reset-position` with the same options first"
            )),
            other => Error::Definite(other.to_string()),
        }
    }
}

impl From<mysql_async::Error> for Error {
    fn from(e: mysql_async::Error) -> Self {
        Error::Definite(sluice_schema::connect::describe(&e))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Definite(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_survives_context() {
        let fenced: Error = StoreError::Fenced {
            client_id: "c".into(),
            ours: 1,
            theirs: 3,
        }
        .into();
        match fenced.context("storing") {
            Error::Fenced { theirs, message } => {
                assert_eq!(theirs, 3);
                assert!(message.starts_with("storing: position store: a newer epoch (3"));
            }
            other => panic!("{other:?}"),
        }
        let unconfirmed: Error = PipelineError::Producer(ProducerError::Unconfirmed {
            producer: "kafka",
            message: "timed out".into(),
        })
        .into();
        assert!(matches!(unconfirmed, Error::Transient(_)));
        let refused: Error = ProducerError::Failed {
            producer: "redis",
            message: "WRONGTYPE".into(),
        }
        .into();
        assert_eq!(refused.to_string(), "redis producer: WRONGTYPE");
        assert!(matches!(refused, Error::Definite(_)));
    }
}
