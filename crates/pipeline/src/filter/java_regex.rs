//! Java regular expressions (`java.util.regex.Pattern`, as Maxwell compiles
//! filter patterns) on top of `fancy-regex`, which has the look-around and
//! back-references users write (`/^(?!tmp_).*$/`). Where the two syntaxes
//! disagree the Java text is translated first:
//!
//! - `\d \w \s` (and POSIX `\p{Alpha}` …) are ASCII in Java, Unicode in Rust;
//! - `.` excludes every Java line terminator (`\r`, U+0085, U+2028, U+2029
//!   too), and `$` also matches before a final line terminator;
//! - `\h \v \R \e \a \cX \0oo \uXXXX \Q…\E`, `(?d)` and `(?U)` mean other
//!   things or nothing in Rust; `\<`, `\>`, `~`, `--` and `[:` are literals in
//!   Java but operators in Rust;
//! - `(?x)` comments and whitespace are removed here.
//!
//! What cannot be translated (`\X`, `\N{…}`, Unicode blocks `\p{InX}`,
//! back-references past `\9`) is refused with a message rather than given a
//! different meaning. Known remaining differences: `(?i)` folds Unicode case
//! (Java: ASCII unless `(?iu)`); look-behinds must have a fixed width; a
//! quantified assertion (`$+`, `(?=a)*`) is refused; nested unbounded
//! repetition can hit fancy-regex's backtracking limit (counted as no match,
//! with a warning) where Java would spin to an answer.

use std::sync::atomic::{AtomicBool, Ordering};

/// A compiled Java regular expression, matched as `Matcher.find()` does:
/// anywhere in the text unless the pattern anchors itself.
#[derive(Debug)]
pub struct JavaRegex {
    java: String,
    re: fancy_regex::Regex,
    /// With every `$` as a look-ahead, for texts ending in `\r\n`: there a
    /// consumed `\n` could follow a `\r` the pattern matched, where Java's
    /// `$` does not match (between `\r` and `\n`).
    exact: Option<fancy_regex::Regex>,
    /// A match given up (backtracking limit) is logged once per pattern.
    gave_up: AtomicBool,
}

impl JavaRegex {
    pub fn new(java: &str) -> Result<Self, String> {
        let (translated, consumes) = translate_with(java, false)?;
        let re = fancy_regex::Regex::new(&translated).map_err(|e| e.to_string())?;
        let exact = if consumes {
            let (t, _) = translate_with(java, true)?;
            Some(fancy_regex::Regex::new(&t).map_err(|e| e.to_string())?)
        } else {
            None
        };
        Ok(JavaRegex {
            java: java.to_string(),
            re,
            exact,
            gave_up: AtomicBool::new(false),
        })
    }

    /// The pattern as written (Java syntax).
    pub fn as_str(&self) -> &str {
        &self.java
    }

    /// Java's `matcher(text).find()`.
    pub fn find(&self, text: &str) -> bool {
        let re = match &self.exact {
            Some(exact) if text.ends_with("\r\n") => exact,
            _ => &self.re,
        };
        match re.is_match(text) {
            Ok(m) => m,
            Err(e) => {
                // Catastrophic backtracking: Java would spin; count it as no
                // match and say so once.
                if !self.gave_up.swap(true, Ordering::Relaxed) {
                    tracing::warn!(pattern = %self.java, error = %e,
                        "filter regex gave up matching (too much backtracking); treated as no match");
                }
                false
            }
        }
    }
}

/// Java's `$` (no MULTILINE): the end, or before a final line terminator.
/// Where nothing can follow it, consuming the terminator gives the same
/// yes/no answer and keeps the pattern free of look-around (so the fast
/// engine runs it); elsewhere it is a look-ahead.
const END_OR_FINAL_TERMINATOR: &str = r"(?:\r\n|[\n\r\x{85}\x{2028}\x{2029}])?\z";
const END_OR_FINAL_NEWLINE: &str = r"(?:\n)?\z";

#[derive(Clone, Copy, Default)]
struct Flags {
    dotall: bool,
    multiline: bool,
    unix_lines: bool,
    comments: bool,
    unicode_classes: bool,
    /// Inside a look-behind (which must have a fixed width).
    lookbehind: bool,
}

struct Translator {
    chars: Vec<char>,
    i: usize,
    out: String,
    /// Flags in force per open group (the last is the innermost).
    flags: Vec<Flags>,
    /// Write every `$` as a look-ahead.
    exact_end: bool,
    /// Some `$` consumes the final terminator.
    consumes_end: bool,
}

/// Translates Java regex syntax into fancy-regex syntax with the same
/// meaning (an error names what Java would reject or what has no
/// equivalent). `$` consumes the final terminator where nothing follows it,
/// unless `exact_end`; the flag says whether any `$` does.
fn translate_with(java: &str, exact_end: bool) -> Result<(String, bool), String> {
    let mut t = Translator {
        chars: java.chars().collect(),
        i: 0,
        out: String::with_capacity(java.len() + 16),
        flags: vec![Flags::default()],
        exact_end,
        consumes_end: false,
    };
    t.run()?;
    Ok((t.out, t.consumes_end))
}

fn is_java_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r')
}

/// Appends `c` so that it means itself, in or out of a class.
fn push_literal(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() || (!c.is_ascii() && !c.is_whitespace() && !c.is_control()) {
        out.push(c);
    } else {
        out.push_str(&format!("\\x{{{:X}}}", c as u32));
    }
}

impl Translator {
    fn flags(&self) -> Flags {
        self.flags.last().copied().unwrap_or_default()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.i += 1;
        }
        c
    }

    /// In `(?x)` mode: skips whitespace and `#` comments; true if it did.
    fn skip_comment_or_space(&mut self, c: char) -> bool {
        if !self.flags().comments {
            return false;
        }
        if is_java_space(c) {
            return true;
        }
        if c == '#' {
            while let Some(d) = self.next() {
                if d == '\n' || (!self.flags().unix_lines && TERMINATORS_CHARS.contains(&d)) {
                    break;
                }
            }
            return true;
        }
        false
    }

    fn run(&mut self) -> Result<(), String> {
        while let Some(c) = self.next() {
            if self.skip_comment_or_space(c) {
                continue;
            }
            let f = self.flags();
            match c {
                '\\' => self.escape(false)?,
                '[' => self.class(false)?,
                '(' => self.group()?,
                ')' => {
                    if self.flags.len() > 1 {
                        self.flags.pop();
                    }
                    self.out.push(')');
                }
                '.' => self.out.push_str(if f.dotall {
                    "(?s:.)"
                } else if f.unix_lines {
                    "[^\\n]"
                } else {
                    "[^\\n\\r\\x{85}\\x{2028}\\x{2029}]"
                }),
                // MULTILINE `^`: after a line terminator (not inside \r\n),
                // never at the end of the input.
                '^' => self.out.push_str(match (f.multiline, f.unix_lines) {
                    (false, _) => "^",
                    (true, true) => r"(?:\A|(?<=\n))(?!\z)",
                    (true, false) => r"(?:\A|(?<=[\n\r\x{85}\x{2028}\x{2029}]))(?!\z)(?!(?<=\r)\n)",
                }),
                '$' if f.multiline => self.out.push_str(if f.unix_lines {
                    r"(?=\n|\z)"
                } else {
                    r"(?=[\n\r\x{85}\x{2028}\x{2029}]|\z)"
                }),
                '$' => self.end_before_final_terminator(),
                '{' => self.repetition()?,
                '}' | ']' => push_literal(&mut self.out, c),
                '*' | '+' | '?' | '|' => self.out.push(c),
                c => push_literal(&mut self.out, c),
            }
        }
        Ok(())
    }

    /// Java's `$` without MULTILINE, and `\Z`.
    fn end_before_final_terminator(&mut self) {
        let f = self.flags();
        let rest = &self.chars[self.i.min(self.chars.len())..];
        let nothing_follows =
            rest.iter().all(|&c| c == ')') || (self.flags.len() == 1 && rest.first() == Some(&'|'));
        let end = if f.unix_lines {
            END_OR_FINAL_NEWLINE
        } else {
            END_OR_FINAL_TERMINATOR
        };
        if nothing_follows && !f.lookbehind && !self.exact_end {
            self.consumes_end = true;
            self.out.push_str(end);
        } else if f.unix_lines {
            self.out.push_str(r"(?=\n?\z)");
        } else {
            // Never between \r and \n.
            self.out.push_str(r"(?:(?!(?<=\r)\n)(?=");
            self.out.push_str(end);
            self.out.push_str("))");
        }
    }

    /// `{n}`, `{n,}` or `{n,m}`; anything else after `{` is an error in Java.
    fn repetition(&mut self) -> Result<(), String> {
        let start = self.i;
        let mut body = String::new();
        loop {
            match self.next() {
                Some('}') => break,
                Some(c) if c.is_ascii_digit() || c == ',' => body.push(c),
                _ => {
                    self.i = start;
                    return Err("illegal repetition: '{' must start {n}, {n,} or {n,m} (write \\{ for a literal brace)".into());
                }
            }
        }
        let valid = match body.split_once(',') {
            None => !body.is_empty(),
            Some((a, b)) => !a.is_empty() && !b.contains(','),
        };
        if !valid {
            return Err(format!("illegal repetition {{{body}}}"));
        }
        self.out.push('{');
        self.out.push_str(&body);
        self.out.push('}');
        Ok(())
    }

    fn group(&mut self) -> Result<(), String> {
        let inherited = self.flags();
        if self.peek() != Some('?') {
            self.flags.push(inherited);
            self.out.push('(');
            return Ok(());
        }
        self.i += 1;
        let look: Option<&str> = match (self.peek(), self.peek_at(1)) {
            (Some(':'), _) => Some("(?:"),
            (Some('='), _) => Some("(?="),
            (Some('!'), _) => Some("(?!"),
            (Some('>'), _) => Some("(?>"),
            (Some('<'), Some('=')) => Some("(?<="),
            (Some('<'), Some('!')) => Some("(?<!"),
            _ => None,
        };
        if let Some(open) = look {
            self.i += open.len() - 2;
            let mut inner = inherited;
            inner.lookbehind |= open.starts_with("(?<");
            self.flags.push(inner);
            self.out.push_str(open);
            return Ok(());
        }
        if self.peek() == Some('<') {
            // Named group: Java names are an ASCII letter then letters/digits.
            self.i += 1;
            let mut name = String::new();
            loop {
                match self.next() {
                    Some('>') => break,
                    Some(c) if c.is_ascii_alphanumeric() => name.push(c),
                    _ => return Err("named group: expected (?<name>…) with an ASCII name".into()),
                }
            }
            if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
                return Err(format!("named group '{name}' must start with a letter"));
            }
            self.flags.push(inherited);
            self.out.push_str(&format!("(?<{name}>"));
            return Ok(());
        }
        // Inline flags: (?idmsuxU-idmsuxU) or (?idmsuxU-idmsuxU:X)
        let mut f = inherited;
        let mut on = true;
        let mut case: Option<bool> = None;
        loop {
            match self.next() {
                Some('-') if on => on = false,
                Some('i') => case = Some(on),
                Some('d') => f.unix_lines = on,
                Some('m') => f.multiline = on,
                Some('s') => f.dotall = on,
                Some('x') => f.comments = on,
                Some('U') => f.unicode_classes = on,
                // UNICODE_CASE: Rust's case folding is Unicode already.
                Some('u') => {}
                Some(')') => {
                    if let Some(top) = self.flags.last_mut() {
                        *top = f;
                    }
                    match case {
                        Some(true) => self.out.push_str("(?i)"),
                        Some(false) => self.out.push_str("(?-i)"),
                        None => {}
                    }
                    return Ok(());
                }
                Some(':') => {
                    self.flags.push(f);
                    self.out.push_str(match case {
                        Some(true) => "(?i:",
                        Some(false) => "(?-i:",
                        None => "(?:",
                    });
                    return Ok(());
                }
                Some(c) => return Err(format!("unknown inline flag or group type (?…{c}")),
                None => return Err("unclosed group".into()),
            }
        }
    }

    fn class(&mut self, nested: bool) -> Result<(), String> {
        self.out.push('[');
        if self.peek() == Some('^') {
            self.i += 1;
            self.out.push('^');
        }
        if self.peek() == Some(']') {
            // A `]` first in a class is a literal in Java (and Rust).
            self.i += 1;
            push_literal(&mut self.out, ']');
        }
        // Java's nested `[:alpha:]` is the characters `:alph`; Rust would
        // read a POSIX class (fancy-regex unescapes `\:`), so the leading
        // `:` goes last.
        let colon_last = nested && self.peek() == Some(':') && self.peek_at(1) != Some('-');
        if colon_last {
            self.i += 1;
        }
        loop {
            let Some(c) = self.next() else {
                return Err("unclosed character class (missing ])".into());
            };
            if self.skip_comment_or_space(c) {
                continue;
            }
            match c {
                ']' => {
                    if colon_last {
                        push_literal(&mut self.out, ':');
                    }
                    self.out.push(']');
                    return Ok(());
                }
                '[' => self.class(true)?,
                '\\' => self.escape(true)?,
                '&' if self.peek() == Some('&') => {
                    self.i += 1;
                    self.out.push_str("&&");
                }
                // A range operator, unless doubled (`--` is an operator in Rust).
                '-' if self.peek() != Some('-') => self.out.push('-'),
                c => push_literal(&mut self.out, c),
            }
        }
    }

    fn hex_digits(&mut self, n: usize) -> Result<u32, String> {
        let mut v = 0u32;
        for _ in 0..n {
            let d = self
                .next()
                .and_then(|c| c.to_digit(16))
                .ok_or_else(|| format!("expected {n} hexadecimal digits"))?;
            v = v * 16 + d;
        }
        Ok(v)
    }

    fn push_code_point(&mut self, v: u32) -> Result<(), String> {
        let c = char::from_u32(v).ok_or_else(|| format!("U+{v:X} is not a character"))?;
        push_literal(&mut self.out, c);
        Ok(())
    }

    /// Translates the escape after a `\`.
    fn escape(&mut self, in_class: bool) -> Result<(), String> {
        let Some(c) = self.next() else {
            return Err("the pattern ends with a lone backslash".into());
        };
        let unicode = self.flags().unicode_classes;
        let class = |ascii: &'static str, uni: &'static str| if unicode { uni } else { ascii };
        match c {
            '0' => {
                // \0n, \0nn, \0mnn (m ≤ 3)
                let oct = |c: Option<char>| c.and_then(|c| c.to_digit(8));
                let Some(d1) = oct(self.peek()) else {
                    return Err("illegal octal escape \\0 (needs an octal digit after it)".into());
                };
                self.i += 1;
                let mut v = d1;
                if let Some(d2) = oct(self.peek()) {
                    self.i += 1;
                    v = v * 8 + d2;
                    if let (Some(d3), true) = (oct(self.peek()), d1 <= 3) {
                        self.i += 1;
                        v = v * 8 + d3;
                    }
                }
                self.push_code_point(v)?;
            }
            '1'..='9' if !in_class => {
                if self.peek().is_some_and(|d| d.is_ascii_digit()) {
                    return Err(format!(
                        "back-reference \\{c}{}…: references past group 9 are not supported",
                        self.peek().unwrap_or('0')
                    ));
                }
                self.out.push_str(&format!("(?:\\{c})"));
            }
            't' => push_literal(&mut self.out, '\t'),
            'n' => push_literal(&mut self.out, '\n'),
            'r' => push_literal(&mut self.out, '\r'),
            'f' => push_literal(&mut self.out, '\x0C'),
            'a' => push_literal(&mut self.out, '\x07'),
            'e' => push_literal(&mut self.out, '\x1B'),
            'c' => {
                let x = self
                    .next()
                    .ok_or("\\c needs a control character letter after it")?;
                self.push_code_point((x as u32) ^ 64)?;
            }
            'x' => {
                let v = if self.peek() == Some('{') {
                    self.i += 1;
                    let mut v = 0u32;
                    let mut digits = 0;
                    loop {
                        match self.next() {
                            Some('}') if digits > 0 => break,
                            Some(d) if d.is_ascii_hexdigit() && digits < 8 => {
                                v = v * 16 + d.to_digit(16).unwrap_or(0);
                                digits += 1;
                            }
                            _ => return Err("\\x{…} needs hexadecimal digits".into()),
                        }
                    }
                    v
                } else {
                    self.hex_digits(2)?
                };
                self.push_code_point(v)?;
            }
            'u' => {
                let mut v = self.hex_digits(4)?;
                // A surrogate pair written as two \u escapes is one character.
                if (0xD800..0xDC00).contains(&v)
                    && self.peek() == Some('\\')
                    && self.peek_at(1) == Some('u')
                {
                    let save = self.i;
                    self.i += 2;
                    let lo = self.hex_digits(4)?;
                    if (0xDC00..0xE000).contains(&lo) {
                        v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
                    } else {
                        self.i = save;
                    }
                }
                self.push_code_point(v)?;
            }
            'd' => self.out.push_str(class("[0-9]", r"\d")),
            'D' => self.out.push_str(class("[^0-9]", r"\D")),
            'w' => self.out.push_str(class("[a-zA-Z_0-9]", r"\w")),
            'W' => self.out.push_str(class("[^a-zA-Z_0-9]", r"\W")),
            's' => self.out.push_str(class(r"[\x{20}\t\n\x{B}\x{C}\r]", r"\s")),
            'S' => self
                .out
                .push_str(class(r"[^\x{20}\t\n\x{B}\x{C}\r]", r"\S")),
            'h' => self.out.push_str(
                r"[\x{20}\t\x{A0}\x{1680}\x{180E}\x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}]",
            ),
            'H' => self.out.push_str(
                r"[^\x{20}\t\x{A0}\x{1680}\x{180E}\x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}]",
            ),
            'v' => self.out.push_str(r"[\n\x{B}\x{C}\r\x{85}\x{2028}\x{2029}]"),
            'V' => self
                .out
                .push_str(r"[^\n\x{B}\x{C}\r\x{85}\x{2028}\x{2029}]"),
            'p' | 'P' => self.property(c == 'P')?,
            'Q' => {
                // Literal text up to \E (or the end).
                while let Some(q) = self.next() {
                    if q == '\\' && self.peek() == Some('E') {
                        self.i += 1;
                        break;
                    }
                    push_literal(&mut self.out, q);
                }
            }
            'R' if !in_class => self
                .out
                .push_str(r"(?:\r\n|[\n\x{B}\x{C}\r\x{85}\x{2028}\x{2029}])"),
            'b' if !in_class => {
                if self.peek() == Some('{') {
                    return Err("\\b{…} boundaries are not supported".into());
                }
                self.out.push_str(r"\b");
            }
            'B' if !in_class => self.out.push_str(r"\B"),
            'A' if !in_class => self.out.push_str(r"\A"),
            // One find() from the start: the previous match ended at 0.
            'G' if !in_class => self.out.push_str(r"\A"),
            'z' if !in_class => self.out.push_str(r"\z"),
            'Z' if !in_class => self.end_before_final_terminator(),
            'k' if !in_class => {
                if self.next() != Some('<') {
                    return Err("\\k must be followed by <name>".into());
                }
                let mut name = String::new();
                loop {
                    match self.next() {
                        Some('>') => break,
                        Some(c) if c.is_ascii_alphanumeric() => name.push(c),
                        _ => return Err("\\k<name>: unterminated or invalid name".into()),
                    }
                }
                self.out.push_str(&format!("\\k<{name}>"));
            }
            'X' | 'N' => return Err(format!("\\{c} is not supported")),
            c if c.is_ascii_alphanumeric() => {
                return Err(format!("illegal or unsupported escape sequence \\{c}"))
            }
            c => push_literal(&mut self.out, c),
        }
        Ok(())
    }

    /// `\p{Name}`, `\pL`, `\P{…}`: Java's POSIX classes are ASCII (unless
    /// `(?U)`), `Is`/`java` names are mapped, Unicode blocks are refused.
    fn property(&mut self, negated: bool) -> Result<(), String> {
        let name: String = match self.next() {
            Some('{') => {
                let mut n = String::new();
                loop {
                    match self.next() {
                        Some('}') => break,
                        Some(c) => n.push(c),
                        None => return Err("unclosed \\p{…}".into()),
                    }
                }
                n
            }
            Some(c) if c.is_ascii_alphabetic() => c.to_string(),
            _ => return Err("\\p needs a property name".into()),
        };
        let unicode = self.flags().unicode_classes;
        let posix: Option<(&str, &str)> = match name.as_str() {
            "Lower" => Some(("a-z", r"\p{Lowercase}")),
            "Upper" => Some(("A-Z", r"\p{Uppercase}")),
            "ASCII" => Some((r"\x{0}-\x{7F}", r"\x{0}-\x{7F}")),
            "Alpha" => Some(("a-zA-Z", r"\p{Alphabetic}")),
            "Digit" => Some(("0-9", r"\p{Nd}")),
            "Alnum" => Some(("a-zA-Z0-9", r"\p{Alphabetic}\p{Nd}")),
            "Punct" => Some((
                r"\x{21}-\x{2F}\x{3A}-\x{40}\x{5B}-\x{60}\x{7B}-\x{7E}",
                r"\p{P}",
            )),
            "Graph" => Some((r"\x{21}-\x{7E}", r"\p{L}\p{M}\p{N}\p{P}\p{S}")),
            "Print" => Some((r"\x{20}-\x{7E}", r"\p{L}\p{M}\p{N}\p{P}\p{S}\p{Zs}")),
            "Blank" => Some((r"\x{20}\t", r"\p{Zs}\t")),
            "Cntrl" => Some((r"\x{0}-\x{1F}\x{7F}", r"\p{Cc}")),
            "XDigit" => Some(("0-9a-fA-F", "0-9a-fA-F")),
            "Space" => Some((r"\x{20}\t\n\x{B}\x{C}\r", r"\s")),
            _ => None,
        };
        if let Some((ascii, uni)) = posix {
            let neg = if negated { "^" } else { "" };
            let body = if unicode { uni } else { ascii };
            self.out.push_str(&format!("[{neg}{body}]"));
            return Ok(());
        }
        let mapped: String = match name.as_str() {
            "javaLowerCase" => "Lowercase".into(),
            "javaUpperCase" => "Uppercase".into(),
            "javaAlphabetic" => "Alphabetic".into(),
            "javaLetter" => "L".into(),
            "javaDigit" => "Nd".into(),
            "javaWhitespace" => "White_Space".into(),
            "javaMirrored" => "Bidi_Mirrored".into(),
            n if n.starts_with("java") => {
                return Err(format!("\\p{{{n}}} is not supported"));
            }
            n if n.starts_with("In") || n.starts_with("blk=") || n.starts_with("block=") => {
                return Err(format!("Unicode blocks (\\p{{{n}}}) are not supported; use a script (\\p{{IsGreek}}) or a range"));
            }
            n => n.strip_prefix("Is").unwrap_or(n).to_string(),
        };
        self.out.push_str(if negated { r"\P{" } else { r"\p{" });
        self.out.push_str(&mapped);
        self.out.push('}');
        Ok(())
    }
}

const TERMINATORS_CHARS: [char; 5] = ['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}'];

#[cfg(test)]
mod tests {
    use super::*;

    fn find(re: &str, text: &str) -> bool {
        JavaRegex::new(re).unwrap().find(text)
    }

    #[test]
    fn find_is_unanchored_and_case_sensitive() {
        assert!(find("5", "15"));
        assert!(find("^foo$", "foo"));
        assert!(!find("^foo$", "barfoo"));
        assert!(!find("^foo$", "FOO"));
        assert!(find("", ""));
        assert!(find("", "anything"));
    }

    #[test]
    fn lookahead_and_lookbehind() {
        let re = r"^(?!my_replication_db).*$";
        assert!(find(re, "shop"));
        assert!(!find(re, "my_replication_db"));
        assert!(find(r"(?<=t_)\d+", "t_12"));
        assert!(!find(r"(?<!t_)\b\d+", "t_12"));
    }

    #[test]
    fn shorthand_classes_are_ascii_as_in_java() {
        assert!(find(r"^\w+$", "abc_1"));
        assert!(!find(r"^\w+$", "é"));
        assert!(!find(r"^\d$", "٣"));
        assert!(find(r"(?U)^\w+$", "é"));
        assert!(find(r"^[\w-]+$", "my-db"));
        assert!(find(r"^\p{Alpha}+$", "abc"));
        assert!(!find(r"^\p{Alpha}+$", "é"));
        assert!(find(r"^\p{IsLatin}+$", "é"));
        assert!(find(r"^\p{L}+$", "测试"));
    }

    #[test]
    fn dot_and_dollar_follow_java_line_terminators() {
        assert!(!find("^a.b$", "a\rb"));
        assert!(find("(?s)^a.b$", "a\rb"));
        assert!(find("^foo$", "foo\n"));
        assert!(find("^foo$", "foo\r\n"));
        assert!(!find("^foo$", "foo\n\n"));
        assert!(find("(?m)^b$", "a\nb\nc"));
        assert!(!find("(?m)^", ""));
        assert!(!find("(?m)^x*$", "foo\n"));
        assert!(find("(?m)^b", "a\r\nb"));
        assert!(find(r"foo\Z", "foo\n"));
        assert!(find(r"\Z[^ab]", "ab\n"));
        // Not between \r and \n.
        assert!(!find(r"o\s\Z", "foo\r\n"));
        assert!(!find(r"o\s$", "foo\r\n"));
        assert!(find(r"o$", "foo\r\n"));
        assert!(find(r"b$\n", "ab\n"));
        assert!(find(r"^a$|^b$", "b\n"));
        assert!(find(r"(?<=b$)", "ab"));
        assert!(!find(r"foo\z", "foo\n"));
    }

    #[test]
    fn java_escapes() {
        assert!(find(r"a\/b", "a/b"));
        assert!(find(r"\<x\>", "<x>"));
        assert!(find(r"\Qa.b\E", "a.b"));
        assert!(!find(r"\Qa.b\E", "axb"));
        assert!(find(r"\u00e9", "é"));
        assert!(find(r"\uD83D\uDE00", "😀"));
        assert!(find(r"\x41\0101\t", "AA\t"));
        assert!(find(r"^a\h+b$", "a \tb"));
        assert!(find(r"a{2}b{1,}c{0,3}", "aabc"));
        assert!(find("a~b", "a~b"));
        assert!(find("[a~]", "~"));
        assert!(find("[[:x]]", ":"));
        assert!(!find("[[:alpha:]]", "b"));
        assert!(find("[]a]", "]"));
        assert!(find(r"(a)\1", "aa"));
        assert!(find(r"(?<n>a)\k<n>", "aa"));
        assert!(find("a++b", "aab"));
        assert!(find("(?>a+)b", "aab"));
        assert!(find("(?x) a b # comment\n c", "abc"));
        assert!(find("(?i)ABC", "abc"));
        assert!(find("(?i:a)B", "AB"));
        assert!(!find("(?i:a)B", "Ab"));
        assert!(find("[a-c&&[b]]", "b"));
        assert!(!find("[a-c&&[b]]", "a"));
    }

    #[test]
    fn invalid_patterns_are_errors() {
        for bad in [
            "[",
            "(",
            "a)",
            "*a",
            "a{",
            "a{x}",
            r"\",
            r"\q",
            r"\X",
            r"\p{InGreek}",
            "(?<1a>x)",
            r"\0",
            "(?z)",
        ] {
            assert!(JavaRegex::new(bad).is_err(), "{bad:?} should not compile");
        }
    }
}
