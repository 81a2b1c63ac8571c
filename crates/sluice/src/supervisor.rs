//! The supervisor: the decisions taken between streams, in one place.
//!
//! - A node streams only while it holds the leadership (always, without
//!   leader election); a term ends on a request, a lost leadership, or an
//!   error.
//! - `Reload` (SIGHUP): re-read the configuration (an invalid one is logged
//!   and the old one kept) and stream again with a new producer.
//! - Leadership lost, or fenced by a newer epoch: step down and campaign
//!   again (above that epoch).
//! - A transient error (deliveries a producer could not confirm): stream
//!   again from the stored position with a new producer, backing off 2 s to
//!   32 s while it keeps failing.
//! - A definite error: stop, and say why.

use std::time::{Duration, Instant};

use crate::config::{Config, ConfigError};
use crate::control::Request;
use crate::error::Error;
use crate::reader::ReaderEnd;
use crate::telemetry::Telemetry;

/// Re-reads the configuration (SIGHUP).
pub type Reload<'a> = &'a dyn Fn() -> Result<Config, ConfigError>;

/// What the supervisor drives: one node's leadership and streams.
pub trait Node {
    /// Returns once this node may stream (at once without leader election),
    /// with the epoch it streams under, which is above `floor`; or the
    /// request that came first.
    fn campaign(&mut self, cfg: &Config, floor: u64) -> Result<u64, Request>;
    /// Streams until the term ends.
    fn stream(&mut self, cfg: &Config) -> Result<ReaderEnd, Error>;
    /// Gives up the leadership won by the last campaign.
    fn resign(&mut self);
    /// Waits `wait`, unless a request comes first.
    fn pause(&mut self, wait: Duration) -> Option<Request>;
}

/// A failing producer is rebuilt after 2 s, doubling to 32 s while the
/// failures follow each other within a minute.
fn rebuild_wait(in_a_row: u32) -> Duration {
    Duration::from_secs(1 << in_a_row.clamp(1, 5))
}

/// Runs streams until a stop request (Ok) or a definite error.
pub fn supervise(
    node: &mut impl Node,
    mut cfg: Config,
    reload: Reload,
    telemetry: &Telemetry,
) -> Result<(), Error> {
    let reread = |cfg: &mut Config| match reload() {
        Ok(new) => {
            tracing::info!("configuration re-read; streaming again with a new producer");
            *cfg = new;
        }
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: the configuration is invalid; keeping the previous one")
        }
    };
    // The newest epoch known to own the position.
    let mut floor = 0u64;
    let mut rebuilds_in_a_row = 0u32;
    loop {
        match node.campaign(&cfg, floor) {
            Ok(_) => {}
            Err(Request::Stop) => {
                tracing::info!("stop requested while standing by");
                return Ok(());
            }
            Err(Request::Reload) => {
                reread(&mut cfg);
                continue;
            }
        }
        let began = Instant::now();
        let ended = node.stream(&cfg);
        node.resign();
        match ended {
            Ok(ReaderEnd::Stopped) => return Ok(()),
            Ok(ReaderEnd::Reload) => {
                telemetry.count_producer_rebuild();
                reread(&mut cfg);
            }
            Ok(ReaderEnd::LeadershipLost) => {
                tracing::warn!("stepped down; campaigning again with a new session")
            }
            Err(Error::Fenced { message, theirs }) if cfg.ha.is_some() => {
                floor = floor.max(theirs);
                tracing::warn!(error = %message, "a newer epoch owns the position: stepped down");
            }
            Err(Error::Transient(message)) => {
                // Nothing after the stored position counts as delivered: a
                // new producer streams it again.
                telemetry.count_producer_rebuild();
                if began.elapsed() > Duration::from_secs(60) {
                    rebuilds_in_a_row = 0;
                }
                rebuilds_in_a_row += 1;
                let wait = rebuild_wait(rebuilds_in_a_row);
                tracing::warn!(error = %message, wait_s = wait.as_secs(),
                    "deliveries not confirmed; rebuilding the producer and streaming again from the stored position");
                match node.pause(wait) {
                    Some(Request::Stop) => return Ok(()),
                    Some(Request::Reload) => reread(&mut cfg),
                    None => {}
                }
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, Parsed};
    use std::cell::RefCell;
    use std::collections::{BTreeMap, VecDeque};
    use std::sync::atomic::Ordering::Relaxed;

    fn config(args: &[&str]) -> Config {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        match parse(&args, &BTreeMap::new()) {
            Ok(Parsed::Run(c)) => *c,
            _ => panic!("bad test configuration"),
        }
    }

    /// What the fake node was asked to do, in order.
    #[derive(Debug, PartialEq, Eq)]
    enum Call {
        Campaign { floor: u64 },
        Stream { client_id: String },
        Resign,
        Pause(Duration),
    }

    /// A node whose streams end as scripted.
    struct FakeNode {
        campaigns: VecDeque<Result<u64, Request>>,
        streams: VecDeque<Result<ReaderEnd, Error>>,
        pauses: VecDeque<Option<Request>>,
        calls: Vec<Call>,
    }

    impl FakeNode {
        fn new(streams: Vec<Result<ReaderEnd, Error>>) -> Self {
            FakeNode {
                campaigns: VecDeque::new(),
                streams: streams.into(),
                pauses: VecDeque::new(),
                calls: Vec::new(),
            }
        }
    }

    impl Node for FakeNode {
        fn campaign(&mut self, _: &Config, floor: u64) -> Result<u64, Request> {
            self.calls.push(Call::Campaign { floor });
            self.campaigns.pop_front().unwrap_or(Ok(floor + 1))
        }
        fn stream(&mut self, cfg: &Config) -> Result<ReaderEnd, Error> {
            self.calls.push(Call::Stream {
                client_id: cfg.client_id.clone(),
            });
            self.streams.pop_front().unwrap_or(Ok(ReaderEnd::Stopped))
        }
        fn resign(&mut self) {
            self.calls.push(Call::Resign);
        }
        fn pause(&mut self, wait: Duration) -> Option<Request> {
            self.calls.push(Call::Pause(wait));
            self.pauses.pop_front().flatten()
        }
    }

    fn telemetry() -> Telemetry {
        Telemetry::new("test", "sluice")
    }

    fn no_reload() -> Result<Config, ConfigError> {
        Err(ConfigError::Usage("no reload in this test".into()))
    }

    fn streams(node: &FakeNode) -> usize {
        node.calls
            .iter()
            .filter(|c| matches!(c, Call::Stream { .. }))
            .count()
    }

    #[test]
    fn a_stop_ends_the_loop_and_every_term_is_resigned() {
        let mut node = FakeNode::new(vec![Ok(ReaderEnd::Stopped)]);
        supervise(&mut node, config(&[]), &no_reload, &telemetry()).unwrap();
        assert_eq!(
            node.calls,
            [
                Call::Campaign { floor: 0 },
                Call::Stream {
                    client_id: "maxwell".into()
                },
                Call::Resign
            ]
        );
    }

    #[test]
    fn reload_streams_again_with_the_new_configuration_or_keeps_the_old() {
        let mut node = FakeNode::new(vec![Ok(ReaderEnd::Reload), Ok(ReaderEnd::Reload)]);
        let attempts = RefCell::new(0);
        let reload = || {
            *attempts.borrow_mut() += 1;
            if *attempts.borrow() == 1 {
                Ok(config(&["--client_id=reloaded"]))
            } else {
                Err(ConfigError::Usage("broken file".into()))
            }
        };
        let t = telemetry();
        supervise(&mut node, config(&[]), &reload, &t).unwrap();
        let clients: Vec<_> = node
            .calls
            .iter()
            .filter_map(|c| match c {
                Call::Stream { client_id } => Some(client_id.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(clients, ["maxwell", "reloaded", "reloaded"]);
        assert_eq!(t.producer_rebuilds.load(Relaxed), 2);
    }

    #[test]
    fn an_unconfirming_producer_is_rebuilt_with_growing_waits() {
        let unconfirmed = || Err(Error::Transient("kafka producer: timed out".into()));
        let mut node = FakeNode::new(vec![unconfirmed(), unconfirmed(), unconfirmed()]);
        let t = telemetry();
        supervise(&mut node, config(&[]), &no_reload, &t).unwrap();
        let pauses: Vec<_> = node
            .calls
            .iter()
            .filter_map(|c| match c {
                Call::Pause(d) => Some(d.as_secs()),
                _ => None,
            })
            .collect();
        assert_eq!(pauses, [2, 4, 8]);
        assert_eq!(streams(&node), 4);
        assert_eq!(t.producer_rebuilds.load(Relaxed), 3);
        // A stop during the wait ends cleanly.
        let mut node = FakeNode::new(vec![unconfirmed()]);
        node.pauses.push_back(Some(Request::Stop));
        supervise(&mut node, config(&[]), &no_reload, &t).unwrap();
        assert_eq!(streams(&node), 1);
    }

    #[test]
    fn a_definite_error_stops_with_its_message() {
        let mut node = FakeNode::new(vec![Err(Error::definite("binlog purged"))]);
        let e = supervise(&mut node, config(&[]), &no_reload, &telemetry()).unwrap_err();
        assert_eq!(e.to_string(), "binlog purged");
        assert_eq!(node.calls.last(), Some(&Call::Resign));
    }

    #[test]
    fn fenced_steps_down_and_campaigns_above_the_newer_epoch_with_ha_only() {
        let fenced = || {
            Err(Error::Fenced {
                message: "a newer epoch (7)".into(),
                theirs: 7,
            })
        };
        let ha = config(&["--ha", "--zookeeper=127.0.0.1:1"]);
        let mut node = FakeNode::new(vec![fenced(), Ok(ReaderEnd::LeadershipLost)]);
        supervise(&mut node, ha, &no_reload, &telemetry()).unwrap();
        let floors: Vec<_> = node
            .calls
            .iter()
            .filter_map(|c| match c {
                Call::Campaign { floor } => Some(*floor),
                _ => None,
            })
            .collect();
        assert_eq!(floors, [0, 7, 7]);
        // Without leader election there is nobody to step down for.
        let mut node = FakeNode::new(vec![fenced()]);
        let e = supervise(&mut node, config(&[]), &no_reload, &telemetry()).unwrap_err();
        assert!(matches!(e, Error::Fenced { theirs: 7, .. }));
    }

    #[test]
    fn a_stop_while_standing_by_ends_without_streaming() {
        let mut node = FakeNode::new(vec![]);
        node.campaigns.push_back(Err(Request::Stop));
        supervise(&mut node, config(&[]), &no_reload, &telemetry()).unwrap();
        assert_eq!(streams(&node), 0);
    }
}
