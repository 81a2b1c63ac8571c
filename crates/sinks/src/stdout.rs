use crate::writer::BackgroundWriter;
use crate::{Message, Sink, SinkError};

/// Writes one JSON object per line to standard output. Lines are buffered
/// (256 KiB, written by a thread of their own) and flushed whenever the
/// pipeline catches up with the binlog, and at shutdown, so a quiet stream
/// shows every row promptly.
pub struct StdoutSink {
    out: BackgroundWriter,
}

fn err(source: std::io::Error) -> SinkError {
    SinkError::Io {
        producer: "stdout",
        source,
    }
}

impl StdoutSink {
    pub fn new() -> Result<Self, SinkError> {
        let out =
            BackgroundWriter::new(std::io::stdout(), |_| Ok(()), "stdout-writer").map_err(err)?;
        Ok(StdoutSink { out })
    }
}

impl Sink for StdoutSink {
    fn send(&mut self, msg: &Message<'_>) -> Result<(), SinkError> {
        self.out.write_line(msg.json).map_err(err)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(err)
    }
}
