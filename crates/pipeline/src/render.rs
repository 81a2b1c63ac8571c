//! One row's JSON from its decoded images, in the transaction buffer's two
//! parts (before and after the commit fields): shared by the processor
//! thread and the rendering workers (`parallel.rs`), so both write the
//! same bytes.

use std::ops::Range;

use sluice_binlog::rows::{Cell, RowsKind};

use crate::encode::OutputConfig;
use crate::json;
use crate::table::DecodeTable;
use crate::values::{ColumnDecode, RenderOptions, Renderer};

/// The decoded images of one row (cells index the event's body).
pub(crate) struct Images<'a> {
    pub before: &'a [Cell],
    pub before_absent: &'a [bool],
    pub after: &'a [Cell],
    pub after_absent: &'a [bool],
}

/// What a row's JSON depends on besides its images.
pub(crate) struct RowContext<'a> {
    pub cfg: &'a OutputConfig,
    pub body: &'a [u8],
    pub timestamp: u32,
    pub table: &'a DecodeTable,
    pub table_index: u32,
    pub kind: RowsKind,
    pub row_query: Option<&'a str>,
}

/// Appends a cell's JSON value (`null` for NULL).
pub(crate) fn write_cell(
    renderer: &mut Renderer,
    out: &mut Vec<u8>,
    c: &ColumnDecode,
    body: &[u8],
    cell: Cell,
) -> Result<(), String> {
    match cell {
        None => {
            out.extend_from_slice(b"null");
            Ok(())
        }
        Some((s, e)) => renderer.render(out, c, &body[s as usize..e as usize]),
    }
}

fn same_cell(body: &[u8], a: Cell, b: Cell) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some((s1, e1)), Some((s2, e2))) => {
            body[s1 as usize..e1 as usize] == body[s2 as usize..e2 as usize]
        }
        _ => false,
    }
}

/// Reused buffers: no allocation per row.
pub(crate) struct RowScratch {
    pub renderer: Renderer,
    /// Table index, kind, routing data, then the JSON before the commit
    /// fields (see `RowMeta`).
    pub head: Vec<u8>,
    /// The JSON after the commit fields.
    pub tail: Vec<u8>,
    meta: Vec<u8>,
}

impl RowScratch {
    pub fn new(opts: RenderOptions) -> Self {
        RowScratch {
            renderer: Renderer::new(opts),
            head: Vec::new(),
            tail: Vec::new(),
            meta: Vec::new(),
        }
    }

    /// Renders the row into `head` and `tail` (the transaction buffer's
    /// layout, see `RowMeta`); returns where `data` starts in `tail`, or
    /// the column index and the problem.
    pub fn render(
        &mut self,
        cx: &RowContext<'_>,
        img: &Images<'_>,
    ) -> Result<usize, (usize, String)> {
        let mut head = std::mem::take(&mut self.head);
        head.clear();
        head.extend_from_slice(&cx.table_index.to_le_bytes());
        head.push(cx.kind as u8);
        // Routing data for keyed producers (see `RowMeta`): the lengths of
        // the two arrays, then the arrays; zero lengths otherwise.
        let (pk_len, pv_len) = if cx.cfg.routing {
            self.routing(cx, img)?
        } else {
            (0, 0)
        };
        head.extend_from_slice(&pk_len.to_le_bytes());
        head.extend_from_slice(&pv_len.to_le_bytes());
        if cx.cfg.routing {
            head.extend_from_slice(&self.meta);
        }
        write_head(cx, &mut head);
        self.head = head;
        let mut tail = std::mem::take(&mut self.tail);
        tail.clear();
        let data_at = write_tail(&mut self.renderer, cx, img, &mut tail);
        self.tail = tail;
        data_at
    }

    /// Renders the row straight into `out` (no copy through `head` and
    /// `tail`): the routing arrays (keyed producers only), then the line:
    /// `head_and_commit_fields` writes its start (`write_head`, then the
    /// commit fields), this the rest.
    pub fn render_line(
        &mut self,
        cx: &RowContext<'_>,
        img: &Images<'_>,
        out: &mut Vec<u8>,
        head_and_commit_fields: impl FnOnce(&mut Vec<u8>),
    ) -> Result<LineRanges, (usize, String)> {
        let pk_at = out.len();
        let (pk_len, _) = if cx.cfg.routing {
            let lens = self.routing(cx, img)?;
            out.extend_from_slice(&self.meta);
            lens
        } else {
            (0, 0)
        };
        let line_at = out.len();
        head_and_commit_fields(out);
        write_tail(&mut self.renderer, cx, img, out)?;
        Ok(LineRanges {
            pk: pk_at..pk_at + pk_len as usize,
            partition_values: pk_at + pk_len as usize..line_at,
            line: line_at..out.len(),
        })
    }

    /// `[pk values]` and `[partition column values]` into `meta`; returns
    /// their lengths.
    fn routing(
        &mut self,
        cx: &RowContext<'_>,
        img: &Images<'_>,
    ) -> Result<(u32, u32), (usize, String)> {
        let (t, cfg, body) = (cx.table, cx.cfg, cx.body);
        let meta = &mut self.meta;
        meta.clear();
        meta.push(b'[');
        write_key_values(&mut self.renderer, cx, img, meta)?;
        meta.push(b']');
        let pk_len = meta.len() as u32;
        if !cfg.partition_columns.is_empty() {
            meta.push(b'[');
            for (k, name) in cfg.partition_columns.iter().enumerate() {
                if k > 0 {
                    meta.push(b',');
                }
                match t
                    .columns
                    .iter()
                    .position(|c| c.name.eq_ignore_ascii_case(name))
                {
                    Some(i) => write_cell(
                        &mut self.renderer,
                        meta,
                        &t.columns[i],
                        body,
                        value_of(cx, img, i).flatten(),
                    )
                    .map_err(|m| (i, m))?,
                    None => meta.extend_from_slice(b"null"),
                }
            }
            meta.push(b']');
        }
        Ok((pk_len, meta.len() as u32 - pk_len))
    }
}

/// Where `render_line` put a row's parts in its buffer.
pub(crate) struct LineRanges {
    pub pk: Range<usize>,
    pub partition_values: Range<usize>,
    pub line: Range<usize>,
}

/// The value a row's JSON shows for column `i`: for updates the after
/// image completed by before-image columns the after image lacks (MINIMAL
/// images); `None`: the column is in neither image.
fn value_of(cx: &RowContext<'_>, img: &Images<'_>, i: usize) -> Option<Cell> {
    let is_update = cx.kind == RowsKind::Update;
    let (cells, absent) = if is_update {
        (img.after, img.after_absent)
    } else {
        (img.before, img.before_absent)
    };
    if !absent[i] {
        Some(cells[i])
    } else if is_update && !img.before_absent[i] {
        Some(img.before[i])
    } else {
        None
    }
}

/// The primary key's values, comma-separated (the array's inside: for
/// `primary_key` and for keyed producers' routing).
fn write_key_values(
    renderer: &mut Renderer,
    cx: &RowContext<'_>,
    img: &Images<'_>,
    out: &mut Vec<u8>,
) -> Result<(), (usize, String)> {
    let t = cx.table;
    for (k, &i) in t.primary_key.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        write_cell(
            renderer,
            out,
            &t.columns[i],
            cx.body,
            value_of(cx, img, i).flatten(),
        )
        .map_err(|m| (i, m))?;
    }
    Ok(())
}

/// The JSON before the commit fields: database, table, query, type, ts.
/// The JSON before the commit fields: the same for every row of one rows
/// event.
pub(crate) fn write_head(cx: &RowContext<'_>, out: &mut Vec<u8>) {
    let cfg = cx.cfg;
    out.extend_from_slice(&cx.table.head);
    if cfg.row_query {
        if let Some(q) = cx.row_query {
            out.extend_from_slice(b",\"query\":");
            json::write_str(out, cfg.truncate_query(q));
        }
    }
    out.extend_from_slice(b",\"type\":\"");
    out.extend_from_slice(cx.kind.as_str().as_bytes());
    out.extend_from_slice(b"\",\"ts\":");
    json::write_int(out, cx.timestamp);
}

/// The JSON after the commit fields: primary key fields, `data`, `old`
/// and the closing brace; returns where `data` starts in `out`.
fn write_tail(
    renderer: &mut Renderer,
    cx: &RowContext<'_>,
    img: &Images<'_>,
    out: &mut Vec<u8>,
) -> Result<usize, (usize, String)> {
    let (t, cfg, body) = (cx.table, cx.cfg, cx.body);
    let is_update = cx.kind == RowsKind::Update;
    if cfg.primary_keys {
        out.extend_from_slice(cfg.primary_key_field());
        write_key_values(renderer, cx, img, out)?;
        out.push(b']');
    }
    if cfg.primary_key_columns {
        let names = t.primary_key.iter().map(|&i| t.columns[i].name.as_str());
        cfg.write_primary_key_columns(out, names);
    }
    let data_at = out.len();
    out.extend_from_slice(b",\"data\":{");
    let mut first = true;
    for (i, c) in t.columns.iter().enumerate() {
        if c.excluded {
            continue;
        }
        let Some(cell) = value_of(cx, img, i) else {
            continue;
        };
        if cell.is_none() && !cfg.nulls {
            continue;
        }
        let mark = out.len();
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(&c.key);
        let value_at = out.len();
        write_cell(renderer, out, c, body, cell).map_err(|m| (i, m))?;
        // A zero date rendered as null (output_null_zerodates) is a null too.
        if !cfg.nulls && &out[value_at..] == b"null" {
            out.truncate(mark);
            continue;
        }
        first = false;
    }
    out.push(b'}');
    if is_update {
        let mut opened = false;
        for (i, c) in t.columns.iter().enumerate() {
            if c.excluded || img.before_absent[i] || img.after_absent[i] {
                continue;
            }
            if same_cell(body, img.before[i], img.after[i]) {
                continue;
            }
            let cell = img.before[i];
            if cell.is_none() && !cfg.nulls {
                continue;
            }
            out.extend_from_slice(if opened { b"," } else { b",\"old\":{" });
            opened = true;
            out.extend_from_slice(&c.key);
            write_cell(renderer, out, c, body, cell).map_err(|m| (i, m))?;
        }
        if opened {
            out.push(b'}');
        }
    }
    out.push(b'}');
    Ok(data_at)
}
