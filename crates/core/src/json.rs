//! JSON writing over a reusable byte buffer: the hot path appends into one
//! `Vec<u8>` per row instead of building values. The one string escaper of
//! sluice: rows, keys, dead letters, DDL events and `/status` all use it, so
//! every output escapes alike.

/// Appends `s` as a JSON string (quotes included). Non-ASCII passes through
/// as UTF-8; control characters, quotes and backslashes are escaped.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    write_str_bytes(out, s.as_bytes());
}

/// Bytes that need escaping inside a JSON string.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Same as `write_str` for bytes known to be valid UTF-8.
pub fn write_str_bytes(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    write_escaped(out, s);
    out.push(b'"');
}

/// Whether any of the 8 bytes of `w` needs escaping (below 0x20, `"` or
/// `\\`): the usual SWAR tests, exact as a yes/no answer.
#[inline]
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * b'"' as u64);
    let quote = q.wrapping_sub(ONES) & !q;
    let b = w ^ (ONES * b'\\' as u64);
    let backslash = b.wrapping_sub(ONES) & !b;
    (below_space | quote | backslash) & HIGH != 0
}

/// Where the first byte of 16 that needs escaping is, if one does: SSE2
/// (part of every x86_64), 16 compares at once.
#[cfg(target_arch = "x86_64")]
#[inline]
fn first_escape_16(chunk: &[u8; 16]) -> Option<usize> {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: SSE2 is in the x86_64 baseline; the load is unaligned and
    // reads exactly the 16 bytes of `chunk`.
    let mask = unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        // Below 0x20: min(v, 0x1f) == v (unsigned).
        let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        _mm_movemask_epi8(_mm_or_si128(control, _mm_or_si128(quote, backslash)))
    };
    (mask != 0).then(|| mask.trailing_zeros() as usize)
}

/// The inside of a JSON string: `s` (valid UTF-8) escaped, without quotes.
/// Runs without anything to escape are skipped 16 bytes at a time (SSE2 on
/// x86_64), then a word of 8 at a time.
pub fn write_escaped(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        #[cfg(target_arch = "x86_64")]
        if let Some(chunk) = s.get(i..i + 16).and_then(|c| <&[u8; 16]>::try_from(c).ok()) {
            match first_escape_16(chunk) {
                None => {
                    i += 16;
                    continue;
                }
                // Plain bytes up to it; the byte itself is escaped below.
                Some(k) => i += k,
            }
        }
        if let Some(chunk) = s.get(i..i + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            if !word_needs_escape(u64::from_le_bytes(w)) {
                i += 8;
                continue;
            }
        }
        let b = s[i];
        i += 1;
        if !NEEDS_ESCAPE[b as usize] {
            continue;
        }
        out.extend_from_slice(&s[start..i - 1]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0C => out.extend_from_slice(b"\\f"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xF) as usize]);
            }
        }
        start = i;
    }
    out.extend_from_slice(&s[start..]);
}

pub fn write_int<I: itoa::Integer>(out: &mut Vec<u8>, v: I) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(v).as_bytes());
}

/// `"key":` with the key escaped.
pub fn key(name: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(name.len() + 3);
    write_str(&mut v, name);
    v.push(b':');
    v
}

/// `s` as a JSON string, for text that is not on a hot path.
pub fn string(s: &str) -> String {
    let mut v = Vec::with_capacity(s.len() + 2);
    write_str(&mut v, s);
    // Escaping keeps valid UTF-8 valid.
    String::from_utf8(v).unwrap_or_default()
}

/// The elements of a JSON array as written (`[1,"a",{"b":2}]` → `1`, `"a"`,
/// `{"b":2}`), without parsing them; empty when `json` is not an array.
pub fn split_array(json: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let inner = match (json.first(), json.last()) {
        (Some(b'['), Some(b']')) if json.len() >= 2 => &json[1..json.len() - 1],
        _ => return out,
    };
    let (mut depth, mut in_str, mut esc, mut start) = (0i32, false, false, 0usize);
    for (i, &b) in inner.iter().enumerate() {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth -= 1,
            b',' if depth == 0 => {
                out.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !inner.is_empty() {
        out.push(&inner[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        let mut o = Vec::new();
        write_str(&mut o, "a\"b\\c\nd\u{1}é/");
        assert_eq!(String::from_utf8(o).unwrap(), r#""a\"b\\c\nd\u0001é/""#);
        assert_eq!(string("\u{8}\u{c}\r\t\u{1f}"), r#""\b\f\r\t\u001f""#);
    }

    /// The byte-at-a-time escaper the word skipping must agree with.
    fn reference(s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in s {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0C => out.extend_from_slice(b"\\f"),
                b if b < 0x20 => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
                b => out.push(b),
            }
        }
        out
    }

    #[test]
    fn word_skipping_escapes_every_byte_at_every_offset() {
        // Every byte value at every position of strings of 1 to 40 bytes
        // (two 16-byte steps, a word and the bytes after), among plain
        // ASCII and among bytes >= 0x80.
        for len in 1..=40usize {
            for fill in [b'a', 0xC3u8, 0x7F, b' ', b'#', b']'] {
                for at in 0..len {
                    for b in 0..=255u8 {
                        let mut s = vec![fill; len];
                        s[at] = b;
                        let mut out = Vec::new();
                        write_escaped(&mut out, &s);
                        assert_eq!(out, reference(&s), "{s:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn two_escapes_in_one_step_are_both_found() {
        for len in 2..=40usize {
            for a in 0..len {
                for b in a + 1..len {
                    let mut s = vec![b'x'; len];
                    s[a] = b'"';
                    s[b] = 0x01;
                    let mut out = Vec::new();
                    write_escaped(&mut out, &s);
                    assert_eq!(out, reference(&s), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn splits_arrays_at_the_top_level_only() {
        let parts = split_array(br#"[1,"a,]b",{"c":[2,3]},[4]]"#);
        assert_eq!(parts, [&b"1"[..], br#""a,]b""#, br#"{"c":[2,3]}"#, b"[4]"]);
        assert!(split_array(b"[]").is_empty());
        assert!(split_array(b"]").is_empty());
        assert!(split_array(b"{}").is_empty());
    }
}
