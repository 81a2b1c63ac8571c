use std::sync::Arc;

use crate::registry::{ProducerConfig, Registration};
use crate::writer::BackgroundWriter;
use crate::{Message, Producer, ProducerError, ProducerStats};

pub const REGISTRATION: Registration = Registration {
    name: "stdout",
    options: &[],
    passthrough: None,
    configure: |_| Ok(Arc::new(StdoutConfig)),
};

#[derive(Debug)]
struct StdoutConfig;

impl ProducerConfig for StdoutConfig {
    fn name(&self) -> &'static str {
        "stdout"
    }

    fn build(&self, _: Arc<ProducerStats>) -> Result<Box<dyn Producer>, ProducerError> {
        Ok(Box::new(StdoutProducer::new()?))
    }
}

/// Writes one JSON object per line to standard output. Lines are buffered
/// (256 KiB, written by a thread of their own) and flushed whenever the
/// pipeline catches up with the binlog, and at shutdown, so a quiet stream
/// shows every row promptly.
pub struct StdoutProducer {
    out: BackgroundWriter,
}

fn err(source: std::io::Error) -> ProducerError {
    ProducerError::Io {
        producer: "stdout",
        source,
    }
}

impl StdoutProducer {
    pub fn new() -> Result<Self, ProducerError> {
        let out =
            BackgroundWriter::new(std::io::stdout(), |_| Ok(()), "stdout-writer").map_err(err)?;
        Ok(StdoutProducer { out })
    }
}

impl Producer for StdoutProducer {
    fn send(&mut self, msg: &Message<'_>) -> Result<(), ProducerError> {
        self.out.write_line(msg.json).map_err(err)
    }

    fn flush(&mut self) -> Result<(), ProducerError> {
        self.out.flush().map_err(err)
    }

    fn takes_line_blocks(&self) -> bool {
        true
    }

    fn send_lines(&mut self, block: Vec<u8>) -> Result<Vec<u8>, ProducerError> {
        self.out.write_block(block).map_err(err)
    }
}
