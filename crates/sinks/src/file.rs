use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use crate::writer::BackgroundWriter;
use crate::{Message, Sink, SinkError};

/// Appends one JSON object per line to `output_file`. Lines are buffered in
/// memory and each full 256 KiB buffer is written by a thread of its own;
/// `flush` writes everything and asks the OS to put it on disk (fdatasync),
/// and only then does sluice count the rows as delivered.
pub struct FileSink {
    path: PathBuf,
    out: BackgroundWriter,
}

impl FileSink {
    pub fn open(path: &Path) -> Result<Self, SinkError> {
        drop_torn_line(path).map_err(|source| SinkError::Io {
            producer: "file",
            source: std::io::Error::new(
                source.kind(),
                format!("cannot repair {}: {source}", path.display()),
            ),
        })?;
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

/// A process killed while writing can leave a last line without its newline.
/// That line was never acknowledged (positions are stored only after a
/// flush), so it will be written again: cut it off instead of appending to it.
fn drop_torn_line(path: &Path) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    if len == 0 || !f.metadata()?.is_file() {
        return Ok(());
    }
    let mut keep = len;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let start = keep.saturating_sub(buf.len() as u64);
        let n = (keep - start) as usize;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf[..n])?;
        if keep == len && buf[n - 1] == b'\n' {
            return Ok(());
        }
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            keep = start + i as u64 + 1;
            break;
        }
        if start == 0 {
            keep = 0;
            break;
        }
        keep = start;
    }
    f.set_len(keep)
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
            kind: "insert",
            primary_key: None,
            partition_values: None,
            xid: None,
        })
        .unwrap();
        s.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old\n{\"a\":1}\n");
        assert!(FileSink::open(&dir.path().join("no/such/dir")).is_err());
        drop(s);
        // A torn last line (a writer killed mid-line) is cut off on open.
        std::fs::write(&p, "{\"a\":1}\n{\"b\":").unwrap();
        let mut s = FileSink::open(&p).unwrap();
        s.send(&Message {
            json: b"{\"b\":2}",
            database: "d",
            table: "t",
            kind: "insert",
            primary_key: None,
            partition_values: None,
            xid: None,
        })
        .unwrap();
        s.flush().unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n"
        );
    }
}
