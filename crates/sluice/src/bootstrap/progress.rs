//! The progress line of `sluice bootstrap` (Maxwell's utility's, with the
//! rate added): `N / TOTAL (P.PP%), R rows/s - HHh MMm SSs remaining`.

use std::time::{Duration, Instant};

/// `[D days ]HHh MMm SSs`.
pub fn hms(d: Duration) -> String {
    let s = d.as_secs();
    let (days, h, m, s) = (s / 86_400, (s / 3600) % 24, (s / 60) % 60, s % 60);
    let day = match days {
        0 => String::new(),
        1 => "1 day ".into(),
        n => format!("{n} days "),
    };
    format!("{day}{h:02}h {m:02}m {s:02}s")
}

/// Measures the rate from the first sample after the snapshot started.
pub struct Meter {
    first: Option<(Instant, u64)>,
}

/// The estimated time left is shown once the rate was measured this long.
const ETA_AFTER: Duration = Duration::from_secs(5);

impl Meter {
    pub fn new() -> Meter {
        Meter { first: None }
    }

    pub fn line(&mut self, rows: u64, total: u64) -> String {
        self.line_at(Instant::now(), rows, total)
    }

    fn line_at(&mut self, now: Instant, rows: u64, total: u64) -> String {
        let (t0, r0) = *self.first.get_or_insert((now, rows));
        let elapsed = now.saturating_duration_since(t0);
        let pct = if total > 0 {
            (rows as f64 * 100.0 / total as f64).min(100.0)
        } else {
            0.0
        };
        let mut line = format!("{rows} / {total} ({pct:.2}%)");
        if elapsed >= Duration::from_secs(1) {
            let rate = rows.saturating_sub(r0) as f64 / elapsed.as_secs_f64();
            line.push_str(&format!(", {rate:.0} rows/s"));
            if elapsed >= ETA_AFTER && rate > 0.0 && total > rows {
                let left = Duration::from_secs_f64((total - rows) as f64 / rate);
                line.push_str(&format!(" - {} remaining", hms(left)));
            }
        }
        line
    }
}

impl Default for Meter {
    fn default() -> Self {
        Meter::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_maxwell_prints_them() {
        assert_eq!(hms(Duration::from_secs(65)), "00h 01m 05s");
        assert_eq!(
            hms(Duration::from_secs(86_400 + 3_600)),
            "1 day 01h 00m 00s"
        );
        assert_eq!(hms(Duration::from_secs(3 * 86_400)), "3 days 00h 00m 00s");
    }

    #[test]
    fn rate_and_time_left_once_measured() {
        let mut m = Meter::new();
        let t0 = Instant::now();
        assert_eq!(m.line_at(t0, 1000, 100_000), "1000 / 100000 (1.00%)");
        assert_eq!(
            m.line_at(t0 + Duration::from_secs(2), 21_000, 100_000),
            "21000 / 100000 (21.00%), 10000 rows/s"
        );
        assert_eq!(
            m.line_at(t0 + Duration::from_secs(10), 101_000 - 10_000, 100_000),
            "91000 / 100000 (91.00%), 9000 rows/s - 00h 00m 01s remaining"
        );
        assert!(m.line_at(t0, 5, 0).starts_with("5 / 0 (0.00%)"));
    }
}
