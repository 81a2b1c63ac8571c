//! Per-second figures (rows/s, events/s) and "recently" (producer failures,
//! rebuilds) from cumulative counters, sampled once a second: the status
//! page wants a number a person can read, not a counter to differentiate.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How far back the rates look.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);
/// How far back "recently" reaches (producer failures, rebuilds).
pub const RECENT_WINDOW: Duration = Duration::from_secs(60);

/// The counters at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at: Instant,
    pub rows: u64,
    pub events: u64,
    /// Messages the producer could not deliver.
    pub failed: u64,
    pub rebuilds: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    pub rows_per_second: f64,
    pub events_per_second: f64,
    /// Producer failures within RECENT_WINDOW.
    pub recent_failures: u64,
    /// Producer rebuilds within RECENT_WINDOW.
    pub recent_rebuilds: u64,
}

#[derive(Default)]
pub struct Sampler {
    samples: Mutex<VecDeque<Sample>>,
}

impl Sampler {
    pub fn record(&self, s: Sample) {
        let Ok(mut samples) = self.samples.lock() else {
            return;
        };
        // Keep one sample at or just beyond the window's far end.
        while samples.len() >= 2
            && samples
                .get(1)
                .is_some_and(|second| s.at.saturating_duration_since(second.at) >= RECENT_WINDOW)
        {
            samples.pop_front();
        }
        samples.push_back(s);
    }

    pub fn rates(&self) -> Rates {
        let Ok(samples) = self.samples.lock() else {
            return Rates::default();
        };
        let Some(last) = samples.back() else {
            return Rates::default();
        };
        // The oldest sample within RATE_WINDOW of the newest (or the one
        // right before it when sampling was late).
        let first_rate = samples
            .iter()
            .find(|s| last.at.saturating_duration_since(s.at) <= RATE_WINDOW)
            .unwrap_or(last);
        let secs = last
            .at
            .saturating_duration_since(first_rate.at)
            .as_secs_f64();
        let per_second = |a: u64, b: u64| {
            if secs > 0.0 {
                b.saturating_sub(a) as f64 / secs
            } else {
                0.0
            }
        };
        let first_recent = samples.front().unwrap_or(last);
        Rates {
            rows_per_second: per_second(first_rate.rows, last.rows),
            events_per_second: per_second(first_rate.events, last.events),
            recent_failures: last.failed.saturating_sub(first_recent.failed),
            recent_rebuilds: last.rebuilds.saturating_sub(first_recent.rebuilds),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, secs: u64, rows: u64, failed: u64) -> Sample {
        Sample {
            at: t0 + Duration::from_secs(secs),
            rows,
            events: rows * 2,
            failed,
            rebuilds: 0,
        }
    }

    #[test]
    fn rows_per_second_over_the_last_ten_seconds() {
        let s = Sampler::default();
        assert_eq!(s.rates(), Rates::default());
        let t0 = Instant::now();
        s.record(at(t0, 0, 0, 0));
        assert_eq!(s.rates().rows_per_second, 0.0, "one sample: no rate yet");
        // 1000 rows/s for 20 s, then 100 rows/s for 10 s.
        for i in 1..=20 {
            s.record(at(t0, i, i * 1000, 0));
        }
        assert_eq!(s.rates().rows_per_second, 1000.0);
        assert_eq!(s.rates().events_per_second, 2000.0);
        for i in 21..=30 {
            s.record(at(t0, i, 20_000 + (i - 20) * 100, 0));
        }
        assert_eq!(s.rates().rows_per_second, 100.0);
    }

    #[test]
    fn failures_count_for_a_minute_then_age_out() {
        let s = Sampler::default();
        let t0 = Instant::now();
        s.record(at(t0, 0, 0, 0));
        s.record(at(t0, 1, 0, 3));
        assert_eq!(s.rates().recent_failures, 3);
        for i in 2..=60 {
            s.record(at(t0, i, 0, 3));
        }
        assert_eq!(s.rates().recent_failures, 3, "within the minute");
        s.record(at(t0, 61, 0, 3));
        assert_eq!(s.rates().recent_failures, 0, "aged out");
        assert!(s.samples.lock().unwrap().len() <= 62, "bounded");
    }
}
