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
}
