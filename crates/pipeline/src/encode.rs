//! Maxwell's output options and the parts of a row's JSON that depend on
//! the commit (xid, xoffset, commit flag, position, ...).

use regex::Regex;

use crate::json;

/// A column name from `exclude_columns`: literal (case-insensitive), or a
/// regular expression written between slashes, as in Maxwell.
#[derive(Debug, Clone)]
pub enum ColumnPattern {
    Name(String),
    Regex(Regex),
}

impl ColumnPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.len() >= 2 && t.starts_with('/') && t.ends_with('/') {
            Regex::new(&t[1..t.len() - 1])
                .map(ColumnPattern::Regex)
                .map_err(|e| format!("'{t}' is not a valid regular expression: {e}"))
        } else if t.is_empty() {
            Err("empty column name".into())
        } else {
            Ok(ColumnPattern::Name(t.to_string()))
        }
    }

    pub fn matches(&self, name: &str) -> bool {
        match self {
            ColumnPattern::Name(n) => n.eq_ignore_ascii_case(name),
            ColumnPattern::Regex(r) => r.is_match(name),
        }
    }
}

/// Maxwell's `output_*` options (same names, same defaults).
#[derive(Debug, Clone)]
pub struct OutputConfig {
    pub binlog_position: bool,
    pub gtid_position: bool,
    pub commit_info: bool,
    pub xoffset: bool,
    pub nulls: bool,
    pub server_id: bool,
    pub thread_id: bool,
    pub row_query: bool,
    pub primary_keys: bool,
    pub primary_key_columns: bool,
    pub null_zero_dates: bool,
    pub push_timestamp: bool,
    pub exclude_columns: Vec<ColumnPattern>,
    /// Emit DDL events (`output_ddl`).
    pub ddl: bool,
    /// Keep each row's primary key values (and `partition_columns`) for a
    /// producer that keys or partitions by them.
    pub routing: bool,
    pub partition_columns: Vec<String>,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            binlog_position: false,
            gtid_position: false,
            commit_info: true,
            xoffset: false,
            nulls: true,
            server_id: false,
            thread_id: false,
            row_query: false,
            primary_keys: false,
            primary_key_columns: false,
            null_zero_dates: false,
            push_timestamp: false,
            exclude_columns: Vec::new(),
            ddl: false,
            routing: false,
            partition_columns: Vec::new(),
        }
    }
}

/// What every row of one transaction shares at commit.
pub struct CommitInfo<'a> {
    pub xid: Option<u64>,
    pub position: &'a str,
    pub gtid: Option<&'a str>,
    pub server_id: u32,
    pub thread_id: Option<u32>,
}

impl OutputConfig {
    /// Appends the commit-dependent fields of row `index` of `total`.
    pub fn write_commit_fields(
        &self,
        out: &mut Vec<u8>,
        c: &CommitInfo<'_>,
        index: u64,
        total: u64,
    ) {
        let last = index + 1 == total;
        if self.commit_info {
            if let Some(x) = c.xid {
                out.extend_from_slice(b",\"xid\":");
                json::write_int(out, x);
            }
            if self.xoffset && !last {
                out.extend_from_slice(b",\"xoffset\":");
                json::write_int(out, index);
            }
            if last {
                out.extend_from_slice(b",\"commit\":true");
            }
        }
        if self.binlog_position {
            out.extend_from_slice(b",\"position\":");
            json::write_str(out, c.position);
        }
        if self.gtid_position {
            out.extend_from_slice(b",\"gtid\":");
            match c.gtid {
                Some(g) => json::write_str(out, g),
                None => out.extend_from_slice(b"null"),
            }
        }
        if self.server_id {
            out.extend_from_slice(b",\"server_id\":");
            json::write_int(out, c.server_id);
        }
        if self.thread_id {
            if let Some(t) = c.thread_id {
                out.extend_from_slice(b",\"thread_id\":");
                json::write_int(out, t);
            }
        }
        if self.push_timestamp {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            out.extend_from_slice(b",\"_push_timestamp\":");
            json::write_int(out, now.as_secs());
            out.extend_from_slice(format!(".{:06}", now.subsec_micros()).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(ColumnPattern::parse("Secret").unwrap().matches("secret"));
        assert!(!ColumnPattern::parse("secret").unwrap().matches("secret2"));
        assert!(ColumnPattern::parse("/^pw_/").unwrap().matches("pw_hash"));
        assert!(ColumnPattern::parse("/(/").is_err());
    }

    #[test]
    fn commit_fields_in_maxwell_order() {
        let cfg = OutputConfig {
            xoffset: true,
            binlog_position: true,
            gtid_position: true,
            server_id: true,
            ..Default::default()
        };
        let c = CommitInfo {
            xid: Some(7),
            position: "b.1:100",
            gtid: Some("0-1-5"),
            server_id: 1,
            thread_id: None,
        };
        let mut o = Vec::new();
        cfg.write_commit_fields(&mut o, &c, 0, 2);
        assert_eq!(
            String::from_utf8(o).unwrap(),
            r#","xid":7,"xoffset":0,"position":"b.1:100","gtid":"0-1-5","server_id":1"#
        );
        let mut o = Vec::new();
        cfg.write_commit_fields(&mut o, &c, 1, 2);
        assert_eq!(
            String::from_utf8(o).unwrap(),
            r#","xid":7,"commit":true,"position":"b.1:100","gtid":"0-1-5","server_id":1"#
        );
    }
}
