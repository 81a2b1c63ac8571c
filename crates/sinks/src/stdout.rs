use std::io::{BufWriter, Stdout, Write};

use crate::{Message, Sink, SinkError};

/// Writes one JSON object per line to standard output. Lines are buffered
/// and flushed whenever the pipeline catches up with the binlog (and at
/// shutdown), so a quiet stream shows every row promptly.
pub struct StdoutSink {
    out: BufWriter<Stdout>,
}

impl StdoutSink {
    pub fn new() -> Self {
        StdoutSink {
            out: BufWriter::with_capacity(1 << 16, std::io::stdout()),
        }
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        Self::new()
    }
}

fn err(source: std::io::Error) -> SinkError {
    SinkError::Io {
        producer: "stdout",
        source,
    }
}

impl Sink for StdoutSink {
    fn send(&mut self, msg: &Message<'_>) -> Result<(), SinkError> {
        self.out.write_all(msg.json).map_err(err)?;
        self.out.write_all(b"\n").map_err(err)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(err)
    }
}
