//! Rows of the open transaction, waiting for its commit (which carries the
//! `xid` every row needs). Held in memory up to a byte cap, then spilled to an
//! unnamed temporary file that the OS deletes when it is closed, even if the
//! process dies.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

/// Each row is stored as two length-prefixed parts: the JSON before the
/// commit fields and the JSON after them.
pub struct TxnBuffer {
    mem: Vec<u8>,
    cap: usize,
    tmp_dir: Option<PathBuf>,
    spill: Option<BufWriter<File>>,
    rows: u64,
    spilled_bytes: u64,
}

fn put(buf: &mut Vec<u8>, part: &[u8]) {
    buf.extend_from_slice(&(part.len() as u32).to_le_bytes());
    buf.extend_from_slice(part);
}

impl TxnBuffer {
    pub fn new(cap: usize, tmp_dir: Option<PathBuf>) -> Self {
        TxnBuffer {
            mem: Vec::new(),
            cap,
            tmp_dir,
            spill: None,
            rows: 0,
            spilled_bytes: 0,
        }
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Bytes written to disk for the open transaction.
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled_bytes
    }

    pub fn push(&mut self, head: &[u8], tail: &[u8]) -> std::io::Result<()> {
        let need = head.len() + tail.len() + 8;
        if self.mem.len() + need > self.cap && !self.mem.is_empty() {
            self.spill_mem()?;
        }
        put(&mut self.mem, head);
        put(&mut self.mem, tail);
        self.rows += 1;
        Ok(())
    }

    fn spill_mem(&mut self) -> std::io::Result<()> {
        if self.spill.is_none() {
            let f = match &self.tmp_dir {
                Some(d) => tempfile::tempfile_in(d)?,
                None => tempfile::tempfile()?,
            };
            self.spill = Some(BufWriter::with_capacity(1 << 20, f));
        }
        if let Some(w) = self.spill.as_mut() {
            w.write_all(&self.mem)?;
        }
        self.spilled_bytes += self.mem.len() as u64;
        self.mem.clear();
        if self.mem.capacity() > 2 * self.cap {
            self.mem.shrink_to(self.cap);
        }
        Ok(())
    }

    /// Calls `f(index, head, tail)` for every row in order, then empties the
    /// buffer (the spill file is closed and so deleted).
    pub fn drain<E>(
        &mut self,
        mut f: impl FnMut(u64, &[u8], &[u8]) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<std::io::Error>,
    {
        let mut index = 0u64;
        if let Some(w) = self.spill.take() {
            let mut file = w.into_inner().map_err(|e| e.into_error())?;
            file.seek(SeekFrom::Start(0))?;
            let mut r = BufReader::with_capacity(1 << 20, file);
            let (mut head, mut tail) = (Vec::new(), Vec::new());
            let mut remaining = self.spilled_bytes;
            while remaining > 0 {
                remaining -= read_part(&mut r, &mut head)? + read_part(&mut r, &mut tail)?;
                f(index, &head, &tail)?;
                index += 1;
            }
        }
        let mut pos = 0;
        let mem = std::mem::take(&mut self.mem);
        while pos < mem.len() {
            let (head, next) = split_part(&mem, pos);
            let (tail, next) = split_part(&mem, next);
            pos = next;
            if let Err(e) = f(index, head, tail) {
                self.mem = mem;
                self.clear();
                return Err(e);
            }
            index += 1;
        }
        self.mem = mem;
        self.clear();
        Ok(())
    }

    /// Drops the open transaction's rows.
    pub fn clear(&mut self) {
        self.mem.clear();
        if self.mem.capacity() > 2 * self.cap {
            self.mem.shrink_to(self.cap);
        }
        self.spill = None;
        self.rows = 0;
        self.spilled_bytes = 0;
    }
}

fn split_part(buf: &[u8], pos: usize) -> (&[u8], usize) {
    let len = u32::from_le_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize;
    (&buf[pos + 4..pos + 4 + len], pos + 4 + len)
}

fn read_part(r: &mut impl Read, into: &mut Vec<u8>) -> std::io::Result<u64> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let n = u32::from_le_bytes(len) as usize;
    into.clear();
    into.resize(n, 0);
    r.read_exact(into)?;
    Ok(4 + n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(b: &mut TxnBuffer) -> Vec<(u64, String)> {
        let mut v = Vec::new();
        b.drain::<std::io::Error>(|i, h, t| {
            v.push((
                i,
                format!(
                    "{}|{}",
                    String::from_utf8_lossy(h),
                    String::from_utf8_lossy(t)
                ),
            ));
            Ok(())
        })
        .unwrap();
        v
    }

    #[test]
    fn in_memory_order() {
        let mut b = TxnBuffer::new(1 << 20, None);
        b.push(b"a", b"1").unwrap();
        b.push(b"b", b"2").unwrap();
        assert_eq!(collect(&mut b), vec![(0, "a|1".into()), (1, "b|2".into())]);
        assert!(b.is_empty());
    }

    #[test]
    fn spills_past_the_cap_and_keeps_order() {
        let mut b = TxnBuffer::new(64, None);
        for i in 0..1000 {
            b.push(format!("head{i}").as_bytes(), format!("tail{i}").as_bytes())
                .unwrap();
        }
        assert!(b.spilled_bytes() > 0);
        assert!(b.mem.len() <= 64);
        let rows = collect(&mut b);
        assert_eq!(rows.len(), 1000);
        for (i, (idx, s)) in rows.iter().enumerate() {
            assert_eq!(*idx, i as u64);
            assert_eq!(s, &format!("head{i}|tail{i}"));
        }
        assert_eq!(b.spilled_bytes(), 0);
        b.push(b"x", b"y").unwrap();
        assert_eq!(collect(&mut b), vec![(0, "x|y".into())]);
    }
}
