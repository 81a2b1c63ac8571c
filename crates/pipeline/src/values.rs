//! Rendering one binlog cell as Maxwell renders it in JSON. Each function
//! reads the cell's bytes (already sliced by `sluice_binlog::rows`) and
//! appends JSON to `out`; an `Err` carries what is wrong with the value, and
//! the caller names the table, column and position.

use base64::Engine;
use sluice_binlog::rows::{col, ColumnType};

use crate::charset::TextDecoding;
use crate::json;

/// What the decoder knows about one column beyond its binlog type.
#[derive(Debug, Clone)]
pub struct ColumnDecode {
    pub name: String,
    /// `"name":`, pre-rendered.
    pub key: Vec<u8>,
    pub ty: ColumnType,
    pub unsigned: bool,
    /// For character and binary columns.
    pub text: TextDecoding,
    /// Enum or set values, definition order.
    pub values: Vec<String>,
    pub is_json: bool,
    /// Dropped from output by `exclude_columns`.
    pub excluded: bool,
}

pub struct RenderOptions {
    pub null_zero_dates: bool,
}

type R = Result<(), String>;

fn be(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64)
}

fn le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64)
}

fn need(b: &[u8], n: usize) -> R {
    if b.len() < n {
        Err(format!("value has {} bytes, type needs {n}", b.len()))
    } else {
        Ok(())
    }
}

/// Strips the length prefix of a variable-length cell.
fn payload(b: &[u8], prefix: usize) -> Result<&[u8], String> {
    need(b, prefix)?;
    let n = le(&b[..prefix]) as usize;
    b.get(prefix..prefix.saturating_add(n))
        .ok_or_else(|| "value shorter than its length prefix".to_string())
}

pub struct Renderer {
    scratch: String,
    /// Open arrays and objects while a JSON text is checked.
    json_stack: Vec<u8>,
    /// The last TIMESTAMP's day and its date: neighbouring rows mostly
    /// share it, and the calendar arithmetic is the costly part.
    last_day: Option<(u64, [u64; 3])>,
    pub opts: RenderOptions,
}

impl Renderer {
    pub fn new(opts: RenderOptions) -> Self {
        Renderer {
            scratch: String::new(),
            json_stack: Vec::new(),
            last_day: None,
            opts,
        }
    }

    /// Appends the JSON value of a non-NULL cell.
    pub fn render(&mut self, out: &mut Vec<u8>, c: &ColumnDecode, b: &[u8]) -> R {
        let t = c.ty;
        match t.code {
            col::TINY => {
                need(b, 1)?;
                if c.unsigned {
                    json::write_int(out, b[0])
                } else {
                    json::write_int(out, b[0] as i8)
                }
            }
            col::SHORT => {
                need(b, 2)?;
                let v = u16::from_le_bytes([b[0], b[1]]);
                if c.unsigned {
                    json::write_int(out, v)
                } else {
                    json::write_int(out, v as i16)
                }
            }
            col::INT24 => {
                need(b, 3)?;
                let v = le(&b[..3]) as u32;
                if c.unsigned {
                    json::write_int(out, v)
                } else {
                    json::write_int(out, ((v << 8) as i32) >> 8)
                }
            }
            col::LONG => {
                need(b, 4)?;
                let v = le(&b[..4]) as u32;
                if c.unsigned {
                    json::write_int(out, v)
                } else {
                    json::write_int(out, v as i32)
                }
            }
            col::LONGLONG => {
                need(b, 8)?;
                let v = le(&b[..8]);
                if c.unsigned {
                    json::write_int(out, v)
                } else {
                    json::write_int(out, v as i64)
                }
            }
            col::FLOAT => {
                need(b, 4)?;
                let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                write_float(out, v.is_finite(), v);
            }
            col::DOUBLE => {
                need(b, 8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(&b[..8]);
                let v = f64::from_le_bytes(a);
                write_float(out, v.is_finite(), v);
            }
            col::NEWDECIMAL => decimal(out, b, t.meta >> 8, t.meta & 0xFF)?,
            col::BIT => json::write_int(out, be(&b[..b.len().min(8)])),
            col::YEAR => {
                need(b, 1)?;
                json::write_int(out, if b[0] == 0 { 0u16 } else { 1900 + b[0] as u16 })
            }
            col::DATE | col::NEWDATE => {
                need(b, 3)?;
                let v = le(&b[..3]);
                let (y, m, d) = (v >> 9, (v >> 5) & 15, v & 31);
                if self.opts.null_zero_dates && v == 0 {
                    out.extend_from_slice(b"null");
                } else {
                    out.push(b'"');
                    date(out, y, m, d);
                    out.push(b'"');
                }
            }
            col::DATETIME2 => {
                need(b, 5)?;
                let packed = be(&b[..5]) as i64 - 0x80_0000_0000;
                let ymd = packed >> 17;
                let ym = ymd >> 5;
                let hms = packed & 0x1_FFFF;
                let micros = frac_micros(&b[5..], t.meta)?;
                let zero = packed == 0 && micros == 0;
                if zero && self.opts.null_zero_dates {
                    out.extend_from_slice(b"null");
                    return Ok(());
                }
                datetime(
                    out,
                    [
                        (ym / 13) as u64,
                        (ym % 13) as u64,
                        (ymd & 31) as u64,
                        (hms >> 12) as u64,
                        ((hms >> 6) & 63) as u64,
                        (hms & 63) as u64,
                    ],
                    micros,
                    t.meta,
                );
            }
            col::TIMESTAMP2 => {
                need(b, 4)?;
                let secs = be(&b[..4]);
                let micros = frac_micros(&b[4..], t.meta)?;
                self.timestamp(out, secs, micros, t.meta);
            }
            col::TIMESTAMP => {
                need(b, 4)?;
                self.timestamp(out, le(&b[..4]), 0, 0);
            }
            col::DATETIME => {
                need(b, 8)?;
                let v = le(&b[..8]);
                if v == 0 && self.opts.null_zero_dates {
                    out.extend_from_slice(b"null");
                    return Ok(());
                }
                let (d, tm) = (v / 1_000_000, v % 1_000_000);
                datetime(
                    out,
                    [
                        d / 10_000,
                        (d / 100) % 100,
                        d % 100,
                        tm / 10_000,
                        (tm / 100) % 100,
                        tm % 100,
                    ],
                    0,
                    0,
                );
            }
            col::TIME2 => time2(out, b, t.meta)?,
            col::TIME => {
                need(b, 3)?;
                let raw = le(&b[..3]) as u32;
                let v = (((raw << 8) as i32) >> 8) as i64;
                out.push(b'"');
                if v < 0 {
                    out.push(b'-');
                }
                let a = v.unsigned_abs();
                clock(out, a / 10_000, (a / 100) % 100, a % 100);
                out.push(b'"');
            }
            col::VARCHAR | col::VAR_STRING | col::STRING => {
                let p = payload(b, if t.meta < 256 { 1 } else { 2 })?;
                self.text(out, c, p)?;
            }
            col::BLOB | col::TINY_BLOB | col::MEDIUM_BLOB | col::LONG_BLOB => {
                let p = payload(b, t.meta as usize)?;
                if c.is_json && c.text != TextDecoding::Binary {
                    self.json_text(out, c, p)?;
                } else {
                    self.text(out, c, p)?;
                }
            }
            col::ENUM => {
                let idx = le(&b[..(t.meta as usize).min(b.len())]) as usize;
                match idx {
                    0 => json::write_str(out, ""),
                    i => match c.values.get(i - 1) {
                        Some(v) => json::write_str(out, v),
                        None => {
                            return Err(format!(
                                "enum index {i} beyond the {} known values",
                                c.values.len()
                            ))
                        }
                    },
                }
            }
            col::SET => {
                let bits = le(&b[..(t.meta as usize).min(b.len()).min(8)]);
                out.push(b'[');
                let mut first = true;
                for (i, v) in c.values.iter().enumerate().take(64) {
                    if bits & (1 << i) != 0 {
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        json::write_str(out, v);
                    }
                }
                if c.values.len() < 64 && bits >> c.values.len() != 0 {
                    return Err(format!(
                        "set bits {bits:#x} beyond the {} known values",
                        c.values.len()
                    ));
                }
                out.push(b']');
            }
            col::GEOMETRY => {
                let p = payload(b, t.meta as usize)?;
                if p.len() < 4 {
                    return Err("geometry value shorter than its SRID".into());
                }
                let mut wkt = String::new();
                let mut g = crate::wkt::Wkb::new(&p[4..]);
                g.geometry(&mut wkt)?;
                json::write_str(out, &wkt);
            }
            col::JSON => {
                let p = payload(b, t.meta as usize)?;
                crate::jsonb::render(out, p)?;
            }
            col::VECTOR => vector(out, payload(b, t.meta as usize)?)?,
            other => return Err(format!("column type code {other} is not supported")),
        }
        Ok(())
    }

    fn timestamp(&mut self, out: &mut Vec<u8>, secs: u64, micros: u64, fsp: u32) {
        if secs == 0 && micros == 0 && self.opts.null_zero_dates {
            out.extend_from_slice(b"null");
            return;
        }
        let fields = if secs == 0 && micros == 0 {
            [0; 6]
        } else {
            let days = secs / 86_400;
            let rem = secs % 86_400;
            let [y, m, d] = match self.last_day {
                Some((day, ymd)) if day == days => ymd,
                _ => {
                    let (y, m, d) = civil_from_days(days as i64);
                    let ymd = [y as u64, m as u64, d as u64];
                    self.last_day = Some((days, ymd));
                    ymd
                }
            };
            [y, m, d, rem / 3600, (rem / 60) % 60, rem % 60]
        };
        datetime(out, fields, micros, fsp);
    }

    fn text(&mut self, out: &mut Vec<u8>, c: &ColumnDecode, p: &[u8]) -> R {
        match c.text {
            TextDecoding::Binary => {
                out.push(b'"');
                let start = out.len();
                let n = base64::encoded_len(p.len(), true).unwrap_or(0);
                out.resize(start + n, 0);
                let written = base64::engine::general_purpose::STANDARD
                    .encode_slice(p, &mut out[start..])
                    .map_err(|e| e.to_string())?;
                out.truncate(start + written);
                out.push(b'"');
            }
            TextDecoding::Utf8 => {
                std::str::from_utf8(p).map_err(|e| format!("invalid UTF-8: {e}"))?;
                json::write_str_bytes(out, p);
            }
            d => {
                d.decode_into(p, &mut self.scratch)?;
                json::write_str(out, &self.scratch);
            }
        }
        Ok(())
    }

    /// MariaDB JSON (text): embedded as JSON when it parses, else as a string.
    fn json_text(&mut self, out: &mut Vec<u8>, c: &ColumnDecode, p: &[u8]) -> R {
        let s: &str = match c.text {
            TextDecoding::Utf8 => {
                std::str::from_utf8(p).map_err(|e| format!("invalid UTF-8: {e}"))?
            }
            d => {
                d.decode_into(p, &mut self.scratch)?;
                &self.scratch
            }
        };
        match crate::json_text::value_span(s.as_bytes(), &mut self.json_stack) {
            Some(value) => out.extend_from_slice(&s.as_bytes()[value]),
            None => json::write_str(out, s),
        }
        Ok(())
    }
}

/// VECTOR (MySQL 9): little-endian float32 values, rendered as a JSON
/// array of numbers (Maxwell has no rule for the type).
fn vector(out: &mut Vec<u8>, p: &[u8]) -> R {
    if !p.len().is_multiple_of(4) {
        return Err(format!(
            "vector of {} bytes is not a whole number of float32 values",
            p.len()
        ));
    }
    out.push(b'[');
    for (i, c) in p.chunks_exact(4).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        write_float(out, v.is_finite(), v);
    }
    out.push(b']');
    Ok(())
}

fn write_float<F: ryu::Float>(out: &mut Vec<u8>, finite: bool, v: F) {
    if !finite {
        out.extend_from_slice(b"null");
        return;
    }
    let mut buf = ryu::Buffer::new();
    out.extend_from_slice(buf.format_finite(v).as_bytes());
}

/// Appends `"YYYY-MM-DD HH:MM:SS[.ffffff]"` (quoted; `fsp` fraction
/// digits) from [year, month, day, hour, minute, second]: built on the
/// stack and copied once, as every date-time column of every row goes
/// through here.
fn datetime(out: &mut Vec<u8>, f: [u64; 6], micros: u64, fsp: u32) {
    // Two digits at a time from a table: date-times are most of the work
    // on tables full of them.
    let mut b = *b"\"0000-00-00 00:00:00.000000\"";
    let y = f[0];
    put_pair(&mut b, 1, y / 100);
    put_pair(&mut b, 3, y);
    for (i, at) in [6, 9, 12, 15, 18].into_iter().enumerate() {
        put_pair(&mut b, at, f[i + 1]);
    }
    let end = if fsp == 0 {
        20
    } else {
        put_pair(&mut b, 21, micros / 10_000);
        put_pair(&mut b, 23, micros / 100);
        put_pair(&mut b, 25, micros);
        21 + fsp.min(6) as usize
    };
    b[end] = b'"';
    out.extend_from_slice(&b[..=end]);
}

/// "00" to "99".
const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// The last two decimal digits of `v`.
fn digit_pair(v: u64) -> [u8; 2] {
    let i = (v % 100) as usize * 2;
    [DIGIT_PAIRS[i], DIGIT_PAIRS[i + 1]]
}

/// Writes the last two decimal digits of `v` at `b[at..at + 2]`.
fn put_pair(b: &mut [u8; 28], at: usize, v: u64) {
    b[at..at + 2].copy_from_slice(&digit_pair(v));
}

/// Appends the last two decimal digits of `v`.
fn pad2(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&digit_pair(v));
}

fn date(out: &mut Vec<u8>, y: u64, m: u64, d: u64) {
    pad2(out, y / 100);
    pad2(out, y);
    out.push(b'-');
    pad2(out, m);
    out.push(b'-');
    pad2(out, d);
}

fn clock(out: &mut Vec<u8>, h: u64, m: u64, s: u64) {
    if h >= 100 {
        json::write_int(out, h);
    } else {
        pad2(out, h);
    }
    out.push(b':');
    pad2(out, m);
    out.push(b':');
    pad2(out, s);
}

/// Appends `.ffffff` cut to `fsp` digits (nothing for fsp 0).
fn fraction(out: &mut Vec<u8>, micros: u64, fsp: u32) {
    if fsp == 0 {
        return;
    }
    out.push(b'.');
    let digits = [
        micros / 100_000 % 10,
        micros / 10_000 % 10,
        micros / 1000 % 10,
        micros / 100 % 10,
        micros / 10 % 10,
        micros % 10,
    ];
    for d in digits.iter().take(fsp.min(6) as usize) {
        out.push(b'0' + *d as u8);
    }
}

/// Fractional seconds of DATETIME2/TIMESTAMP2 (big-endian, fsp-dependent size).
fn frac_micros(b: &[u8], fsp: u32) -> Result<u64, String> {
    let n = (fsp as usize).div_ceil(2);
    need(b, n)?;
    let v = be(&b[..n]);
    Ok(match n {
        0 => 0,
        1 => v * 10_000,
        2 => v * 100,
        _ => v,
    })
}

/// TIME2: signed, possibly negative, hours up to 838, fsp-dependent fraction.
fn time2(out: &mut Vec<u8>, b: &[u8], fsp: u32) -> R {
    let n = (fsp as usize).div_ceil(2);
    need(b, 3 + n)?;
    let int = be(&b[..3]) as i64 - 0x80_0000;
    let packed: i64 = match n {
        0 => int << 24,
        1 => {
            let mut i = int;
            let mut frac = b[3] as i64;
            if i < 0 && frac != 0 {
                i += 1;
                frac -= 0x100;
            }
            (i << 24) + frac * 10_000
        }
        2 => {
            let mut i = int;
            let mut frac = be(&b[3..5]) as i64;
            if i < 0 && frac != 0 {
                i += 1;
                frac -= 0x10000;
            }
            (i << 24) + frac * 100
        }
        _ => be(&b[..6]) as i64 - 0x8000_0000_0000,
    };
    let neg = packed < 0;
    let a = packed.unsigned_abs();
    let hms = a >> 24;
    let micros = a % (1 << 24);
    out.push(b'"');
    if neg {
        out.push(b'-');
    }
    clock(out, (hms >> 12) % (1 << 10), (hms >> 6) % 64, hms % 64);
    fraction(out, micros, fsp);
    out.push(b'"');
    Ok(())
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Appends `v` as exactly `width` decimal digits (zero-padded).
fn push_digits(out: &mut [u8; 96], len: &mut usize, v: u64, width: usize) -> R {
    if *len + width > out.len() {
        return Err("decimal wider than 65 digits".into());
    }
    let mut x = v;
    for i in (0..width).rev() {
        out[*len + i] = b'0' + (x % 10) as u8;
        x /= 10;
    }
    if x != 0 {
        return Err("corrupt decimal digits".into());
    }
    *len += width;
    Ok(())
}

/// Packed DECIMAL(precision, scale) to its exact decimal text, scale kept.
/// Works on the stack: this runs for every decimal cell.
pub(crate) fn decimal(out: &mut Vec<u8>, b: &[u8], precision: u32, scale: u32) -> R {
    const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
    let size = sluice_binlog::rows::decimal_bin_size(precision, scale);
    need(b, size)?;
    if size == 0 {
        out.push(b'0');
        return Ok(());
    }
    if size > 40 {
        return Err("decimal wider than 65 digits".into());
    }
    let mut buf = [0u8; 40];
    buf[..size].copy_from_slice(&b[..size]);
    let negative = buf[0] & 0x80 == 0;
    buf[0] ^= 0x80;
    if negative {
        for x in buf[..size].iter_mut() {
            *x ^= 0xFF;
        }
    }
    let intg = (precision - scale.min(precision)) as usize;
    let (intg0, intg0x) = (intg / 9, intg % 9);
    let (frac0, frac0x) = (scale as usize / 9, scale as usize % 9);
    let (mut int_d, mut int_len) = ([0u8; 96], 0usize);
    let (mut frac_d, mut frac_len) = ([0u8; 96], 0usize);
    let mut pos = 0;
    if intg0x > 0 {
        let n = DIG2BYTES[intg0x];
        push_digits(&mut int_d, &mut int_len, be(&buf[pos..pos + n]), intg0x)?;
        pos += n;
    }
    for _ in 0..intg0 {
        push_digits(&mut int_d, &mut int_len, be(&buf[pos..pos + 4]), 9)?;
        pos += 4;
    }
    for _ in 0..frac0 {
        push_digits(&mut frac_d, &mut frac_len, be(&buf[pos..pos + 4]), 9)?;
        pos += 4;
    }
    if frac0x > 0 {
        let n = DIG2BYTES[frac0x];
        push_digits(&mut frac_d, &mut frac_len, be(&buf[pos..pos + n]), frac0x)?;
    }
    let first = int_d[..int_len]
        .iter()
        .position(|&c| c != b'0')
        .unwrap_or(int_len);
    let int_part = &int_d[first..int_len];
    let frac_part = &frac_d[..frac_len];
    let is_zero = int_part.is_empty() && frac_part.iter().all(|&c| c == b'0');
    if negative && !is_zero {
        out.push(b'-');
    }
    out.extend_from_slice(if int_part.is_empty() { b"0" } else { int_part });
    if scale > 0 {
        out.push(b'.');
        out.extend_from_slice(frac_part);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(code: u8, meta: u32) -> ColumnDecode {
        ColumnDecode {
            name: "c".into(),
            key: json::key("c"),
            ty: ColumnType { code, meta },
            unsigned: false,
            text: TextDecoding::Utf8,
            values: vec![],
            is_json: false,
            excluded: false,
        }
    }

    fn render(c: &ColumnDecode, b: &[u8]) -> String {
        let mut r = Renderer::new(RenderOptions {
            null_zero_dates: false,
        });
        let mut out = Vec::new();
        r.render(&mut out, c, b).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn integers() {
        let mut c = column(col::LONGLONG, 0);
        c.unsigned = true;
        assert_eq!(render(&c, &[0xFF; 8]), "18446744073709551615");
        c.unsigned = false;
        assert_eq!(render(&c, &[0xFF; 8]), "-1");
        let c = column(col::INT24, 0);
        assert_eq!(render(&c, &[0xFF, 0xFF, 0xFF]), "-1");
        let c = column(col::TINY, 0);
        assert_eq!(render(&c, &[0x80]), "-128");
    }

    #[test]
    fn decimals() {
        // DECIMAL(10,2) 1234567.89 as MySQL packs it.
        let c = column(col::NEWDECIMAL, (10 << 8) | 2);
        assert_eq!(render(&c, &[0x80, 0x12, 0xD6, 0x87, 0x59]), "1234567.89");
        // -1234567.89: all bytes inverted.
        assert_eq!(render(&c, &[0x7F, 0xED, 0x29, 0x78, 0xA6]), "-1234567.89");
        // 0.00
        assert_eq!(render(&c, &[0x80, 0, 0, 0, 0]), "0.00");
        // DECIMAL(20,10) 1234567890.0987654321: two full groups of nine
        // after a leading partial one.
        let c = column(col::NEWDECIMAL, (20 << 8) | 10);
        let mut b = vec![0x80 | 0x01];
        b.extend_from_slice(&234567890u32.to_be_bytes());
        b.extend_from_slice(&98765432u32.to_be_bytes());
        b.push(1);
        assert_eq!(render(&c, &b), "1234567890.0987654321");
    }

    #[test]
    fn temporal() {
        // DATETIME2(0) 2012-01-01 22:32:34
        let ym = 2012 * 13 + 1;
        let v: i64 = (((ym << 5) | 1) << 17 | (22 << 12) | (32 << 6) | 34) + 0x80_0000_0000;
        let b = v.to_be_bytes();
        assert_eq!(
            render(&column(col::DATETIME2, 0), &b[3..8]),
            "\"2012-01-01 22:32:34\""
        );
        let mut b6 = b[3..8].to_vec();
        b6.extend_from_slice(&[0x03, 0x64, 0x0E]); // 222222 µs
        assert_eq!(
            render(&column(col::DATETIME2, 6), &b6),
            "\"2012-01-01 22:32:34.222222\""
        );
        // TIMESTAMP2(4) 2012-01-01 22:32:34.1234 UTC
        let mut ts = 1325457154u32.to_be_bytes().to_vec();
        ts.extend_from_slice(&1234u16.to_be_bytes());
        assert_eq!(
            render(&column(col::TIMESTAMP2, 4), &ts),
            "\"2012-01-01 22:32:34.1234\""
        );
        assert_eq!(
            render(&column(col::TIMESTAMP2, 4), &[0, 0, 0, 0, 0, 0]),
            "\"0000-00-00 00:00:00.0000\""
        );
        // TIME2(0) -838:59:59 and 12:23:33
        let t = |h: i64, m: i64, s: i64| ((h << 12 | m << 6 | s) + 0x80_0000) as u32;
        let neg = (0x80_0000i64 - (838 << 12 | 59 << 6 | 59)) as u32;
        assert_eq!(
            render(&column(col::TIME2, 0), &neg.to_be_bytes()[1..]),
            "\"-838:59:59\""
        );
        assert_eq!(
            render(&column(col::TIME2, 0), &t(12, 23, 33).to_be_bytes()[1..]),
            "\"12:23:33\""
        );
        // DATE 0000-00-00 and 1979-10-01
        assert_eq!(render(&column(col::DATE, 0), &[0, 0, 0]), "\"0000-00-00\"");
        let d = (1979u32 << 9) | (10 << 5) | 1;
        assert_eq!(
            render(&column(col::DATE, 0), &d.to_le_bytes()[..3]),
            "\"1979-10-01\""
        );
    }

    #[test]
    fn zero_dates_as_null() {
        let mut r = Renderer::new(RenderOptions {
            null_zero_dates: true,
        });
        let mut out = Vec::new();
        r.render(&mut out, &column(col::DATE, 0), &[0, 0, 0])
            .unwrap();
        assert_eq!(out, b"null");
    }

    #[test]
    fn strings_sets_enums() {
        let mut c = column(col::VARCHAR, 10);
        assert_eq!(render(&c, b"\x03a\"b"), r#""a\"b""#);
        c.text = TextDecoding::Binary;
        assert_eq!(render(&c, &[4, 0, 1, 2, 3]), "\"AAECAw==\"");
        let mut e = column(col::ENUM, 1);
        e.values = vec!["foo".into(), "bar".into()];
        assert_eq!(render(&e, &[2]), "\"bar\"");
        assert_eq!(render(&e, &[0]), "\"\"");
        let mut s = column(col::SET, 1);
        s.values = vec!["foo".into(), "bar".into(), "baz".into()];
        assert_eq!(render(&s, &[0b101]), r#"["foo","baz"]"#);
        let mut r = Renderer::new(RenderOptions {
            null_zero_dates: false,
        });
        assert!(r.render(&mut Vec::new(), &e, &[9]).is_err());
    }

    #[test]
    fn floats_and_bits() {
        assert_eq!(render(&column(col::FLOAT, 4), &1.5f32.to_le_bytes()), "1.5");
        assert_eq!(render(&column(col::FLOAT, 4), &0.1f32.to_le_bytes()), "0.1");
        assert_eq!(
            render(&column(col::DOUBLE, 8), &123.4321f64.to_le_bytes()),
            "123.4321"
        );
        assert_eq!(
            render(&column(col::BIT, 64), &[0xFF; 8]),
            "18446744073709551615"
        );
        assert_eq!(
            render(&column(col::BIT, 24), &[0xE3, 0x8E, 0x56]),
            "14913110"
        );
    }

    #[test]
    fn vectors_are_arrays_of_float32() {
        let mut b = 12u32.to_le_bytes().to_vec();
        for v in [1.1f32, -2.5, 0.0] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(render(&column(col::VECTOR, 4), &b), "[1.1,-2.5,0.0]");
        assert_eq!(render(&column(col::VECTOR, 4), &[0, 0, 0, 0]), "[]");
        let mut r = Renderer::new(RenderOptions {
            null_zero_dates: false,
        });
        assert!(r
            .render(
                &mut Vec::new(),
                &column(col::VECTOR, 4),
                &[3, 0, 0, 0, 1, 2, 3]
            )
            .is_err());
    }

    /// One renderer through timestamps that stay on a day, move on, go
    /// back and hit zero gives what a fresh renderer gives for each (the
    /// last day's date is reused only for that day).
    #[test]
    fn timestamps_from_one_renderer_match_fresh_ones() {
        let mut r = Renderer::new(RenderOptions {
            null_zero_dates: false,
        });
        let c = column(col::TIMESTAMP2, 0);
        for secs in [
            1_700_000_000u32,
            1_700_000_001,
            1_700_086_399,
            1_700_086_400,
            1_700_000_000,
            0,
            1,
            86_399,
            86_400,
            951_782_400, // 2000-02-29
            4_294_967_295,
            1_700_000_000,
        ] {
            let mut out = Vec::new();
            r.render(&mut out, &c, &secs.to_be_bytes()).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                render(&c, &secs.to_be_bytes()),
                "{secs}"
            );
        }
        assert_eq!(
            render(&c, &951_782_400u32.to_be_bytes()),
            "\"2000-02-29 00:00:00\""
        );
    }

    /// The table-driven digits against formatting, every field width and
    /// fraction length.
    #[test]
    fn datetimes_match_formatting() {
        let mut out = Vec::new();
        for (k, y) in [0u64, 1, 9, 10, 99, 100, 999, 1000, 1970, 2024, 9999]
            .into_iter()
            .enumerate()
        {
            for fsp in 0..=6u32 {
                let k = k as u64;
                let f = [
                    y,
                    1 + k % 12,
                    1 + k * 3 % 31,
                    k * 2 % 24,
                    k * 7 % 60,
                    k * 11 % 60,
                ];
                let micros = [0, 1, 9, 10, 123_456, 999_999, 500_000][fsp as usize];
                out.clear();
                datetime(&mut out, f, micros, fsp);
                let frac = format!("{micros:06}");
                let expected = format!(
                    "\"{:04}-{:02}-{:02} {:02}:{:02}:{:02}{}{}\"",
                    f[0],
                    f[1],
                    f[2],
                    f[3],
                    f[4],
                    f[5],
                    if fsp > 0 { "." } else { "" },
                    &frac[..fsp as usize]
                );
                assert_eq!(String::from_utf8_lossy(&out), expected);
            }
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(15340), (2012, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
