use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::{Message, Sink, SinkError};

/// Appends one JSON object per line to `output_file`. Lines are buffered in
/// memory (64 KiB) and written to the file whenever the pipeline has caught
/// up with the binlog, when the buffer fills, and at shutdown; `flush` also
/// asks the OS to write the data to disk (fdatasync).
pub struct FileSink {
    path: PathBuf,
    out: BufWriter<File>,
}

impl FileSink {
    pub fn open(path: &Path) -> Result<Self, SinkError> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| SinkError::Io {
                producer: "file",
                source: std::io::Error::new(source.kind(), format!("cannot open {}: {source}", path.display())),
            })?;
        Ok(FileSink {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 16, f),
        })
    }

    fn err(&self, source: std::io::Error) -> SinkError {
        SinkError::Io {
            producer: "file",
            source: std::io::Error::new(source.kind(), format!("{}: {source}", self.path.display())),
        }
    }
}

impl Sink for FileSink {
    fn send(&mut self, msg: &Message<'_>) -> Result<(), SinkError> {
        if let Err(e) = self.out.write_all(msg.json).and_then(|_| self.out.write_all(b"\n")) {
            return Err(self.err(e));
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if let Err(e) = self.out.flush().and_then(|_| self.out.get_ref().sync_data()) {
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
        s.send(&Message { json: b"{\"a\":1}", database: "d", table: "t" }).unwrap();
        s.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old\n{\"a\":1}\n");
        assert!(FileSink::open(&dir.path().join("no/such/dir")).is_err());
    }
}
