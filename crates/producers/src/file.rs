use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use sluice_core::{declare_options, Opt, Section};

use crate::registry::{ProducerConfig, Registration};
use crate::writer::BackgroundWriter;
use crate::{Message, Producer, ProducerError, ProducerStats};

declare_options! { OPTIONS;
    OUTPUT_FILE: String = Opt::new("output_file", Section::Producer("file"), "",
        "file to append to (created if missing)");
}

pub const REGISTRATION: Registration = Registration {
    name: "file",
    options: OPTIONS,
    passthrough: None,
    configure: |values| {
        let path = OUTPUT_FILE.get(values)?;
        if path.is_empty() {
            return Err(OUTPUT_FILE.error(values, "producer=file needs --output_file=PATH"));
        }
        Ok(Arc::new(FileConfig {
            path: PathBuf::from(path),
        }))
    },
};

#[derive(Debug)]
pub struct FileConfig {
    pub path: PathBuf,
}

impl ProducerConfig for FileConfig {
    fn name(&self) -> &'static str {
        "file"
    }

    fn build(&self, _: Arc<ProducerStats>) -> Result<Box<dyn Producer>, ProducerError> {
        Ok(Box::new(FileProducer::open(&self.path)?))
    }
}

/// Appends one JSON object per line to `output_file`. Lines are buffered in
/// memory and each full 256 KiB buffer is written by a thread of its own;
/// `flush` writes everything and asks the OS to put it on disk (fdatasync),
/// and only then does sluice count the rows as delivered.
pub struct FileProducer {
    path: PathBuf,
    out: BackgroundWriter,
}

impl FileProducer {
    pub fn open(path: &Path) -> Result<Self, ProducerError> {
        let io_err = |what: &str, source: std::io::Error| ProducerError::Io {
            producer: "file",
            source: std::io::Error::new(
                source.kind(),
                format!("cannot {what} {}: {source}", path.display()),
            ),
        };
        match own_output(path).map_err(|e| io_err("read", e))? {
            Existing::Foreign(why) => {
                return Err(ProducerError::Failed {
                    producer: "file",
                    message: format!(
                        "output_file {} was not written by sluice ({why}); sluice appends only to its own \
                         output (one JSON object per line) and never changes another file. Point \
                         --output_file at a new file, or move this one away",
                        path.display()
                    ),
                })
            }
            Existing::Torn { keep, cut } => {
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| io_err("repair", e))?;
                f.set_len(keep).map_err(|e| io_err("repair", e))?;
                tracing::warn!(file = %path.display(), bytes_cut = cut, kept = keep,
                    "output_file ended in a torn line (a write cut short by a crash): cut it off; \
                     its rows are sent again from the stored position");
            }
            Existing::Ours | Existing::Special | Existing::Missing => {}
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io_err("open", e))?;
        // /dev/null, /dev/stdout, a FIFO: fdatasync fails there (EINVAL)
        // and there is nothing to make durable.
        let regular = f.metadata().map_err(|e| io_err("open", e))?.is_file();
        let sync = move |f: &mut std::fs::File| if regular { f.sync_data() } else { Ok(()) };
        let out =
            BackgroundWriter::new(f, sync, "file-writer").map_err(|source| ProducerError::Io {
                producer: "file",
                source,
            })?;
        Ok(FileProducer {
            path: path.to_path_buf(),
            out,
        })
    }

    fn err(&self, source: std::io::Error) -> ProducerError {
        ProducerError::Io {
            producer: "file",
            source: std::io::Error::new(
                source.kind(),
                format!("{}: {source}", self.path.display()),
            ),
        }
    }
}

/// What an existing `output_file` holds.
#[derive(Debug, PartialEq)]
enum Existing {
    Missing,
    /// Not a regular file (a device, a FIFO): written to as it is.
    Special,
    /// Sluice's output (or empty), ending with a complete line.
    Ours,
    /// Sluice's output whose last line was cut short: keep `keep` bytes.
    Torn {
        keep: u64,
        cut: u64,
    },
    /// Anything else, with what gave it away: never touched.
    Foreign(String),
}

/// How much of each end of the file is read to recognise it.
const WINDOW: u64 = 64 * 1024;

/// Recognises sluice's own output: its first and last complete lines are
/// JSON objects, and what follows the last newline (a line a process killed
/// while writing left without its newline) is the start of one. That torn
/// line was never acknowledged (positions are stored only after a flush),
/// so it will be written again: it is cut off rather than appended to.
/// Only the two ends are read, so a large file costs no more than a small one.
fn own_output(path: &Path) -> std::io::Result<Existing> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Missing),
        Err(e) => return Err(e),
    };
    if !meta.is_file() {
        return Ok(Existing::Special);
    }
    let len = meta.len();
    if len == 0 {
        return Ok(Existing::Ours);
    }
    let mut f = std::fs::File::open(path)?;
    let head = read_at(&mut f, 0, WINDOW.min(len))?;
    // The last newline, scanning back window by window.
    let mut end = len;
    let last_newline = loop {
        let start = end.saturating_sub(WINDOW);
        let buf = read_at(&mut f, start, end - start)?;
        if let Some(i) = buf.iter().rposition(|&b| b == b'\n') {
            break Some(start + i as u64);
        }
        if start == 0 {
            break None;
        }
        end = start;
    };
    let Some(last_newline) = last_newline else {
        // No complete line: a torn first row is an unfinished object; a
        // complete one without its newline is somebody's JSON document.
        let unfinished =
            len > WINDOW || serde_json::from_slice::<serde_json::Value>(&head).is_err();
        return Ok(if head.starts_with(b"{\"") && unfinished {
            Existing::Torn { keep: 0, cut: len }
        } else {
            Existing::Foreign(
                "it holds no complete line and is not the start of a JSON object".into(),
            )
        });
    };
    let first_ok = match head.iter().position(|&b| b == b'\n') {
        Some(e) => is_row(&head[..e], true),
        // A first line longer than the window: its start must be a row's.
        None => head.starts_with(b"{\""),
    };
    if !first_ok {
        return Ok(Existing::Foreign("line 1 is not a JSON object".into()));
    }
    let keep = last_newline + 1;
    // The last complete line (what fits of it in a window).
    let from = last_newline.saturating_sub(WINDOW);
    let before = read_at(&mut f, from, last_newline - from)?;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let whole = line_start > 0 || from == 0;
    if !is_row(&before[line_start..], whole) {
        return Ok(Existing::Foreign(
            "its last line is not a JSON object".into(),
        ));
    }
    if keep == len {
        return Ok(Existing::Ours);
    }
    let tail = read_at(&mut f, keep, 2u64.min(len - keep))?;
    if tail.first() != Some(&b'{') {
        return Ok(Existing::Foreign(
            "it does not end with a newline and its last line is not the start of a JSON object"
                .into(),
        ));
    }
    Ok(Existing::Torn {
        keep,
        cut: len - keep,
    })
}

fn read_at(f: &mut std::fs::File, at: u64, n: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    f.seek(SeekFrom::Start(at))?;
    let mut buf = Vec::with_capacity(n as usize);
    f.take(n).read_to_end(&mut buf)?;
    Ok(buf)
}

/// A line as sluice writes it: a JSON object. `whole`: the line was read
/// entirely (else only its end, `}`, can be checked).
fn is_row(line: &[u8], whole: bool) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if !whole {
        return line.ends_with(b"}");
    }
    line.starts_with(b"{")
        && matches!(
            serde_json::from_slice::<serde_json::Value>(line),
            Ok(serde_json::Value::Object(_))
        )
}

impl Producer for FileProducer {
    fn send(&mut self, msg: &Message<'_>) -> Result<(), ProducerError> {
        if let Err(e) = self.out.write_line(msg.json) {
            return Err(self.err(e));
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ProducerError> {
        if let Err(e) = self.out.flush() {
            return Err(self.err(e));
        }
        Ok(())
    }

    fn takes_line_blocks(&self) -> bool {
        true
    }

    fn send_lines(&mut self, block: Vec<u8>) -> Result<Vec<u8>, ProducerError> {
        self.out.write_block(block).map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(json: &[u8]) -> Message<'_> {
        Message {
            json,
            database: "d",
            table: "t",
            kind: "insert",
            primary_key: None,
            partition_values: None,
            xid: None,
        }
    }

    fn append(p: &Path, json: &[u8]) -> Result<(), ProducerError> {
        let mut s = FileProducer::open(p)?;
        s.send(&row(json))?;
        s.flush()
    }

    #[test]
    fn appends_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.json");
        std::fs::write(&p, "{\"old\":0}\n").unwrap();
        append(&p, b"{\"a\":1}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"old\":0}\n{\"a\":1}\n"
        );
        assert!(FileProducer::open(&dir.path().join("no/such/dir")).is_err());
        // A new file, and an empty one.
        let q = dir.path().join("new.json");
        append(&q, b"{\"a\":1}").unwrap();
        std::fs::write(&q, "").unwrap();
        append(&q, b"{\"a\":2}").unwrap();
        assert_eq!(std::fs::read_to_string(&q).unwrap(), "{\"a\":2}\n");
    }

    /// Blocks of lines (the worker pool's jobs) and single lines land in
    /// the order they were handed over, and every block's buffer comes back
    /// empty for reuse.
    #[test]
    fn line_blocks_and_single_lines_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.json");
        let mut s = FileProducer::open(&p).unwrap();
        assert!(s.takes_line_blocks());
        let mut expected = String::new();
        for i in 0..200 {
            s.send(&row(format!("{{\"single\":{i}}}").as_bytes()))
                .unwrap();
            expected.push_str(&format!("{{\"single\":{i}}}\n"));
            // Blocks around the writer's own buffer size, so both paths
            // hand buffers to the thread.
            let mut block = Vec::new();
            for k in 0..(i * 37 % 5000) {
                block.extend_from_slice(format!("{{\"block\":{i},\"k\":{k}}}\n").as_bytes());
            }
            expected.push_str(std::str::from_utf8(&block).unwrap());
            let spare = s.send_lines(block).unwrap();
            assert!(spare.is_empty());
        }
        s.flush().unwrap();
        drop(s);
        assert!(std::fs::read_to_string(&p).unwrap() == expected);
    }

    #[test]
    fn a_torn_last_line_of_its_own_output_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.json");
        std::fs::write(&p, "{\"a\":1}\n{\"b\":").unwrap();
        assert_eq!(own_output(&p).unwrap(), Existing::Torn { keep: 8, cut: 5 });
        append(&p, b"{\"b\":2}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n"
        );
        // The very first row torn: nothing complete is left.
        std::fs::write(&p, "{\"database\":\"d\",\"ta").unwrap();
        append(&p, b"{\"c\":3}").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\"c\":3}\n");
        // Lines longer than the window at both ends.
        let long = format!("{{\"x\":\"{}\"}}", "y".repeat(WINDOW as usize * 2));
        std::fs::write(&p, format!("{long}\n{long}\n{{\"z\"")).unwrap();
        assert_eq!(
            own_output(&p).unwrap(),
            Existing::Torn {
                keep: 2 * (long.len() as u64 + 1),
                cut: 4
            }
        );
    }

    #[test]
    fn a_file_sluice_did_not_write_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("app.conf");
        for text in [
            "listen = 80\nmax = 5",             // a config file without its last newline
            "listen = 80\nmax = 5\n",           // ... and with it
            "just one line",                    // no newline at all
            "{\"a\":1}",                        // a JSON document, not a torn row
            "{\n  \"pretty\": true\n}\n",       // JSON, but not one object per line
            "{\"a\":1}\nnot json\n",            // a row, then something else
            "{\"a\":1}\n{\"b\":2}\nplain tail", // a tail that is no row
        ] {
            std::fs::write(&p, text).unwrap();
            let e = FileProducer::open(&p).err().expect(text).to_string();
            assert!(
                e.contains("was not written by sluice")
                    && e.contains(&p.display().to_string())
                    && e.contains("--output_file"),
                "{text:?}: {e}"
            );
            assert_eq!(std::fs::read_to_string(&p).unwrap(), text, "changed");
        }
    }

    #[test]
    fn special_files_are_written_without_repair_or_sync() {
        append(Path::new("/dev/null"), b"{\"a\":1}").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        };
        append(&fifo, b"{\"a\":1}").unwrap();
        assert_eq!(reader.join().unwrap(), "{\"a\":1}\n");
    }
}
