use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use crate::writer::BackgroundWriter;
use crate::{Message, Sink, SinkError};

/// Appends one JSON object per line to `output_file`. Lines are buffered in
/// memory (256 KiB, written by a thread of their own) and written to the
/// file when the buffer fills, whenever the pipeline has caught up with the
/// binlog, and at shutdown; each of those flushes also asks the OS to put
/// the data on disk (fdatasync) before sluice counts the rows as delivered.
pub struct FileSink {
    path: PathBuf,
    out: BackgroundWriter,
}

impl FileSink {
    pub fn open(path: &Path) -> Result<Self, SinkError> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| SinkError::Io {
                producer: "file",
                source: std::io::Error::new(
                    source.kind(),
                    format!("cannot open {}: {source}", path.display()),
                ),
            })?;
        let out = BackgroundWriter::new(f, |f| f.sync_data(), "file-writer").map_err(|source| {
            SinkError::Io {
                producer: "file",
                source,
            }
        })?;
        Ok(FileSink {
            path: path.to_path_buf(),
            out,
        })
    }

    fn err(&self, source: std::io::Error) -> SinkError {
        SinkError::Io {
            producer: "file",
            source: std::io::Error::new(
                source.kind(),
                format!("{}: {source}", self.path.display()),
            ),
        }
    }
}

impl Sink for FileSink {
    fn send(&mut self, msg: &Message<'_>) -> Result<(), SinkError> {
        if let Err(e) = self.out.write_line(msg.json) {
            return Err(self.err(e));
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if let Err(e) = self.out.flush() {
            return Err(self.err(e));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.json");
        std::fs::write(&p, "old\n").unwrap();
        let mut s = FileSink::open(&p).unwrap();
        s.send(&Message {
            json: b"{\"a\":1}",
            database: "d",
            table: "t",
        })
        .unwrap();
        s.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old\n{\"a\":1}\n");
        assert!(FileSink::open(&dir.path().join("no/such/dir")).is_err());
    }
}
