//! WKB (as stored after MySQL's 4-byte SRID) to WKT, formatted as Maxwell
//! (JTS) prints it: `POINT (3 2)`, `LINESTRING (0 1, 1 2)`, ...

pub struct Wkb<'a> {
    data: &'a [u8],
    pos: usize,
    /// Collections inside collections: bounded, so a hostile value cannot
    /// exhaust the stack.
    depth: u32,
}

/// Deeper nesting than any real geometry has.
const MAX_DEPTH: u32 = 64;

impl<'a> Wkb<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Wkb {
            data,
            pos: 0,
            depth: 0,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self
            .data
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or_else(|| "geometry value truncated".to_string())?;
        self.pos += n;
        Ok(s)
    }

    fn u32(&mut self, little: bool) -> Result<u32, String> {
        let b = self.take(4)?;
        let a = [b[0], b[1], b[2], b[3]];
        Ok(if little {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    }

    fn f64(&mut self, little: bool) -> Result<f64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(if little {
            f64::from_le_bytes(a)
        } else {
            f64::from_be_bytes(a)
        })
    }

    fn coords(&mut self, little: bool, out: &mut String) -> Result<(), String> {
        let x = self.f64(little)?;
        let y = self.f64(little)?;
        out.push_str(&number(x));
        out.push(' ');
        out.push_str(&number(y));
        Ok(())
    }

    /// `(item, item, ...)` with a count first, or `EMPTY`.
    fn list(
        &mut self,
        little: bool,
        out: &mut String,
        mut item: impl FnMut(&mut Self, bool, &mut String) -> Result<(), String>,
    ) -> Result<(), String> {
        let n = self.u32(little)?;
        if n == 0 {
            out.push_str("EMPTY");
            return Ok(());
        }
        out.push('(');
        for i in 0..n {
            if i > 0 {
                out.push_str(", ");
            }
            item(self, little, out)?;
        }
        out.push(')');
        Ok(())
    }

    fn point_list(&mut self, little: bool, out: &mut String) -> Result<(), String> {
        self.list(little, out, Self::coords)
    }

    fn rings(&mut self, little: bool, out: &mut String) -> Result<(), String> {
        self.list(little, out, Self::point_list)
    }

    /// Appends one geometry (with its type name) to `out`.
    pub fn geometry(&mut self, out: &mut String) -> Result<(), String> {
        let little = self.take(1)?[0] == 1;
        let kind = self.u32(little)? & 0xFF;
        match kind {
            1 => {
                out.push_str("POINT (");
                self.coords(little, out)?;
                out.push(')');
            }
            2 => {
                out.push_str("LINESTRING ");
                self.point_list(little, out)?;
            }
            3 => {
                out.push_str("POLYGON ");
                self.rings(little, out)?;
            }
            4..=7 => {
                out.push_str(match kind {
                    4 => "MULTIPOINT ",
                    5 => "MULTILINESTRING ",
                    6 => "MULTIPOLYGON ",
                    _ => "GEOMETRYCOLLECTION ",
                });
                if self.depth >= MAX_DEPTH {
                    return Err(format!("geometry nested deeper than {MAX_DEPTH} levels"));
                }
                // Each member is a whole geometry with its own header.
                self.depth += 1;
                let members = self.list(little, out, |r, _, out| {
                    let mut part = String::new();
                    r.geometry(&mut part)?;
                    if kind == 7 {
                        out.push_str(&part);
                    } else {
                        // Members of MULTI* print without their type name.
                        let body = part.split_once(' ').map(|x| x.1).unwrap_or("");
                        if kind == 4 && !body.starts_with('(') {
                            out.push('(');
                            out.push_str(body);
                            out.push(')');
                        } else {
                            out.push_str(body);
                        }
                    }
                    Ok(())
                });
                self.depth -= 1;
                members?;
            }
            other => return Err(format!("unknown WKB geometry type {other}")),
        }
        Ok(())
    }
}

/// Shortest round-trip form without a trailing `.0` (JTS prints `3`, not `3.0`).
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let mut b = ryu::Buffer::new();
        b.format(v).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(x: f64, y: f64) -> Vec<u8> {
        let mut v = vec![1];
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(&x.to_le_bytes());
        v.extend_from_slice(&y.to_le_bytes());
        v
    }

    #[test]
    fn point_and_collection() {
        let mut s = String::new();
        Wkb::new(&point(3.0, 2.0)).geometry(&mut s).unwrap();
        assert_eq!(s, "POINT (3 2)");
        let mut g = vec![1];
        g.extend_from_slice(&7u32.to_le_bytes());
        g.extend_from_slice(&2u32.to_le_bytes());
        g.extend(point(1.0, 1.0));
        g.push(1);
        g.extend_from_slice(&2u32.to_le_bytes());
        g.extend_from_slice(&2u32.to_le_bytes());
        for v in [0.0, 1.5, 1.0, 2.0] {
            g.extend_from_slice(&f64::to_le_bytes(v));
        }
        let mut s = String::new();
        Wkb::new(&g).geometry(&mut s).unwrap();
        assert_eq!(
            s,
            "GEOMETRYCOLLECTION (POINT (1 1), LINESTRING (0 1.5, 1 2))"
        );
        let mut mp = vec![1];
        mp.extend_from_slice(&4u32.to_le_bytes());
        mp.extend_from_slice(&1u32.to_le_bytes());
        mp.extend(point(1.0, 2.0));
        let mut s = String::new();
        Wkb::new(&mp).geometry(&mut s).unwrap();
        assert_eq!(s, "MULTIPOINT ((1 2))");
        assert!(Wkb::new(&mp[..10]).geometry(&mut String::new()).is_err());
    }
}

#[cfg(test)]
mod hostile {
    use super::*;

    /// A collection holding a collection holding … a million levels deep
    /// is an error, not a stack overflow.
    #[test]
    fn deep_nesting_is_refused() {
        let mut v = Vec::new();
        for _ in 0..1_000_000 {
            v.push(1);
            v.extend_from_slice(&7u32.to_le_bytes());
            v.extend_from_slice(&1u32.to_le_bytes());
        }
        let mut out = String::new();
        let e = Wkb::new(&v).geometry(&mut out).unwrap_err();
        assert!(e.contains("nested deeper"), "{e}");
    }
}
