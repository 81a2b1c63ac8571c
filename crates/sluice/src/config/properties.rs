//! `--config` files read exactly as `java.util.Properties.load` reads them
//! (Maxwell's `config.properties`), so a file written for Maxwell means the
//! same here:
//!
//! - `#` or `!` as the first non-blank character starts a comment line (a
//!   comment is never continued);
//! - the key ends at the first unescaped `=`, `:` or blank (space, tab,
//!   form feed); blanks around the separator are dropped, blanks at the end
//!   of the value are kept;
//! - `\t \n \r \f`, `\uXXXX` and `\\` are escapes, and any other `\c` is
//!   `c` (so a regex `/t_\d+/` must be written `/t_\\d+/`, Maxwell issue
//!   #702);
//! - a line ending in an odd number of backslashes continues on the next
//!   line, whose leading blanks are dropped; at the end of the file the
//!   backslash is dropped.
//!
//! Differences: the text is UTF-8 (Java's `load(InputStream)` reads
//! ISO-8859-1), a leading byte order mark is ignored, and a `\uXXXX` that is
//! half a surrogate pair is an error instead of a broken string. Every
//! entry is returned, duplicates included, in file order (Java keeps the
//! last).

use std::fmt;

/// One `key=value` of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    /// 1-based line where the entry starts.
    pub line: usize,
}

/// A file Java would refuse too (a malformed `\uXXXX`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertiesError {
    /// 1-based line of the bad escape.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for PropertiesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for PropertiesError {}

/// Parses the text of a properties file.
pub fn parse(text: &str) -> Result<Vec<Entry>, PropertiesError> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut reader = LineReader::new(text);
    let mut entries = Vec::new();
    while let Some(line) = reader.logical_line() {
        let (key, value) = split(&line.chars);
        let start = line.lines.first().copied().unwrap_or(1);
        entries.push(Entry {
            key: unescape(&line.chars[..key], &line.lines[..key])?,
            value: unescape(&line.chars[value..], &line.lines[value..])?,
            line: start,
        });
    }
    Ok(entries)
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{C}')
}

/// A logical line (continuations joined), with the file line of each
/// character.
struct LogicalLine {
    chars: Vec<char>,
    lines: Vec<usize>,
}

/// Java's `Properties.LineReader` over characters.
struct LineReader {
    chars: Vec<char>,
    /// File line (1-based) of each character.
    line_of: Vec<usize>,
    pos: usize,
}

impl LineReader {
    fn new(text: &str) -> Self {
        let chars: Vec<char> = text.chars().collect();
        let mut line_of = Vec::with_capacity(chars.len());
        let mut line = 1;
        for (i, &c) in chars.iter().enumerate() {
            line_of.push(line);
            let ends_line = c == '\n' || (c == '\r' && chars.get(i + 1) != Some(&'\n'));
            if ends_line {
                line += 1;
            }
        }
        LineReader {
            chars,
            line_of,
            pos: 0,
        }
    }

    fn next(&mut self) -> Option<(char, usize)> {
        let c = *self.chars.get(self.pos)?;
        let line = self.line_of.get(self.pos).copied().unwrap_or(1);
        self.pos += 1;
        Some((c, line))
    }

    /// The next logical line that is not blank or a comment, or `None` at
    /// the end of the file.
    fn logical_line(&mut self) -> Option<LogicalLine> {
        let mut out = LogicalLine {
            chars: Vec::new(),
            lines: Vec::new(),
        };
        let mut skip_blanks = true;
        let mut appended_line_begin = false;
        let mut preceding_backslash = false;
        loop {
            let Some((c, line)) = self.next() else {
                if out.chars.is_empty() {
                    return None;
                }
                if preceding_backslash {
                    out.chars.pop();
                    out.lines.pop();
                }
                return Some(out);
            };
            if skip_blanks {
                if is_blank(c) {
                    continue;
                }
                if !appended_line_begin && (c == '\r' || c == '\n') {
                    continue;
                }
                skip_blanks = false;
                appended_line_begin = false;
            }
            if out.chars.is_empty() && (c == '#' || c == '!') {
                // A comment, up to the end of its line.
                while let Some((d, _)) = self.next() {
                    if d == '\n' || d == '\r' {
                        break;
                    }
                }
                skip_blanks = true;
                continue;
            }
            if c != '\n' && c != '\r' {
                out.chars.push(c);
                out.lines.push(line);
                preceding_backslash = c == '\\' && !preceding_backslash;
                continue;
            }
            // End of a line.
            if out.chars.is_empty() {
                skip_blanks = true;
                continue;
            }
            if self.pos >= self.chars.len() {
                if preceding_backslash {
                    out.chars.pop();
                    out.lines.pop();
                }
                return Some(out);
            }
            if !preceding_backslash {
                return Some(out);
            }
            // Continued: the backslash goes, so do the next line's blanks.
            out.chars.pop();
            out.lines.pop();
            skip_blanks = true;
            appended_line_begin = true;
            preceding_backslash = false;
            if c == '\r' && self.chars.get(self.pos) == Some(&'\n') {
                self.pos += 1;
            }
        }
    }
}

/// Where the key ends and the value starts in a logical line.
fn split(line: &[char]) -> (usize, usize) {
    let mut key_len = 0;
    let mut value_start = line.len();
    let mut has_separator = false;
    let mut preceding_backslash = false;
    while key_len < line.len() {
        let c = line[key_len];
        if (c == '=' || c == ':') && !preceding_backslash {
            value_start = key_len + 1;
            has_separator = true;
            break;
        }
        if is_blank(c) && !preceding_backslash {
            value_start = key_len + 1;
            break;
        }
        preceding_backslash = c == '\\' && !preceding_backslash;
        key_len += 1;
    }
    while value_start < line.len() {
        let c = line[value_start];
        if !is_blank(c) {
            if !has_separator && (c == '=' || c == ':') {
                has_separator = true;
            } else {
                break;
            }
        }
        value_start += 1;
    }
    (key_len, value_start)
}

/// Said without the escape itself: the value may be a password.
fn surrogate_error(line: usize) -> PropertiesError {
    PropertiesError {
        line,
        message: "a \\uXXXX escape is half of a UTF-16 surrogate pair without its other half"
            .into(),
    }
}

/// Java's `loadConvert`: resolves the escapes of a key or value. `lines`
/// holds the file line of each character, for errors.
fn unescape(chars: &[char], lines: &[usize]) -> Result<String, PropertiesError> {
    let mut out = String::with_capacity(chars.len());
    let mut i = 0;
    // A high surrogate from a \u escape waiting for its low half.
    let mut high: Option<(u32, usize)> = None;
    while i < chars.len() {
        let line = lines.get(i).copied().unwrap_or(1);
        let c = chars[i];
        i += 1;
        let unit = if c != '\\' {
            None
        } else {
            let Some(&e) = chars.get(i) else {
                // readLine drops a trailing lone backslash; nothing to add.
                break;
            };
            i += 1;
            match e {
                'u' => {
                    let hex: String = chars.iter().skip(i).take(4).collect();
                    let value = (hex.len() == 4)
                        .then(|| u32::from_str_radix(&hex, 16).ok())
                        .flatten()
                        .filter(|_| hex.chars().all(|h| h.is_ascii_hexdigit()))
                        .ok_or_else(|| PropertiesError {
                            line,
                            // Not quoted: the value may be a password.
                            message: "malformed \\uxxxx escape: four hexadecimal digits must follow \\u (write \\\\u for a backslash and a u)".into(),
                        })?;
                    i += 4;
                    Some(value)
                }
                't' => Some('\t' as u32),
                'r' => Some('\r' as u32),
                'n' => Some('\n' as u32),
                'f' => Some('\u{C}' as u32),
                other => Some(other as u32),
            }
        };
        let value = match unit {
            None => c as u32,
            Some(v) => v,
        };
        if let Some((h, h_line)) = high.take() {
            if (0xDC00..0xE000).contains(&value) && unit.is_some() {
                let cp = 0x10000 + ((h - 0xD800) << 10) + (value - 0xDC00);
                out.push(char::from_u32(cp).ok_or_else(|| surrogate_error(h_line))?);
                continue;
            }
            return Err(surrogate_error(h_line));
        }
        if unit.is_some() && (0xD800..0xDC00).contains(&value) {
            high = Some((value, line));
            continue;
        }
        match char::from_u32(value) {
            Some(ch) => out.push(ch),
            None => return Err(surrogate_error(line)),
        }
    }
    if let Some((_, line)) = high {
        return Err(surrogate_error(line));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect()
    }

    fn one(text: &str) -> (String, String) {
        let mut p = pairs(text);
        assert_eq!(p.len(), 1, "{text:?}: {p:?}");
        p.remove(0)
    }

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn regex_filter_needs_doubled_backslashes() {
        assert_eq!(
            one("filter=exclude: *./t_\\\\d+/"),
            kv("filter", r"exclude: *./t_\d+/")
        );
        // A single backslash escapes the d away, as in Java.
        assert_eq!(one(r"filter=exclude: *./t_\d+/").1, "exclude: *./t_d+/");
    }

    #[test]
    fn separators() {
        assert_eq!(one("a=b"), kv("a", "b"));
        assert_eq!(one("a:b"), kv("a", "b"));
        assert_eq!(one("a b"), kv("a", "b"));
        assert_eq!(one("a\tb"), kv("a", "b"));
        assert_eq!(one("a\u{C}b"), kv("a", "b"));
        assert_eq!(one("a  =  b"), kv("a", "b"));
        assert_eq!(one("a : b"), kv("a", "b"));
        assert_eq!(one("a:=b"), kv("a", "=b"));
        assert_eq!(one("a==b"), kv("a", "=b"));
        assert_eq!(one("a = = b"), kv("a", "= b"));
        assert_eq!(one("a=b=c:d"), kv("a", "b=c:d"));
        assert_eq!(one(r"a\=b=c"), kv("a=b", "c"));
        assert_eq!(one(r"a\:b:c"), kv("a:b", "c"));
        assert_eq!(one(r"a\ b c"), kv("a b", "c"));
        assert_eq!(one("key"), kv("key", ""));
        assert_eq!(one("key="), kv("key", ""));
        assert_eq!(one("key   "), kv("key", ""));
        assert_eq!(one("=value"), kv("", "value"));
        assert_eq!(one("k=v  "), kv("k", "v  "), "trailing blanks are kept");
        assert_eq!(one("   k = v"), kv("k", "v"));
    }

    #[test]
    fn comments_and_blank_lines() {
        let text = "# a comment\n! another\n   # indented\n\n  \t \nk=v # not a comment\n";
        assert_eq!(pairs(text), vec![kv("k", "v # not a comment")]);
        // A comment is not continued by a trailing backslash.
        assert_eq!(pairs("# c \\\nk=v"), vec![kv("k", "v")]);
        // `#` inside a value or key is an ordinary character.
        assert_eq!(one("a#b=c!d"), kv("a#b", "c!d"));
    }

    #[test]
    fn escapes() {
        assert_eq!(one(r"k=a\tb\nc\rd\fe\\f"), kv("k", "a\tb\nc\rd\u{C}e\\f"));
        assert_eq!(one(r"k=\u0041\u00e9\u6F22"), kv("k", "Aé漢"));
        assert_eq!(one(r"k=\uD83D\uDE00"), kv("k", "😀"));
        assert_eq!(one(r"k=\d\:\=\ \#\!\q"), kv("k", "d:= #!q"));
        assert_eq!(one(r"\u006Bey=v"), kv("key", "v"));
        assert_eq!(one("k=\\ leading"), kv("k", " leading"));
    }

    #[test]
    fn continuation_lines() {
        assert_eq!(one("k=a\\\n    b"), kv("k", "ab"));
        assert_eq!(one("k=a\\\r\n  \tb\\\r  c"), kv("k", "abc"));
        assert_eq!(one("k=a, \\\n  b"), kv("k", "a, b"));
        // The continued line is never a comment.
        assert_eq!(one("k=a\\\n#b"), kv("k", "a#b"));
        // An even number of backslashes is an escaped backslash, not a
        // continuation.
        assert_eq!(pairs("k=a\\\\\nj=b"), vec![kv("k", "a\\"), kv("j", "b")]);
        // A continuation into an empty line ends the value.
        assert_eq!(pairs("k=a\\\n\nj=b"), vec![kv("k", "a"), kv("j", "b")]);
        // The key itself may be continued.
        assert_eq!(one("ke\\\n  y=v"), kv("key", "v"));
    }

    #[test]
    fn trailing_backslash_at_end_of_file() {
        assert_eq!(one("k=v\\"), kv("k", "v"));
        assert_eq!(one("k=v\\\n"), kv("k", "v"));
        assert_eq!(one("k=v\\\\"), kv("k", "v\\"));
    }

    #[test]
    fn line_numbers_and_line_endings() {
        let text = "# c\r\na=1\r\n\r\nb=2\\\r\n  3\rc=4\n  d=5";
        let e = parse(text).unwrap();
        let got: Vec<(&str, &str, usize)> = e
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect();
        assert_eq!(
            got,
            vec![("a", "1", 2), ("b", "23", 4), ("c", "4", 6), ("d", "5", 7)]
        );
    }

    #[test]
    fn byte_order_mark_is_ignored() {
        assert_eq!(one("\u{FEFF}host=db1"), kv("host", "db1"));
    }

    #[test]
    fn duplicates_are_all_returned_in_order() {
        assert_eq!(pairs("a=1\na=2"), vec![kv("a", "1"), kv("a", "2")]);
    }

    #[test]
    fn malformed_unicode_escape_names_the_line() {
        for bad in [r"b=\u12G4", r"b=\u12", r"b=x\u", r"b=\uD83D", r"b=\uDE00x"] {
            let e = parse(&format!("a=1\n{bad}\nc=3")).unwrap_err();
            assert_eq!(e.line, 2, "{bad}: {e}");
            assert!(e.to_string().starts_with("line 2: "), "{e}");
        }
        // On a continued line, the line of the escape itself.
        let e = parse("a=1\\\n  \\uZZZZ").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn maxwell_example_config() {
        let text = "\
# tl;dr config
log_level=info

producer=kafka
kafka.bootstrap.servers=localhost:9092

#     *** mysql ***
host=localhost
user=maxwell
password=maxwell

filter= exclude: *.*, include: foo.*, include: bar./tbl_\\\\d+/, \\
        exclude: foo.bar.col=reject
";
        let e = parse(text).unwrap();
        let keys: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "log_level",
                "producer",
                "kafka.bootstrap.servers",
                "host",
                "user",
                "password",
                "filter"
            ]
        );
        let filter = e.last().unwrap();
        assert_eq!(
            filter.value,
            r"exclude: *.*, include: foo.*, include: bar./tbl_\d+/, exclude: foo.bar.col=reject"
        );
        assert_eq!(filter.line, 12);
    }
}
