//! The `filter` option's grammar, read exactly as Maxwell reads it: Maxwell
//! tokenizes with `java.io.StreamTokenizer` (plus a few changes), and its
//! quirks decide which inputs are accepted, so the tokenizer is reproduced
//! here rather than approximated:
//!
//! - word characters are `A-Za-z0-9_`, U+00A0–U+00FF and everything from
//!   U+0100 on; `-` continues a word but a token starting with `-` is a
//!   number (`col=-1` is refused);
//! - whitespace is U+0000–U+0020; every other character is a token of its
//!   own (`$`, `*`, `;`, `#` end a word, and there are no comments);
//! - `` ` ``, `'` and `"` quote, with backslash escapes (`\n`, octal, `\x`
//!   → `x`); a quote also ends at a line break or the end of the input;
//! - after `/` the raw text up to the next `/` not preceded by `\` is a
//!   regular expression (Maxwell loops forever when there is none; here it
//!   is an error).

use std::sync::Arc;

use super::java_regex::JavaRegex;
use super::FilterError;

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    Include,
    Exclude,
    Blacklist,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Include => "include",
            RuleKind::Exclude => "exclude",
            RuleKind::Blacklist => "blacklist",
        }
    }
}

/// One compiled name or value pattern. `java` is the regex Maxwell builds:
/// `""` for `*`, `^name$` for a word or quoted name, the text for `/re/`.
#[derive(Debug, Clone)]
pub struct Pattern {
    re: Arc<JavaRegex>,
}

impl Pattern {
    pub fn java(&self) -> &str {
        self.re.as_str()
    }

    pub fn find(&self, text: &str) -> bool {
        // `*` matches everything: skip the regex engine.
        self.java().is_empty() || self.re.find(text)
    }

    pub fn is_any(&self) -> bool {
        self.java().is_empty()
    }

    /// Maxwell's `patternToString`: `*`, the bare name, or `/regex/`.
    pub fn display(&self) -> String {
        let s = self.java();
        if s.is_empty() {
            "*".to_string()
        } else if s.len() >= 2 && s.starts_with('^') && s.ends_with('$') {
            s[1..s.len() - 1].to_string()
        } else {
            format!("/{s}/")
        }
    }
}

/// `.column=value` of a column-value rule.
#[derive(Debug, Clone)]
pub struct ColumnCondition {
    pub column: String,
    pub value: Pattern,
    /// The value pattern is `null` in any case: it matches SQL NULL and
    /// the strings "null" and "NULL".
    pub null: bool,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub kind: RuleKind,
    pub database: Pattern,
    pub table: Pattern,
    pub column: Option<ColumnCondition>,
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}.{}",
            self.kind.as_str(),
            self.database.display(),
            self.table.display()
        )?;
        if let Some(c) = &self.column {
            write!(f, ".{}={}", c.column, c.value.display())?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Eof,
    Word(String),
    /// A token that starts with `-` and a digit or `.`: the tokenizer's
    /// number (never valid in a filter).
    Number(String),
    Quoted(String),
    Char(char),
}

impl Tok {
    /// As `StreamTokenizer.toString` shows it, for error messages.
    fn describe(&self) -> String {
        match self {
            Tok::Eof => "end of input".into(),
            Tok::Word(w) => format!("'{w}'"),
            Tok::Number(n) => format!("the number {n}"),
            Tok::Quoted(q) => format!("quoted '{q}'"),
            Tok::Char(c) => format!("'{c}'"),
        }
    }
}

#[derive(PartialEq)]
enum CharClass {
    Whitespace,
    Word,
    /// `-`: starts a number, continues a word.
    Numeric,
    Quote,
    Ordinary,
}

fn class_of(c: char) -> CharClass {
    match c {
        '\u{0}'..=' ' => CharClass::Whitespace,
        'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '\u{A0}'..='\u{FF}' => CharClass::Word,
        c if c as u32 >= 0x100 => CharClass::Word,
        '-' => CharClass::Numeric,
        '`' | '\'' | '"' => CharClass::Quote,
        _ => CharClass::Ordinary,
    }
}

struct Tokenizer {
    chars: Vec<char>,
    pos: usize,
    /// A character read ahead by the previous token (with its index).
    peeked: Option<(char, usize)>,
    line: usize,
    /// Index of the first character of the current token.
    tok_start: usize,
}

impl Tokenizer {
    fn read(&mut self) -> Option<(char, usize)> {
        let c = self.chars.get(self.pos).copied()?;
        self.pos += 1;
        Some((c, self.pos - 1))
    }

    fn next_token(&mut self) -> Tok {
        let first = self.peeked.take().or_else(|| self.read());
        let Some((mut c, mut at)) = first else {
            self.tok_start = self.chars.len();
            return Tok::Eof;
        };
        while class_of(c) == CharClass::Whitespace {
            let mut next = self.read();
            if c == '\r' {
                self.line += 1;
                if matches!(next, Some(('\n', _))) {
                    next = self.read();
                }
            } else if c == '\n' {
                self.line += 1;
            }
            let Some((n, i)) = next else {
                self.tok_start = self.chars.len();
                return Tok::Eof;
            };
            (c, at) = (n, i);
        }
        self.tok_start = at;
        match class_of(c) {
            CharClass::Numeric => {
                let next = self.read();
                let starts_number = matches!(next, Some((d, _)) if d == '.' || d.is_ascii_digit());
                if !starts_number {
                    self.peeked = next;
                    return Tok::Char('-');
                }
                let mut text = String::from("-");
                let mut seen_dot = false;
                let mut cur = next;
                while let Some((d, _)) = cur {
                    if d == '.' && !seen_dot {
                        seen_dot = true;
                    } else if !d.is_ascii_digit() {
                        break;
                    }
                    text.push(d);
                    cur = self.read();
                }
                self.peeked = cur;
                Tok::Number(text)
            }
            CharClass::Word => {
                let mut word = String::new();
                word.push(c);
                loop {
                    let next = self.read();
                    match next {
                        Some((d, _))
                            if matches!(class_of(d), CharClass::Word | CharClass::Numeric) =>
                        {
                            word.push(d)
                        }
                        other => {
                            self.peeked = other;
                            return Tok::Word(word);
                        }
                    }
                }
            }
            CharClass::Quote => Tok::Quoted(self.quoted(c)),
            CharClass::Whitespace | CharClass::Ordinary => Tok::Char(c),
        }
    }

    /// The body of a quoted string opened by `quote`.
    fn quoted(&mut self, quote: char) -> String {
        let mut s = String::new();
        let mut d = self.read();
        while let Some((ch, _)) = d {
            if ch == quote || ch == '\n' || ch == '\r' {
                break;
            }
            if ch != '\\' {
                s.push(ch);
                d = self.read();
                continue;
            }
            let esc = self.read();
            match esc {
                Some((o, _)) if ('0'..='7').contains(&o) => {
                    let first = o;
                    let mut v = o as u32 - '0' as u32;
                    let c2 = self.read();
                    match c2 {
                        Some((o2, _)) if ('0'..='7').contains(&o2) => {
                            v = (v << 3) + (o2 as u32 - '0' as u32);
                            let c3 = self.read();
                            match c3 {
                                Some((o3, _)) if ('0'..='7').contains(&o3) && first <= '3' => {
                                    v = (v << 3) + (o3 as u32 - '0' as u32);
                                    d = self.read();
                                }
                                other => d = other,
                            }
                        }
                        other => d = other,
                    }
                    s.push(char::from_u32(v).unwrap_or('\u{FFFD}'));
                }
                Some((e, _)) => {
                    s.push(match e {
                        'a' => '\u{7}',
                        'b' => '\u{8}',
                        'f' => '\u{C}',
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'v' => '\u{B}',
                        other => other,
                    });
                    d = self.read();
                }
                // A backslash at the very end: Java appends (char) -1.
                None => {
                    s.push('\u{FFFF}');
                    d = None;
                }
            }
        }
        // The closing quote is consumed; a line break or EOF is kept.
        self.peeked = match d {
            Some((ch, _)) if ch == quote => None,
            other => other,
        };
        s
    }

    /// Raw text after an opening `/` up to the next `/` not preceded by a
    /// backslash (the backslash is kept). `None` at the end of the input.
    fn regex_body(&mut self) -> Option<String> {
        let mut s = String::new();
        let mut last = '\0';
        loop {
            let (ch, _) = self.read()?;
            if ch == '/' && last != '\\' {
                return Some(s);
            }
            s.push(ch);
            last = ch;
        }
    }
}

struct Parser<'a> {
    input: &'a str,
    tz: Tokenizer,
    tok: Tok,
    rule_number: usize,
    rule_start: usize,
}

/// Parses a whole `filter` value into its rules, in order.
pub fn parse_rules(input: &str) -> Result<Vec<Rule>, FilterError> {
    let mut p = Parser {
        input,
        tz: Tokenizer {
            chars: input.chars().collect(),
            pos: 0,
            peeked: None,
            line: 1,
            tok_start: 0,
        },
        tok: Tok::Eof,
        rule_number: 0,
        rule_start: 0,
    };
    p.advance();
    let mut rules = Vec::new();
    while let Some(rule) = p.rule()? {
        rules.push(rule);
    }
    Ok(rules)
}

impl Parser<'_> {
    fn advance(&mut self) {
        self.tok = self.tz.next_token();
    }

    /// The rule being parsed, up to where the parser is now.
    fn rule_text(&self) -> String {
        let end = self.tz.pos.min(self.tz.chars.len());
        let start = self.rule_start.min(end);
        let text: String = self.tz.chars[start..end].iter().collect();
        let text = text.trim();
        if text.is_empty() {
            self.input.trim().to_string()
        } else {
            text.to_string()
        }
    }

    fn error(&self, message: String) -> FilterError {
        FilterError {
            rule: self.rule_number,
            text: self.rule_text(),
            line: self.tz.line,
            message,
        }
    }

    fn expect(&mut self, c: char, hint: &str) -> Result<(), FilterError> {
        if self.tok != Tok::Char(c) {
            return Err(self.error(format!("expected '{c}', saw {}{hint}", self.tok.describe())));
        }
        self.advance();
        Ok(())
    }

    fn rule(&mut self) -> Result<Option<Rule>, FilterError> {
        if self.tok == Tok::Eof {
            return Ok(None);
        }
        self.rule_number += 1;
        self.rule_start = self.tz.tok_start;
        let kind = match &self.tok {
            Tok::Word(w) => match w.to_lowercase().as_str() {
                "include" => RuleKind::Include,
                "exclude" => RuleKind::Exclude,
                "blacklist" => RuleKind::Blacklist,
                _ => {
                    return Err(self.error(format!(
                        "Unknown filter keyword: {w} (every rule starts with include:, exclude: or blacklist:, \
                         e.g. `include: db1.*, include: db2.*`)"
                    )))
                }
            },
            other => {
                let hint = match other {
                    Tok::Char(c @ ('$' | '*' | ';' | '#')) => format!(
                        " ('{c}' cannot be part of an unquoted name: quote the name or use /regex/; there are no comments)"
                    ),
                    Tok::Char('.') => " (a value like 1.5 must be quoted: col='1.5')".into(),
                    _ => String::new(),
                };
                return Err(self.error(format!(
                    "expected [include, exclude, blacklist] in filter definition, saw {}{hint}",
                    other.describe()
                )));
            }
        };
        self.advance();
        self.expect(':', "")?;
        let database = self.pattern()?;
        self.expect(
            '.',
            " (a rule names database.table, each a name, `*`, a quoted name or /regex/; \
             `*` stands for a whole name only: write /^prefix_/ for part of one)",
        )?;
        let table = self.pattern()?;
        let mut column = None;
        if self.tok == Tok::Char('.') {
            self.advance();
            let Tok::Word(name) = self.tok.clone() else {
                return Err(self.error(format!(
                    "expected column name (an unquoted word), saw {}",
                    self.tok.describe()
                )));
            };
            self.advance();
            self.expect('=', "")?;
            let value = self.pattern()?;
            let null = value.java().eq_ignore_ascii_case("^null$");
            column = Some(ColumnCondition {
                column: name,
                value,
                null,
            });
        }
        if self.tok == Tok::Char(',') {
            self.advance();
        }
        Ok(Some(Rule {
            kind,
            database,
            table,
            column,
        }))
    }

    fn pattern(&mut self) -> Result<Pattern, FilterError> {
        let java = match &self.tok {
            Tok::Char('/') => match self.tz.regex_body() {
                Some(re) => re,
                None => {
                    return Err(self.error(
                        "unterminated regular expression: a /regex/ needs a closing / (Maxwell hangs on this)"
                            .into(),
                    ))
                }
            },
            Tok::Char('*') => String::new(),
            Tok::Word(s) | Tok::Quoted(s) => format!("^{s}$"),
            other => {
                return Err(self.error(format!(
                    "Expected string or regexp, saw {} (write a name, `*`, a quoted name or /regex/; \
                     quote values such as '-1')",
                    other.describe()
                )))
            }
        };
        let re = JavaRegex::new(&java).map_err(|e| {
            let shown = match &self.tok {
                Tok::Char('/') => format!("/{java}/"),
                _ => java.clone(),
            };
            self.error(format!("invalid regular expression {shown}: {e}"))
        })?;
        self.advance();
        Ok(Pattern { re: Arc::new(re) })
    }
}
