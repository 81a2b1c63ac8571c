//! MySQL's binary JSON column format (MySQL 5.7+; MariaDB stores JSON as
//! text instead) rendered as JSON text.

use sluice_binlog::rows::col;

use crate::json;

fn need(b: &[u8], n: usize) -> Result<(), String> {
    if b.len() < n {
        Err("binary JSON value truncated".into())
    } else {
        Ok(())
    }
}

fn uint(b: &[u8], n: usize) -> Result<usize, String> {
    need(b, n)?;
    Ok(b[..n]
        .iter()
        .rev()
        .fold(0usize, |a, &x| (a << 8) | x as usize))
}

fn varlen(b: &[u8]) -> Result<(usize, usize), String> {
    let mut v = 0usize;
    for i in 0..5 {
        need(b, i + 1)?;
        v |= ((b[i] & 0x7F) as usize) << (7 * i);
        if b[i] & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err("bad variable-length integer in binary JSON".into())
}

/// Renders a whole binary JSON document.
pub fn render(out: &mut Vec<u8>, doc: &[u8]) -> Result<(), String> {
    if doc.is_empty() {
        out.extend_from_slice(b"null");
        return Ok(());
    }
    value(out, doc[0], &doc[1..], 0)
}

fn value(out: &mut Vec<u8>, t: u8, b: &[u8], depth: u32) -> Result<(), String> {
    if depth > 100 {
        return Err("binary JSON nested too deeply".into());
    }
    match t {
        0x00 | 0x01 => return container(out, b, t == 0x01, true, depth),
        0x02 | 0x03 => return container(out, b, t == 0x03, false, depth),
        0x04 => {
            need(b, 1)?;
            out.extend_from_slice(match b[0] {
                1 => b"true",
                2 => b"false",
                _ => b"null",
            });
        }
        0x05 => json::write_int(out, uint(b, 2)? as u16 as i16),
        0x06 => json::write_int(out, uint(b, 2)? as u16),
        0x07 => json::write_int(out, uint(b, 4)? as u32 as i32),
        0x08 => json::write_int(out, uint(b, 4)? as u32),
        0x09 => json::write_int(out, uint(b, 8)? as u64 as i64),
        0x0A => json::write_int(out, uint(b, 8)? as u64),
        0x0B => {
            need(b, 8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[..8]);
            let v = f64::from_le_bytes(a);
            if v.is_finite() {
                out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
            } else {
                out.extend_from_slice(b"null");
            }
        }
        0x0C => {
            let (n, l) = varlen(b)?;
            need(b, l + n)?;
            let s = std::str::from_utf8(&b[l..l + n]).map_err(|e| e.to_string())?;
            json::write_str(out, s);
        }
        0x0F => {
            // Opaque: a MySQL type code and that type's bytes.
            need(b, 1)?;
            let (n, l) = varlen(&b[1..])?;
            need(b, 1 + l + n)?;
            opaque(out, b[0], &b[1 + l..1 + l + n])?;
        }
        other => return Err(format!("unknown binary JSON type {other:#x}")),
    }
    Ok(())
}

/// Opaque values as Maxwell renders them (mysql-binlog-connector-java's
/// `JsonStringFormatter`): DECIMAL as a bare number with its scale,
/// temporal types as quoted text (fraction only when non-zero, trailing
/// zeros trimmed), anything else as its bytes in base64.
fn opaque(out: &mut Vec<u8>, ty: u8, data: &[u8]) -> Result<(), String> {
    match ty {
        col::NEWDECIMAL | col::DECIMAL => {
            if data.len() < 2 {
                return Err("binary JSON decimal shorter than its precision and scale".into());
            }
            let (precision, scale) = (u32::from(data[0]), u32::from(data[1]));
            if scale > precision {
                return Err(format!(
                    "binary JSON decimal with scale {scale} above precision {precision}"
                ));
            }
            crate::values::decimal(out, &data[2..], precision, scale)
        }
        col::DATE
        | col::NEWDATE
        | col::TIME
        | col::TIME2
        | col::DATETIME
        | col::DATETIME2
        | col::TIMESTAMP
        | col::TIMESTAMP2 => {
            let b: [u8; 8] = data
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .ok_or("binary JSON temporal value shorter than 8 bytes")?;
            let packed = i64::from_le_bytes(b);
            let a = packed.unsigned_abs();
            let (int, micros) = (a >> 24, a % (1 << 24));
            out.push(b'"');
            if matches!(ty, col::TIME | col::TIME2) {
                if packed < 0 {
                    out.push(b'-');
                }
                clock(
                    out,
                    (int >> 12) % (1 << 10),
                    (int >> 6) % 64,
                    int % 64,
                    micros,
                );
            } else {
                let ymd = int >> 17;
                let ym = ymd >> 5;
                digits(out, ym / 13, 4);
                out.push(b'-');
                digits(out, ym % 13, 2);
                out.push(b'-');
                digits(out, ymd % 32, 2);
                if !matches!(ty, col::DATE | col::NEWDATE) {
                    let hms = int % (1 << 17);
                    out.push(b' ');
                    clock(out, hms >> 12, (hms >> 6) % 64, hms % 64, micros);
                }
            }
            out.push(b'"');
            Ok(())
        }
        _ => {
            use base64::Engine;
            let s = base64::engine::general_purpose::STANDARD.encode(data);
            json::write_str(out, &s);
            Ok(())
        }
    }
}

/// `v` in at least `width` digits, zero-padded.
fn digits(out: &mut Vec<u8>, v: u64, width: usize) {
    let s = v.to_string();
    out.extend(std::iter::repeat_n(b'0', width.saturating_sub(s.len())));
    out.extend_from_slice(s.as_bytes());
}

fn clock(out: &mut Vec<u8>, h: u64, m: u64, s: u64, micros: u64) {
    digits(out, h, 2);
    out.push(b':');
    digits(out, m, 2);
    out.push(b':');
    digits(out, s, 2);
    if micros != 0 {
        let mut f = format!("{:06}", micros.min(999_999));
        while f.ends_with('0') {
            f.pop();
        }
        out.push(b'.');
        out.extend_from_slice(f.as_bytes());
    }
}

fn container(
    out: &mut Vec<u8>,
    b: &[u8],
    large: bool,
    object: bool,
    depth: u32,
) -> Result<(), String> {
    let w = if large { 4 } else { 2 };
    let count = uint(b, w)?;
    let _size = uint(&b[w..], w)?;
    let mut pos = 2 * w;
    let key_entries = pos;
    if object {
        pos += count * (w + 2);
    }
    let value_entries = pos;
    out.push(if object { b'{' } else { b'[' });
    for i in 0..count {
        if i > 0 {
            out.push(b',');
        }
        if object {
            let e = key_entries + i * (w + 2);
            let off = uint(&b[e.min(b.len())..], w)?;
            let len = uint(&b[(e + w).min(b.len())..], 2)?;
            need(b, off + len)?;
            let k = std::str::from_utf8(&b[off..off + len]).map_err(|e| e.to_string())?;
            json::write_str(out, k);
            out.push(b':');
        }
        let e = value_entries + i * (1 + w);
        need(b, e + 1 + w)?;
        let t = b[e];
        let inline = matches!(t, 0x04..=0x06) || (large && matches!(t, 0x07 | 0x08));
        if inline {
            value(out, t, &b[e + 1..], depth + 1)?;
        } else {
            let off = uint(&b[e + 1..], w)?;
            need(b, off)?;
            value(out, t, &b[off..], depth + 1)?;
        }
    }
    out.push(if object { b'}' } else { b']' });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_object() {
        // {"a": 1, "b": "xy"} as MySQL encodes it.
        let doc: Vec<u8> = vec![
            0x00, 2, 0, 26, 0, // count 2, size 26
            18, 0, 1, 0, 19, 0, 1, 0, // keys at 18 and 19
            0x05, 1, 0, // a: int16 inline 1
            0x0C, 20, 0, // b: string at 20
            b'a', b'b', 2, b'x', b'y',
        ];
        let mut out = Vec::new();
        render(&mut out, &doc).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"a":1,"b":"xy"}"#);
        assert!(render(&mut Vec::new(), &doc[..10]).is_err());
    }
}
