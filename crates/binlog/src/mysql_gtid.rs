//! MySQL GTIDs: the GTID of one transaction (`uuid:gno`, or `uuid:tag:gno`
//! since MySQL 8.3), the executed GTID set (`uuid:1-5:7-9,uuid2:tag:1-3`)
//! as text, as PREVIOUS_GTIDS encodes it, and the COM_BINLOG_DUMP_GTID
//! command that asks the server for every transaction not in a set.

use std::collections::BTreeMap;
use std::fmt;

use crate::event::types;
use crate::packet::Reader;
use crate::SourceError;

/// A server UUID (the source id of a GTID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// Parses `3e11fa47-71ca-11e1-9e33-c80aa9429562` (hyphens optional, any case).
    pub fn parse(text: &str) -> Result<Self, String> {
        let hex: Vec<u8> = text.bytes().filter(|&b| b != b'-').collect();
        let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        if hex.len() != 32 {
            return Err(format!("'{text}' is not a server UUID (32 hex digits)"));
        }
        let mut out = [0u8; 16];
        for (i, pair) in hex.chunks(2).enumerate() {
            match (digit(pair[0]), digit(pair[1])) {
                (Some(h), Some(l)) => out[i] = h << 4 | l,
                _ => return Err(format!("'{text}' is not a server UUID (32 hex digits)")),
            }
        }
        Ok(Uuid(out))
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A GTID tag (MySQL 8.3+): a letter or underscore, then up to 31 letters,
/// digits or underscores; compared in lower case, as the server does.
fn normalize_tag(tag: &str) -> Result<String, String> {
    let t = tag.trim().to_ascii_lowercase();
    let mut chars = t.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    if !first_ok || t.len() > 32 || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "'{tag}' is not a GTID tag (a letter or _ then at most 31 letters, digits or _)"
        ));
    }
    Ok(t)
}

/// The GTID of one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlGtid {
    pub uuid: Uuid,
    /// Empty for an untagged GTID.
    pub tag: String,
    pub gno: u64,
}

impl fmt::Display for MysqlGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tag.is_empty() {
            write!(f, "{}:{}", self.uuid, self.gno)
        } else {
            write!(f, "{}:{}:{}", self.uuid, self.tag, self.gno)
        }
    }
}

impl MysqlGtid {
    /// Parses a GTID event: GTID_LOG_EVENT (33) or GTID_TAGGED_LOG_EVENT (42).
    pub fn parse(event_type: u8, body: &[u8]) -> Result<Self, SourceError> {
        match event_type {
            types::MYSQL_GTID => {
                let mut r = Reader::new(body);
                let _flags = r.u8()?;
                let mut uuid = [0u8; 16];
                uuid.copy_from_slice(r.take(16)?);
                let gno = r.u64()?;
                Ok(MysqlGtid {
                    uuid: Uuid(uuid),
                    tag: String::new(),
                    gno,
                })
            }
            types::MYSQL_GTID_TAGGED => parse_tagged_gtid(body),
            t => Err(SourceError::protocol(format!(
                "event type {t} is not a MySQL GTID event"
            ))),
        }
    }
}

/// Unsigned integer of MySQL's serialization library (8.3+): the number of
/// trailing one bits of the first byte, plus one, is the byte count; the
/// value is the little-endian bytes shifted right by that count. A first
/// byte of 0xFF means the eight bytes after it hold the value.
fn varlen_uint(r: &mut Reader) -> Result<u64, SourceError> {
    let first = r.u8()?;
    if first == 0xFF {
        return r.u64();
    }
    let n = first.trailing_ones() as usize + 1;
    let mut bytes = [0u8; 8];
    bytes[0] = first;
    bytes[1..n].copy_from_slice(r.take(n - 1)?);
    Ok(u64::from_le_bytes(bytes) >> n)
}

/// Signed integer of the serialization library: zig-zag over `varlen_uint`.
fn varlen_int(r: &mut Reader) -> Result<i64, SourceError> {
    let u = varlen_uint(r)?;
    let magnitude = (u >> 1) as i64;
    Ok(if u & 1 != 0 {
        -magnitude - 1
    } else {
        magnitude
    })
}

/// GTID_TAGGED_LOG_EVENT: a serialization-library message (format version
/// byte, size, last non-ignorable field id, then `field id, value` pairs in
/// field id order). Only the fields up to the tag are needed.
fn parse_tagged_gtid(body: &[u8]) -> Result<MysqlGtid, SourceError> {
    let mut r = Reader::new(body);
    let version = r.u8()?;
    if version != 2 {
        return Err(SourceError::protocol(format!(
            "tagged GTID event in serialization format {version}; sluice reads format 2 (MySQL 8.3 to 9.x)"
        )));
    }
    let _size = varlen_uint(&mut r)?;
    let _last_non_ignorable = varlen_uint(&mut r)?;
    let mut uuid = None;
    let mut gno = None;
    let mut tag = None;
    while r.remaining() > 0 && tag.is_none() {
        match varlen_uint(&mut r)? {
            0 => {
                varlen_uint(&mut r)?; // flags
            }
            1 => {
                let mut u = [0u8; 16];
                for b in u.iter_mut() {
                    *b = u8::try_from(varlen_uint(&mut r)?).map_err(|_| {
                        SourceError::protocol("tagged GTID: UUID byte out of range")
                    })?;
                }
                uuid = Some(Uuid(u));
            }
            2 => {
                let g = varlen_int(&mut r)?;
                gno = Some(
                    u64::try_from(g)
                        .map_err(|_| SourceError::protocol("tagged GTID: negative gno"))?,
                );
            }
            3 => {
                let n = varlen_uint(&mut r)?;
                let n = usize::try_from(n)
                    .map_err(|_| SourceError::protocol("tagged GTID: tag too long"))?;
                let t = std::str::from_utf8(r.take(n)?)
                    .map_err(|_| SourceError::protocol("tagged GTID: tag is not UTF-8"))?;
                tag = Some(normalize_tag(t).map_err(SourceError::protocol)?);
            }
            other => {
                return Err(SourceError::protocol(format!(
                    "tagged GTID event: field {other} before the tag"
                )))
            }
        }
    }
    match (uuid, gno, tag) {
        (Some(uuid), Some(gno), Some(tag)) => Ok(MysqlGtid { uuid, tag, gno }),
        _ => Err(SourceError::protocol(
            "tagged GTID event lacks its UUID, number or tag",
        )),
    }
}

/// Half-open interval `[start, end)` of transaction numbers.
pub type Interval = (u64, u64);

/// An executed GTID set: per (UUID, tag), sorted disjoint intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidSet {
    sets: BTreeMap<(Uuid, String), Vec<Interval>>,
}

/// Largest transaction number MySQL hands out (`GNO_END - 1`).
const MAX_GNO: u64 = i64::MAX as u64 - 1;

impl GtidSet {
    /// Parses MySQL's text form: `uuid:1-5:7,uuid2:tag:1-3` (a tag applies to
    /// the intervals after it; whitespace and newlines are allowed, as in
    /// `@@gtid_executed`; empty means no transaction).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut set = GtidSet::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut items = part.split(':').map(str::trim);
            let uuid = Uuid::parse(items.next().unwrap_or_default())
                .map_err(|e| format!("in GTID set '{part}': {e}"))?;
            let mut tag = String::new();
            let mut any = false;
            for item in items {
                if item.starts_with(|c: char| c.is_ascii_digit()) {
                    let (a, b) = match item.split_once('-') {
                        Some((a, b)) => (a.trim(), b.trim()),
                        None => (item, item),
                    };
                    let num = |s: &str| {
                        s.parse::<u64>()
                            .ok()
                            .filter(|n| (1..=MAX_GNO).contains(n))
                            .ok_or_else(|| {
                                format!("in GTID set '{part}': '{item}' is not a transaction number or range N-M (1 to {MAX_GNO})")
                            })
                    };
                    let (start, end) = (num(a)?, num(b)?);
                    if end < start {
                        return Err(format!(
                            "in GTID set '{part}': range '{item}' ends before it starts"
                        ));
                    }
                    set.add_interval(uuid, &tag, start, end + 1);
                    any = true;
                } else {
                    tag = normalize_tag(item).map_err(|e| format!("in GTID set '{part}': {e}"))?;
                }
            }
            if !any {
                return Err(format!(
                    "in GTID set '{part}': no transaction numbers after the UUID (write uuid:1-5)"
                ));
            }
        }
        Ok(set)
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// Whether any part of the set is tagged (needs MySQL 8.3+ to resume).
    pub fn is_tagged(&self) -> bool {
        self.sets.keys().any(|(_, t)| !t.is_empty())
    }

    pub fn contains(&self, g: &MysqlGtid) -> bool {
        self.sets
            .get(&(g.uuid, g.tag.clone()))
            .is_some_and(|iv| iv.iter().any(|&(s, e)| (s..e).contains(&g.gno)))
    }

    /// Whether every transaction of `self` is also in `other` (a position
    /// at or before `other`, for the schema history in gtid_mode).
    pub fn is_subset_of(&self, other: &GtidSet) -> bool {
        self.sets.iter().all(|(k, mine)| {
            let theirs = other.sets.get(k).map(Vec::as_slice).unwrap_or_default();
            mine.iter()
                .all(|&(s, e)| theirs.iter().any(|&(ts, te)| ts <= s && e <= te))
        })
    }

    /// Adds one committed transaction.
    pub fn add(&mut self, g: &MysqlGtid) {
        if g.gno < u64::MAX {
            self.add_interval(g.uuid, &g.tag, g.gno, g.gno + 1);
        }
    }

    /// Adds every transaction of `other`.
    pub fn union(&mut self, other: &GtidSet) {
        for ((uuid, tag), ivs) in &other.sets {
            for &(s, e) in ivs {
                self.add_interval(*uuid, tag, s, e);
            }
        }
    }

    fn add_interval(&mut self, uuid: Uuid, tag: &str, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let ivs = self.sets.entry((uuid, tag.to_string())).or_default();
        ivs.push((start, end));
        ivs.sort_unstable();
        let mut merged: Vec<Interval> = Vec::with_capacity(ivs.len());
        for &(s, e) in ivs.iter() {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *ivs = merged;
    }

    /// The (UUID, tag) entries with their intervals, UUIDs and tags sorted.
    pub fn entries(&self) -> impl Iterator<Item = (&Uuid, &str, &[Interval])> {
        self.sets
            .iter()
            .map(|((u, t), iv)| (u, t.as_str(), iv.as_slice()))
    }

    /// Parses the body of a PREVIOUS_GTIDS event (untagged format, or the
    /// tagged format of MySQL 8.3+).
    pub fn parse_previous_gtids(body: &[u8]) -> Result<Self, SourceError> {
        let mut r = Reader::new(body);
        let head = r.u64()?;
        let tagged = head >> 56 != 0;
        let count = if tagged {
            (head >> 8) & ((1 << 48) - 1)
        } else {
            head & ((1 << 56) - 1)
        };
        let mut set = GtidSet::default();
        for _ in 0..count {
            let mut u = [0u8; 16];
            u.copy_from_slice(r.take(16)?);
            let tag = if tagged {
                let n = usize::try_from(varlen_uint(&mut r)?)
                    .map_err(|_| SourceError::protocol("PREVIOUS_GTIDS: tag too long"))?;
                let t = std::str::from_utf8(r.take(n)?)
                    .map_err(|_| SourceError::protocol("PREVIOUS_GTIDS: tag is not UTF-8"))?;
                if t.is_empty() {
                    String::new()
                } else {
                    normalize_tag(t).map_err(SourceError::protocol)?
                }
            } else {
                String::new()
            };
            let n = r.u64()?;
            for _ in 0..n {
                let (s, e) = (r.u64()?, r.u64()?);
                if s == 0 || e <= s {
                    return Err(SourceError::protocol(format!(
                        "PREVIOUS_GTIDS: bad interval [{s}, {e})"
                    )));
                }
                set.add_interval(Uuid(u), &tag, s, e);
            }
        }
        Ok(set)
    }

    /// The binary form MySQL's `Gtid_set::encode` writes (PREVIOUS_GTIDS,
    /// COM_BINLOG_DUMP_GTID): untagged unless a tag is present, since
    /// servers before 8.3 know only the untagged form.
    pub fn encode(&self) -> Vec<u8> {
        let tagged = self.is_tagged();
        let n = self.sets.len() as u64;
        let mut out = Vec::with_capacity(8 + self.sets.len() * 40);
        let head = if tagged { (1 << 56) | (n << 8) | 1 } else { n };
        out.extend_from_slice(&head.to_le_bytes());
        for ((uuid, tag), ivs) in &self.sets {
            out.extend_from_slice(&uuid.0);
            if tagged {
                write_varlen_uint(&mut out, tag.len() as u64);
                out.extend_from_slice(tag.as_bytes());
            }
            out.extend_from_slice(&(ivs.len() as u64).to_le_bytes());
            for &(s, e) in ivs {
                out.extend_from_slice(&s.to_le_bytes());
                out.extend_from_slice(&e.to_le_bytes());
            }
        }
        out
    }
}

fn write_varlen_uint(out: &mut Vec<u8>, v: u64) {
    // Bytes needed: 7 payload bits per byte (the marker bits take the rest).
    let n = (1..=8)
        .find(|&n| n == 8 || v < 1u64 << (7 * n))
        .unwrap_or(8);
    if n == 8 && v >= 1 << 56 {
        out.push(0xFF);
        out.extend_from_slice(&v.to_le_bytes());
        return;
    }
    let encoded = (v << n) | ((1u64 << (n - 1)) - 1);
    out.extend_from_slice(&encoded.to_le_bytes()[..n]);
}

impl fmt::Display for GtidSet {
    /// MySQL's text form: one entry per UUID, untagged intervals first, then
    /// each tag with its intervals (`uuid:1-13:mytag:1-2`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut last_uuid: Option<Uuid> = None;
        for ((uuid, tag), ivs) in &self.sets {
            if last_uuid != Some(*uuid) {
                if last_uuid.is_some() {
                    f.write_str(",")?;
                }
                write!(f, "{uuid}")?;
                last_uuid = Some(*uuid);
            }
            if !tag.is_empty() {
                write!(f, ":{tag}")?;
            }
            for &(s, e) in ivs {
                if e - s == 1 {
                    write!(f, ":{s}")?;
                } else {
                    write!(f, ":{s}-{}", e - 1)?;
                }
            }
        }
        Ok(())
    }
}

/// COM_BINLOG_DUMP_GTID flag: the GTID set follows the position.
const BINLOG_THROUGH_GTID: u16 = 4;

/// The COM_BINLOG_DUMP_GTID command (0x1e): stream every transaction that is
/// not in `executed`, starting the search at `file`:`position` (an empty
/// file name and position 4 let the server find the first file itself).
pub fn com_binlog_dump_gtid(
    server_id: u32,
    file: &str,
    position: u64,
    executed: &GtidSet,
) -> Vec<u8> {
    let set = executed.encode();
    let mut out = Vec::with_capacity(27 + file.len() + set.len());
    out.push(0x1E);
    out.extend_from_slice(&BINLOG_THROUGH_GTID.to_le_bytes());
    out.extend_from_slice(&server_id.to_le_bytes());
    out.extend_from_slice(&(file.len() as u32).to_le_bytes());
    out.extend_from_slice(file.as_bytes());
    out.extend_from_slice(&position.to_le_bytes());
    out.extend_from_slice(&(set.len() as u32).to_le_bytes());
    out.extend_from_slice(&set);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const U1: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";

    #[test]
    fn parses_and_prints_sets_merging_ranges() {
        let s = GtidSet::parse(&format!(
            " {U1}:7-9:1-5:6 ,\n 55778904-0299-11f1-b1b8-4ef0c4956feb:1-13:MyTag:1-2:4"
        ))
        .unwrap();
        assert_eq!(
            s.to_string(),
            format!("{U1}:1-9,55778904-0299-11f1-b1b8-4ef0c4956feb:1-13:mytag:1-2:4")
        );
        assert!(s.is_tagged());
        assert!(GtidSet::parse("").unwrap().is_empty());
        let again = GtidSet::parse(&s.to_string()).unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn rejects_bad_text_with_the_reason() {
        let err = |t: &str| GtidSet::parse(t).unwrap_err();
        assert!(
            err("zz:1-5").contains("not a server UUID"),
            "{}",
            err("zz:1-5")
        );
        assert!(err(U1).contains("no transaction numbers"));
        assert!(err(&format!("{U1}:5-3")).contains("ends before it starts"));
        assert!(err(&format!("{U1}:0")).contains("not a transaction number"));
        assert!(err(&format!("{U1}:1-x")).contains("not a transaction number"));
        assert!(err(&format!("{U1}:9tag:1")).contains("not a transaction number"));
        assert!(err(&format!("{U1}:bad-tag:1")).contains("not a GTID tag"));
        assert!(err(&format!("{U1}:{}:1", "t".repeat(33))).contains("not a GTID tag"));
    }

    #[test]
    fn adds_transactions_and_tests_membership() {
        let mut s = GtidSet::parse(&format!("{U1}:1-3")).unwrap();
        let g = |gno| MysqlGtid {
            uuid: Uuid::parse(U1).unwrap(),
            tag: String::new(),
            gno,
        };
        s.add(&g(5));
        assert_eq!(s.to_string(), format!("{U1}:1-3:5"));
        s.add(&g(4));
        assert_eq!(s.to_string(), format!("{U1}:1-5"));
        assert!(s.contains(&g(5)) && !s.contains(&g(6)));
        let small = GtidSet::parse(&format!("{U1}:2-4")).unwrap();
        assert!(small.is_subset_of(&s) && !s.is_subset_of(&small));
        assert!(GtidSet::default().is_subset_of(&small));
        let other = GtidSet::parse("55778904-0299-11f1-b1b8-4ef0c4956feb:1").unwrap();
        assert!(!other.is_subset_of(&s));
        assert_eq!(g(5).to_string(), format!("{U1}:5"));
    }

    #[test]
    fn com_binlog_dump_gtid_bytes_untagged() {
        let s = GtidSet::parse(&format!("{U1}:1-5:7-9")).unwrap();
        let cmd = com_binlog_dump_gtid(42, "", 4, &s);
        let mut want = vec![0x1E, 4, 0, 42, 0, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(&4u64.to_le_bytes());
        want.extend_from_slice(&64u32.to_le_bytes()); // 8 + 16 + 8 + 2 * 16
        want.extend_from_slice(&1u64.to_le_bytes());
        want.extend_from_slice(&[
            0x3E, 0x11, 0xFA, 0x47, 0x71, 0xCA, 0x11, 0xE1, 0x9E, 0x33, 0xC8, 0x0A, 0xA9, 0x42,
            0x95, 0x62,
        ]);
        want.extend_from_slice(&2u64.to_le_bytes());
        for v in [1u64, 6, 7, 10] {
            want.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(cmd, want);
    }

    #[test]
    fn com_binlog_dump_gtid_bytes_tagged_with_file() {
        let s = GtidSet::parse(&format!("{U1}:tag:1-2")).unwrap();
        let cmd = com_binlog_dump_gtid(7, "b.1", 4, &s);
        let mut want = vec![0x1E, 4, 0, 7, 0, 0, 0, 3, 0, 0, 0, b'b', b'.', b'1'];
        want.extend_from_slice(&4u64.to_le_bytes());
        want.extend_from_slice(&52u32.to_le_bytes()); // 8 + 16 + 1 + 3 + 8 + 16
                                                      // Format 1 in the top byte and the low byte, one entry in between.
        want.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 1]);
        want.extend_from_slice(&Uuid::parse(U1).unwrap().0);
        want.extend_from_slice(&[6, b't', b'a', b'g']); // varlen 3 = 3 << 1
        want.extend_from_slice(&1u64.to_le_bytes());
        want.extend_from_slice(&1u64.to_le_bytes());
        want.extend_from_slice(&3u64.to_le_bytes());
        assert_eq!(cmd, want);
        // What the server would write in PREVIOUS_GTIDS reads back the same.
        assert_eq!(GtidSet::parse_previous_gtids(&s.encode()).unwrap(), s);
    }

    #[test]
    fn varlen_roundtrip_at_every_width() {
        for v in [
            0u64,
            1,
            63,
            127,
            128,
            300,
            1 << 20,
            (1 << 49) + 5,
            1 << 56,
            u64::MAX,
        ] {
            let mut b = Vec::new();
            write_varlen_uint(&mut b, v);
            let mut r = Reader::new(&b);
            assert_eq!(varlen_uint(&mut r).unwrap(), v, "{v}");
            assert_eq!(r.remaining(), 0);
        }
        assert!(varlen_uint(&mut Reader::new(&[0b0000_0011])).is_err());
    }

    #[test]
    fn untagged_gtid_event() {
        let mut m = vec![1u8];
        m.extend_from_slice(&Uuid::parse(U1).unwrap().0);
        m.extend_from_slice(&23u64.to_le_bytes());
        let g = MysqlGtid::parse(types::MYSQL_GTID, &m).unwrap();
        assert_eq!(g.to_string(), format!("{U1}:23"));
        assert!(MysqlGtid::parse(types::MYSQL_GTID, &m[..10]).is_err());
    }
}
