//! From a data type as written to the type the server stores: aliases
//! resolved (`BOOL` → `tinyint(1)`, `REAL` → `double`, `TEXT(300)` →
//! `text`), charsets inherited, `CHARACTER SET binary` turning text into
//! bytes — the column as `information_schema` would then show it.

use super::ast::TypeSpec;
use crate::model::Column;

/// How the server in question spells things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    MariaDb,
    MySql,
}

/// `utf8` is `utf8mb3` on every server we support.
pub fn normalize_charset(cs: &str) -> String {
    let cs = cs.to_ascii_lowercase();
    if cs == "utf8" {
        "utf8mb3".into()
    } else {
        cs
    }
}

/// The charset a collation belongs to: every collation name starts with
/// its charset's name followed by `_` (or is `binary`).
pub fn charset_of_collation(collation: &str) -> String {
    let c = collation.to_ascii_lowercase();
    if c == "binary" {
        return c;
    }
    // utf8mb4_0900_ai_ci, utf8mb3_general_ci, utf8_bin, latin1_swedish_ci…
    let cs = c.split('_').next().unwrap_or(&c);
    normalize_charset(cs)
}

/// Bytes per character at most.
pub fn max_bytes_per_char(cs: &str) -> u64 {
    match cs {
        "utf8mb4" | "utf16" | "utf16le" | "utf32" => 4,
        "utf8mb3" | "eucjpms" | "ujis" => 3,
        "big5" | "cp932" | "euckr" | "gb2312" | "gbk" | "sjis" | "ucs2" | "gb18030" => 2,
        _ => 1,
    }
}

fn is_text_family(dt: &str) -> bool {
    matches!(
        dt,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set"
    )
}

/// Character types carry a charset; this one is given as the default.
pub fn takes_charset(dt: &str) -> bool {
    is_text_family(dt)
}

/// Smallest text/blob type holding `bytes`.
fn sized(bytes: u64, text: bool) -> &'static str {
    match (bytes, text) {
        (0..=255, true) => "tinytext",
        (0..=65535, true) => "text",
        (0..=16_777_215, true) => "mediumtext",
        (_, true) => "longtext",
        (0..=255, false) => "tinyblob",
        (0..=65535, false) => "blob",
        (0..=16_777_215, false) => "mediumblob",
        (_, false) => "longblob",
    }
}

pub fn text_capacity(dt: &str) -> Option<u64> {
    Some(match dt {
        "tinytext" | "tinyblob" => 255,
        "text" | "blob" => 65535,
        "mediumtext" | "mediumblob" => 16_777_215,
        "longtext" | "longblob" => 4_294_967_295,
        _ => return None,
    })
}

/// The text type that holds as many characters of `to` as `dt` held of
/// `from` (MySQL's rule for `CONVERT TO CHARACTER SET`).
pub fn promote_text(dt: &str, from: &str, to: &str) -> Option<&'static str> {
    let cap = text_capacity(dt)?;
    if !dt.ends_with("text") {
        return None;
    }
    let chars = cap / max_bytes_per_char(from);
    Some(sized(chars.saturating_mul(max_bytes_per_char(to)), true))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownType(pub String);

/// Resolves `spec` for a column named `name` in a table whose default
/// charset is `table_charset`.
pub fn resolve_column(
    name: &str,
    spec: &TypeSpec,
    table_charset: &str,
    flavor: Flavor,
) -> Result<Column, UnknownType> {
    let a0 = spec.args.first().copied();
    let mut unsigned = spec.unsigned;
    let mut is_json = false;
    let mut charset_override: Option<String> = None;
    let dt: String = match spec.name.as_str() {
        "bool" | "boolean" => "tinyint".into(),
        "tinyint" | "int1" => "tinyint".into(),
        "smallint" | "int2" => "smallint".into(),
        "mediumint" | "int3" | "middleint" => "mediumint".into(),
        "int" | "integer" | "int4" => "int".into(),
        "bigint" | "int8" => "bigint".into(),
        "serial" => {
            unsigned = true;
            "bigint".into()
        }
        "decimal" | "dec" | "numeric" | "fixed" | "number" => "decimal".into(),
        "float" if spec.args.len() == 1 && a0.is_some_and(|p| p > 24) => "double".into(),
        "float" | "float4" => "float".into(),
        "double" | "double precision" | "real" | "float8" => "double".into(),
        "bit" => "bit".into(),
        "date" => "date".into(),
        "time" => "time".into(),
        "datetime" => "datetime".into(),
        "timestamp" => "timestamp".into(),
        "year" => "year".into(),
        "char" | "character" => "char".into(),
        "nchar" => {
            charset_override = Some("utf8mb3".into());
            "char".into()
        }
        "varchar" | "varcharacter" => "varchar".into(),
        "nvarchar" => {
            charset_override = Some("utf8mb3".into());
            "varchar".into()
        }
        "binary" => "binary".into(),
        "varbinary" => "varbinary".into(),
        "tinytext" | "mediumtext" | "longtext" | "tinyblob" | "mediumblob" | "longblob" => {
            spec.name.clone()
        }
        "long varchar" | "long" => "mediumtext".into(),
        "long varbinary" => "mediumblob".into(),
        "text" => match a0 {
            Some(n) => {
                let cs = spec
                    .charset
                    .as_deref()
                    .map(normalize_charset)
                    .unwrap_or_else(|| table_charset.to_string());
                sized(n.saturating_mul(max_bytes_per_char(&cs)), true).into()
            }
            None => "text".into(),
        },
        "blob" => match a0 {
            Some(n) => sized(n, false).into(),
            None => "blob".into(),
        },
        "enum" => "enum".into(),
        "set" => "set".into(),
        "json" => match flavor {
            Flavor::MariaDb => {
                is_json = true;
                charset_override = Some("utf8mb4".into());
                "longtext".into()
            }
            Flavor::MySql => {
                is_json = true;
                "json".into()
            }
        },
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" => spec.name.clone(),
        "geomcollection" => "geometrycollection".into(),
        "uuid" | "inet6" | "inet4" | "vector" => spec.name.clone(),
        other => return Err(UnknownType(other.to_string())),
    };
    let mut dt = dt;
    let mut charset: Option<String> = None;
    if is_text_family(&dt) {
        let cs = charset_override
            .or_else(|| spec.charset.as_deref().map(normalize_charset))
            .or_else(|| spec.collation.as_deref().map(charset_of_collation))
            .unwrap_or_else(|| table_charset.to_string());
        if cs == "binary" {
            // CHARACTER SET binary turns text types into byte types.
            dt = match dt.as_str() {
                "char" => "binary".into(),
                "varchar" => "varbinary".into(),
                "tinytext" => "tinyblob".into(),
                "text" => "blob".into(),
                "mediumtext" => "mediumblob".into(),
                "longtext" => "longblob".into(),
                other => other.to_string(),
            };
        }
        charset = Some(cs);
    }
    if matches!(
        dt.as_str(),
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob"
    ) {
        charset = Some("binary".into());
    }
    let column_type = column_type(&dt, spec, unsigned, flavor);
    let values = spec.values.clone();
    Ok(Column {
        name: name.to_string(),
        data_type: dt,
        column_type,
        charset,
        unsigned: unsigned && is_numeric(spec),
        values,
        is_json,
    })
}

fn is_numeric(spec: &TypeSpec) -> bool {
    !matches!(
        spec.name.as_str(),
        "char" | "varchar" | "text" | "enum" | "set" | "binary" | "varbinary" | "blob" | "bit"
    )
}

/// `COLUMN_TYPE` as MariaDB prints it (display widths included); close to
/// what MySQL prints. Informational: decoding never depends on it.
fn column_type(dt: &str, spec: &TypeSpec, unsigned: bool, flavor: Flavor) -> String {
    let args = &spec.args;
    let mut s = match dt {
        "tinyint" | "smallint" | "mediumint" | "int" | "bigint" => {
            let width = args
                .first()
                .copied()
                .or(match (flavor, spec.name.as_str()) {
                    (_, "bool" | "boolean") => Some(1),
                    (Flavor::MySql, _) => None,
                    (Flavor::MariaDb, _) => Some(match (dt, unsigned) {
                        ("tinyint", false) => 4,
                        ("tinyint", true) => 3,
                        ("smallint", false) => 6,
                        ("smallint", true) => 5,
                        ("mediumint", false) => 9,
                        ("mediumint", true) => 8,
                        ("int", false) => 11,
                        ("int", true) => 10,
                        _ => 20,
                    }),
                });
            match width {
                Some(w) => format!("{dt}({w})"),
                None => dt.to_string(),
            }
        }
        "decimal" => format!(
            "decimal({},{})",
            args.first().copied().unwrap_or(10),
            args.get(1).copied().unwrap_or(0)
        ),
        "float" | "double" if args.len() == 2 => format!("{dt}({},{})", args[0], args[1]),
        "char" | "binary" | "bit" => format!("{dt}({})", args.first().copied().unwrap_or(1)),
        "varchar" | "varbinary" => format!("{dt}({})", args.first().copied().unwrap_or(0)),
        "time" | "datetime" | "timestamp" => match args.first() {
            Some(&n) if n > 0 => format!("{dt}({n})"),
            _ => dt.to_string(),
        },
        "year" if flavor == Flavor::MariaDb => "year(4)".into(),
        "enum" | "set" => {
            let vals: Vec<String> = spec
                .values
                .iter()
                .map(|v| format!("'{}'", v.replace('\'', "''")))
                .collect();
            format!("{dt}({})", vals.join(","))
        }
        _ => dt.to_string(),
    };
    if unsigned && is_numeric(spec) {
        s.push_str(" unsigned");
    }
    if spec.zerofill {
        s.push_str(" zerofill");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, args: &[u64]) -> TypeSpec {
        TypeSpec {
            name: name.into(),
            args: args.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn aliases_and_sizes() {
        let r = |s: TypeSpec| resolve_column("c", &s, "latin1", Flavor::MariaDb).unwrap();
        assert_eq!(r(spec("bool", &[])).column_type, "tinyint(1)");
        assert_eq!(r(spec("integer", &[])).column_type, "int(11)");
        assert_eq!(r(spec("real", &[])).data_type, "double");
        assert_eq!(r(spec("float", &[30])).data_type, "double");
        assert_eq!(r(spec("text", &[300])).data_type, "text");
        assert_eq!(r(spec("text", &[200])).data_type, "tinytext");
        assert_eq!(r(spec("long", &[])).data_type, "mediumtext");
        let mut b = spec("varchar", &[10]);
        b.charset = Some("binary".into());
        assert_eq!(r(b).data_type, "varbinary");
        let mut u = spec("int", &[]);
        u.unsigned = true;
        assert_eq!(r(u).column_type, "int(10) unsigned");
        let j = r(spec("json", &[]));
        assert!(j.is_json && j.data_type == "longtext" && j.charset.as_deref() == Some("utf8mb4"));
        let mut c = spec("varchar", &[3]);
        c.collation = Some("utf8_bin".into());
        assert_eq!(r(c).charset.as_deref(), Some("utf8mb3"));
        assert_eq!(r(spec("nchar", &[3])).charset.as_deref(), Some("utf8mb3"));
    }

    #[test]
    fn conversion_promotes_text() {
        assert_eq!(
            promote_text("text", "latin1", "utf8mb4"),
            Some("mediumtext")
        );
        assert_eq!(promote_text("tinytext", "latin1", "utf8mb3"), Some("text"));
        assert_eq!(promote_text("text", "utf8mb4", "latin1"), Some("text"));
    }
}
