//! The text a column-value rule matches: Java's `toString()` of the value in
//! Maxwell's row map, derived from sluice's JSON rendering of the cell.

use super::ColumnValue;

/// How a column's JSON rendering maps to Maxwell's value text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Numbers, strings, dates, base64 binary, booleans: the JSON scalar
    /// (strings unquoted).
    Scalar,
    /// SET: a Java list, `[a, b]`.
    Set,
    /// JSON columns: the JSON text. (Maxwell matches an object's identity
    /// string `RawJSONString@…` there, which only `*` matches.)
    Json,
}

/// Writes the text of the value rendered as `json` into `out` and says
/// whether it was NULL.
pub fn value_text(json: &[u8], kind: ValueKind, out: &mut String) -> ColumnValue {
    out.clear();
    if json == b"null" {
        return ColumnValue::Null;
    }
    match (kind, json.first()) {
        (ValueKind::Scalar, Some(b'"')) => match serde_json::from_slice::<String>(json) {
            Ok(s) => out.push_str(&s),
            Err(_) => out.push_str(&String::from_utf8_lossy(json)),
        },
        (ValueKind::Set, Some(b'[')) => match serde_json::from_slice::<Vec<String>>(json) {
            Ok(items) => {
                out.push('[');
                out.push_str(&items.join(", "));
                out.push(']');
            }
            Err(_) => out.push_str(&String::from_utf8_lossy(json)),
        },
        _ => out.push_str(&String::from_utf8_lossy(json)),
    }
    ColumnValue::Text
}
