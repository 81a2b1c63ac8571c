//! MariaDB's GTID position: for every replication domain, the last GTID
//! (`domain-server-seq`) applied. This is what a replica hands the server
//! (`@slave_connect_state`) to continue after exactly those transactions, on
//! this server or on any other server that has the same transactions (a
//! failover target), whatever its binlog file names and offsets.

use std::collections::BTreeMap;
use std::fmt;

use crate::event::{self, MariadbGtid};
use crate::SourceError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidState {
    /// domain -> (server_id, seq_no)
    domains: BTreeMap<u32, (u32, u64)>,
}

impl GtidState {
    /// Parses `0-1-100,1-2-5` (spaces allowed; empty means no GTID yet).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut s = GtidState::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let nums: Vec<&str> = part.split('-').collect();
            let parsed = match nums.as_slice() {
                [d, sv, q] => d
                    .parse::<u32>()
                    .ok()
                    .zip(sv.parse::<u32>().ok())
                    .zip(q.parse::<u64>().ok()),
                _ => None,
            };
            let ((d, sv), q) = parsed.ok_or_else(|| {
                format!("'{part}' is not a MariaDB GTID (domain-server-sequence)")
            })?;
            s.domains.insert(d, (sv, q));
        }
        Ok(s)
    }

    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// Every transaction of this state is also in `other` (no domain of
    /// ours is ahead of `other`'s).
    pub fn covered_by(&self, other: &GtidState) -> bool {
        self.domains.iter().all(|(d, (_, seq))| {
            other
                .domains
                .get(d)
                .is_some_and(|(_, theirs)| theirs >= seq)
        })
    }

    /// A transaction with this GTID completed.
    pub fn apply(&mut self, g: &MariadbGtid) {
        self.domains.insert(g.domain_id, (g.server_id, g.seq_no));
    }

    /// A GTID_LIST event: the state of every domain it names at that point.
    pub fn apply_list(&mut self, body: &[u8]) -> Result<(), SourceError> {
        for g in event::parse_mariadb_gtid_list(body)? {
            if let Ok(one) = GtidState::parse(&g) {
                self.domains.extend(one.domains);
            }
        }
        Ok(())
    }
}

impl fmt::Display for GtidState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (d, (sv, q))) in self.domains.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}-{sv}-{q}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_applies_and_prints_per_domain() {
        let mut s = GtidState::parse("0-1-100, 2-5-7").unwrap();
        s.apply(&MariadbGtid {
            seq_no: 101,
            domain_id: 0,
            server_id: 3,
            standalone: false,
        });
        s.apply(&MariadbGtid {
            seq_no: 1,
            domain_id: 1,
            server_id: 3,
            standalone: false,
        });
        assert_eq!(s.to_string(), "0-3-101,1-3-1,2-5-7");
        assert!(GtidState::parse("").unwrap().is_empty());
        assert!(GtidState::parse("0-1").is_err());
        assert!(GtidState::parse("a-b-c").is_err());
    }

    #[test]
    fn a_gtid_list_sets_the_domains_it_names() {
        let mut body = 2u32.to_le_bytes().to_vec();
        for (d, sv, q) in [(0u32, 1u32, 9u64), (4, 2, 3)] {
            body.extend_from_slice(&d.to_le_bytes());
            body.extend_from_slice(&sv.to_le_bytes());
            body.extend_from_slice(&q.to_le_bytes());
        }
        let mut s = GtidState::parse("0-1-5,7-1-1").unwrap();
        s.apply_list(&body).unwrap();
        assert_eq!(s.to_string(), "0-1-9,4-2-3,7-1-1");
    }
}
