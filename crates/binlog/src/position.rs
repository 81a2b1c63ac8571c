use std::fmt;

/// A position in the binlog: file name and byte offset, plus the GTID of the
/// last transaction seen (MariaDB `domain-server-seq`, or MySQL `uuid:n`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BinlogPosition {
    pub file: String,
    pub offset: u64,
    pub gtid: Option<String>,
}

impl BinlogPosition {
    pub fn new(file: impl Into<String>, offset: u64) -> Self {
        BinlogPosition {
            file: file.into(),
            offset,
            gtid: None,
        }
    }

    /// Parses Maxwell's `FILE:POSITION[:HEARTBEAT]` form (the heartbeat part is
    /// accepted and ignored).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.split(':');
        let file = parts.next().unwrap_or_default().trim();
        let pos = parts.next().map(str::trim);
        let extra = parts.next();
        if let Some(h) = extra {
            if h.trim().parse::<u64>().is_err() {
                return Err(format!(
                    "'{text}': the third part (heartbeat) must be a number"
                ));
            }
        }
        if parts.next().is_some() || file.is_empty() {
            return Err(format!(
                "'{text}' is not FILE:POSITION, e.g. mysql-bin.000001:4"
            ));
        }
        let offset = match pos {
            Some(p) => p
                .parse::<u64>()
                .map_err(|_| format!("'{text}': position '{p}' is not a number"))?,
            None => {
                return Err(format!(
                    "'{text}' is not FILE:POSITION, e.g. mysql-bin.000001:4"
                ))
            }
        };
        if offset < 4 {
            return Err(format!("'{text}': a binlog position is at least 4"));
        }
        Ok(BinlogPosition::new(file, offset))
    }
}

impl fmt::Display for BinlogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.offset)
    }
}

/// Why the server has no binlog file of a requested name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissingFile {
    /// It comes before the first file the server still has: purged.
    Purged { first: String },
    /// It is not a name the server has or had (a typo, another server's
    /// file, a different log-bin base name, a file not yet written).
    NotFound {
        first: Option<String>,
        last: Option<String>,
    },
}

/// Tells a purged file from one that never existed, given the server's
/// files in order (SHOW BINARY LOGS): purged when it has the same base name
/// and a lower number than the first one listed.
pub fn missing_file(requested: &str, listed: &[String]) -> MissingFile {
    fn split(name: &str) -> Option<(&str, u64)> {
        let (base, n) = name.rsplit_once('.')?;
        Some((base, n.parse().ok()?))
    }
    let first = listed.first().cloned();
    let last = listed.last().cloned();
    match (first.as_deref().and_then(split), split(requested)) {
        (Some((base, n_first)), Some((req_base, n))) if base == req_base && n < n_first => {
            MissingFile::Purged {
                first: first.unwrap_or_default(),
            }
        }
        _ => MissingFile::NotFound { first, last },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_maxwell_forms() {
        assert_eq!(
            BinlogPosition::parse("mysql-bin.000003:1234").unwrap(),
            BinlogPosition::new("mysql-bin.000003", 1234)
        );
        assert_eq!(BinlogPosition::parse("b.1:4:0").unwrap().offset, 4);
        assert!(BinlogPosition::parse("b.1").is_err());
        assert!(BinlogPosition::parse("b.1:x").is_err());
        assert!(BinlogPosition::parse(":5").is_err());
        assert!(BinlogPosition::parse("b.1:2").is_err());
    }

    #[test]
    fn a_missing_file_before_the_first_is_purged_else_unknown() {
        let listed = vec![
            "mysql-bin.000007".to_string(),
            "mysql-bin.000008".to_string(),
        ];
        assert_eq!(
            missing_file("mysql-bin.000003", &listed),
            MissingFile::Purged {
                first: "mysql-bin.000007".into()
            }
        );
        for unknown in [
            "mysql-bin.999999",
            "other-bin.000001",
            "mysql-bin.00000x",
            "x",
        ] {
            assert!(
                matches!(missing_file(unknown, &listed), MissingFile::NotFound { .. }),
                "{unknown}"
            );
        }
        // Numbers, not text: 1000000 comes after 999999.
        let long = vec!["b.999999".to_string(), "b.1000000".to_string()];
        assert!(matches!(
            missing_file("b.1000001", &long),
            MissingFile::NotFound { .. }
        ));
        assert!(matches!(
            missing_file("b.999998", &long),
            MissingFile::Purged { .. }
        ));
        assert!(matches!(
            missing_file("b.000001", &[]),
            MissingFile::NotFound { first: None, .. }
        ));
    }
}
