//! The producer contract: what the pipeline hands over, in binlog order, and
//! how a producer reports that it could not deliver. A producer never drops
//! a message silently: failure is an error value.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

/// One encoded event.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub json: &'a [u8],
    pub database: &'a str,
    /// Empty for database-level DDL events.
    pub table: &'a str,
    /// `insert`, `update`, `delete`, or the DDL event type.
    pub kind: &'a str,
    /// The row's primary key, where the producer needs it (keys,
    /// partitioning, dead letters).
    pub primary_key: Option<PrimaryKey<'a>>,
    /// Values of `producer_partition_columns` (a JSON array), if asked for.
    pub partition_values: Option<&'a [u8]>,
    pub xid: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
pub struct PrimaryKey<'a> {
    pub columns: &'a [String],
    /// The values as a JSON array, in column order.
    pub values_json: &'a [u8],
}

#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    /// Definite: a row refused for good, options the broker rejects, a
    /// producer given up on. The message names the cause and the fix.
    #[error("{producer} producer: {message}")]
    Failed {
        producer: &'static str,
        message: String,
    },
    /// Transient: deliveries not confirmed although the producer retried
    /// for as long as it was told to (e.g. `kafka.message.timeout.ms`); a
    /// new producer, streaming again from the stored position, may succeed.
    #[error("{producer} producer: {message}")]
    Unconfirmed {
        producer: &'static str,
        message: String,
    },
    #[error("{producer} producer: {source}")]
    Io {
        producer: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl ProducerError {
    /// Whether a new producer streaming again from the stored position may
    /// succeed where this one failed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ProducerError::Unconfirmed { .. })
    }
}

pub trait Producer: Send {
    /// Hands one message to the producer.
    fn send(&mut self, msg: &Message<'_>) -> Result<(), ProducerError>;
    /// Returns once everything sent so far is delivered as far as this
    /// producer can tell (acknowledged by the broker, written and synced):
    /// only then may a position after it be stored.
    fn flush(&mut self) -> Result<(), ProducerError>;
    /// Called once before streaming: producers that connect try it now, so
    /// options the broker rejects (credentials, topology) stop sluice at
    /// once; a broker that is merely away is retried later.
    fn prepare(&mut self) -> Result<(), ProducerError> {
        Ok(())
    }
    /// A flag that makes a pending `flush` give up (the producer is being
    /// replaced): for producers whose flush can wait on the network.
    fn abort_handle(&self) -> Option<Arc<AtomicBool>> {
        None
    }
    /// Whether the producer only appends lines (file, stdout) and takes
    /// them as blocks through [`Producer::send_lines`].
    fn takes_line_blocks(&self) -> bool {
        false
    }
    /// Hands over `block`, whole lines each ending in `\n`, as they are:
    /// the pipeline renders a job's rows straight into it, so nothing is
    /// copied per row. Returns an empty buffer to render the next block
    /// into (one the producer is done with, when it has one). Only called
    /// when [`Producer::takes_line_blocks`] says so.
    fn send_lines(&mut self, block: Vec<u8>) -> Result<Vec<u8>, ProducerError> {
        let _ = block;
        Err(ProducerError::Failed {
            producer: "line blocks",
            message: "this producer takes one message at a time".into(),
        })
    }
}

impl<T: Producer + ?Sized> Producer for Box<T> {
    fn send(&mut self, msg: &Message<'_>) -> Result<(), ProducerError> {
        (**self).send(msg)
    }

    fn flush(&mut self) -> Result<(), ProducerError> {
        (**self).flush()
    }

    fn prepare(&mut self) -> Result<(), ProducerError> {
        (**self).prepare()
    }

    fn abort_handle(&self) -> Option<Arc<AtomicBool>> {
        (**self).abort_handle()
    }

    fn takes_line_blocks(&self) -> bool {
        (**self).takes_line_blocks()
    }

    fn send_lines(&mut self, block: Vec<u8>) -> Result<Vec<u8>, ProducerError> {
        (**self).send_lines(block)
    }
}

/// Counters of a producer that acknowledges deliveries (exported as
/// metrics).
#[derive(Debug, Default)]
pub struct ProducerStats {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub failed: AtomicU64,
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
    /// Refused rows dropped (`ignore_producer_error`).
    pub dropped: AtomicU64,
    pub bytes: AtomicU64,
    /// Sum of send-to-acknowledgement times of acknowledged messages.
    pub ack_latency_us: AtomicU64,
}
