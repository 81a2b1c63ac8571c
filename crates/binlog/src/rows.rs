//! TABLE_MAP and rows events: the column layout of a table as the binlog
//! describes it, and the slicing of row images into cells. Interpreting a
//! cell's bytes is the decoder's job (it needs the schema).

use crate::event::types;
use crate::packet::Reader;
use crate::SourceError;

/// MySQL column type codes as they appear in TABLE_MAP events.
pub mod col {
    pub const DECIMAL: u8 = 0;
    pub const TINY: u8 = 1;
    pub const SHORT: u8 = 2;
    pub const LONG: u8 = 3;
    pub const FLOAT: u8 = 4;
    pub const DOUBLE: u8 = 5;
    pub const NULL: u8 = 6;
    pub const TIMESTAMP: u8 = 7;
    pub const LONGLONG: u8 = 8;
    pub const INT24: u8 = 9;
    pub const DATE: u8 = 10;
    pub const TIME: u8 = 11;
    pub const DATETIME: u8 = 12;
    pub const YEAR: u8 = 13;
    pub const NEWDATE: u8 = 14;
    pub const VARCHAR: u8 = 15;
    pub const BIT: u8 = 16;
    pub const TIMESTAMP2: u8 = 17;
    pub const DATETIME2: u8 = 18;
    pub const TIME2: u8 = 19;
    /// MySQL 9.0+: a vector of float32 values (little-endian), length-prefixed.
    pub const VECTOR: u8 = 242;
    pub const JSON: u8 = 245;
    pub const NEWDECIMAL: u8 = 246;
    pub const ENUM: u8 = 247;
    pub const SET: u8 = 248;
    pub const TINY_BLOB: u8 = 249;
    pub const MEDIUM_BLOB: u8 = 250;
    pub const LONG_BLOB: u8 = 251;
    pub const BLOB: u8 = 252;
    pub const VAR_STRING: u8 = 253;
    pub const STRING: u8 = 254;
    pub const GEOMETRY: u8 = 255;
}

/// One column's binlog type: the wire type (for STRING, the real type:
/// STRING, ENUM or SET) and its metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnType {
    pub code: u8,
    /// Meaning depends on `code`: max length (VARCHAR, STRING), length-prefix
    /// size (BLOB, GEOMETRY, JSON), pack length (ENUM, SET), fsp (temporal),
    /// `precision << 8 | scale` (NEWDECIMAL), `bits` (BIT), byte size (FLOAT).
    pub meta: u32,
}

impl ColumnType {
    fn from_wire(code: u8, m0: u8, m1: u8) -> ColumnType {
        let meta = match code {
            col::FLOAT | col::DOUBLE | col::BLOB | col::GEOMETRY | col::JSON | col::VECTOR => {
                m0 as u32
            }
            col::TIMESTAMP2 | col::DATETIME2 | col::TIME2 => m0 as u32,
            col::VARCHAR | col::VAR_STRING => u16::from_le_bytes([m0, m1]) as u32,
            col::NEWDECIMAL => ((m0 as u32) << 8) | m1 as u32,
            col::BIT => m1 as u32 * 8 + m0 as u32,
            col::STRING | col::ENUM | col::SET => {
                // The real type hides in the first byte; long CHARs borrow two
                // of its bits for the length.
                let (real, len) = if m0 & 0x30 != 0x30 {
                    (m0 | 0x30, m1 as u32 | ((((m0 & 0x30) ^ 0x30) as u32) << 4))
                } else {
                    (m0, m1 as u32)
                };
                return ColumnType {
                    code: real,
                    meta: len,
                };
            }
            _ => 0,
        };
        ColumnType { code, meta }
    }

    fn meta_len(code: u8) -> usize {
        match code {
            col::FLOAT | col::DOUBLE | col::BLOB | col::GEOMETRY | col::JSON | col::VECTOR => 1,
            col::TIMESTAMP2 | col::DATETIME2 | col::TIME2 => 1,
            col::VARCHAR | col::VAR_STRING | col::NEWDECIMAL | col::BIT => 2,
            col::STRING | col::ENUM | col::SET => 2,
            _ => 0,
        }
    }

    /// Whether MySQL counts this column in the signedness bitmap.
    pub fn is_numeric(&self) -> bool {
        matches!(
            self.code,
            col::TINY
                | col::SHORT
                | col::INT24
                | col::LONG
                | col::LONGLONG
                | col::FLOAT
                | col::DOUBLE
                | col::NEWDECIMAL
                | col::DECIMAL
        )
    }

    /// Whether the column takes a charset entry in the optional metadata
    /// (character columns, enum/set excluded). The server counts GEOMETRY
    /// (a blob underneath) and, since MySQL 9, VECTOR among them: leaving
    /// them out shifts the collation of every later text column.
    pub fn is_character(&self) -> bool {
        matches!(
            self.code,
            col::STRING | col::VARCHAR | col::VAR_STRING | col::BLOB | col::GEOMETRY | col::VECTOR
        )
    }

    pub fn is_enum_or_set(&self) -> bool {
        matches!(self.code, col::ENUM | col::SET)
    }
}

/// Column facts the server may log in TABLE_MAP (`binlog_row_metadata`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableMetadata {
    pub names: Vec<String>,
    /// Per column: Some(unsigned) for numeric columns when logged.
    pub unsigned: Vec<Option<bool>>,
    /// Per column collation id, when logged.
    pub collation: Vec<Option<u32>>,
    pub enum_values: Vec<Option<Vec<Vec<u8>>>>,
    pub set_values: Vec<Option<Vec<Vec<u8>>>>,
    pub primary_key: Vec<usize>,
    /// Dimensions of the VECTOR columns, in column order (MySQL 9.0+).
    pub vector_dimensions: Vec<u64>,
    /// Per column: false for an INVISIBLE column (MySQL 8.0.23+), when logged.
    pub visible: Vec<bool>,
}

#[derive(Debug, Clone)]
pub struct TableMap {
    pub table_id: u64,
    pub database: String,
    pub table: String,
    pub columns: Vec<ColumnType>,
    pub nullable: Vec<bool>,
    pub metadata: TableMetadata,
}

fn bit(bitmap: &[u8], i: usize) -> bool {
    bitmap.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

impl TableMap {
    pub fn parse(body: &[u8]) -> Result<Self, SourceError> {
        let mut r = Reader::new(body);
        let table_id = r.u48()?;
        let _flags = r.u16()?;
        let db_len = r.u8()? as usize;
        let database = String::from_utf8_lossy(r.take(db_len)?).into_owned();
        r.u8()?;
        let t_len = r.u8()? as usize;
        let table = String::from_utf8_lossy(r.take(t_len)?).into_owned();
        r.u8()?;
        let n = r.lenenc()? as usize;
        let codes = r.take(n)?;
        let meta_block = r.lenenc_bytes()?;
        let mut m = Reader::new(meta_block);
        let mut columns = Vec::with_capacity(n);
        for &code in codes {
            let (m0, m1) = match ColumnType::meta_len(code) {
                1 => (m.u8()?, 0),
                2 => (m.u8()?, m.u8()?),
                _ => (0, 0),
            };
            columns.push(ColumnType::from_wire(code, m0, m1));
        }
        let null_bits = r.take(n.div_ceil(8))?;
        let nullable = (0..n).map(|i| bit(null_bits, i)).collect();
        let mut tm = TableMap {
            table_id,
            database,
            table,
            columns,
            nullable,
            metadata: TableMetadata::default(),
        };
        let optional = r.rest();
        if !optional.is_empty() {
            tm.metadata = parse_optional_metadata(&tm.columns, optional)?;
        }
        Ok(tm)
    }
}

/// Reads a "default charset" block: a default collation and exceptions
/// (index among the selected columns, collation).
fn default_charset_block(v: &[u8], count: usize) -> Result<Vec<u32>, SourceError> {
    let mut r = Reader::new(v);
    let default = r.lenenc()? as u32;
    let mut out = vec![default; count];
    while r.remaining() > 0 {
        let idx = r.lenenc()? as usize;
        let coll = r.lenenc()? as u32;
        if let Some(slot) = out.get_mut(idx) {
            *slot = coll;
        }
    }
    Ok(out)
}

fn str_values_block(v: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, SourceError> {
    let mut r = Reader::new(v);
    let mut out = Vec::new();
    while r.remaining() > 0 {
        let count = r.lenenc()? as usize;
        let mut vals = Vec::with_capacity(count.min(4096));
        for _ in 0..count {
            vals.push(r.lenenc_bytes()?.to_vec());
        }
        out.push(vals);
    }
    Ok(out)
}

fn parse_optional_metadata(cols: &[ColumnType], data: &[u8]) -> Result<TableMetadata, SourceError> {
    let n = cols.len();
    let mut md = TableMetadata {
        names: Vec::new(),
        unsigned: vec![None; n],
        collation: vec![None; n],
        enum_values: vec![None; n],
        set_values: vec![None; n],
        primary_key: Vec::new(),
        vector_dimensions: Vec::new(),
        visible: Vec::new(),
    };
    let char_cols: Vec<usize> = (0..n).filter(|&i| cols[i].is_character()).collect();
    let enumset_cols: Vec<usize> = (0..n).filter(|&i| cols[i].is_enum_or_set()).collect();
    let mut r = Reader::new(data);
    while r.remaining() > 0 {
        let kind = r.u8()?;
        let v = r.lenenc_bytes()?;
        match kind {
            1 => {
                // One bit per numeric column, most significant bit first.
                let mut k = 0usize;
                for (i, c) in cols.iter().enumerate() {
                    if c.is_numeric() {
                        let byte = v.get(k / 8).copied().unwrap_or(0);
                        md.unsigned[i] = Some(byte & (0x80 >> (k % 8)) != 0);
                        k += 1;
                    }
                }
            }
            2 | 3 | 10 | 11 => {
                let targets = if kind <= 3 { &char_cols } else { &enumset_cols };
                let colls = if kind == 2 || kind == 10 {
                    default_charset_block(v, targets.len())?
                } else {
                    let mut rr = Reader::new(v);
                    let mut o = Vec::new();
                    while rr.remaining() > 0 {
                        o.push(rr.lenenc()? as u32);
                    }
                    o
                };
                for (&i, c) in targets.iter().zip(colls) {
                    md.collation[i] = Some(c);
                }
            }
            4 => {
                let mut rr = Reader::new(v);
                while rr.remaining() > 0 {
                    md.names
                        .push(String::from_utf8_lossy(rr.lenenc_bytes()?).into_owned());
                }
            }
            5 | 6 => {
                let which = if kind == 5 { col::SET } else { col::ENUM };
                let idx: Vec<usize> = (0..n).filter(|&i| cols[i].code == which).collect();
                for (&i, vals) in idx.iter().zip(str_values_block(v)?) {
                    if kind == 5 {
                        md.set_values[i] = Some(vals);
                    } else {
                        md.enum_values[i] = Some(vals);
                    }
                }
            }
            8 => {
                let mut rr = Reader::new(v);
                while rr.remaining() > 0 {
                    md.primary_key.push(rr.lenenc()? as usize);
                }
            }
            9 => {
                let mut rr = Reader::new(v);
                while rr.remaining() > 0 {
                    md.primary_key.push(rr.lenenc()? as usize);
                    rr.lenenc()?;
                }
            }
            12 => {
                md.visible = (0..n)
                    .map(|i| v.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0))
                    .collect()
            }
            13 => {
                let mut rr = Reader::new(v);
                while rr.remaining() > 0 {
                    md.vector_dimensions.push(rr.lenenc()?);
                }
            }
            _ => {} // geometry type, ...: not needed
        }
    }
    if !md.names.is_empty() && md.names.len() != n {
        return Err(SourceError::protocol(format!(
            "TABLE_MAP lists {} column names for {} columns",
            md.names.len(),
            n
        )));
    }
    Ok(md)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowsKind {
    Insert,
    Update,
    Delete,
}

impl RowsKind {
    pub fn of_event_type(t: u8) -> Option<RowsKind> {
        match t {
            types::WRITE_ROWS_V1 | types::WRITE_ROWS => Some(RowsKind::Insert),
            types::UPDATE_ROWS_V1 | types::UPDATE_ROWS | types::PARTIAL_UPDATE_ROWS => {
                Some(RowsKind::Update)
            }
            types::DELETE_ROWS_V1 | types::DELETE_ROWS => Some(RowsKind::Delete),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            RowsKind::Insert => "insert",
            RowsKind::Update => "update",
            RowsKind::Delete => "delete",
        }
    }
}

/// The fixed part of a rows event; the row images follow at `rows_offset`.
#[derive(Debug, Clone)]
pub struct RowsHeader {
    pub kind: RowsKind,
    pub table_id: u64,
    pub flags: u16,
    pub column_count: usize,
    pub present: Vec<u8>,
    /// The after-image's column bitmap (updates only).
    pub present_after: Vec<u8>,
    pub rows_offset: usize,
    /// PARTIAL_UPDATE_ROWS: a shared image sits between the before and the
    /// after image of each row (`read_shared_image`).
    pub partial: bool,
}

/// Rows-event flag: last event of the statement.
pub const STMT_END_F: u16 = 1;

impl RowsHeader {
    pub fn parse(event_type: u8, body: &[u8]) -> Result<Self, SourceError> {
        let kind = RowsKind::of_event_type(event_type).ok_or_else(|| {
            SourceError::protocol(format!("event type {event_type} is not a rows event"))
        })?;
        let mut r = Reader::new(body);
        let table_id = r.u48()?;
        let flags = r.u16()?;
        if event_type >= types::WRITE_ROWS {
            let extra = r.u16()? as usize;
            r.take(extra.saturating_sub(2))?;
        }
        let column_count = r.lenenc()? as usize;
        let bm = column_count.div_ceil(8);
        let present = r.take(bm)?.to_vec();
        // Every row's first image then takes at least its NULL bitmap, so
        // a loop over the rows always advances (the server always logs
        // some column: the key, or the whole row).
        if !(0..column_count).any(|i| bit(&present, i)) {
            return Err(SourceError::protocol(
                "rows event whose column bitmap names no column",
            ));
        }
        let present_after = if kind == RowsKind::Update {
            r.take(bm)?.to_vec()
        } else {
            Vec::new()
        };
        Ok(RowsHeader {
            kind,
            table_id,
            flags,
            column_count,
            present,
            present_after,
            rows_offset: r.position(),
            partial: event_type == types::PARTIAL_UPDATE_ROWS,
        })
    }
}

/// binlog_row_value_options bit: JSON columns may hold a diff.
pub const PARTIAL_JSON_UPDATES: u64 = 1;

/// Reads the shared image of a PARTIAL_UPDATE_ROWS row (between its before
/// and after image): `value_options`, then, with PARTIAL_JSON_UPDATES, one
/// bit per JSON column of the table (whether in the images or not), set
/// when the after image holds that column as a diff. Fills `partial` per
/// table column; returns the position of the after image.
pub fn read_shared_image(
    body: &[u8],
    pos: usize,
    tm: &TableMap,
    partial: &mut Vec<bool>,
) -> Result<usize, SourceError> {
    partial.clear();
    partial.resize(tm.columns.len(), false);
    let mut r = Reader::new(body.get(pos..).unwrap_or_default());
    let options = r.lenenc()?;
    if options & PARTIAL_JSON_UPDATES != 0 {
        let json: Vec<usize> = (0..tm.columns.len())
            .filter(|&i| tm.columns[i].code == col::JSON)
            .collect();
        let bits = r.take(json.len().div_ceil(8))?;
        for (k, &i) in json.iter().enumerate() {
            partial[i] = bit(bits, k);
        }
    }
    Ok(pos + r.position())
}

/// A cell of a row image: `None` for NULL or absent, else the byte range of
/// the value inside the event body.
pub type Cell = Option<(u32, u32)>;

/// Whether column `i` is present in a row image bitmap.
pub fn is_present(bitmap: &[u8], i: usize) -> bool {
    bit(bitmap, i)
}

/// Slices one row image starting at `pos` into `cells` (one per table
/// column; absent and NULL columns are `None`). Returns the position after
/// the image.
pub fn read_row_image(
    body: &[u8],
    mut pos: usize,
    tm: &TableMap,
    present: &[u8],
    cells: &mut Vec<Cell>,
    absent: &mut Vec<bool>,
) -> Result<usize, SourceError> {
    let n = tm.columns.len();
    if cells.len() != n {
        cells.clear();
        cells.resize(n, None);
        absent.clear();
        absent.resize(n, true);
    } else {
        cells.fill(None);
        absent.fill(true);
    }
    // Counted per image rather than per event: the bitmap is a handful of
    // bytes, and popcount makes it cheap.
    let present_count: usize = (0..n.div_ceil(8))
        .map(|i| {
            let mask = if (i + 1) * 8 <= n {
                0xFF
            } else {
                (1u16 << (n % 8)) as u8 - 1
            };
            (present.get(i).copied().unwrap_or(0) & mask).count_ones() as usize
        })
        .sum();
    let null_len = present_count.div_ceil(8);
    let nulls = body
        .get(pos..pos + null_len)
        .ok_or_else(|| SourceError::protocol("row image truncated in its NULL bitmap"))?;
    pos += null_len;
    let mut k = 0usize;
    for i in 0..n {
        if !bit(present, i) {
            continue;
        }
        absent[i] = false;
        let is_null = bit(nulls, k);
        k += 1;
        if is_null {
            continue;
        }
        let len = cell_len(tm.columns[i], &body[pos.min(body.len())..]).map_err(|e| {
            SourceError::protocol(format!(
                "cannot size column #{i} (type {}) of {}.{}: {e}",
                tm.columns[i].code, tm.database, tm.table
            ))
        })?;
        if pos + len > body.len() {
            return Err(SourceError::protocol(format!(
                "row image of {}.{} truncated in column #{i}",
                tm.database, tm.table
            )));
        }
        cells[i] = Some((pos as u32, (pos + len) as u32));
        pos += len;
    }
    Ok(pos)
}

fn le_uint(b: &[u8]) -> usize {
    b.iter()
        .rev()
        .fold(0usize, |acc, &x| (acc << 8) | x as usize)
}

/// Bytes of a packed DECIMAL(precision, scale).
pub fn decimal_bin_size(precision: u32, scale: u32) -> usize {
    const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
    let intg = precision.saturating_sub(scale) as usize;
    let frac = scale as usize;
    (intg / 9) * 4 + DIG2BYTES[intg % 9] + (frac / 9) * 4 + DIG2BYTES[frac % 9]
}

fn need(data: &[u8], n: usize) -> Result<(), String> {
    if data.len() < n {
        Err(format!("needs {n} bytes, {} left", data.len()))
    } else {
        Ok(())
    }
}

/// Byte length of one non-NULL cell of type `t` at the start of `data`.
pub fn cell_len(t: ColumnType, data: &[u8]) -> Result<usize, String> {
    let prefixed = |p: usize| -> Result<usize, String> {
        need(data, p)?;
        Ok(p + le_uint(&data[..p]))
    };
    Ok(match t.code {
        col::TINY | col::YEAR => 1,
        col::SHORT => 2,
        col::INT24 | col::DATE | col::TIME | col::NEWDATE => 3,
        col::LONG | col::TIMESTAMP => 4,
        col::LONGLONG | col::DATETIME => 8,
        col::FLOAT => 4,
        col::DOUBLE => 8,
        col::NULL => 0,
        col::TIMESTAMP2 => 4 + (t.meta as usize).div_ceil(2),
        col::DATETIME2 => 5 + (t.meta as usize).div_ceil(2),
        col::TIME2 => 3 + (t.meta as usize).div_ceil(2),
        col::NEWDECIMAL => decimal_bin_size(t.meta >> 8, t.meta & 0xFF),
        col::BIT => (t.meta as usize).div_ceil(8),
        col::VARCHAR | col::VAR_STRING => prefixed(if t.meta < 256 { 1 } else { 2 })?,
        col::STRING => prefixed(if t.meta < 256 { 1 } else { 2 })?,
        col::ENUM | col::SET => t.meta as usize,
        col::BLOB
        | col::GEOMETRY
        | col::JSON
        | col::VECTOR
        | col::TINY_BLOB
        | col::MEDIUM_BLOB
        | col::LONG_BLOB => {
            let p = t.meta as usize;
            if !(1..=4).contains(&p) {
                return Err(format!("bad length-prefix size {p}"));
            }
            prefixed(p)?
        }
        other => return Err(format!("unsupported column type code {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_sizes() {
        assert_eq!(decimal_bin_size(10, 2), 5);
        assert_eq!(decimal_bin_size(14, 4), 7);
        assert_eq!(decimal_bin_size(65, 30), 30);
    }

    #[test]
    fn string_real_type() {
        let t = ColumnType::from_wire(col::STRING, 0xF7, 1);
        assert_eq!(
            t,
            ColumnType {
                code: col::ENUM,
                meta: 1
            }
        );
        let t = ColumnType::from_wire(col::STRING, 0xFE, 40);
        assert_eq!(
            t,
            ColumnType {
                code: col::STRING,
                meta: 40
            }
        );
        // CHAR(255) in utf8mb4 = 1020 bytes: length bits borrowed from byte 0.
        let t = ColumnType::from_wire(col::STRING, 0xCE, 0xFC);
        assert_eq!(
            t,
            ColumnType {
                code: col::STRING,
                meta: 1020
            }
        );
    }

    #[test]
    fn cell_lengths() {
        let len = |code, meta, data: &[u8]| cell_len(ColumnType { code, meta }, data);
        assert_eq!(len(col::VARCHAR, 10, &[3, b'a', b'b', b'c']), Ok(4));
        assert_eq!(len(col::VARCHAR, 300, &[3, 0, 1, 2, 3]), Ok(5));
        assert_eq!(len(col::BLOB, 2, &[1, 0, 9]), Ok(3));
        assert!(len(col::BLOB, 2, &[1]).is_err());
        assert_eq!(len(col::DATETIME2, 6, &[]), Ok(8));
        assert_eq!(len(col::BIT, 64, &[]), Ok(8));
        assert_eq!(len(col::BIT, 1, &[]), Ok(1));
        assert!(len(120, 0, &[]).is_err());
    }
}
