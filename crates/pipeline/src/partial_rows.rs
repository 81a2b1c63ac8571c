//! PARTIAL_UPDATE_ROWS (MySQL 8.0.3+ with `binlog_row_value_options=PARTIAL_JSON`)
//! rewritten as the UPDATE_ROWS event the server would have logged without
//! the option: each JSON column logged as a diff gets the full new document,
//! the diff applied to the before image's document. The rest of the
//! pipeline then handles it like any update.

use sluice_binlog::event::{types, Event};
use sluice_binlog::rows::{
    is_present, read_row_image, read_shared_image, Cell, RowsHeader, TableMap,
};

use crate::json_diff;

/// Why a partial update cannot be made whole; `column` is the table column
/// index when one column is to blame.
#[derive(Debug)]
pub struct PartialError {
    pub column: Option<usize>,
    pub message: String,
}

fn err(column: Option<usize>, message: impl Into<String>) -> PartialError {
    PartialError {
        column,
        message: message.into(),
    }
}

fn cell(body: &[u8], c: Cell) -> &[u8] {
    match c {
        Some((s, e)) => body.get(s as usize..e as usize).unwrap_or_default(),
        None => &[],
    }
}

/// The UPDATE_ROWS equivalent of a PARTIAL_UPDATE_ROWS event. The header is
/// the original's (so positions stay those of the logged event) but for the
/// event type.
pub fn to_full_update(ev: &Event, tm: &TableMap) -> Result<Event, PartialError> {
    let body = &ev.body;
    let h = RowsHeader::parse(types::PARTIAL_UPDATE_ROWS, body)
        .map_err(|e| err(None, e.to_string()))?;
    let n = tm.columns.len();
    if h.column_count != n {
        return Err(err(
            None,
            format!(
                "rows event has {} columns, table map has {n}",
                h.column_count
            ),
        ));
    }
    let mut out = body
        .get(..h.rows_offset)
        .ok_or_else(|| err(None, "rows event shorter than its header"))?
        .to_vec();
    let after_present = (0..n).filter(|&i| is_present(&h.present_after, i)).count();
    let (mut before, mut before_absent) = (Vec::new(), Vec::new());
    let (mut after, mut after_absent) = (Vec::new(), Vec::new());
    let mut partial = Vec::new();
    let mut pos = h.rows_offset;
    while pos < body.len() {
        let start = pos;
        pos = read_row_image(body, pos, tm, &h.present, &mut before, &mut before_absent)
            .map_err(|e| err(None, e.to_string()))?;
        out.extend_from_slice(&body[start..pos]);
        pos =
            read_shared_image(body, pos, tm, &mut partial).map_err(|e| err(None, e.to_string()))?;
        let after_at = pos;
        pos = read_row_image(
            body,
            pos,
            tm,
            &h.present_after,
            &mut after,
            &mut after_absent,
        )
        .map_err(|e| err(None, e.to_string()))?;
        let null_len = after_present.div_ceil(8);
        out.extend_from_slice(&body[after_at..after_at + null_len]);
        for i in 0..n {
            let Some((s, e)) = after[i] else { continue };
            if !partial[i] {
                out.extend_from_slice(&body[s as usize..e as usize]);
                continue;
            }
            // A JSON cell: length prefix (meta bytes wide), then diffs.
            let width = tm.columns[i].meta as usize;
            let diffs = cell(body, after[i]).get(width..).unwrap_or_default();
            if before_absent[i] || before[i].is_none() {
                return Err(err(
                    Some(i),
                    "partial JSON update without the document it applies to: the before image lacks the column \
                     (binlog_row_image=MINIMAL or NOBLOB). Set binlog_row_image=FULL, or binlog_row_value_options='' \
                     for full documents",
                ));
            }
            let base = cell(body, before[i]).get(width..).unwrap_or_default();
            let doc = json_diff::patched(base, diffs).map_err(|m| err(Some(i), m))?;
            let len = doc.len() as u64;
            if width < 8 && len >> (8 * width) != 0 {
                return Err(err(
                    Some(i),
                    "patched JSON document longer than the column allows",
                ));
            }
            out.extend_from_slice(&len.to_le_bytes()[..width]);
            out.extend_from_slice(&doc);
        }
    }
    let mut header = ev.header;
    header.event_type = types::UPDATE_ROWS;
    Ok(Event { header, body: out })
}
