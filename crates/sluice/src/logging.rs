//! Logging: where log lines go and how they look. Lines go to stderr, as
//! text (colours only when stderr is a terminal and `NO_COLOR` is unset) or
//! as one JSON object per line for log shippers (`log_format=json`).
//! Warnings and errors are also kept, the last [`RECENT_ERRORS`] of them,
//! for the status page.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::sync::Mutex;

use serde_json::{Map, Value};
use sluice_core::{declare_options, ConfigError, Opt, Section, Values};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

declare_options! { OPTIONS;
    LOG_LEVEL: String = Opt::new("log_level", Section::General, "info", "error | warn | info | debug | trace");
    LOG_FORMAT: String = Opt::new("log_format", Section::General, "text",
        "text | json (one object per line: timestamp, level, target, message, fields) for log shippers");
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogOptions {
    /// error | warn | info | debug | trace
    pub level: String,
    pub format: LogFormat,
}

impl LogOptions {
    pub fn from_options(v: &dyn Values) -> Result<LogOptions, ConfigError> {
        let level = LOG_LEVEL.get(v)?;
        if !matches!(
            level.as_str(),
            "error" | "warn" | "info" | "debug" | "trace"
        ) {
            return Err(LOG_LEVEL.error(
                v,
                format!("'{level}' is not one of error, warn, info, debug, trace"),
            ));
        }
        let format = match LOG_FORMAT.get(v)?.to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(LOG_FORMAT.error(v, format!("'{other}' is not text or json"))),
        };
        Ok(LogOptions { level, format })
    }

    /// Starts logging to stderr (once per process; later calls do nothing).
    pub fn init(&self) {
        let filter = tracing_subscriber::EnvFilter::new(format!("{},mysql_async=warn", self.level));
        let base = tracing_subscriber::registry()
            .with(filter)
            .with(RecentErrorsLayer(&RECENT));
        let _ = match self.format {
            LogFormat::Text => {
                let no_color = std::env::var("NO_COLOR").ok();
                let ansi = use_colour(std::io::stderr().is_terminal(), no_color.as_deref());
                base.with(
                    tracing_subscriber::fmt::layer()
                        .with_writer(std::io::stderr)
                        .with_ansi(ansi),
                )
                .try_init()
            }
            LogFormat::Json => base.with(JsonLayer).try_init(),
        };
    }
}

/// Colour escapes only for a person at a terminal: never into a file, a
/// pipe or a journal, and not when `NO_COLOR` is set to anything
/// (https://no-color.org).
pub fn use_colour(stderr_is_terminal: bool, no_color: Option<&str>) -> bool {
    stderr_is_terminal && no_color.is_none_or(str::is_empty)
}

/// One event's message and fields.
#[derive(Default)]
struct Fields {
    message: String,
    fields: Map<String, Value>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.fields
                .insert(field.name().into(), Value::String(format!("{value:?}")));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.fields.insert(field.name().into(), value.into());
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.insert(field.name().into(), value.into());
    }
}

fn fields_of(event: &Event<'_>) -> Fields {
    let mut f = Fields::default();
    event.record(&mut f);
    f
}

/// `log_format=json`: one object per line.
struct JsonLayer;

impl<S: Subscriber> Layer<S> for JsonLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let line = json_line(event.metadata(), fields_of(event), unix_millis());
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
    }
}

fn json_line(meta: &tracing::Metadata<'_>, f: Fields, at_ms: u64) -> String {
    let mut o = Map::new();
    o.insert("timestamp".into(), rfc3339_millis(at_ms).into());
    o.insert("level".into(), meta.level().as_str().into());
    o.insert("target".into(), meta.target().into());
    o.insert("message".into(), f.message.into());
    o.insert("fields".into(), Value::Object(f.fields));
    let mut line = Value::Object(o).to_string();
    line.push('\n');
    line
}

/// How many warnings and errors the status page shows.
pub const RECENT_ERRORS: usize = 20;

/// A warning or error as the status page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentError {
    pub at_ms: u64,
    pub level: &'static str,
    pub target: String,
    /// The message, then its fields as `name=value`.
    pub message: String,
}

/// The last warnings and errors, oldest first.
struct Ring(Mutex<VecDeque<RecentError>>);

impl Ring {
    const fn new() -> Self {
        Ring(Mutex::new(VecDeque::new()))
    }

    fn list(&self) -> Vec<RecentError> {
        self.0
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn remember(&self, e: RecentError) {
        if let Ok(mut r) = self.0.lock() {
            if r.len() >= RECENT_ERRORS {
                r.pop_front();
            }
            r.push_back(e);
        }
    }
}

static RECENT: Ring = Ring::new();

/// The last warnings and errors logged, oldest first.
pub fn recent_errors() -> Vec<RecentError> {
    RECENT.list()
}

struct RecentErrorsLayer(&'static Ring);

impl<S: Subscriber> Layer<S> for RecentErrorsLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() > Level::WARN {
            return;
        }
        let f = fields_of(event);
        let mut message = f.message;
        for (k, v) in &f.fields {
            let v = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            let _ = write!(message, " {k}={v}");
        }
        self.0.remember(RecentError {
            at_ms: unix_millis(),
            level: meta.level().as_str(),
            target: meta.target().to_string(),
            message,
        });
    }
}

fn unix_millis() -> u64 {
    crate::telemetry::unix_millis()
}

/// `2026-11-23T10:04:05.123Z` (UTC).
pub fn rfc3339_millis(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        unix_ms % 1000
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn colour_only_at_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some("")));
        assert!(!use_colour(true, Some("1")));
        assert!(!use_colour(false, None));
    }

    #[test]
    fn timestamps_are_utc_rfc3339() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(951_782_400_007), "2000-02-29T00:00:00.007Z");
        assert_eq!(
            rfc3339_millis(1_795_435_445_123),
            "2026-11-23T12:04:05.123Z"
        );
    }

    /// Captures what the JSON layer writes for events logged inside `f`,
    /// and what a ring of recent errors of its own keeps.
    fn capture(f: impl FnOnce()) -> (Vec<Value>, Vec<RecentError>) {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Lines(Arc<Mutex<Vec<String>>>);
        struct Capture(Lines);
        impl<S: Subscriber> Layer<S> for Capture {
            fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
                let line = json_line(event.metadata(), fields_of(event), 0);
                self.0 .0.lock().unwrap().push(line);
            }
        }
        let lines = Lines::default();
        let ring: &'static Ring = Box::leak(Box::new(Ring::new()));
        let subscriber = tracing_subscriber::registry()
            .with(Capture(lines.clone()))
            .with(RecentErrorsLayer(ring));
        tracing::subscriber::with_default(subscriber, f);
        let out = lines.0.lock().unwrap().clone();
        let json = out
            .iter()
            .map(|l| {
                assert!(l.ends_with('\n') && !l[..l.len() - 1].contains('\n'));
                serde_json::from_str(l).unwrap()
            })
            .collect();
        (json, ring.list())
    }

    #[test]
    fn json_lines_carry_level_target_message_and_fields() {
        let (lines, recent) = capture(|| {
            tracing::warn!(target: "sluice::test", retries = 3u64, host = %"db\n1", ok = true, "connection \"lost\"");
        });
        assert_eq!(lines.len(), 1);
        let l = &lines[0];
        assert_eq!(l["level"], "WARN");
        assert_eq!(l["target"], "sluice::test");
        assert_eq!(l["message"], "connection \"lost\"");
        assert_eq!(l["fields"]["retries"], 3);
        assert_eq!(l["fields"]["host"], "db\n1");
        assert_eq!(l["fields"]["ok"], true);
        assert_eq!(l["timestamp"], "1970-01-01T00:00:00.000Z");
        assert!(
            recent.iter().any(|e| e.level == "WARN"
                && e.message.contains("connection \"lost\"")
                && e.message.contains("retries=3")),
            "{recent:?}"
        );
    }

    #[test]
    fn only_warnings_and_errors_are_remembered_and_only_the_last_ones() {
        let (_, recent) = capture(|| {
            tracing::info!("an info line, not remembered");
            for i in 0..RECENT_ERRORS + 5 {
                tracing::error!(i, "failure");
            }
        });
        assert_eq!(recent.len(), RECENT_ERRORS);
        assert!(!recent.iter().any(|e| e.message.contains("an info line")));
        assert!(recent
            .iter()
            .any(|e| e.message == format!("failure i={}", RECENT_ERRORS + 4)));
    }
}
