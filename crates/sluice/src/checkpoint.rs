//! The checkpoint rule, in one place: the stored position only moves to a
//! transaction boundary after the producer has delivered everything before
//! it (flush), at most every [`CHECKPOINT_EVERY`] unless forced, and never
//! on an error path. A write refused by a newer epoch stops this node (it
//! is no longer the leader); any other failed write is retried by the next
//! checkpoint, since the rows are delivered and nothing is lost.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_binlog::BinlogPosition;

use crate::error::Error;
use crate::positions::StoreError;
use crate::telemetry::{unix_millis, Telemetry};

/// How often the delivered position is made durable while rows flow.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// What the checkpointer needs of the stream: delivery and where it is.
pub trait Progress {
    /// Delivers everything handed to the producer so far (rows still being
    /// rendered by workers are handed over first).
    fn flush(&mut self) -> Result<(), Error>;
    /// The transaction boundary before which every row has been handed to
    /// the producer.
    fn checkpoint(&self) -> &BinlogPosition;
    /// Our own heartbeat read back since the last call, if any.
    fn take_heartbeat(&mut self) -> Option<u64>;
}

/// Where positions are made durable.
pub trait PositionWriter {
    fn write(&mut self, at: &BinlogPosition, heartbeat: Option<u64>) -> Result<(), StoreError>;
    /// False when writes are accepted and dropped (`replay`).
    fn keeps(&self) -> bool {
        true
    }
}

/// What the last word of a stream says about the position.
#[derive(Debug, PartialEq, Eq)]
pub enum Final {
    /// Everything delivered is stored.
    Stored,
    /// The last store failed: the next start resumes at the older stored
    /// position and sends what follows it again.
    Behind { stored: BinlogPosition },
    /// `replay`: nothing is ever stored.
    NotKept,
}

pub struct Checkpointer<W: PositionWriter> {
    writer: W,
    stored: BinlogPosition,
    last: Instant,
    telemetry: Arc<Telemetry>,
    /// An own heartbeat read back and not stored yet.
    heartbeat: Option<u64>,
}

impl<W: PositionWriter> Checkpointer<W> {
    /// `stored`: the position already durable (where the stream started).
    pub fn new(writer: W, stored: BinlogPosition, telemetry: Arc<Telemetry>) -> Self {
        Checkpointer {
            writer,
            stored,
            last: Instant::now(),
            telemetry,
            heartbeat: None,
        }
    }

    pub fn due(&self) -> bool {
        self.last.elapsed() >= CHECKPOINT_EVERY
    }

    /// How long until an unstored position is due, if there is one.
    pub fn wait_for_store(&self, at: &BinlogPosition) -> Option<Duration> {
        (*at != self.stored).then(|| CHECKPOINT_EVERY.saturating_sub(self.last.elapsed()))
    }

    /// Delivers what the producer holds, then stores the position if due
    /// (or `force`d) and changed.
    pub fn run(&mut self, progress: &mut impl Progress, force: bool) -> Result<(), Error> {
        progress.flush()?;
        let t = &self.telemetry;
        t.producer_flushes.fetch_add(1, Relaxed);
        if let Some(beat) = progress.take_heartbeat() {
            let now = unix_millis();
            t.heartbeats_read.fetch_add(1, Relaxed);
            t.heartbeat_read_delay_ms
                .store(now.saturating_sub(beat), Relaxed);
            t.heartbeat_read_ms.store(beat, Relaxed);
            self.heartbeat = Some(beat);
        }
        t.set_processed_position(progress.checkpoint().to_string());
        if !(force || self.due()) {
            return Ok(());
        }
        self.last = Instant::now();
        if *progress.checkpoint() == self.stored {
            return Ok(());
        }
        let at = progress.checkpoint().clone();
        match self.writer.write(&at, self.heartbeat) {
            Ok(()) => {
                t.position_stores.fetch_add(1, Relaxed);
                t.set_stored_position(at.to_string());
                self.stored = at;
                self.heartbeat = None;
                Ok(())
            }
            Err(e @ StoreError::Fenced { .. }) => Err(e.into()),
            Err(e) => {
                t.position_store_failures.fetch_add(1, Relaxed);
                tracing::warn!(error = %e, "could not store the position; will retry");
                Ok(())
            }
        }
    }

    /// The position last made durable.
    pub fn stored(&self) -> &BinlogPosition {
        &self.stored
    }

    /// Whether `delivered` (the stream's last boundary) is what is stored.
    pub fn final_state(&self, delivered: &BinlogPosition) -> Final {
        if !self.writer.keeps() {
            Final::NotKept
        } else if *delivered == self.stored {
            Final::Stored
        } else {
            Final::Behind {
                stored: self.stored.clone(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_producers::ProducerError;
    use std::collections::VecDeque;

    /// A stream whose flush and position a test sets.
    struct FakeProgress {
        at: BinlogPosition,
        flush_fails: bool,
        flushes: u32,
        heartbeat: Option<u64>,
    }

    impl Progress for FakeProgress {
        fn flush(&mut self) -> Result<(), Error> {
            self.flushes += 1;
            if self.flush_fails {
                return Err(ProducerError::Failed {
                    producer: "fake",
                    message: "refused".into(),
                }
                .into());
            }
            Ok(())
        }
        fn checkpoint(&self) -> &BinlogPosition {
            &self.at
        }
        fn take_heartbeat(&mut self) -> Option<u64> {
            self.heartbeat.take()
        }
    }

    /// A store that records writes and answers as scripted.
    #[derive(Default)]
    struct FakeStore {
        answers: VecDeque<Result<(), StoreError>>,
        written: Vec<(BinlogPosition, Option<u64>)>,
    }

    impl PositionWriter for &mut FakeStore {
        fn write(&mut self, at: &BinlogPosition, hb: Option<u64>) -> Result<(), StoreError> {
            let answer = self.answers.pop_front().unwrap_or(Ok(()));
            if answer.is_ok() {
                self.written.push((at.clone(), hb));
            }
            answer
        }
    }

    fn pos(offset: u64) -> BinlogPosition {
        BinlogPosition::new("mysql-bin.000001", offset)
    }

    fn progress(offset: u64) -> FakeProgress {
        FakeProgress {
            at: pos(offset),
            flush_fails: false,
            flushes: 0,
            heartbeat: None,
        }
    }

    fn telemetry() -> Arc<Telemetry> {
        Arc::new(Telemetry::new("test", "sluice"))
    }

    #[test]
    fn a_position_is_stored_only_after_a_successful_flush() {
        let mut store = FakeStore::default();
        let mut c = Checkpointer::new(&mut store, pos(4), telemetry());
        let mut p = progress(100);
        p.flush_fails = true;
        let e = c.run(&mut p, true).unwrap_err();
        assert!(matches!(e, Error::Definite(_)), "{e:?}");
        assert_eq!(c.stored(), &pos(4));
        p.flush_fails = false;
        c.run(&mut p, true).unwrap();
        assert_eq!(c.stored(), &pos(100));
        drop(c);
        assert_eq!(store.written, [(pos(100), None)]);
    }

    #[test]
    fn not_more_often_than_due_unless_forced_and_never_unchanged() {
        let mut store = FakeStore::default();
        let mut c = Checkpointer::new(&mut store, pos(4), telemetry());
        let mut p = progress(100);
        c.run(&mut p, false).unwrap(); // just created: not due
        assert_eq!(
            c.wait_for_store(&pos(100)).map(|d| d <= CHECKPOINT_EVERY),
            Some(true)
        );
        c.run(&mut p, true).unwrap();
        c.run(&mut p, true).unwrap(); // unchanged: no second write
        assert_eq!(c.wait_for_store(&pos(100)), None);
        p.at = pos(200);
        c.last -= CHECKPOINT_EVERY;
        assert!(c.due());
        c.run(&mut p, false).unwrap();
        assert_eq!(p.flushes, 4, "every run flushes, stored or not");
        drop(c);
        assert_eq!(store.written.len(), 2);
        assert_eq!(store.written[1].0, pos(200));
    }

    #[test]
    fn the_final_state_says_stored_only_when_stored() {
        let mut store = FakeStore {
            answers: VecDeque::from([Err(StoreError::Timeout(Duration::from_secs(10)))]),
            ..Default::default()
        };
        let mut c = Checkpointer::new(&mut store, pos(4), telemetry());
        let mut p = progress(100);
        c.run(&mut p, true).unwrap(); // the store failed
        assert_eq!(c.final_state(&pos(100)), Final::Behind { stored: pos(4) });
        c.run(&mut p, true).unwrap();
        assert_eq!(c.final_state(&pos(100)), Final::Stored);
    }

    #[test]
    fn a_fenced_write_stops_and_other_failures_are_retried() {
        let mut store = FakeStore {
            answers: VecDeque::from([
                Err(StoreError::Timeout(Duration::from_secs(10))),
                Ok(()),
                Err(StoreError::Fenced {
                    client_id: "c".into(),
                    ours: 1,
                    theirs: 2,
                }),
            ]),
            ..Default::default()
        };
        let t = telemetry();
        let mut c = Checkpointer::new(&mut store, pos(4), t.clone());
        let mut p = progress(100);
        p.heartbeat = Some(42);
        c.run(&mut p, true).unwrap(); // timed out: kept for later
        assert_eq!(c.stored(), &pos(4));
        assert_eq!(t.position_store_failures.load(Relaxed), 1);
        c.run(&mut p, true).unwrap(); // retried, with the heartbeat kept
        assert_eq!(c.stored(), &pos(100));
        p.at = pos(300);
        match c.run(&mut p, true) {
            Err(Error::Fenced { theirs: 2, .. }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(c.stored(), &pos(100), "a fenced write moves nothing");
        drop(c);
        assert_eq!(store.written, [(pos(100), Some(42))]);
    }
}
