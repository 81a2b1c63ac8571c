//! DBLog's reconciliation (Netflix, "DBLog: A Watermark Based Change-Data-
//! Capture Framework", 2020): between a chunk's low and high watermark the
//! stream records the keys of the snapshot table that the binlog changed.
//! At the high watermark, chunk rows with such a key are dropped: the
//! binlog already delivered a state of that row at least as new as the
//! chunk's, in binlog order. Every other chunk row is the row's state at
//! the high watermark, so emitting it there keeps the stream consistent.

use std::collections::HashSet;

/// The keys changed in one chunk's window.
#[derive(Debug, Default)]
pub struct Window {
    pub task: u64,
    pub chunk: u64,
    pub database: String,
    pub table: String,
    /// Columns the chunk is keyed by (empty: the table is read in one pass).
    pub key_columns: Vec<String>,
    /// Keys (JSON arrays as the binlog path renders them) of rows the
    /// binlog inserted, updated (before and after) or deleted.
    pub keys: HashSet<Vec<u8>>,
    /// A change whose key the binlog image did not carry (a MINIMAL image
    /// without the key columns): which chunk rows it affects is unknown.
    pub unknown_key: bool,
    /// Rows of the table changed at all (what matters for a table read
    /// without a key).
    pub changes: u64,
}

impl Window {
    /// Whether the chunk must be read again instead of emitted: the window
    /// saw a change it cannot attribute to a key.
    pub fn undecidable(&self) -> bool {
        self.unknown_key || (self.key_columns.is_empty() && self.changes > 0)
    }
}

/// The open windows (one per chunk between its watermarks; chunks of one
/// task never overlap, tasks run one at a time, so there is at most one in
/// practice).
#[derive(Debug, Default)]
pub struct Reconciler {
    open: Vec<Window>,
}

impl Reconciler {
    /// Opens `w`. A task's chunks never overlap (the next low watermark is
    /// written after the last high one), so an older window of the same
    /// task is one whose high watermark will never come (an attempt that
    /// failed): it is dropped.
    pub fn open(&mut self, w: Window) {
        self.open.retain(|o| o.task != w.task);
        self.open.push(w);
    }

    /// Closes the window of `chunk` (None if its low watermark was not
    /// seen, e.g. read before a restart).
    pub fn close(&mut self, task: u64, chunk: u64) -> Option<Window> {
        let i = self
            .open
            .iter()
            .position(|w| (w.task, w.chunk) == (task, chunk))?;
        Some(self.open.swap_remove(i))
    }

    /// The key columns of the open window on `database.table`, if any.
    pub fn watching(&self, database: &str, table: &str) -> Option<&[String]> {
        self.open
            .iter()
            .find(|w| w.database == database && w.table == table)
            .map(|w| w.key_columns.as_slice())
    }

    /// A binlog row of `database.table` changed; `key` is its key as
    /// rendered, `None` when the image lacks it.
    pub fn record(&mut self, database: &str, table: &str, key: Option<&[u8]>) {
        for w in self
            .open
            .iter_mut()
            .filter(|w| w.database == database && w.table == table)
        {
            w.changes += 1;
            match key {
                Some(k) if !w.key_columns.is_empty() => {
                    if !w.keys.contains(k) {
                        w.keys.insert(k.to_vec());
                    }
                }
                Some(_) => {}
                None => w.unknown_key = true,
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(key: &[&str]) -> Window {
        Window {
            task: 1,
            chunk: 2,
            database: "d".into(),
            table: "t".into(),
            key_columns: key.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn keys_changed_inside_the_window_are_remembered_for_its_table_only() {
        let mut r = Reconciler::default();
        r.record("d", "t", Some(b"[1]")); // before the low watermark
        r.open(window(&["id"]));
        assert_eq!(r.watching("d", "t"), Some(&["id".to_string()][..]));
        assert_eq!(r.watching("d", "other"), None);
        r.record("d", "t", Some(b"[2]"));
        r.record("d", "t", Some(b"[2]"));
        r.record("d", "other", Some(b"[3]"));
        let w = r.close(1, 2).unwrap();
        assert_eq!(w.keys.len(), 1);
        assert!(w.keys.contains(&b"[2]"[..]));
        assert_eq!(w.changes, 2);
        assert!(!w.undecidable());
        assert!(r.close(1, 2).is_none(), "closed once");
        assert!(r.is_empty());
    }

    #[test]
    fn a_keyless_table_changed_in_the_window_must_be_read_again() {
        let mut r = Reconciler::default();
        r.open(window(&[]));
        r.record("d", "t", Some(b"[]"));
        assert!(r.close(1, 2).unwrap().undecidable());
        r.open(window(&["id"]));
        r.record("d", "t", None);
        assert!(
            r.close(1, 2).unwrap().undecidable(),
            "a change without its key"
        );
    }
}
