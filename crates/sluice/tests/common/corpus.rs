//! Maxwell's corpus files: SQL statements and `-> {json}` expectations
//! written with bare keys.

pub enum Item {
    Sql(String),
    Expect(String),
}

/// Statements and expectations; indented lines continue the previous item.
pub fn parse_file(text: &str) -> Vec<Item> {
    let mut items: Vec<Item> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("--") {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("->") {
            items.push(Item::Expect(rest.trim().to_string()));
        } else if line.starts_with(char::is_whitespace) && !items.is_empty() {
            match items.last_mut() {
                Some(Item::Sql(s)) | Some(Item::Expect(s)) => {
                    s.push(' ');
                    s.push_str(trimmed);
                }
                None => {}
            }
        } else {
            items.push(Item::Sql(trimmed.to_string()));
        }
    }
    items
}

/// The corpus writes JSON with bare keys (`{database: "x"}`): quote them.
pub fn quote_bare_keys(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut in_str = false;
    let mut last_sig = ' ';
    while i < chars.len() {
        let c = chars[i];
        if in_str {
            out.push(c);
            if c == '\\' && i + 1 < chars.len() {
                out.push(chars[i + 1]);
                i += 2;
                continue;
            }
            if c == '"' {
                in_str = false;
                last_sig = '"';
            }
            i += 1;
            continue;
        }
        if c == '"' {
            in_str = true;
            out.push(c);
            i += 1;
            continue;
        }
        if (c.is_ascii_alphabetic() || c == '_') && (last_sig == '{' || last_sig == ',') {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '-')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            if j < chars.len() && chars[j] == ':' {
                out.push('"');
                out.push_str(&word);
                out.push('"');
            } else {
                out.push_str(&word);
            }
            last_sig = 'w';
            continue;
        }
        if !c.is_whitespace() {
            last_sig = c;
        }
        out.push(c);
        i += 1;
    }
    out
}
