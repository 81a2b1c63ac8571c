//! Where a new session must start so that the stream continues exactly: the
//! position after the last transaction boundary read. Resuming there, a
//! transaction cut by the disconnect is read again from its start (its
//! partial rows were never emitted: the pipeline only emits at commit).

use crate::event::{self, types, Event, QueryKind, Rotate};
use crate::mysql_gtid::{GtidSet, MysqlGtid};
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
    /// MySQL: the executed GTID set (from the start position or
    /// PREVIOUS_GTIDS) and the GTID of the transaction being read.
    mysql: Option<GtidSet>,
    mysql_pending: Option<MysqlGtid>,
}

impl ResumeTracker {
    pub fn new(start: BinlogPosition) -> Self {
        let gtid = start
            .gtid
            .as_deref()
            .and_then(|g| GtidState::parse(g).ok())
            .unwrap_or_default();
        let mysql = start
            .gtid
            .as_deref()
            .filter(|g| g.contains(':'))
            .and_then(|g| GtidSet::parse(g).ok());
        ResumeTracker {
            file: start.file.clone(),
            offset: start.offset,
            in_txn: false,
            boundary: start,
            gtid,
            pending: None,
            mysql,
            mysql_pending: None,
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
            types::MYSQL_GTID | types::MYSQL_GTID_TAGGED => {
                self.mysql_pending = MysqlGtid::parse(h.event_type, &ev.body).ok();
            }
            types::MYSQL_PREVIOUS_GTIDS => {
                if let Ok(set) = GtidSet::parse_previous_gtids(&ev.body) {
                    self.mysql.get_or_insert_with(GtidSet::default).union(&set);
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
            if !matches!(h.event_type, types::MYSQL_GTID | types::MYSQL_GTID_TAGGED) {
                if let (Some(g), Some(set)) = (self.mysql_pending.take(), self.mysql.as_mut()) {
                    set.add(&g);
                }
            }
            let gtid = match &self.mysql {
                Some(set) if !set.is_empty() => Some(set.to_string()),
                _ => (!self.gtid.is_empty()).then(|| self.gtid.to_string()),
            };
            self.boundary = BinlogPosition {
                file: self.file.clone(),
                offset: self.offset,
                gtid,
            };
        }
    }

    pub fn resume_position(&self) -> &BinlogPosition {
        &self.boundary
    }

    /// The position read up to, when it is inside a transaction (which
    /// began at the resume position and has not committed yet).
    pub fn inside_transaction(&self) -> Option<BinlogPosition> {
        self.in_txn
            .then(|| BinlogPosition::new(self.file.clone(), self.offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_executed_set_grows_at_each_commit() {
        let u = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let mut start = BinlogPosition::new("m.1", 4);
        start.gtid = Some(format!("{u}:1-5"));
        let mut t = ResumeTracker::new(start);
        let mut g = vec![0u8];
        g.extend_from_slice(&crate::mysql_gtid::Uuid::parse(u).unwrap().0);
        g.extend_from_slice(&6u64.to_le_bytes());
        t.observe(&ev(types::MYSQL_GTID, 200, g));
        let mut begin = vec![0u8; 13];
        begin.extend_from_slice(b"\0BEGIN");
        t.observe(&ev(types::QUERY, 260, begin));
        t.observe(&ev(types::WRITE_ROWS, 300, vec![]));
        assert_eq!(
            t.resume_position().gtid.as_deref(),
            Some(format!("{u}:1-5").as_str())
        );
        t.observe(&ev(types::XID, 331, 1u64.to_le_bytes().to_vec()));
        assert_eq!(
            t.resume_position().gtid.as_deref(),
            Some(format!("{u}:1-6").as_str())
        );
        assert_eq!(t.resume_position().offset, 331);
    }

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
