//! Producers. A sink receives encoded messages in binlog order and reports
//! failure as an error value, never by dropping a message.

mod file;
mod stdout;
mod writer;

pub use file::FileSink;
pub use stdout::StdoutSink;

/// One encoded event.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub json: &'a [u8],
    pub database: &'a str,
    pub table: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
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
}

impl<T: Sink + ?Sized> Sink for Box<T> {
    fn send(&mut self, msg: &Message<'_>) -> Result<(), SinkError> {
        (**self).send(msg)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        (**self).flush()
    }
}
