//! Maxwell's output options and the parts of a row's JSON that depend on
//! the commit (xid, xoffset, commit flag, position, ...).

use regex::Regex;

use crate::encrypt::{EncryptError, Encryptor};
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
    /// `output_schema_id`: the schema history's id of the row's schema.
    pub schema_id: bool,
    /// `output_naming_strategy`: how field names are written.
    pub naming: Naming,
    /// `row_query_max_length`: the `query` field cut to this many
    /// characters (0: whole).
    pub row_query_max_length: usize,
}

/// Maxwell's `output_naming_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Naming {
    /// Names as they are.
    #[default]
    AsIs,
    /// `underscore_to_camelcase`: `user_id` → `userId` for column names and
    /// the row's own fields (`server_id` → `serverId`), as Guava's
    /// `LOWER_UNDERSCORE` to `LOWER_CAMEL` (which lower-cases each word).
    UnderscoreToCamelCase,
}

impl Naming {
    pub fn parse(text: &str) -> Option<Naming> {
        match text {
            "" | "none" => Some(Naming::AsIs),
            "underscore_to_camelcase" => Some(Naming::UnderscoreToCamelCase),
            _ => None,
        }
    }

    /// A column name as written.
    pub fn apply<'a>(self, name: &'a str) -> std::borrow::Cow<'a, str> {
        match self {
            Naming::AsIs => std::borrow::Cow::Borrowed(name),
            Naming::UnderscoreToCamelCase => {
                let mut out = String::with_capacity(name.len());
                for (i, word) in name.split('_').enumerate() {
                    let mut chars = word.chars();
                    if i == 0 {
                        out.extend(chars.flat_map(char::to_lowercase));
                    } else if let Some(first) = chars.next() {
                        out.extend(first.to_uppercase());
                        out.extend(chars.flat_map(char::to_lowercase));
                    }
                }
                std::borrow::Cow::Owned(out)
            }
        }
    }

    /// One of the row's own fields, written one way or the other.
    pub fn field(self, as_is: &'static [u8], camel: &'static [u8]) -> &'static [u8] {
        match self {
            Naming::AsIs => as_is,
            Naming::UnderscoreToCamelCase => camel,
        }
    }
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
            schema_id: false,
            naming: Naming::AsIs,
            row_query_max_length: 0,
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
    pub schema_id: Option<u64>,
}

impl OutputConfig {
    /// The row query as output: whole, or cut to `row_query_max_length`
    /// characters.
    pub fn truncate_query<'q>(&self, q: &'q str) -> &'q str {
        match q.char_indices().nth(self.row_query_max_length) {
            Some((at, _)) if self.row_query_max_length > 0 => &q[..at],
            _ => q,
        }
    }

    /// Appends the commit-dependent fields of row `index` of `total`.
    pub fn write_commit_fields(
        &self,
        out: &mut Vec<u8>,
        c: &CommitInfo<'_>,
        index: u64,
        total: u64,
    ) {
        self.write_commit_fields_at(out, c, index, index + 1 == total)
    }

    /// Appends the commit-dependent fields of row `index`, `last` of its
    /// transaction or not.
    pub fn write_commit_fields_at(
        &self,
        out: &mut Vec<u8>,
        c: &CommitInfo<'_>,
        index: u64,
        last: bool,
    ) {
        self.write_xid(out, c);
        self.write_commit_fields_after_xid(out, c, index, last);
    }

    /// `,"xid":N`, the first commit field: the same for every row of a
    /// transaction.
    pub fn write_xid(&self, out: &mut Vec<u8>, c: &CommitInfo<'_>) {
        if self.commit_info {
            if let Some(x) = c.xid {
                out.extend_from_slice(b",\"xid\":");
                json::write_int(out, x);
            }
        }
    }

    /// The commit fields after `xid` (see `write_commit_fields_at`).
    pub fn write_commit_fields_after_xid(
        &self,
        out: &mut Vec<u8>,
        c: &CommitInfo<'_>,
        index: u64,
        last: bool,
    ) {
        if self.commit_info {
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
        let naming = self.naming;
        if self.server_id {
            out.extend_from_slice(naming.field(b",\"server_id\":", b",\"serverId\":"));
            json::write_int(out, c.server_id);
        }
        if self.thread_id {
            if let Some(t) = c.thread_id {
                out.extend_from_slice(naming.field(b",\"thread_id\":", b",\"threadId\":"));
                json::write_int(out, t);
            }
        }
        if self.schema_id {
            self.write_schema_id(out, c.schema_id);
        }
        if self.push_timestamp {
            self.write_push_timestamp(out);
        }
    }

    /// `,"schema_id":N` (`null`: none known), named as
    /// `output_naming_strategy` says.
    pub(crate) fn write_schema_id(&self, out: &mut Vec<u8>, id: Option<u64>) {
        out.extend_from_slice(self.naming.field(b",\"schema_id\":", b",\"schemaId\":"));
        match id {
            Some(id) => json::write_int(out, id),
            None => out.extend_from_slice(b"null"),
        }
    }

    /// `,"_push_timestamp":SECONDS.MICROS` (now), named as
    /// `output_naming_strategy` says.
    pub(crate) fn write_push_timestamp(&self, out: &mut Vec<u8>) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        out.extend_from_slice(
            self.naming
                .field(b",\"_push_timestamp\":", b",\"PushTimestamp\":"),
        );
        json::write_int(out, now.as_secs());
        out.extend_from_slice(format!(".{:06}", now.subsec_micros()).as_bytes());
    }

    /// The opening of the `primary_key` array, named as
    /// `output_naming_strategy` says.
    pub(crate) fn primary_key_field(&self) -> &'static [u8] {
        self.naming
            .field(b",\"primary_key\":[", b",\"primaryKey\":[")
    }

    /// `,"primary_key_columns":[names]`, named as `output_naming_strategy`
    /// says (the column names as they are, as in Maxwell).
    pub(crate) fn write_primary_key_columns<'a>(
        &self,
        out: &mut Vec<u8>,
        names: impl IntoIterator<Item = &'a str>,
    ) {
        out.extend_from_slice(
            self.naming
                .field(b",\"primary_key_columns\":[", b",\"primaryKeyColumns\":["),
        );
        for (k, name) in names.into_iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            json::write_str(out, name);
        }
        out.push(b']');
    }
}

/// `encrypt=data`: `row` ends with `,"data":{…}[,"old":{…}]}` from
/// `data_at` on; that part becomes `,"encrypted":{"iv":…,"bytes":…}` (where
/// `data` was), the bytes being `{"data":{…}[,"old":{…}]}`.
pub fn encrypt_data_part(
    enc: &Encryptor,
    row: &mut Vec<u8>,
    data_at: usize,
    plaintext: &mut Vec<u8>,
) -> Result<(), EncryptError> {
    // Without the closing brace of the row.
    let end = row.len().saturating_sub(1);
    let Some(part) = row.get(data_at + 1..end) else {
        return Ok(());
    };
    plaintext.clear();
    plaintext.push(b'{');
    plaintext.extend_from_slice(part);
    plaintext.push(b'}');
    row.truncate(data_at);
    row.extend_from_slice(b",\"encrypted\":");
    enc.write_encrypted(plaintext, row)?;
    row.push(b'}');
    Ok(())
}

/// `encrypt=all`: the whole row `line` as `{"encrypted":{"iv":…,"bytes":…}}`.
pub fn encrypt_line(enc: &Encryptor, line: &[u8], out: &mut Vec<u8>) -> Result<(), EncryptError> {
    out.clear();
    out.extend_from_slice(b"{\"encrypted\":");
    enc.write_encrypted(line, out)?;
    out.push(b'}');
    Ok(())
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

    fn encryptor(mode: &str) -> Encryptor {
        Encryptor::from_options(mode, Some("aaaaaaaaaaaaaaaa"))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn encrypt_data_replaces_data_and_old_where_data_was() {
        let e = encryptor("data");
        let head = r#"{"database":"shard_1","table":"minimal","type":"update","ts":1,"xid":2,"commit":true"#;
        let tail =
            r#","primary_key":[1],"data":{"id":1,"text_field":"b"},"old":{"text_field":"a"}}"#;
        let mut row = tail.as_bytes().to_vec();
        let data_at = tail.find(r#","data":"#).unwrap();
        encrypt_data_part(&e, &mut row, data_at, &mut Vec::new()).unwrap();
        let line = format!("{head}{}", String::from_utf8(row).unwrap());
        // Plaintext up to where `data` was, then only the encrypted object,
        // iv first.
        let prefix = format!(r#"{head},"primary_key":[1],"encrypted":{{"iv":""#);
        assert!(line.starts_with(&prefix), "{line}");
        assert!(
            line.ends_with(r#""}}"#) && line.contains(r#"","bytes":""#),
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 8);
        assert_eq!(v["encrypted"].as_object().unwrap().len(), 2);
        assert_eq!(
            crate::encrypt::test_decrypt_field(&v["encrypted"]),
            r#"{"data":{"id":1,"text_field":"b"},"old":{"text_field":"a"}}"#
        );
    }

    #[test]
    fn encrypt_all_wraps_the_whole_line() {
        let e = encryptor("all");
        let line = r#"{"database":"shard_1","table":"minimal","type":"insert","ts":1,"xid":2,"commit":true,"data":{"id":1}}"#;
        let mut out = Vec::new();
        encrypt_line(&e, line.as_bytes(), &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1);
        assert_eq!(crate::encrypt::test_decrypt_field(&v["encrypted"]), line);
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
            thread_id: Some(9),
            schema_id: Some(42),
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
        // schema_id after thread_id, as Maxwell orders them; camelCase
        // names with underscore_to_camelcase.
        let cfg = OutputConfig {
            commit_info: false,
            server_id: true,
            thread_id: true,
            schema_id: true,
            naming: Naming::UnderscoreToCamelCase,
            ..Default::default()
        };
        let mut o = Vec::new();
        cfg.write_commit_fields(&mut o, &c, 1, 2);
        assert_eq!(
            String::from_utf8(o).unwrap(),
            r#","serverId":1,"threadId":9,"schemaId":42"#
        );
    }

    #[test]
    fn naming_and_query_length() {
        let camel = Naming::UnderscoreToCamelCase;
        assert_eq!(camel.apply("user_id"), "userId");
        assert_eq!(camel.apply("UserID"), "userid");
        assert_eq!(camel.apply("a__b_c"), "aBC");
        assert_eq!(camel.apply("plain"), "plain");
        assert_eq!(Naming::AsIs.apply("user_id"), "user_id");
        assert_eq!(Naming::parse("nope"), None);
        let cfg = OutputConfig {
            row_query_max_length: 3,
            ..Default::default()
        };
        assert_eq!(cfg.truncate_query("INSERT é"), "INS");
        assert_eq!(cfg.truncate_query("ab"), "ab");
        let cfg = OutputConfig {
            row_query_max_length: 7,
            ..Default::default()
        };
        assert_eq!(cfg.truncate_query("INSERT éx"), "INSERT ");
        assert_eq!(OutputConfig::default().truncate_query("whole"), "whole");
    }
}
