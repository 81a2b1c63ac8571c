//! Tokens of MySQL/MariaDB DDL. Version comments (`/*!50100 … */`,
//! `/*M!100100 … */`) are read as code, as the server that logged them did;
//! other comments are dropped.

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A bare word (keyword or identifier); `quoted` for `` `x` `` or `"x"`.
    Word { text: String, quoted: bool },
    /// A `'…'` string (also `"…"` where a string is expected; see `Str`).
    Str(String),
    /// A number as written (`12`, `.5`, `1e3`).
    Num(String),
    /// `0x…`, `x'…'`, `b'…'`, `0b…`.
    Hex(String),
    /// Punctuation: `(`, `)`, `,`, `.`, `=`, `;`, `@` and operators.
    Punct(char),
}

impl Tok {
    /// Is this the (unquoted) keyword `kw` (upper case)?
    pub fn is_kw(&self, kw: &str) -> bool {
        matches!(self, Tok::Word { text, quoted: false } if text.eq_ignore_ascii_case(kw))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    pub offset: usize,
    pub message: String,
}

pub fn tokenize(sql: &str) -> Result<Vec<Tok>, LexError> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |offset: usize, m: &str| LexError {
        offset,
        message: m.to_string(),
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' | 0x0c => i += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-')
                && b.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()) =>
            {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                // `/*!NNNNN code */` and `/*M!NNNNNN code */` are code.
                let mut j = i + 2;
                let versioned = if b.get(j) == Some(&b'!') {
                    j += 1;
                    true
                } else if b.get(j) == Some(&b'M') && b.get(j + 1) == Some(&b'!') {
                    j += 2;
                    true
                } else {
                    false
                };
                if versioned {
                    while j < b.len() && b[j].is_ascii_digit() {
                        j += 1;
                    }
                    // The code runs to the matching `*/`; it is lexed in
                    // place by skipping only the opener (its closer is
                    // dropped when met below).
                    i = j;
                    continue;
                }
                match sql[i + 2..].find("*/") {
                    Some(end) => i = i + 2 + end + 2,
                    None => return Err(err(i, "unterminated comment")),
                }
            }
            b'*' if b.get(i + 1) == Some(&b'/') => i += 2, // end of a version comment
            b'`' => {
                let (s, next) =
                    quoted(sql, i, b'`').ok_or_else(|| err(i, "unterminated `identifier`"))?;
                out.push(Tok::Word {
                    text: s,
                    quoted: true,
                });
                i = next;
            }
            b'"' => {
                // A double-quoted name (ANSI_QUOTES) or string: the parser
                // decides by position.
                let (s, next) =
                    quoted(sql, i, b'"').ok_or_else(|| err(i, "unterminated \"string\""))?;
                out.push(Tok::Word {
                    text: s,
                    quoted: true,
                });
                i = next;
            }
            b'\'' => {
                let (s, next) =
                    quoted(sql, i, b'\'').ok_or_else(|| err(i, "unterminated 'string'"))?;
                out.push(Tok::Str(s));
                i = next;
            }
            b'0' if matches!(b.get(i + 1), Some(b'x') | Some(b'b'))
                && b.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit()) =>
            {
                let mut j = i + 2;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                out.push(Tok::Hex(sql[i..j].to_string()));
                i = j;
            }
            b'x' | b'X' | b'b' | b'B' if b.get(i + 1) == Some(&b'\'') => {
                let (s, next) =
                    quoted(sql, i + 1, b'\'').ok_or_else(|| err(i, "unterminated literal"))?;
                out.push(Tok::Hex(format!("{}'{}'", c as char, s)));
                i = next;
            }
            b'0'..=b'9' | b'.' if c != b'.' || b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let mut j = i;
                while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
                    j += 1;
                }
                if j < b.len() && (b[j] == b'e' || b[j] == b'E') {
                    let mut k = j + 1;
                    if k < b.len() && (b[k] == b'+' || b[k] == b'-') {
                        k += 1;
                    }
                    if k < b.len() && b[k].is_ascii_digit() {
                        j = k;
                        while j < b.len() && b[j].is_ascii_digit() {
                            j += 1;
                        }
                    }
                }
                // Identifiers may start with digits (`1a`).
                if j < b.len() && (b[j].is_ascii_alphabetic() || b[j] == b'_' || b[j] == b'$') {
                    let end = word_end(b, j);
                    out.push(Tok::Word {
                        text: sql[i..end].to_string(),
                        quoted: false,
                    });
                    i = end;
                } else {
                    out.push(Tok::Num(sql[i..j].to_string()));
                    i = j;
                }
            }
            _ if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c >= 0x80 => {
                let end = word_end(b, i);
                out.push(Tok::Word {
                    text: sql[i..end].to_string(),
                    quoted: false,
                });
                i = end;
            }
            _ => {
                // Multi-byte operators are irrelevant to structure: one
                // char each is enough.
                let ch = sql[i..].chars().next().unwrap_or('?');
                out.push(Tok::Punct(ch));
                i += ch.len_utf8();
            }
        }
    }
    Ok(out)
}

fn word_end(b: &[u8], mut j: usize) -> usize {
    while j < b.len()
        && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'$' || b[j] >= 0x80)
    {
        j += 1;
    }
    j
}

/// Reads a quoted token starting at `start` (the quote); doubled quotes and
/// (outside backticks) backslash escapes are unescaped.
fn quoted(sql: &str, start: usize, q: u8) -> Option<(String, usize)> {
    let b = sql.as_bytes();
    let mut out: Vec<u8> = Vec::new();
    let mut i = start + 1;
    while i < b.len() {
        let c = b[i];
        if c == q {
            if b.get(i + 1) == Some(&q) {
                out.push(q);
                i += 2;
                continue;
            }
            return Some((String::from_utf8_lossy(&out).into_owned(), i + 1));
        }
        if c == b'\\' && q != b'`' && i + 1 < b.len() {
            let e = b[i + 1];
            out.push(match e {
                b'n' => b'\n',
                b't' => b'\t',
                b'r' => b'\r',
                b'0' => 0,
                b'Z' => 0x1a,
                b'b' => 8,
                _ => e,
            });
            i += 2;
            continue;
        }
        out.push(c);
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(sql: &str) -> Vec<String> {
        tokenize(sql)
            .unwrap()
            .into_iter()
            .map(|t| match t {
                Tok::Word { text, .. } => text,
                Tok::Str(s) => format!("'{s}'"),
                Tok::Num(n) | Tok::Hex(n) => n,
                Tok::Punct(c) => c.to_string(),
            })
            .collect()
    }

    #[test]
    fn version_comments_are_code_and_comments_are_not() {
        assert_eq!(
            words("/*!50001 DROP VIEW IF EXISTS `v1`*/ -- x\n /* c */ # y"),
            vec!["DROP", "VIEW", "IF", "EXISTS", "v1"]
        );
        assert_eq!(words("/*M!100100 a */ b"), vec!["a", "b"]);
    }

    #[test]
    fn literals() {
        assert_eq!(
            words("'it''s' \"a\"\"b\" 0xFF x'0A' .5 1e3 1abc"),
            vec!["'it's'", "a\"b", "0xFF", "x'0A'", ".5", "1e3", "1abc"]
        );
    }
}
