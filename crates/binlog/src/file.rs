//! Reading binlog (and relay log) files from disk: the same `Event` values
//! a replication session hands out, checksums verified and removed, for
//! decoding files copied off a server (`--binlog_files`).
//!
//! Each file starts with an artificial ROTATE naming it, as the server
//! sends one at the start of a dump, so positions downstream name the
//! file; files are read in the order given, whether or not each ends with
//! a ROTATE. A FORMAT_DESCRIPTION sets the checksum algorithm for the
//! events after it (a relay log carries two: the relay log's and the
//! source's). Memory is bounded by the largest event, never by the file.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::event::{types, ChecksumAlg, Event, EventHeader, HEADER_LEN, LOG_EVENT_ARTIFICIAL_F};
use crate::session::verify_checksum;

/// The four bytes every binlog and relay log file starts with.
pub const BINLOG_MAGIC: [u8; 4] = [0xFE, b'b', b'i', b'n'];

/// Where the (low byte of the) header flags sit, and the flag the server
/// keeps set on the FORMAT_DESCRIPTION of a file it is writing.
const FLAGS_OFFSET: usize = 17;
const LOG_EVENT_BINLOG_IN_USE_F: u8 = 1;

/// Largest event accepted: the server cannot write a larger one
/// (`max_allowed_packet` is at most 1 GiB).
pub const MAX_EVENT_SIZE: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read binlog file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a binlog file: it does not start with the binlog magic bytes fe 62 69 6e"
    )]
    BadMagic { path: String },
    #[error("{path}: truncated event at offset {offset}: {message}. The file ends in the middle of an event (a server still writing it, or a partial copy); copy the file again once the server has rotated past it")]
    Truncated {
        path: String,
        offset: u64,
        message: String,
    },
    #[error("{path}: binlog checksum mismatch in the event at offset {offset} (stored {expected:#010x}, computed {computed:#010x}): the file is corrupt")]
    Checksum {
        path: String,
        offset: u64,
        expected: u32,
        computed: u32,
    },
    #[error("{path}: malformed event at offset {offset}: {message}")]
    Malformed {
        path: String,
        offset: u64,
        message: String,
    },
}

impl FileError {
    /// The file offset of the event the error is about, if any.
    pub fn offset(&self) -> Option<u64> {
        match self {
            FileError::Truncated { offset, .. }
            | FileError::Checksum { offset, .. }
            | FileError::Malformed { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}

/// Whether a FORMAT_DESCRIPTION from this server version ends with a
/// checksum-algorithm byte (MySQL 5.6.1+, every MariaDB since 5.3).
fn has_checksum_byte(server_version: &str) -> bool {
    if server_version.to_ascii_lowercase().contains("mariadb") {
        return true;
    }
    let nums: Vec<u32> = server_version
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    match nums.as_slice() {
        [a, b, c] => (*a, *b, *c) >= (5, 6, 1),
        _ => false,
    }
}

/// One binlog file, read event by event.
pub struct BinlogFile<R: Read> {
    path: String,
    name: String,
    input: R,
    /// Bytes of the file (events are never believed to be longer).
    len: u64,
    offset: u64,
    checksum: ChecksumAlg,
    started: bool,
    done: bool,
    server_version: Option<String>,
}

impl BinlogFile<BufReader<File>> {
    /// Opens `path` and checks its magic bytes.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, FileError> {
        let p = path.as_ref();
        let shown = p.display().to_string();
        let io = |source| FileError::Io {
            path: shown.clone(),
            source,
        };
        let f = File::open(p).map_err(io)?;
        let len = f.metadata().map_err(io)?.len();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| shown.clone());
        BinlogFile::new(
            shown.clone(),
            name,
            BufReader::with_capacity(1 << 16, f),
            len,
        )
    }
}

impl BinlogFile<std::io::Cursor<Vec<u8>>> {
    /// A file already in memory (`name` is what positions call it).
    pub fn from_bytes(name: &str, data: Vec<u8>) -> Result<Self, FileError> {
        let len = data.len() as u64;
        BinlogFile::new(
            name.to_string(),
            name.to_string(),
            std::io::Cursor::new(data),
            len,
        )
    }
}

impl<R: Read> BinlogFile<R> {
    /// `path` names the file in errors, `name` in positions (the file name
    /// without directories, as the server names its files).
    pub fn new(path: String, name: String, mut input: R, len: u64) -> Result<Self, FileError> {
        let mut magic = [0u8; 4];
        if len < 4 {
            return Err(FileError::BadMagic { path });
        }
        input
            .read_exact(&mut magic)
            .map_err(|source| FileError::Io {
                path: path.clone(),
                source,
            })?;
        if magic != BINLOG_MAGIC {
            return Err(FileError::BadMagic { path });
        }
        Ok(BinlogFile {
            path,
            name,
            input,
            len,
            offset: 4,
            checksum: ChecksumAlg::None,
            started: false,
            done: false,
            server_version: None,
        })
    }

    /// The file name positions use.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Offset of the next event.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The server version of the last FORMAT_DESCRIPTION read.
    pub fn server_version(&self) -> Option<&str> {
        self.server_version.as_deref()
    }

    /// The next event, `None` at the end of the file. After an error the
    /// file yields nothing more.
    pub fn next_event(&mut self) -> Option<Result<Event, FileError>> {
        if self.done {
            return None;
        }
        if !self.started {
            self.started = true;
            return Some(Ok(self.artificial_rotate()));
        }
        let res = self.read_event();
        match res {
            Ok(Some(ev)) => Some(Ok(ev)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    /// What the server sends first in a dump: an artificial ROTATE naming
    /// the file, position 4.
    fn artificial_rotate(&self) -> Event {
        let mut body = 4u64.to_le_bytes().to_vec();
        body.extend_from_slice(self.name.as_bytes());
        let mut ev = Event::new(types::ROTATE, 0, 0, body);
        ev.header.server_id = 0;
        ev.header.flags = LOG_EVENT_ARTIFICIAL_F;
        ev
    }

    fn truncated(&self, message: String) -> FileError {
        FileError::Truncated {
            path: self.path.clone(),
            offset: self.offset,
            message,
        }
    }

    fn malformed(&self, message: String) -> FileError {
        FileError::Malformed {
            path: self.path.clone(),
            offset: self.offset,
            message,
        }
    }

    /// Reads up to `buf.len()` bytes; fewer only at the end of the input.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, FileError> {
        let mut got = 0;
        while got < buf.len() {
            match self.input.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(FileError::Io {
                        path: self.path.clone(),
                        source,
                    })
                }
            }
        }
        Ok(got)
    }

    fn read_event(&mut self) -> Result<Option<Event>, FileError> {
        let mut head = [0u8; HEADER_LEN];
        let got = self.fill(&mut head)?;
        if got == 0 {
            return Ok(None);
        }
        if got < HEADER_LEN {
            return Err(self.truncated(format!(
                "{got} bytes left, an event header needs {HEADER_LEN}"
            )));
        }
        let header = EventHeader::parse(&head).map_err(|e| self.malformed(e.to_string()))?;
        let size = u64::from(header.event_size);
        if size < HEADER_LEN as u64 || size > MAX_EVENT_SIZE {
            return Err(self.malformed(format!(
                "event size {size} in the header of an event of type {}",
                header.event_type
            )));
        }
        let left = self.len.saturating_sub(self.offset);
        if size > left {
            return Err(self.truncated(format!(
                "the header says {size} bytes, the file has {left} left"
            )));
        }
        // Bounded by the file's size checked above, not by the header alone.
        let mut data = vec![0u8; size as usize];
        data[..HEADER_LEN].copy_from_slice(&head);
        let got = self.fill(&mut data[HEADER_LEN..])?;
        if got < data.len() - HEADER_LEN {
            return Err(self.truncated(format!(
                "the header says {size} bytes, the file ended after {}",
                HEADER_LEN + got
            )));
        }
        let end = self.strip_checksum(&header, &data)?;
        self.offset += size;
        Ok(Some(Event {
            header,
            body: data[HEADER_LEN..end].to_vec(),
        }))
    }

    /// Verifies and removes the checksum; a FORMAT_DESCRIPTION also loses
    /// its algorithm byte and sets the algorithm for the events after it.
    fn strip_checksum(&mut self, header: &EventHeader, data: &[u8]) -> Result<usize, FileError> {
        let verify = |this: &Self, data: &[u8]| {
            verify_checksum(data).map_err(|(expected, computed)| FileError::Checksum {
                path: this.path.clone(),
                offset: this.offset,
                expected,
                computed,
            })
        };
        if header.event_type != types::FORMAT_DESCRIPTION {
            return match self.checksum {
                ChecksumAlg::Crc32 => verify(self, data),
                ChecksumAlg::None => Ok(data.len()),
            };
        }
        let body = &data[HEADER_LEN..];
        let ver = body.get(2..52).ok_or_else(|| {
            self.malformed("FORMAT_DESCRIPTION shorter than its server version".into())
        })?;
        let ver_end = ver.iter().position(|&b| b == 0).unwrap_or(ver.len());
        let version = String::from_utf8_lossy(&ver[..ver_end]).into_owned();
        let (alg, end) = if has_checksum_byte(&version) && body.len() >= 5 {
            match body[body.len() - 5] {
                1 => {
                    // The server checksums its FORMAT_DESCRIPTION without the
                    // "binlog in use" flag, which it clears on closing the
                    // file; a copy of an open file still has it.
                    let mut copy = data.to_vec();
                    copy[FLAGS_OFFSET] &= !LOG_EVENT_BINLOG_IN_USE_F;
                    (ChecksumAlg::Crc32, verify(self, &copy)? - 1)
                }
                // As the session hands it on: without checksums the footer stays.
                0 => (ChecksumAlg::None, data.len()),
                other => {
                    return Err(self.malformed(format!(
                        "FORMAT_DESCRIPTION names checksum algorithm {other}; sluice knows none (0) and CRC32 (1)"
                    )))
                }
            }
        } else {
            (ChecksumAlg::None, data.len())
        };
        self.checksum = alg;
        self.server_version = Some(version);
        Ok(end)
    }
}

impl<R: Read> Iterator for BinlogFile<R> {
    type Item = Result<Event, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_event()
    }
}

/// Several binlog files read one after another, in the order given (the
/// caller sorts them; `mysql-bin.000002` after `mysql-bin.000001`).
pub struct BinlogFiles {
    paths: std::vec::IntoIter<PathBuf>,
    current: Option<BinlogFile<BufReader<File>>>,
    failed: bool,
}

impl BinlogFiles {
    pub fn new(paths: Vec<PathBuf>) -> Self {
        BinlogFiles {
            paths: paths.into_iter(),
            current: None,
            failed: false,
        }
    }

    /// The file being read.
    pub fn current(&self) -> Option<&BinlogFile<BufReader<File>>> {
        self.current.as_ref()
    }
}

impl Iterator for BinlogFiles {
    type Item = Result<Event, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed {
                return None;
            }
            if let Some(f) = self.current.as_mut() {
                match f.next_event() {
                    Some(Err(e)) => {
                        self.failed = true;
                        return Some(Err(e));
                    }
                    Some(ok) => return Some(ok),
                    None => self.current = None,
                }
            }
            let path = self.paths.next()?;
            match BinlogFile::open(path) {
                Ok(f) => self.current = Some(f),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_event(event_type: u8, log_pos: u32, body: &[u8], crc: bool) -> Vec<u8> {
        let size = (HEADER_LEN + body.len() + if crc { 4 } else { 0 }) as u32;
        let mut d = Vec::new();
        d.extend_from_slice(&1u32.to_le_bytes());
        d.push(event_type);
        d.extend_from_slice(&1u32.to_le_bytes());
        d.extend_from_slice(&size.to_le_bytes());
        d.extend_from_slice(&log_pos.to_le_bytes());
        d.extend_from_slice(&0u16.to_le_bytes());
        d.extend_from_slice(body);
        if crc {
            let c = crc32fast::hash(&d);
            d.extend_from_slice(&c.to_le_bytes());
        }
        d
    }

    fn fde_body(version: &str, alg: u8) -> Vec<u8> {
        let mut b = 4u16.to_le_bytes().to_vec();
        let mut v = [0u8; 50];
        v[..version.len()].copy_from_slice(version.as_bytes());
        b.extend_from_slice(&v);
        b.extend_from_slice(&0u32.to_le_bytes());
        b.push(19);
        b.extend_from_slice(&[0u8; 40]);
        b.push(alg);
        b
    }

    fn file(events: &[Vec<u8>]) -> Vec<u8> {
        let mut d = BINLOG_MAGIC.to_vec();
        for e in events {
            d.extend_from_slice(e);
        }
        d
    }

    #[test]
    fn reads_events_verifying_crc32_after_the_fde() {
        let fde = raw_event(types::FORMAT_DESCRIPTION, 0, &fde_body("8.0.40", 1), true);
        let xid_at = 4 + fde.len() as u32;
        let xid = raw_event(types::XID, xid_at + 31, &9u64.to_le_bytes(), true);
        let mut f = BinlogFile::from_bytes("b.000001", file(&[fde.clone(), xid.clone()])).unwrap();
        let rot = f.next().unwrap().unwrap();
        assert_eq!(rot.header.event_type, types::ROTATE);
        assert!(rot.header.is_artificial());
        assert_eq!(&rot.body[8..], b"b.000001");
        let e = f.next().unwrap().unwrap();
        assert_eq!(e.header.event_type, types::FORMAT_DESCRIPTION);
        assert_eq!(
            e.body.len(),
            fde_body("8.0.40", 1).len() - 1,
            "alg byte and CRC removed"
        );
        let x = f.next().unwrap().unwrap();
        assert_eq!(x.body, 9u64.to_le_bytes());
        assert!(f.next().is_none());

        let mut bad = file(&[fde, xid]);
        let n = bad.len();
        bad[n - 6] ^= 1;
        let mut f = BinlogFile::from_bytes("b.000001", bad).unwrap();
        let err = f.nth(2).unwrap().unwrap_err();
        assert!(
            matches!(err, FileError::Checksum { offset, .. } if offset == xid_at as u64),
            "{err}"
        );
        assert!(err.to_string().contains("b.000001"), "{err}");
        assert!(f.next().is_none(), "nothing after an error");
    }

    #[test]
    fn truncated_tail_names_file_and_offset() {
        let fde = raw_event(types::FORMAT_DESCRIPTION, 0, &fde_body("5.7.2", 0), false);
        let at = 4 + fde.len() as u64;
        let mut d = file(&[fde]);
        d.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let mut f = BinlogFile::from_bytes("t.000001", d).unwrap();
        let err = f.find_map(Result::err).unwrap();
        assert!(
            matches!(err, FileError::Truncated { offset, .. } if offset == at),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("t.000001") && text.contains(&format!("offset {at}")),
            "{text}"
        );
    }

    #[test]
    fn an_event_longer_than_the_file_is_truncation_not_an_allocation() {
        let mut ev = raw_event(types::XID, 0, &9u64.to_le_bytes(), false);
        ev[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut f = BinlogFile::from_bytes("x", file(&[ev])).unwrap();
        f.next();
        assert!(matches!(f.next(), Some(Err(FileError::Malformed { .. }))));
        let mut ev = raw_event(types::XID, 0, &9u64.to_le_bytes(), false);
        ev[9..13].copy_from_slice(&5000u32.to_le_bytes());
        let mut f = BinlogFile::from_bytes("x", file(&[ev])).unwrap();
        f.next();
        assert!(matches!(f.next(), Some(Err(FileError::Truncated { .. }))));
    }

    #[test]
    fn bad_magic_is_refused() {
        assert!(matches!(
            BinlogFile::from_bytes("x", b"\xfebix....".to_vec()),
            Err(FileError::BadMagic { .. })
        ));
        assert!(matches!(
            BinlogFile::from_bytes("x", vec![0xFE]),
            Err(FileError::BadMagic { .. })
        ));
    }

    #[test]
    fn versions_with_a_checksum_byte() {
        assert!(has_checksum_byte("5.6.1"));
        assert!(has_checksum_byte("8.0.40-debug"));
        assert!(has_checksum_byte("10.5.15-MariaDB-log"));
        assert!(!has_checksum_byte("5.5.62-log"));
        assert!(!has_checksum_byte("garbage"));
    }
}
