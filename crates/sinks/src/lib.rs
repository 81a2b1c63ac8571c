//! Producers. A sink receives encoded messages in binlog order and reports
//! failure as an error value, never by dropping a message.

pub mod acked;
mod conn;
mod file;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod nats;
pub mod rabbitmq;
pub mod redis;
pub mod route;
mod stdout;
mod writer;

pub use file::FileSink;
pub use stdout::StdoutSink;

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
    /// partitioning).
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

/// Counters of a producer that acknowledges deliveries (exported as
/// metrics).
#[derive(Debug, Default)]
pub struct ProducerStats {
    pub sent: std::sync::atomic::AtomicU64,
    pub acked: std::sync::atomic::AtomicU64,
    pub failed: std::sync::atomic::AtomicU64,
    pub retried: std::sync::atomic::AtomicU64,
    pub dead_lettered: std::sync::atomic::AtomicU64,
    /// Refused rows dropped (`ignore_producer_error`).
    pub dropped: std::sync::atomic::AtomicU64,
    pub bytes: std::sync::atomic::AtomicU64,
    /// Sum of send-to-acknowledgement times of acknowledged messages.
    pub ack_latency_us: std::sync::atomic::AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{producer} producer: {message}")]
    Producer {
        producer: &'static str,
        message: String,
    },
    /// Deliveries not confirmed although the producer retried for as long
    /// as it was told to (e.g. `kafka.message.timeout.ms`): a new producer,
    /// streaming again from the stored position, may well succeed.
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

pub trait Sink: Send {
    /// Hands one message to the producer.
    fn send(&mut self, msg: &Message<'_>) -> Result<(), SinkError>;
    /// Makes everything sent so far durable as far as this producer can
    /// (written to the file / the terminal).
    fn flush(&mut self) -> Result<(), SinkError>;
    /// Called once before streaming: producers that connect themselves try
    /// it now, so options the broker rejects (credentials, topology) stop
    /// sluice at once; a broker that is merely away is retried later.
    fn prepare(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// A flag that makes a pending `flush` give up (the producer is being
    /// replaced): for producers whose flush can wait on the network.
    fn abort_handle(&self) -> Option<std::sync::Arc<std::sync::atomic::AtomicBool>> {
        None
    }
}

impl<T: Sink + ?Sized> Sink for Box<T> {
    fn send(&mut self, msg: &Message<'_>) -> Result<(), SinkError> {
        (**self).send(msg)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        (**self).flush()
    }

    fn prepare(&mut self) -> Result<(), SinkError> {
        (**self).prepare()
    }

    fn abort_handle(&self) -> Option<std::sync::Arc<std::sync::atomic::AtomicBool>> {
        (**self).abort_handle()
    }
}
