//! Maxwell-compatible routing for keyed producers: topic templates, message
//! keys (`kafka_key_format`), the string a row is partitioned by
//! (`producer_partition_by`) and the partition (`kafka_partition_hash`), so a
//! Maxwell user's rows land on the same partitions under the same keys.

use std::borrow::Cow;

use sluice_core::json::{split_array, write_escaped, write_str};

use crate::Message;

/// `%{database}`, `%{table}`, `%{type}` in a topic (or key, subject) template.
pub fn render_template(template: &str, msg: &Message<'_>) -> String {
    template
        .replace("%{database}", msg.database)
        .replace("%{table}", msg.table)
        .replace("%{type}", msg.kind)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// `{"database":"d","table":"t","pk.id":1}`
    Hash,
    /// `["d","t",[{"id":1}]]`
    Array,
}

/// The message key, as Maxwell writes it.
pub fn key(format: KeyFormat, msg: &Message<'_>, uuid: impl FnOnce() -> String) -> Vec<u8> {
    let mut k = Vec::with_capacity(64);
    let pk = msg.primary_key.as_ref();
    let values = pk.map(|p| split_array(p.values_json)).unwrap_or_default();
    match format {
        KeyFormat::Hash => {
            k.extend_from_slice(b"{\"database\":");
            write_str(&mut k, msg.database);
            k.extend_from_slice(b",\"table\":");
            write_str(&mut k, msg.table);
            match pk {
                Some(p) if !p.columns.is_empty() => {
                    for (c, v) in p.columns.iter().zip(&values) {
                        k.extend_from_slice(b",\"pk.");
                        write_escaped(&mut k, lower(c).as_bytes());
                        k.extend_from_slice(b"\":");
                        k.extend_from_slice(v);
                    }
                }
                _ => {
                    k.extend_from_slice(b",\"_uuid\":");
                    write_str(&mut k, &uuid());
                }
            }
            k.push(b'}');
        }
        KeyFormat::Array => {
            k.push(b'[');
            write_str(&mut k, msg.database);
            k.push(b',');
            write_str(&mut k, msg.table);
            k.extend_from_slice(b",[");
            if let Some(p) = pk {
                for (i, (c, v)) in p.columns.iter().zip(&values).enumerate() {
                    if i > 0 {
                        k.push(b',');
                    }
                    k.push(b'{');
                    write_str(&mut k, &lower(c));
                    k.push(b':');
                    k.extend_from_slice(v);
                    k.push(b'}');
                }
            }
            k.extend_from_slice(b"]]");
        }
    }
    k
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionBy {
    Database,
    Table,
    PrimaryKey,
    TransactionId,
    Column,
    Random,
}

impl PartitionBy {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "database" => PartitionBy::Database,
            "table" => PartitionBy::Table,
            "primary_key" => PartitionBy::PrimaryKey,
            "transaction_id" => PartitionBy::TransactionId,
            "column" => PartitionBy::Column,
            "random" => PartitionBy::Random,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionHash {
    /// Java's `String.hashCode`.
    Default,
    /// MurmurHash3 x86_32 of the UTF-8 bytes, seed 25342.
    Murmur3,
}

pub const MURMUR_SEED: u32 = 25342;

/// How rows are spread over partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partitioner {
    pub by: PartitionBy,
    pub fallback: PartitionBy,
    /// `producer_partition_columns`.
    pub columns: Vec<String>,
    pub hash: PartitionHash,
}

impl Partitioner {
    /// The string Maxwell hashes for `msg`.
    pub fn hash_string<'m>(
        &self,
        msg: &Message<'m>,
        by: PartitionBy,
        random: &mut dyn FnMut() -> String,
    ) -> Cow<'m, str> {
        Cow::Owned(match by {
            PartitionBy::Database => return Cow::Borrowed(msg.database),
            PartitionBy::Table if msg.table.is_empty() => return Cow::Borrowed(msg.database),
            PartitionBy::Table => return Cow::Borrowed(msg.table),
            PartitionBy::PrimaryKey => match msg.primary_key.as_ref() {
                Some(p) if !p.columns.is_empty() => {
                    let mut s = String::new();
                    for v in split_array(p.values_json) {
                        if v != b"null" {
                            s.push_str(&json_to_java_string(v));
                        }
                    }
                    if s.is_empty() {
                        "None".into()
                    } else {
                        s
                    }
                }
                _ => format!("{}{}", msg.database, msg.table),
            },
            PartitionBy::TransactionId => match msg.xid {
                Some(x) => x.to_string(),
                None => "null".into(),
            },
            PartitionBy::Column => {
                let s: String = msg
                    .partition_values
                    .map(|v| {
                        split_array(v)
                            .into_iter()
                            .filter(|v| *v != b"null")
                            .map(json_to_java_string)
                            .collect()
                    })
                    .unwrap_or_default();
                if s.is_empty() {
                    return self.hash_string(msg, self.fallback, random);
                }
                s
            }
            PartitionBy::Random => random(),
        })
    }

    pub fn partition(
        &self,
        msg: &Message<'_>,
        partitions: i32,
        random: &mut dyn FnMut() -> String,
    ) -> i32 {
        let s = self.hash_string(msg, self.by, random);
        let h = match self.hash {
            PartitionHash::Default => java_string_hash(&s),
            PartitionHash::Murmur3 => murmur3_32(s.as_bytes(), MURMUR_SEED) as i32,
        };
        java_partition(h, partitions)
    }
}

/// `Math.abs(hash % n)` with Java's int semantics.
pub fn java_partition(hash: i32, partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    (hash.wrapping_rem(partitions)).wrapping_abs()
}

/// Java's `String.hashCode`: over UTF-16 code units, wrapping.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(u as i32))
}

/// MurmurHash3 x86_32.
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let mut k = 0u32;
    for (i, &b) in tail.iter().enumerate() {
        k |= u32::from(b) << (8 * i);
    }
    if !tail.is_empty() {
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// A JSON scalar as Java's `toString` of the value would print it: strings
/// unquoted and unescaped, numbers and booleans as written.
fn json_to_java_string(v: &[u8]) -> String {
    if v.first() == Some(&b'"') {
        if let Ok(serde_json::Value::String(s)) = serde_json::from_slice(v) {
            return s;
        }
    }
    String::from_utf8_lossy(v).into_owned()
}

/// Column names are lower-cased in keys (as Maxwell does); most already are.
fn lower(c: &str) -> Cow<'_, str> {
    if c.bytes().any(|b| b.is_ascii_uppercase() || b >= 0x80) {
        Cow::Owned(c.to_lowercase())
    } else {
        Cow::Borrowed(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PrimaryKey;

    fn msg<'a>(pk: Option<PrimaryKey<'a>>) -> Message<'a> {
        Message {
            json: b"{}",
            database: "shop",
            table: "orders",
            kind: "insert",
            primary_key: pk,
            partition_values: None,
            xid: Some(42),
        }
    }

    /// (input, hash, partition of 7, partition of 12) for `default`
    /// (Java's `String.hashCode`, printed by OpenJDK 17 `jshell`:
    /// `x.hashCode()` and `Math.abs(x.hashCode() % n)`) and for `murmur3`
    /// with Maxwell's seed 25342 (printed by Python's `mmh3.hash(x, 25342)`,
    /// an independent MurmurHash3_x86_32 of the UTF-8 bytes, with Java's
    /// `%`). See docs/producers.md.
    const DEFAULT: &[(&str, i32, i32, i32)] = &[
        ("", 0, 0, 0),
        ("shop", 3529462, 6, 10),
        ("orders", -1008770331, 2, 3),
        ("maxwell", 845149234, 6, 10),
        ("12x", 48759, 4, 3),
        ("None", 2433880, 1, 4),
        ("shoporders", -335106725, 2, 5),
        ("42", 1662, 3, 6),
        ("héllo", 103094734, 1, 10),
        ("日本", 835047, 3, 3),
    ];
    const MURMUR3: &[(&str, i32, i32, i32)] = &[
        ("", 213229777, 5, 1),
        ("shop", 226172948, 1, 8),
        ("orders", 190045300, 4, 4),
        ("maxwell", -1810932721, 3, 1),
        ("12x", 1376625458, 5, 2),
        ("None", -1571757336, 2, 0),
        ("shoporders", 1928921033, 4, 5),
        ("42", -1185823928, 2, 8),
        ("héllo", -1335922883, 1, 11),
        ("日本", 315724517, 3, 5),
    ];

    #[test]
    fn partitions_match_maxwells() {
        for &(s, h, p7, p12) in DEFAULT {
            assert_eq!(java_string_hash(s), h, "{s}");
            assert_eq!(
                (java_partition(h, 7), java_partition(h, 12)),
                (p7, p12),
                "{s}"
            );
        }
        for &(s, h, p7, p12) in MURMUR3 {
            assert_eq!(murmur3_32(s.as_bytes(), MURMUR_SEED) as i32, h, "{s}");
            assert_eq!(
                (java_partition(h, 7), java_partition(h, 12)),
                (p7, p12),
                "{s}"
            );
        }
        // Through the partitioner: a row of shop.orders by table.
        let p = Partitioner {
            by: PartitionBy::Table,
            fallback: PartitionBy::Database,
            columns: vec![],
            hash: PartitionHash::Murmur3,
        };
        assert_eq!(p.partition(&msg(None), 12, &mut || unreachable!()), 4);
    }

    #[test]
    fn murmur3_reference_vectors() {
        // Published MurmurHash3_x86_32 vectors (SMHasher).
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"", 1), 0x514E_28B7);
        assert_eq!(murmur3_32(b"hello", 0), 0x248B_FA47);
        assert_eq!(murmur3_32(b"Hello, world!", 1234), 0xFAF6_CDB3);
        assert_eq!(
            murmur3_32(b"The quick brown fox jumps over the lazy dog", 0x9747_b28c),
            0x2FA8_26CD
        );
    }

    #[test]
    fn keys_as_maxwell_writes_them() {
        let cols = vec!["ID".to_string(), "Name".to_string()];
        let m = msg(Some(PrimaryKey {
            columns: &cols,
            values_json: br#"[1,"a\"b"]"#,
        }));
        assert_eq!(
            String::from_utf8(key(KeyFormat::Hash, &m, || unreachable!())).unwrap(),
            r#"{"database":"shop","table":"orders","pk.id":1,"pk.name":"a\"b"}"#
        );
        assert_eq!(
            String::from_utf8(key(KeyFormat::Array, &m, || unreachable!())).unwrap(),
            r#"["shop","orders",[{"id":1},{"name":"a\"b"}]]"#
        );
        let none = msg(None);
        assert_eq!(
            String::from_utf8(key(KeyFormat::Hash, &none, || "u-1".into())).unwrap(),
            r#"{"database":"shop","table":"orders","_uuid":"u-1"}"#
        );
    }

    #[test]
    fn hash_strings() {
        let cols = vec!["id".to_string(), "k".to_string()];
        let m = msg(Some(PrimaryKey {
            columns: &cols,
            values_json: br#"[12,"x"]"#,
        }));
        let p = Partitioner {
            by: PartitionBy::PrimaryKey,
            fallback: PartitionBy::Database,
            columns: vec![],
            hash: PartitionHash::Default,
        };
        let mut r = || "rnd".to_string();
        assert_eq!(p.hash_string(&m, PartitionBy::PrimaryKey, &mut r), "12x");
        assert_eq!(
            p.hash_string(&msg(None), PartitionBy::PrimaryKey, &mut r),
            "shoporders"
        );
        assert_eq!(p.hash_string(&m, PartitionBy::TransactionId, &mut r), "42");
        assert_eq!(p.hash_string(&m, PartitionBy::Column, &mut r), "shop");
        let nulls = msg(Some(PrimaryKey {
            columns: &cols,
            values_json: b"[null,null]",
        }));
        assert_eq!(
            p.hash_string(&nulls, PartitionBy::PrimaryKey, &mut r),
            "None"
        );
    }

    #[test]
    fn templates() {
        assert_eq!(
            render_template("cdc.%{database}.%{table}.%{type}", &msg(None)),
            "cdc.shop.orders.insert"
        );
    }
}
