//! MySQL-only events of the processor: GTIDs (tagged or not) and the
//! executed GTID set, compressed transactions, partial JSON updates.

use sluice_binlog::event::{types, Event};
use sluice_binlog::mysql_gtid::{GtidSet, MysqlGtid};
use sluice_binlog::payload;
use sluice_binlog::rows::RowsHeader;
use sluice_core::Producer;

use super::{PipelineError, Processor, SchemaSource};
use crate::partial_rows;

impl<S: Producer, C: SchemaSource> Processor<S, C> {
    pub(super) fn mysql_gtid(&mut self, ev: &Event) -> Result<(), PipelineError> {
        let g =
            MysqlGtid::parse(ev.header.event_type, &ev.body).map_err(|e| self.binlog_err(ev, e))?;
        self.txn_gtid = Some(g.to_string());
        self.txn_mysql_gtid = Some(g);
        Ok(())
    }

    /// PREVIOUS_GTIDS (start of every MySQL binlog file): every transaction
    /// before this file; from here on the checkpoint carries the whole
    /// executed set, which is what resuming by GTID needs.
    pub(super) fn previous_gtids(&mut self, ev: &Event) -> Result<(), PipelineError> {
        let set = GtidSet::parse_previous_gtids(&ev.body).map_err(|e| self.binlog_err(ev, e))?;
        let known = self.mysql_gtids.get_or_insert_with(GtidSet::default);
        known.union(&set);
        if !known.is_empty() {
            self.last_gtid = Some(known.to_string());
        }
        Ok(())
    }

    /// A MySQL transaction committed: the checkpoint's GTID is the executed
    /// set when it is known, else (a stream started mid-file, unseeded) the
    /// transaction's own GTID.
    pub(super) fn mysql_gtid_done(&mut self, g: String) {
        match (self.txn_mysql_gtid.take(), self.mysql_gtids.as_mut()) {
            (Some(mg), Some(set)) => {
                set.add(&mg);
                self.last_gtid = Some(set.to_string());
            }
            _ => self.last_gtid = Some(g),
        }
    }

    /// The executed GTID set at the start position (`@@gtid_executed`, or
    /// the stored position's set), so checkpoints carry the whole set from
    /// the first transaction on.
    pub fn seed_mysql_gtids(&mut self, set: GtidSet) {
        if !set.is_empty() {
            self.last_gtid = Some(set.to_string());
            self.boundary.gtid = self.last_gtid.clone();
        }
        self.mysql_gtids = Some(set);
    }

    /// The MySQL executed GTID set as of the last event, once known.
    pub fn mysql_executed_gtids(&self) -> Option<&GtidSet> {
        self.mysql_gtids.as_ref()
    }

    /// A compressed transaction: its events, in order, as if logged one by
    /// one. They carry the payload's end position, so the checkpoint after
    /// the inner commit is the transaction boundary, and its size, so an
    /// error names the payload event's position.
    pub(super) fn transaction_payload(&mut self, ev: &Event) -> Result<(), PipelineError> {
        let inner = payload::inner_events(ev).map_err(|e| self.binlog_err(ev, e))?;
        for mut e in inner {
            if e.header.event_type == types::TRANSACTION_PAYLOAD {
                return Err(self.binlog_err(
                    ev,
                    sluice_binlog::SourceError::protocol(
                        "TRANSACTION_PAYLOAD inside a TRANSACTION_PAYLOAD",
                    ),
                ));
            }
            e.header.event_size = ev.header.event_size;
            self.handle_event(&mut e)?;
        }
        Ok(())
    }

    /// A partial JSON update, made whole and handled as UPDATE_ROWS.
    pub(super) fn partial_update_rows(&mut self, ev: &Event) -> Result<(), PipelineError> {
        let hdr = RowsHeader::parse(ev.header.event_type, &ev.body)
            .map_err(|e| self.binlog_err(ev, e))?;
        let Some(table) = self.tables.get(&hdr.table_id).cloned() else {
            return Err(PipelineError::Definite {
                position: self.event_position(ev),
                message: format!(
                    "rows event for table id {} without a preceding TABLE_MAP",
                    hdr.table_id
                ),
            });
        };
        let mut full =
            partial_rows::to_full_update(ev, &table.map).map_err(|e| match e.column {
                Some(i) => self.decode_err(ev, &table, i, e.message),
                None => PipelineError::Definite {
                    position: self.event_position(ev),
                    message: format!("{}.{}: {}", table.database, table.table, e.message),
                },
            })?;
        self.rows(&mut full)
    }
}
