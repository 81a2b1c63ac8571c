//! Where a new session must start so that the stream continues exactly: the
//! position after the last transaction boundary read. Resuming there, a
//! transaction cut by the disconnect is read again from its start (its
//! partial rows were never emitted: the pipeline only emits at commit).

use crate::event::{self, types, Event, QueryKind, Rotate};
use crate::{BinlogPosition, GtidState};

#[derive(Debug, Clone)]
pub struct ResumeTracker {
    file: String,
    offset: u64,
    in_txn: bool,
    boundary: BinlogPosition,
    /// MariaDB: the GTID position at the boundary, and the GTID of the
    /// transaction being read.
    gtid: GtidState,
    pending: Option<event::MariadbGtid>,
}

impl ResumeTracker {
    pub fn new(start: BinlogPosition) -> Self {
        let gtid = start
            .gtid
            .as_deref()
            .and_then(|g| GtidState::parse(g).ok())
            .unwrap_or_default();
        ResumeTracker {
            file: start.file.clone(),
            offset: start.offset,
            in_txn: false,
            boundary: start,
            gtid,
            pending: None,
        }
    }

    pub fn observe(&mut self, ev: &Event) {
        let h = &ev.header;
        match h.event_type {
            types::ROTATE => {
                if let Ok(r) = Rotate::parse(&ev.body) {
                    self.file = r.file;
                    self.offset = r.position;
                }
            }
            types::MARIADB_GTID => {
                if let Ok(g) = event::MariadbGtid::parse(h, &ev.body) {
                    self.in_txn = !g.standalone;
                    self.pending = Some(g);
                }
            }
            types::MARIADB_GTID_LIST => {
                let _ = self.gtid.apply_list(&ev.body);
            }
            types::QUERY => {
                if let Ok(q) = event::Query::parse(&ev.body) {
                    match event::query_kind(q.sql) {
                        QueryKind::Begin => self.in_txn = true,
                        QueryKind::Commit => self.in_txn = false,
                        _ => {}
                    }
                }
            }
            types::XID => self.in_txn = false,
            _ => {}
        }
        if h.event_type != types::ROTATE && h.log_pos != 0 && !h.is_artificial() {
            self.offset = h.log_pos as u64;
        }
        if !self.in_txn {
            // A transaction (or a standalone statement) ended: its GTID is
            // part of the position from now on.
            if h.event_type != types::MARIADB_GTID {
                if let Some(g) = self.pending.take() {
                    self.gtid.apply(&g);
                }
            }
            self.boundary = BinlogPosition {
                file: self.file.clone(),
                offset: self.offset,
                gtid: (!self.gtid.is_empty()).then(|| self.gtid.to_string()),
            };
        }
    }

    pub fn resume_position(&self) -> &BinlogPosition {
        &self.boundary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event_type: u8, log_pos: u32, body: Vec<u8>) -> Event {
        Event::new(event_type, 0, log_pos, body)
    }

    #[test]
    fn resumes_at_the_last_commit_not_inside_a_transaction() {
        let mut t = ResumeTracker::new(BinlogPosition::new("b.1", 4));
        let mut rot = 4u64.to_le_bytes().to_vec();
        rot.extend_from_slice(b"b.2");
        t.observe(&ev(types::ROTATE, 0, rot));
        assert_eq!(t.resume_position(), &BinlogPosition::new("b.2", 4));
        let mut gtid = 7u64.to_le_bytes().to_vec();
        gtid.extend_from_slice(&0u32.to_le_bytes());
        gtid.push(0);
        t.observe(&ev(types::MARIADB_GTID, 100, gtid));
        t.observe(&ev(types::TABLE_MAP, 150, vec![]));
        t.observe(&ev(types::WRITE_ROWS, 300, vec![]));
        assert_eq!(
            t.resume_position(),
            &BinlogPosition::new("b.2", 4),
            "inside a transaction"
        );
        t.observe(&ev(types::XID, 331, 1u64.to_le_bytes().to_vec()));
        let mut after = BinlogPosition::new("b.2", 331);
        after.gtid = Some("0-1-7".into());
        assert_eq!(
            t.resume_position(),
            &after,
            "the GTID counts once committed"
        );
    }
}
