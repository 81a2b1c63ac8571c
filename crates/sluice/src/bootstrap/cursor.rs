//! The snapshot cursor (the key of the last delivered row) as stored in
//! `bootstrap_progress.cursor_values`: a JSON array of typed values, so the
//! next chunk query binds exactly the values the server returned (a
//! DECIMAL's text, a binary key's bytes, a DATETIME's microseconds).

use base64::Engine;
use serde_json::{json, Value};
use sluice_pipeline::snapshot::SnapValue;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

pub fn encode(values: &[SnapValue]) -> String {
    let items: Vec<Value> = values
        .iter()
        .map(|v| match v {
            SnapValue::Null => Value::Null,
            SnapValue::Bytes(b) => json!({ "b": b64().encode(b) }),
            SnapValue::Int(i) => json!({ "i": i }),
            SnapValue::UInt(u) => json!({ "u": u }),
            SnapValue::Float(f) => json!({ "f": f }),
            SnapValue::Double(d) => json!({ "d": d }),
            SnapValue::Date(y, mo, d, h, mi, s, us) => json!({ "dt": [y, mo, d, h, mi, s, us] }),
            SnapValue::Time(neg, days, h, m, s, us) => json!({ "t": [neg, days, h, m, s, us] }),
        })
        .collect();
    Value::Array(items).to_string()
}

pub fn decode(text: &str) -> Result<Vec<SnapValue>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("cursor is not JSON: {e}"))?;
    let items = v.as_array().ok_or("cursor is not an array")?;
    items.iter().map(value).collect()
}

fn value(v: &Value) -> Result<SnapValue, String> {
    let bad = || format!("cursor value {v} is not understood");
    if v.is_null() {
        return Ok(SnapValue::Null);
    }
    let o = v.as_object().ok_or_else(bad)?;
    let (tag, x) = o.iter().next().ok_or_else(bad)?;
    let n = |i: usize| -> Result<u64, String> { x.get(i).and_then(Value::as_u64).ok_or_else(bad) };
    Ok(match tag.as_str() {
        "b" => SnapValue::Bytes(
            b64()
                .decode(x.as_str().ok_or_else(bad)?)
                .map_err(|_| bad())?,
        ),
        "i" => SnapValue::Int(x.as_i64().ok_or_else(bad)?),
        "u" => SnapValue::UInt(x.as_u64().ok_or_else(bad)?),
        "f" => SnapValue::Float(x.as_f64().ok_or_else(bad)? as f32),
        "d" => SnapValue::Double(x.as_f64().ok_or_else(bad)?),
        "dt" => SnapValue::Date(
            n(0)? as u16,
            n(1)? as u8,
            n(2)? as u8,
            n(3)? as u8,
            n(4)? as u8,
            n(5)? as u8,
            n(6)? as u32,
        ),
        "t" => SnapValue::Time(
            x.get(0).and_then(Value::as_bool).ok_or_else(bad)?,
            n(1)? as u32,
            n(2)? as u8,
            n(3)? as u8,
            n(4)? as u8,
            n(5)? as u32,
        ),
        _ => return Err(bad()),
    })
}

/// A value as a statement parameter.
pub fn param(v: &SnapValue) -> mysql_async::Value {
    use mysql_async::Value as M;
    match v {
        SnapValue::Null => M::NULL,
        SnapValue::Bytes(b) => M::Bytes(b.clone()),
        SnapValue::Int(i) => M::Int(*i),
        SnapValue::UInt(u) => M::UInt(*u),
        SnapValue::Float(f) => M::Float(*f),
        SnapValue::Double(d) => M::Double(*d),
        SnapValue::Date(y, mo, d, h, mi, s, us) => M::Date(*y, *mo, *d, *h, *mi, *s, *us),
        SnapValue::Time(neg, days, h, m, s, us) => M::Time(*neg, *days, *h, *m, *s, *us),
    }
}

/// A value the server returned.
pub fn from_mysql(v: mysql_async::Value) -> SnapValue {
    use mysql_async::Value as M;
    match v {
        M::NULL => SnapValue::Null,
        M::Bytes(b) => SnapValue::Bytes(b),
        M::Int(i) => SnapValue::Int(i),
        M::UInt(u) => SnapValue::UInt(u),
        M::Float(f) => SnapValue::Float(f),
        M::Double(d) => SnapValue::Double(d),
        M::Date(y, mo, d, h, mi, s, us) => SnapValue::Date(y, mo, d, h, mi, s, us),
        M::Time(neg, days, h, m, s, us) => SnapValue::Time(neg, days, h, m, s, us),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_key_value_survives_storage() {
        let values = vec![
            SnapValue::Null,
            SnapValue::Bytes(vec![0, 255, b'a']),
            SnapValue::Int(-5),
            SnapValue::UInt(u64::MAX),
            SnapValue::Float(1.5),
            SnapValue::Double(-2.25),
            SnapValue::Date(2020, 2, 29, 23, 59, 58, 123_456),
            SnapValue::Time(true, 1, 2, 3, 4, 5),
        ];
        assert_eq!(decode(&encode(&values)).unwrap(), values);
        assert_eq!(from_mysql(param(&values[6])), values[6]);
    }

    #[test]
    fn a_damaged_cursor_is_an_error_not_a_guess() {
        assert!(decode("not json").is_err());
        assert!(decode("[{\"zz\":1}]").is_err());
        assert!(decode("{}").is_err());
    }
}
