//! Values read by a snapshot query, rendered as the binlog path renders the
//! same column (`crate::values`), with the differences Maxwell's bootstrap
//! has (spec §2.4): a zero DATETIME/TIMESTAMP is `null`, a `binary(n)` keeps
//! its zero padding. The values come typed (MySQL's binary protocol), so no
//! text has to be re-parsed: integers stay integers, FLOAT/DOUBLE arrive as
//! the same IEEE values the binlog carries, DECIMAL as its exact text.

use base64::Engine;
use sluice_schema::Column;

use crate::json;

/// One value of a snapshot row, as MySQL's binary protocol delivers it.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapValue {
    Null,
    /// Strings (in the connection's utf8mb4), binary strings, DECIMAL text,
    /// BIT, ENUM/SET text, JSON text, geometry (SRID + WKB).
    Bytes(Vec<u8>),
    Int(i64),
    UInt(u64),
    Float(f32),
    Double(f64),
    /// year, month, day, hour, minute, second, microsecond.
    Date(u16, u8, u8, u8, u8, u8, u32),
    /// negative, days, hours, minutes, seconds, microseconds.
    Time(bool, u32, u8, u8, u8, u32),
}

/// How a column's values are rendered (decided once per column from the
/// schema, not per value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    Float,
    Double,
    Bit,
    Date,
    DateTime {
        fsp: u32,
    },
    Time {
        fsp: u32,
    },
    Text,
    /// `fixed`: `binary(n)`, padded with zero bytes by the server.
    Binary {
        fixed: bool,
    },
    Enum,
    Set,
    /// MariaDB's JSON (a checked LONGTEXT): embedded as the binlog path does.
    JsonText,
    /// MySQL's binary JSON, delivered as text: embedded, whitespace removed.
    Json,
    Geometry,
}

/// One column of a snapshot row: its JSON key and how to render it.
#[derive(Debug, Clone)]
pub struct ColumnPlan {
    pub name: String,
    /// `"name":`, pre-rendered.
    pub key: Vec<u8>,
    /// Left out of `data` by `exclude_columns`.
    pub excluded: bool,
    kind: Kind,
}

/// The fractional-second digits of `datetime(3)`, `time(6)`, ... (0 when
/// the type has none).
fn fsp(column_type: &str) -> u32 {
    column_type
        .split_once('(')
        .and_then(|(_, rest)| rest.split(')').next())
        .and_then(|d| d.trim().parse().ok())
        .unwrap_or(0)
        .min(6)
}

impl ColumnPlan {
    pub fn new(c: &Column, excluded: bool) -> Self {
        let binary_charset = c.charset.as_deref() == Some("binary");
        let kind = match c.data_type.as_str() {
            "tinyint" | "bool" | "boolean" | "smallint" | "mediumint" | "int" | "integer"
            | "bigint" | "decimal" | "numeric" | "fixed" | "year" => Kind::Number,
            "float" => Kind::Float,
            "double" | "real" | "double precision" => Kind::Double,
            "bit" => Kind::Bit,
            "date" => Kind::Date,
            "datetime" | "timestamp" => Kind::DateTime {
                fsp: fsp(&c.column_type),
            },
            "time" => Kind::Time {
                fsp: fsp(&c.column_type),
            },
            "enum" => Kind::Enum,
            "set" => Kind::Set,
            "json" => Kind::Json,
            "binary" => Kind::Binary { fixed: true },
            "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
                Kind::Binary { fixed: false }
            }
            "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" => Kind::Geometry,
            "char" if binary_charset => Kind::Binary { fixed: true },
            _ if binary_charset => Kind::Binary { fixed: false },
            _ if c.is_json => Kind::JsonText,
            _ => Kind::Text,
        };
        ColumnPlan {
            name: c.name.clone(),
            key: json::key(&c.name),
            excluded,
            kind,
        }
    }

    /// Appends the JSON of `v` as a `bootstrap-insert` shows it.
    pub fn render(
        &self,
        out: &mut Vec<u8>,
        v: &SnapValue,
        null_zero_dates: bool,
    ) -> Result<(), String> {
        self.write(out, v, null_zero_dates, false)
    }

    /// Appends `v` as the binlog path renders it, for comparing keys of
    /// snapshot rows with keys of binlog rows: a `binary(n)` without its
    /// zero padding (the binlog drops it), a zero date as the binlog shows it.
    pub fn render_key(
        &self,
        out: &mut Vec<u8>,
        v: &SnapValue,
        null_zero_dates: bool,
    ) -> Result<(), String> {
        self.write(out, v, null_zero_dates, true)
    }

    fn write(
        &self,
        out: &mut Vec<u8>,
        v: &SnapValue,
        null_zero_dates: bool,
        as_key: bool,
    ) -> Result<(), String> {
        match (self.kind, v) {
            (_, SnapValue::Null) => out.extend_from_slice(b"null"),
            (_, SnapValue::Int(i)) => json::write_int(out, *i),
            (_, SnapValue::UInt(u)) => json::write_int(out, *u),
            (_, SnapValue::Float(f)) => {
                write_float(out, f.is_finite(), |b| b.format_finite(*f).to_string())
            }
            (_, SnapValue::Double(d)) => {
                write_float(out, d.is_finite(), |b| b.format_finite(*d).to_string())
            }
            (Kind::Date, SnapValue::Date(y, m, d, ..)) => {
                if null_zero_dates && (*y, *m, *d) == (0, 0, 0) {
                    out.extend_from_slice(b"null");
                } else {
                    out.push(b'"');
                    date(out, *y, *m, *d);
                    out.push(b'"');
                }
            }
            (kind, SnapValue::Date(y, mo, d, h, mi, s, us)) => {
                let fsp = match kind {
                    Kind::DateTime { fsp } => fsp,
                    _ => 0,
                };
                let zero = (*y, *mo, *d, *h, *mi, *s, *us) == (0, 0, 0, 0, 0, 0, 0);
                // Maxwell's bootstrap shows a zero datetime as null; the
                // binlog shows it as zeros (or null with null_zero_dates).
                if zero && (!as_key || null_zero_dates) {
                    out.extend_from_slice(b"null");
                    return Ok(());
                }
                out.push(b'"');
                date(out, *y, *mo, *d);
                out.push(b' ');
                clock(out, u64::from(*h), *mi, *s);
                fraction(out, *us, fsp);
                out.push(b'"');
            }
            (kind, SnapValue::Time(neg, days, h, m, s, us)) => {
                let fsp = match kind {
                    Kind::Time { fsp } => fsp,
                    _ => 0,
                };
                out.push(b'"');
                if *neg {
                    out.push(b'-');
                }
                clock(out, u64::from(*days) * 24 + u64::from(*h), *m, *s);
                fraction(out, *us, fsp);
                out.push(b'"');
            }
            (Kind::Number, SnapValue::Bytes(b)) => {
                if is_number(b) {
                    out.extend_from_slice(b);
                } else {
                    return Err(format!("'{}' is not a number", String::from_utf8_lossy(b)));
                }
            }
            (Kind::Bit, SnapValue::Bytes(b)) => {
                if b.len() > 8 {
                    return Err(format!("bit value of {} bytes", b.len()));
                }
                json::write_int(
                    out,
                    b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)),
                );
            }
            (Kind::Binary { fixed }, SnapValue::Bytes(b)) => {
                let bytes: &[u8] = if fixed && as_key {
                    let end = b.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
                    &b[..end]
                } else {
                    b
                };
                out.push(b'"');
                let start = out.len();
                let n = base64::encoded_len(bytes.len(), true).unwrap_or(0);
                out.resize(start + n, 0);
                let written = base64::engine::general_purpose::STANDARD
                    .encode_slice(bytes, &mut out[start..])
                    .map_err(|e| e.to_string())?;
                out.truncate(start + written);
                out.push(b'"');
            }
            (Kind::Set, SnapValue::Bytes(b)) => {
                out.push(b'[');
                if !b.is_empty() {
                    for (i, member) in b.split(|&c| c == b',').enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        write_text(out, member);
                    }
                }
                out.push(b']');
            }
            (Kind::JsonText, SnapValue::Bytes(b)) => {
                let s = String::from_utf8_lossy(b);
                match serde_json::from_str::<&serde_json::value::RawValue>(&s) {
                    Ok(raw) => out.extend_from_slice(raw.get().trim().as_bytes()),
                    Err(_) => json::write_str(out, &s),
                }
            }
            (Kind::Json, SnapValue::Bytes(b)) => {
                let s = String::from_utf8_lossy(b);
                if serde_json::from_str::<&serde_json::value::RawValue>(&s).is_ok() {
                    minify(out, s.as_bytes());
                } else {
                    json::write_str(out, &s);
                }
            }
            (Kind::Geometry, SnapValue::Bytes(b)) => {
                let wkb = b.get(4..).ok_or("geometry value shorter than its SRID")?;
                let mut wkt = String::new();
                crate::wkt::Wkb::new(wkb).geometry(&mut wkt)?;
                json::write_str(out, &wkt);
            }
            (_, SnapValue::Bytes(b)) => write_text(out, b),
        }
        Ok(())
    }
}

/// A UTF-8 string (the connection's character set); bytes that are not
/// UTF-8 are replaced rather than failing the row.
fn write_text(out: &mut Vec<u8>, b: &[u8]) {
    match std::str::from_utf8(b) {
        Ok(_) => json::write_str_bytes(out, b),
        Err(_) => json::write_str(out, &String::from_utf8_lossy(b)),
    }
}

/// DECIMAL and integer text: digits, one sign, one point, an exponent.
fn is_number(b: &[u8]) -> bool {
    !b.is_empty()
        && b.iter().any(u8::is_ascii_digit)
        && b.iter().all(|c| c.is_ascii_digit() || b"+-.eE".contains(c))
}

/// JSON text without the whitespace between tokens (MySQL prints `{"a": 1}`,
/// the binlog path renders `{"a":1}`); key order stays as MySQL stored it.
fn minify(out: &mut Vec<u8>, s: &[u8]) {
    let mut in_str = false;
    let mut escaped = false;
    for &c in s {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_str = false;
            }
        } else if c == b'"' {
            in_str = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
}

fn write_float(out: &mut Vec<u8>, finite: bool, f: impl FnOnce(&mut ryu::Buffer) -> String) {
    if !finite {
        out.extend_from_slice(b"null");
        return;
    }
    let mut buf = ryu::Buffer::new();
    out.extend_from_slice(f(&mut buf).as_bytes());
}

fn pad2(out: &mut Vec<u8>, v: u64) {
    out.push(b'0' + ((v / 10) % 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

fn date(out: &mut Vec<u8>, y: u16, m: u8, d: u8) {
    let y = u64::from(y);
    out.push(b'0' + ((y / 1000) % 10) as u8);
    out.push(b'0' + ((y / 100) % 10) as u8);
    pad2(out, y % 100);
    out.push(b'-');
    pad2(out, u64::from(m));
    out.push(b'-');
    pad2(out, u64::from(d));
}

fn clock(out: &mut Vec<u8>, h: u64, m: u8, s: u8) {
    if h >= 100 {
        json::write_int(out, h);
    } else {
        pad2(out, h);
    }
    out.push(b':');
    pad2(out, u64::from(m));
    out.push(b':');
    pad2(out, u64::from(s));
}

/// `.ffffff` cut to `fsp` digits (nothing for fsp 0), as the binlog path.
fn fraction(out: &mut Vec<u8>, micros: u32, fsp: u32) {
    if fsp == 0 {
        return;
    }
    out.push(b'.');
    let mut digits = [0u8; 6];
    let mut v = micros.min(999_999);
    for d in digits.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&digits[..fsp.min(6) as usize]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(data_type: &str, column_type: &str) -> Column {
        Column {
            name: "c".into(),
            data_type: data_type.into(),
            column_type: column_type.into(),
            charset: None,
            unsigned: false,
            values: vec![],
            is_json: false,
        }
    }

    fn shown(data_type: &str, column_type: &str, v: SnapValue) -> String {
        let mut out = Vec::new();
        ColumnPlan::new(&column(data_type, column_type), false)
            .render(&mut out, &v, false)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    fn key(data_type: &str, column_type: &str, v: SnapValue) -> String {
        let mut out = Vec::new();
        ColumnPlan::new(&column(data_type, column_type), false)
            .render_key(&mut out, &v, false)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_as_the_binlog_path_renders_them() {
        assert_eq!(shown("tinyint", "tinyint(1)", SnapValue::Int(9)), "9");
        assert_eq!(
            shown("bigint", "bigint(20) unsigned", SnapValue::UInt(u64::MAX)),
            "18446744073709551615"
        );
        assert_eq!(
            shown("bigint", "bigint(20)", SnapValue::Int(i64::MIN)),
            "-9223372036854775808"
        );
        assert_eq!(shown("float", "float", SnapValue::Float(0.1)), "0.1");
        assert_eq!(
            shown("double", "double", SnapValue::Double(-1.25e-7)),
            "-1.25e-7"
        );
        assert_eq!(
            shown(
                "decimal",
                "decimal(20,10)",
                SnapValue::Bytes(b"3.1415900000".to_vec())
            ),
            "3.1415900000"
        );
        assert_eq!(
            shown(
                "decimal",
                "decimal(5,2)",
                SnapValue::Bytes(b"-0.50".to_vec())
            ),
            "-0.50"
        );
        assert_eq!(shown("year", "year(4)", SnapValue::Int(2007)), "2007");
        assert_eq!(
            shown("bit", "bit(8)", SnapValue::Bytes(vec![0b0101_0101])),
            "85"
        );
        assert_eq!(shown("float", "float", SnapValue::Float(f32::NAN)), "null");
        let mut out = Vec::new();
        let e = ColumnPlan::new(&column("decimal", "decimal(5,2)"), false)
            .render(&mut out, &SnapValue::Bytes(b"x1".to_vec()), false)
            .unwrap_err();
        assert!(e.contains("not a number"), "{e}");
    }

    #[test]
    fn dates_and_times_with_their_fraction_digits() {
        let dt = SnapValue::Date(2020, 1, 2, 3, 4, 5, 123_456);
        assert_eq!(
            shown("datetime", "datetime", dt.clone()),
            "\"2020-01-02 03:04:05\""
        );
        assert_eq!(
            shown("datetime", "datetime(3)", dt.clone()),
            "\"2020-01-02 03:04:05.123\""
        );
        assert_eq!(
            shown("timestamp", "timestamp(6)", dt),
            "\"2020-01-02 03:04:05.123456\""
        );
        assert_eq!(
            shown("date", "date", SnapValue::Date(2007, 3, 4, 0, 0, 0, 0)),
            "\"2007-03-04\""
        );
        assert_eq!(
            shown(
                "time",
                "time(3)",
                SnapValue::Time(true, 1, 2, 3, 4, 500_000)
            ),
            "\"-26:03:04.500\""
        );
        assert_eq!(
            shown("time", "time", SnapValue::Time(false, 34, 22, 59, 59, 0)),
            "\"838:59:59\""
        );
    }

    /// Spec §2.4: the values where Maxwell's bootstrap differs from its
    /// binlog rendering.
    #[test]
    fn maxwell_bootstrap_rendering_differences() {
        let zero = SnapValue::Date(0, 0, 0, 0, 0, 0, 0);
        assert_eq!(shown("datetime", "datetime", zero.clone()), "null");
        assert_eq!(shown("timestamp", "timestamp", zero.clone()), "null");
        assert_eq!(shown("date", "date", zero), "\"0000-00-00\"");
        assert_eq!(
            shown("date", "date", SnapValue::Date(0, 1, 1, 0, 0, 0, 0)),
            "\"0000-01-01\""
        );
        let padded = SnapValue::Bytes(vec![0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0, 0, 0, 0]);
        assert_eq!(
            shown("binary", "binary(10)", padded.clone()),
            "\"CgsMDQ4PAAAAAA==\""
        );
        // Keys compare with binlog rows, which carry no padding.
        assert_eq!(key("binary", "binary(10)", padded), "\"CgsMDQ4P\"");
        assert_eq!(
            key("datetime", "datetime", SnapValue::Date(0, 0, 0, 0, 0, 0, 0)),
            "\"0000-00-00 00:00:00\""
        );
    }

    #[test]
    fn strings_sets_json_and_blobs() {
        assert_eq!(
            shown(
                "varchar",
                "varchar(10)",
                SnapValue::Bytes("héllo \"q\"".as_bytes().to_vec())
            ),
            "\"héllo \\\"q\\\"\""
        );
        assert_eq!(
            shown("enum", "enum('a','b')", SnapValue::Bytes(b"b".to_vec())),
            "\"b\""
        );
        assert_eq!(
            shown("set", "set('a','b')", SnapValue::Bytes(b"a,b".to_vec())),
            "[\"a\",\"b\"]"
        );
        assert_eq!(
            shown("set", "set('a','b')", SnapValue::Bytes(Vec::new())),
            "[]"
        );
        assert_eq!(
            shown("blob", "blob", SnapValue::Bytes(vec![0, 1, 2])),
            "\"AAEC\""
        );
        assert_eq!(
            shown(
                "json",
                "json",
                SnapValue::Bytes(br#"{"hello": "wor ld", "n": [1, 2]}"#.to_vec())
            ),
            r#"{"hello":"wor ld","n":[1,2]}"#
        );
        let mut mariadb_json = column("longtext", "longtext");
        mariadb_json.is_json = true;
        let mut out = Vec::new();
        ColumnPlan::new(&mariadb_json, false)
            .render(
                &mut out,
                &SnapValue::Bytes(br#" {"hello": "world"} "#.to_vec()),
                false,
            )
            .unwrap();
        assert_eq!(out, br#"{"hello": "world"}"#);
        let mut bin = column("char", "char(4)");
        bin.charset = Some("binary".into());
        let mut out = Vec::new();
        ColumnPlan::new(&bin, false)
            .render(&mut out, &SnapValue::Bytes(b"ab\0\0".to_vec()), false)
            .unwrap();
        assert_eq!(out, b"\"YWIAAA==\"");
    }
}
