//! Binlog event header and the small events that steer the stream (rotate,
//! format description, query, xid, GTIDs, row queries). Rows and table-map
//! events live in `rows`.

use crate::packet::Reader;
use crate::SourceError;

pub const HEADER_LEN: usize = 19;

pub mod types {
    pub const QUERY: u8 = 2;
    pub const STOP: u8 = 3;
    pub const ROTATE: u8 = 4;
    pub const FORMAT_DESCRIPTION: u8 = 15;
    pub const XID: u8 = 16;
    pub const TABLE_MAP: u8 = 19;
    pub const WRITE_ROWS_V1: u8 = 23;
    pub const UPDATE_ROWS_V1: u8 = 24;
    pub const DELETE_ROWS_V1: u8 = 25;
    pub const INCIDENT: u8 = 26;
    pub const HEARTBEAT: u8 = 27;
    pub const ROWS_QUERY: u8 = 29;
    pub const WRITE_ROWS: u8 = 30;
    pub const UPDATE_ROWS: u8 = 31;
    pub const DELETE_ROWS: u8 = 32;
    pub const MYSQL_GTID: u8 = 33;
    pub const MYSQL_ANONYMOUS_GTID: u8 = 34;
    pub const MYSQL_PREVIOUS_GTIDS: u8 = 35;
    pub const PARTIAL_UPDATE_ROWS: u8 = 39;
    pub const TRANSACTION_PAYLOAD: u8 = 40;
    /// MySQL 8.3+: a GTID with a tag (`uuid:tag:gno`).
    pub const MYSQL_GTID_TAGGED: u8 = 42;
    pub const MARIADB_ANNOTATE_ROWS: u8 = 160;
    pub const MARIADB_BINLOG_CHECKPOINT: u8 = 161;
    pub const MARIADB_GTID: u8 = 162;
    pub const MARIADB_GTID_LIST: u8 = 163;
    pub const MARIADB_START_ENCRYPTION: u8 = 164;
    pub const MARIADB_QUERY_COMPRESSED: u8 = 165;
    pub const MARIADB_WRITE_ROWS_COMPRESSED_V1: u8 = 169;
    pub const MARIADB_DELETE_ROWS_COMPRESSED_V1: u8 = 171;
    pub const MARIADB_WRITE_ROWS_COMPRESSED: u8 = 166;
    pub const MARIADB_DELETE_ROWS_COMPRESSED: u8 = 168;
}

/// Flag on events the server makes up for the stream (not in the file).
pub const LOG_EVENT_ARTIFICIAL_F: u16 = 0x20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventHeader {
    pub timestamp: u32,
    pub event_type: u8,
    pub server_id: u32,
    pub event_size: u32,
    /// Offset of the *next* event in the binlog file (0 for artificial events).
    pub log_pos: u32,
    pub flags: u16,
}

impl EventHeader {
    pub fn parse(data: &[u8]) -> Result<Self, SourceError> {
        let mut r = Reader::new(data);
        Ok(EventHeader {
            timestamp: r.u32()?,
            event_type: r.u8()?,
            server_id: r.u32()?,
            event_size: r.u32()?,
            log_pos: r.u32()?,
            flags: r.u16()?,
        })
    }

    pub fn is_artificial(&self) -> bool {
        self.flags & LOG_EVENT_ARTIFICIAL_F != 0 || self.log_pos == 0
    }
}

/// One event as it came off the wire: header plus body, checksum removed.
#[derive(Debug, Clone)]
pub struct Event {
    pub header: EventHeader,
    /// Event body after the 19-byte header, without the checksum.
    pub body: Vec<u8>,
}

impl Event {
    /// An event as the server would send it (server 1, no flags), with its
    /// size derived from the body: for replays and tests.
    pub fn new(event_type: u8, timestamp: u32, log_pos: u32, body: Vec<u8>) -> Self {
        Event {
            header: EventHeader {
                timestamp,
                event_type,
                server_id: 1,
                event_size: (HEADER_LEN + body.len()) as u32,
                log_pos,
                flags: 0,
            },
            body,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotate {
    pub position: u64,
    pub file: String,
}

impl Rotate {
    pub fn parse(body: &[u8]) -> Result<Self, SourceError> {
        let mut r = Reader::new(body);
        let position = r.u64()?;
        let file = String::from_utf8_lossy(r.rest()).into_owned();
        Ok(Rotate { position, file })
    }
}

/// Checksum algorithm carried by the format description event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlg {
    None,
    Crc32,
}

#[derive(Debug, Clone)]
pub struct FormatDescription {
    pub binlog_version: u16,
    pub server_version: String,
    pub checksum: ChecksumAlg,
}

impl FormatDescription {
    /// Parses the body of a FDE as received (checksum bytes still attached: the
    /// algorithm byte sits just before them).
    pub fn parse_with_footer(body: &[u8]) -> Result<Self, SourceError> {
        let mut r = Reader::new(body);
        let binlog_version = r.u16()?;
        let ver = r.take(50)?;
        let end = ver.iter().position(|&b| b == 0).unwrap_or(ver.len());
        let server_version = String::from_utf8_lossy(&ver[..end]).into_owned();
        // Servers since 5.6.1 / MariaDB 5.3 append: alg (1 byte) + checksum (4).
        let checksum = if body.len() >= 5 {
            match body[body.len() - 5] {
                1 => ChecksumAlg::Crc32,
                _ => ChecksumAlg::None,
            }
        } else {
            ChecksumAlg::None
        };
        Ok(FormatDescription {
            binlog_version,
            server_version,
            checksum,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Query<'a> {
    pub thread_id: u32,
    pub error_code: u16,
    pub database: &'a [u8],
    pub sql: &'a [u8],
    /// `collation_server` of the session (status variable Q_CHARSET_CODE):
    /// the default charset of a `CREATE DATABASE` without one.
    pub collation_server: Option<u16>,
}

/// Reads the status variables up to Q_CHARSET_CODE; stops at the first
/// code it does not know the size of (later ones are not needed).
fn collation_server(mut vars: &[u8]) -> Option<u16> {
    while let Some((&code, rest)) = vars.split_first() {
        let skip = match code {
            0 => 4,                               // Q_FLAGS2_CODE
            1 => 8,                               // Q_SQL_MODE_CODE
            2 => 1 + *rest.first()? as usize + 1, // Q_CATALOG_CODE
            3 => 4,                               // Q_AUTO_INCREMENT
            4 => {
                // Q_CHARSET_CODE: client charset, collation_connection,
                // collation_server.
                let b = rest.get(4..6)?;
                return Some(u16::from_le_bytes([b[0], b[1]]));
            }
            5 | 6 => 1 + *rest.first()? as usize, // time zone, catalog
            7 | 8 => 2,                           // lc_time_names, charset_database
            9 => 8,                               // table_map_for_update
            _ => return None,
        };
        vars = rest.get(skip..)?;
    }
    None
}

impl<'a> Query<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, SourceError> {
        let mut r = Reader::new(body);
        let thread_id = r.u32()?;
        let _exec_time = r.u32()?;
        let db_len = r.u8()? as usize;
        let error_code = r.u16()?;
        let status_len = r.u16()? as usize;
        let status = r.take(status_len)?;
        let database = r.take(db_len)?;
        r.u8()?; // NUL after the database name
        let sql = r.rest();
        Ok(Query {
            thread_id,
            error_code,
            database,
            sql,
            collation_server: collation_server(status),
        })
    }
}

/// What a QUERY event means for transaction boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    Begin,
    /// COMMIT, or a ROLLBACK that ends the transaction (the non-transactional
    /// rows it logged stay).
    Commit,
    /// SAVEPOINT, ROLLBACK TO, XA ...: inside a transaction, no boundary.
    TxnControl,
    /// Anything else: DDL and other statements (their own transaction).
    Other,
}

pub fn query_kind(sql: &[u8]) -> QueryKind {
    let head = &sql[..sql.len().min(64)];
    let text = String::from_utf8_lossy(head);
    let mut words = text
        .split_whitespace()
        .map(|w| w.trim_end_matches(';').to_ascii_uppercase());
    match (words.next().as_deref(), words.next().as_deref()) {
        (Some("BEGIN"), _) => QueryKind::Begin,
        (Some("COMMIT"), _) => QueryKind::Commit,
        (Some("ROLLBACK"), Some("TO")) => QueryKind::TxnControl,
        (Some("ROLLBACK"), _) => QueryKind::Commit,
        (Some("SAVEPOINT"), _) | (Some("XA"), _) | (Some("RELEASE"), _) => QueryKind::TxnControl,
        _ => QueryKind::Other,
    }
}

pub fn parse_xid(body: &[u8]) -> Result<u64, SourceError> {
    Reader::new(body).u64()
}

/// MariaDB GTID event: starts a transaction (or a standalone DDL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MariadbGtid {
    pub seq_no: u64,
    pub domain_id: u32,
    pub server_id: u32,
    /// FL_STANDALONE: no BEGIN/COMMIT follows (DDL).
    pub standalone: bool,
}

impl MariadbGtid {
    pub fn parse(header: &EventHeader, body: &[u8]) -> Result<Self, SourceError> {
        let mut r = Reader::new(body);
        let seq_no = r.u64()?;
        let domain_id = r.u32()?;
        let flags = r.u8()?;
        Ok(MariadbGtid {
            seq_no,
            domain_id,
            server_id: header.server_id,
            standalone: flags & 1 != 0,
        })
    }
}

impl std::fmt::Display for MariadbGtid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-{}", self.domain_id, self.server_id, self.seq_no)
    }
}

/// MariaDB GTID list (sent at the start of every binlog file).
pub fn parse_mariadb_gtid_list(body: &[u8]) -> Result<Vec<String>, SourceError> {
    let mut r = Reader::new(body);
    let count = r.u32()? & 0x0FFF_FFFF;
    let mut out = Vec::with_capacity(count.min(1024) as usize);
    for _ in 0..count {
        let domain = r.u32()?;
        let server = r.u32()?;
        let seq = r.u64()?;
        out.push(format!("{domain}-{server}-{seq}"));
    }
    Ok(out)
}

/// MySQL GTID event: `uuid:gno`.
pub fn parse_mysql_gtid(body: &[u8]) -> Result<String, SourceError> {
    let mut r = Reader::new(body);
    let _flags = r.u8()?;
    let sid = r.take(16)?;
    let gno = r.u64()?;
    let hex: String = sid.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}:{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32],
        gno
    ))
}

/// Row query text: MariaDB ANNOTATE_ROWS (whole body) or MySQL ROWS_QUERY
/// (one length byte first, which is truncated for long queries and so ignored).
pub fn row_query_text(event_type: u8, body: &[u8]) -> &[u8] {
    if event_type == types::ROWS_QUERY && !body.is_empty() {
        &body[1..]
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip() {
        let mut d = Vec::new();
        d.extend_from_slice(&100u32.to_le_bytes());
        d.push(types::XID);
        d.extend_from_slice(&7u32.to_le_bytes());
        d.extend_from_slice(&31u32.to_le_bytes());
        d.extend_from_slice(&500u32.to_le_bytes());
        d.extend_from_slice(&0u16.to_le_bytes());
        let h = EventHeader::parse(&d).unwrap();
        assert_eq!(h.event_type, types::XID);
        assert_eq!(h.log_pos, 500);
        assert!(!h.is_artificial());
        assert!(EventHeader::parse(&d[..10]).is_err());
    }

    #[test]
    fn query_event() {
        let mut b = Vec::new();
        b.extend_from_slice(&9u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.push(2);
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&3u16.to_le_bytes());
        b.extend_from_slice(&[1, 2, 3]);
        b.extend_from_slice(b"db\0CREATE TABLE t (a int)");
        let q = Query::parse(&b).unwrap();
        assert_eq!(q.thread_id, 9);
        assert_eq!(q.database, b"db");
        assert_eq!(q.sql, b"CREATE TABLE t (a int)");
        assert!(Query::parse(&b[..12]).is_err());
    }

    #[test]
    fn query_kinds() {
        assert_eq!(query_kind(b"BEGIN"), QueryKind::Begin);
        assert_eq!(query_kind(b"COMMIT"), QueryKind::Commit);
        assert_eq!(query_kind(b"ROLLBACK"), QueryKind::Commit);
        assert_eq!(
            query_kind(b"ROLLBACK TO SAVEPOINT a"),
            QueryKind::TxnControl
        );
        assert_eq!(query_kind(b"  savepoint a"), QueryKind::TxnControl);
        assert_eq!(query_kind(b"ALTER TABLE t ADD c INT"), QueryKind::Other);
    }

    #[test]
    fn gtid_forms() {
        let h = EventHeader {
            timestamp: 0,
            event_type: types::MARIADB_GTID,
            server_id: 1,
            event_size: 0,
            log_pos: 1,
            flags: 0,
        };
        let mut b = 25u64.to_le_bytes().to_vec();
        b.extend_from_slice(&0u32.to_le_bytes());
        b.push(1);
        let g = MariadbGtid::parse(&h, &b).unwrap();
        assert_eq!(g.to_string(), "0-1-25");
        assert!(g.standalone);
        let mut m = vec![1u8];
        m.extend_from_slice(&[
            0x3E, 0x11, 0xFA, 0x47, 0x71, 0xCA, 0x11, 0xE1, 0x9E, 0x33, 0xC8, 0x0A, 0xA9, 0x42,
            0x95, 0x62,
        ]);
        m.extend_from_slice(&23u64.to_le_bytes());
        assert_eq!(
            parse_mysql_gtid(&m).unwrap(),
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:23"
        );
    }
}
