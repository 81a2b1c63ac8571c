//! Partial JSON updates (`binlog_row_value_options=PARTIAL_JSON`): MySQL
//! logs a changed JSON column as a list of diffs (REPLACE, INSERT or REMOVE
//! at a JSON path) against the column's previous document. Sluice applies
//! them to the before image's document and re-encodes MySQL's binary JSON,
//! so the row renders the full new document like any other update.

use crate::jsonb;

const MAX_DEPTH: u32 = 100;

/// A binary JSON value: containers as trees, scalars as their type byte
/// and stored bytes (rendered and re-encoded unchanged).
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Object(Vec<(Vec<u8>, Node)>),
    Array(Vec<Node>),
    Scalar(u8, Vec<u8>),
}

fn uint(b: &[u8], at: usize, n: usize) -> Result<usize, String> {
    let s = at
        .checked_add(n)
        .and_then(|end| b.get(at..end))
        .ok_or("binary JSON value truncated")?;
    Ok(s.iter().rev().fold(0usize, |a, &x| (a << 8) | x as usize))
}

/// Bytes of a variable-length integer and its value.
fn varlen(b: &[u8]) -> Result<(usize, usize), String> {
    let mut v = 0usize;
    for i in 0..5 {
        let x = *b.get(i).ok_or("binary JSON value truncated")?;
        v |= ((x & 0x7F) as usize) << (7 * i);
        if x & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err("bad variable-length integer in binary JSON".into())
}

/// Stored length of a scalar of type `t` at the start of `b`.
fn scalar_len(t: u8, b: &[u8]) -> Result<usize, String> {
    Ok(match t {
        0x04 => 1,
        0x05 | 0x06 => 2,
        0x07 | 0x08 => 4,
        0x09..=0x0B => 8,
        0x0C => {
            let (n, l) = varlen(b)?;
            l + n
        }
        0x0F => {
            let (n, l) = varlen(b.get(1..).ok_or("binary JSON value truncated")?)?;
            1 + l + n
        }
        other => return Err(format!("unknown binary JSON type {other:#x}")),
    })
}

/// Parses a whole document (type byte first).
pub fn parse(doc: &[u8]) -> Result<Node, String> {
    match doc.split_first() {
        None => Ok(Node::Scalar(0x04, vec![0])), // empty: JSON null
        Some((&t, rest)) => value(t, rest, 0),
    }
}

fn value(t: u8, b: &[u8], depth: u32) -> Result<Node, String> {
    if depth > MAX_DEPTH {
        return Err("binary JSON nested too deeply".into());
    }
    match t {
        0x00..=0x03 => container(b, t & 1 == 1, t < 2, depth),
        _ => {
            let n = scalar_len(t, b)?;
            let s = b.get(..n).ok_or("binary JSON value truncated")?;
            Ok(Node::Scalar(t, s.to_vec()))
        }
    }
}

fn inlined(t: u8, large: bool) -> bool {
    matches!(t, 0x04..=0x06) || (large && matches!(t, 0x07 | 0x08))
}

fn container(b: &[u8], large: bool, object: bool, depth: u32) -> Result<Node, String> {
    let w = if large { 4 } else { 2 };
    let count = uint(b, 0, w)?;
    // Every entry takes at least 1 + w bytes: a count beyond the data is
    // corrupt, and must not size an allocation.
    if count > b.len() {
        return Err("binary JSON container count beyond its data".into());
    }
    let keys_at = 2 * w;
    let values_at = keys_at + if object { count * (w + 2) } else { 0 };
    let mut keys = Vec::with_capacity(if object { count } else { 0 });
    if object {
        for i in 0..count {
            let e = keys_at + i * (w + 2);
            let (off, len) = (uint(b, e, w)?, uint(b, e + w, 2)?);
            let k = off
                .checked_add(len)
                .and_then(|end| b.get(off..end))
                .ok_or("binary JSON key outside its object")?;
            keys.push(k.to_vec());
        }
    }
    let mut items = Vec::with_capacity(count);
    for i in 0..count {
        let e = values_at + i * (1 + w);
        let t = *b.get(e).ok_or("binary JSON value truncated")?;
        let node = if inlined(t, large) {
            let n = if t == 0x04 {
                1
            } else if t <= 0x06 {
                2
            } else {
                4
            };
            let s = b
                .get(e + 1..e + 1 + n)
                .ok_or("binary JSON value truncated")?;
            Node::Scalar(t, s.to_vec())
        } else {
            let off = uint(b, e + 1, w)?;
            value(
                t,
                b.get(off..)
                    .ok_or("binary JSON value outside its container")?,
                depth + 1,
            )?
        };
        items.push(node);
    }
    Ok(if object {
        Node::Object(keys.into_iter().zip(items).collect())
    } else {
        Node::Array(items)
    })
}

/// MySQL's binary JSON of `node` (type byte first).
pub fn encode(node: &Node) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let t = encode_into(&mut out, node)?;
    out.insert(0, t);
    Ok(out)
}

/// Appends the value's bytes (without its type byte); returns the type.
fn encode_into(out: &mut Vec<u8>, node: &Node) -> Result<u8, String> {
    match node {
        Node::Scalar(t, b) => {
            out.extend_from_slice(b);
            Ok(*t)
        }
        Node::Object(_) | Node::Array(_) => {
            let object = matches!(node, Node::Object(_));
            // Small layout when every offset fits 16 bits, else large.
            if let Some(small) = encode_container(node, false)? {
                out.extend_from_slice(&small);
                return Ok(if object { 0x00 } else { 0x02 });
            }
            let large = encode_container(node, true)?
                .ok_or("JSON document too large for MySQL's binary format")?;
            out.extend_from_slice(&large);
            Ok(if object { 0x01 } else { 0x03 })
        }
    }
}

fn put(out: &mut [u8], at: usize, v: usize, w: usize) {
    out[at..at + w].copy_from_slice(&(v as u64).to_le_bytes()[..w]);
}

/// One container laid out small (`large` false) or large; `None` when a
/// small layout's offsets would not fit.
fn encode_container(node: &Node, large: bool) -> Result<Option<Vec<u8>>, String> {
    let (keys, items): (Vec<&[u8]>, Vec<&Node>) = match node {
        Node::Object(kv) => kv.iter().map(|(k, v)| (k.as_slice(), v)).unzip(),
        Node::Array(v) => (Vec::new(), v.iter().collect()),
        Node::Scalar(..) => return Err("not a container".into()),
    };
    let object = matches!(node, Node::Object(_));
    let w = if large { 4 } else { 2 };
    let max = if large {
        u32::MAX as usize
    } else {
        u16::MAX as usize
    };
    let n = items.len();
    let header = 2 * w + if object { n * (w + 2) } else { 0 } + n * (1 + w);
    let mut out = vec![0u8; header];
    if n > max {
        return Ok(None);
    }
    put(&mut out, 0, n, w);
    for (i, k) in keys.iter().enumerate() {
        if out.len() > max || k.len() > u16::MAX as usize {
            return Ok(None);
        }
        let e = 2 * w + i * (w + 2);
        let at = out.len();
        put(&mut out, e, at, w);
        put(&mut out, e + w, k.len(), 2);
        out.extend_from_slice(k);
    }
    let values_at = 2 * w + if object { n * (w + 2) } else { 0 };
    for (i, item) in items.iter().enumerate() {
        let e = values_at + i * (1 + w);
        match item {
            Node::Scalar(t, b) if inlined(*t, large) => {
                out[e] = *t;
                let m = b.len().min(w);
                out[e + 1..e + 1 + m].copy_from_slice(&b[..m]);
            }
            _ => {
                let at = out.len();
                if at > max {
                    return Ok(None);
                }
                let t = encode_into(&mut out, item)?;
                out[e] = t;
                put(&mut out, e + 1, at, w);
            }
        }
    }
    if out.len() > max {
        return Ok(None);
    }
    let size = out.len();
    put(&mut out, w, size, w);
    Ok(Some(out))
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leg {
    Key(Vec<u8>),
    Index(usize),
}

/// Parses the paths MySQL writes in diffs: `$`, then `.key`, `."quoted key"`
/// and `[N]` legs (no wildcards: a partial update names one place).
pub fn parse_path(path: &str) -> Result<Vec<Leg>, String> {
    let bad = |why: &str| format!("JSON path '{path}': {why}");
    let rest = path
        .trim()
        .strip_prefix('$')
        .ok_or_else(|| bad("does not start with $"))?;
    let b = rest.as_bytes();
    let mut legs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' => i += 1,
            b'.' if b.get(i + 1) == Some(&b'"') => {
                // A JSON string literal: find its closing quote.
                let start = i + 1;
                let mut j = start + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                let lit = rest
                    .get(start..=j)
                    .ok_or_else(|| bad("unterminated quoted key"))?;
                let key: String = serde_json::from_str(lit).map_err(|e| bad(&e.to_string()))?;
                legs.push(Leg::Key(key.into_bytes()));
                i = j + 1;
            }
            b'.' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && !matches!(b[j], b'.' | b'[' | b' ') {
                    j += 1;
                }
                let key = &rest[start..j];
                if key.is_empty() || key.contains('*') {
                    return Err(bad("empty or wildcard member name"));
                }
                legs.push(Leg::Key(key.as_bytes().to_vec()));
                i = j;
            }
            b'[' => {
                let close = rest[i..]
                    .find(']')
                    .ok_or_else(|| bad("unterminated [index]"))?
                    + i;
                let idx = rest[i + 1..close]
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| bad("array index is not a number"))?;
                legs.push(Leg::Index(idx));
                i = close + 1;
            }
            _ => return Err(bad("unexpected character")),
        }
    }
    Ok(legs)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Replace,
    Insert,
    Remove,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    pub op: Op,
    pub path: String,
    pub value: Option<Node>,
}

fn lenenc(b: &[u8], at: &mut usize) -> Result<usize, String> {
    let first = *b.get(*at).ok_or("JSON diff truncated")?;
    *at += 1;
    let n = match first {
        0xFC => 2,
        0xFD => 3,
        0xFE => 8,
        0xFB | 0xFF => return Err("bad length in JSON diff".into()),
        v => return Ok(v as usize),
    };
    let v = uint(b, *at, n).map_err(|_| "JSON diff truncated".to_string())?;
    *at += n;
    Ok(v)
}

/// Parses the diffs of a partial JSON cell (its length prefix removed):
/// each is an operation byte, a length-prefixed path and, unless REMOVE, a
/// length-prefixed binary JSON value.
pub fn parse_diffs(b: &[u8]) -> Result<Vec<Diff>, String> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < b.len() {
        let op = match b[at] {
            0 => Op::Replace,
            1 => Op::Insert,
            2 => Op::Remove,
            x => return Err(format!("unknown JSON diff operation {x}")),
        };
        at += 1;
        let n = lenenc(b, &mut at)?;
        let path = at
            .checked_add(n)
            .and_then(|end| b.get(at..end))
            .ok_or("JSON diff path truncated")?;
        let path = std::str::from_utf8(path)
            .map_err(|_| "JSON diff path is not UTF-8")?
            .to_string();
        at += n;
        let value = if op == Op::Remove {
            None
        } else {
            let n = lenenc(b, &mut at)?;
            let v = at
                .checked_add(n)
                .and_then(|end| b.get(at..end))
                .ok_or("JSON diff value truncated")?;
            at += n;
            Some(parse(v)?)
        };
        out.push(Diff { op, path, value });
    }
    Ok(out)
}

/// MySQL keeps object keys sorted by length, then bytewise.
fn key_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Applies one diff to `doc`, as the server applied it to its row.
pub fn apply(doc: &mut Node, d: &Diff) -> Result<(), String> {
    let legs = parse_path(&d.path)?;
    let fail = |why: &str| format!("JSON diff {:?} at {}: {why}", d.op, d.path);
    let Some((last, parents)) = legs.split_last() else {
        return match (d.op, &d.value) {
            (Op::Replace, Some(v)) => {
                *doc = v.clone();
                Ok(())
            }
            _ => Err(fail("only REPLACE applies to the whole document")),
        };
    };
    let mut node = doc;
    for leg in parents {
        node = match (node, leg) {
            (Node::Object(kv), Leg::Key(k)) => kv
                .iter_mut()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v)
                .ok_or_else(|| fail("no such member"))?,
            (Node::Array(items), Leg::Index(i)) => items
                .get_mut(*i)
                .ok_or_else(|| fail("index beyond the array"))?,
            _ => return Err(fail("the path does not match the document")),
        };
    }
    match (node, last, d.op) {
        (Node::Object(kv), Leg::Key(k), Op::Remove) => {
            let at = kv
                .iter()
                .position(|(name, _)| name == k)
                .ok_or_else(|| fail("no such member"))?;
            kv.remove(at);
        }
        (Node::Array(items), Leg::Index(i), Op::Remove) => {
            if *i >= items.len() {
                return Err(fail("index beyond the array"));
            }
            items.remove(*i);
        }
        (Node::Object(kv), Leg::Key(k), op) => {
            let v = d.value.clone().ok_or_else(|| fail("no value"))?;
            match kv.iter_mut().find(|(name, _)| name == k) {
                Some((_, slot)) => *slot = v,
                None if op == Op::Insert => {
                    let at = kv
                        .iter()
                        .position(|(name, _)| key_order(name, k).is_gt())
                        .unwrap_or(kv.len());
                    kv.insert(at, (k.clone(), v));
                }
                None => return Err(fail("no such member to replace")),
            }
        }
        (Node::Array(items), Leg::Index(i), op) => {
            let v = d.value.clone().ok_or_else(|| fail("no value"))?;
            if op == Op::Insert {
                items.insert((*i).min(items.len()), v);
            } else {
                *items
                    .get_mut(*i)
                    .ok_or_else(|| fail("index beyond the array"))? = v;
            }
        }
        _ => return Err(fail("the path does not match the document")),
    }
    Ok(())
}

/// The new document: `diffs` (a partial cell, length prefix removed)
/// applied to `before` (a whole binary document), re-encoded.
pub fn patched(before: &[u8], diffs: &[u8]) -> Result<Vec<u8>, String> {
    let mut doc = parse(before)?;
    for d in parse_diffs(diffs)? {
        apply(&mut doc, &d)?;
    }
    encode(&doc)
}

/// Renders a binary document (for tests and diagnostics).
pub fn render(doc: &[u8]) -> Result<String, String> {
    let mut out = Vec::new();
    jsonb::render(&mut out, doc)?;
    String::from_utf8(out).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// {"a": 1, "b": "xy"} as MySQL encodes it (type byte first).
    fn small_doc() -> Vec<u8> {
        vec![
            0x00, 2, 0, 23, 0, 18, 0, 1, 0, 19, 0, 1, 0, 0x05, 1, 0, 0x0C, 20, 0, b'a', b'b', 2,
            b'x', b'y',
        ]
    }

    fn int16(v: i16) -> Node {
        Node::Scalar(0x05, v.to_le_bytes().to_vec())
    }

    fn diff(op: Op, path: &str, value: Option<Node>) -> Diff {
        Diff {
            op,
            path: path.into(),
            value,
        }
    }

    #[test]
    fn parse_and_encode_roundtrip_byte_for_byte() {
        let doc = small_doc();
        let node = parse(&doc).unwrap();
        assert_eq!(encode(&node).unwrap(), doc);
        assert_eq!(render(&doc).unwrap(), r#"{"a":1,"b":"xy"}"#);
    }

    #[test]
    fn replace_insert_remove() {
        let mut doc = parse(&small_doc()).unwrap();
        apply(&mut doc, &diff(Op::Replace, "$.a", Some(int16(26)))).unwrap();
        apply(
            &mut doc,
            &diff(
                Op::Insert,
                "$.c",
                Some(Node::Array(vec![int16(1), int16(2)])),
            ),
        )
        .unwrap();
        apply(&mut doc, &diff(Op::Insert, "$.c[1]", Some(int16(9)))).unwrap();
        apply(
            &mut doc,
            &diff(Op::Insert, "$.\"long key\"", Some(int16(0))),
        )
        .unwrap();
        let out = encode(&doc).unwrap();
        assert_eq!(
            render(&out).unwrap(),
            r#"{"a":26,"b":"xy","c":[1,9,2],"long key":0}"#
        );
        apply(&mut doc, &diff(Op::Remove, "$.c[0]", None)).unwrap();
        apply(&mut doc, &diff(Op::Remove, "$.b", None)).unwrap();
        assert_eq!(
            render(&encode(&doc).unwrap()).unwrap(),
            r#"{"a":26,"c":[9,2],"long key":0}"#
        );
        apply(&mut doc, &diff(Op::Replace, "$", Some(int16(5)))).unwrap();
        assert_eq!(render(&encode(&doc).unwrap()).unwrap(), "5");
    }

    #[test]
    fn diffs_that_do_not_fit_the_document_are_errors() {
        let mut doc = parse(&small_doc()).unwrap();
        for (op, path) in [
            (Op::Replace, "$.zz"),
            (Op::Remove, "$.zz"),
            (Op::Replace, "$.a.b"),
            (Op::Replace, "$[0]"),
            (Op::Insert, "$.b[0]"),
            (Op::Replace, "a"),
            (Op::Replace, "$.*"),
        ] {
            assert!(
                apply(&mut doc, &diff(op, path, Some(int16(1)))).is_err(),
                "{path}"
            );
        }
    }

    #[test]
    fn large_documents_use_the_large_layout() {
        let big = Node::Array((0..30_000).map(|i| int16(i as i16)).collect());
        let doc = encode(&big).unwrap();
        assert_eq!(doc[0], 0x03, "large array");
        assert_eq!(parse(&doc).unwrap(), big);
    }

    #[test]
    fn diff_list_wire_format() {
        // REPLACE $.age with int16 26, as json.binlog.000001 logs it.
        let b = [0u8, 5, b'$', b'.', b'a', b'g', b'e', 3, 0x05, 26, 0];
        let d = parse_diffs(&b).unwrap();
        assert_eq!(d, vec![diff(Op::Replace, "$.age", Some(int16(26)))]);
        assert!(parse_diffs(&b[..9]).is_err());
        assert!(parse_diffs(&[7]).is_err());
    }
}
