//! A row a broker refuses for good (too large, a key of the wrong type, a
//! stream limit) is handled the same way by every producer: progress stops
//! (the default, so nothing is lost silently), or Maxwell's skeleton row
//! goes to a dead-letter destination, or the row is dropped and counted.

use std::sync::atomic::Ordering::Relaxed;

use sluice_core::json::{split_array, write_str};
use sluice_core::{declare_options, ConfigError, Opt, Section, Values};

use crate::{Message, ProducerError, ProducerStats};

declare_options! { OPTIONS;
    DEAD_LETTER_TOPIC: String = Opt::new("dead_letter_topic", Section::Producers, "",
        "a row the broker refuses for good goes here as Maxwell's skeleton (database, table, primary key, reason): a Kafka topic, Redis key, NATS subject or RabbitMQ routing key");
    IGNORE_PRODUCER_ERROR: bool = Opt::new("ignore_producer_error", Section::Producers, "false",
        "a row the broker refuses for good is logged, counted (producer_dropped_total) and skipped instead of stopping sluice");
}

/// What happens to a message the broker refuses for good.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Refusal {
    /// Progress stops with an error (the default: nothing is dropped
    /// silently).
    #[default]
    Stop,
    /// Maxwell's skeleton row (database, table, primary key, reason) goes
    /// to this destination (topic, key, subject or routing key) instead.
    DeadLetter(String),
    /// Logged, counted (`producer_dropped_total`) and skipped
    /// (`ignore_producer_error=true`).
    Drop,
}

impl Refusal {
    /// `dead_letter_topic`, `ignore_producer_error`, or stop.
    pub fn from_options(values: &dyn Values) -> Result<Refusal, ConfigError> {
        let dead_letter = DEAD_LETTER_TOPIC.get(values)?;
        let ignore = IGNORE_PRODUCER_ERROR.get(values)?;
        Ok(match (dead_letter.is_empty(), ignore) {
            (false, true) => return Err(IGNORE_PRODUCER_ERROR.error(values,
                "cannot be combined with --dead_letter_topic: refused rows either go to the dead-letter destination or are dropped; choose one")),
            (false, false) => Refusal::DeadLetter(dead_letter),
            (true, true) => Refusal::Drop,
            (true, false) => Refusal::Stop,
        })
    }

    /// Whether producers must keep each row's primary key until it is
    /// acknowledged (for the skeleton row).
    pub fn needs_primary_key(&self) -> bool {
        matches!(self, Refusal::DeadLetter(_))
    }

    /// Applies the policy to one refused row: `Ok(Some(destination))` when
    /// the caller must send the skeleton row there, `Ok(None)` when the row
    /// is dropped, `Err` when progress stops. Logs and counts.
    pub fn apply(
        &self,
        row: &Refused<'_>,
        stats: &ProducerStats,
    ) -> Result<Option<&str>, ProducerError> {
        let table = format!("{}.{}", row.database, row.table);
        match self {
            Refusal::Stop => Err(ProducerError::Failed {
                producer: row.producer,
                message: format!(
                    "{} '{}' refused a row of {table} for good: {}. Progress stops here (the position is not moved past it); set --dead_letter_topic to divert such rows, --ignore_producer_error=true to drop and count them, or {}",
                    row.destination_kind, row.destination, row.reason, row.fix
                ),
            }),
            Refusal::Drop => {
                stats.dropped.fetch_add(1, Relaxed);
                tracing::warn!(producer = row.producer, destination = %row.destination, table = %table,
                    reason = %row.reason, "the broker refused a row; dropped (ignore_producer_error)");
                Ok(None)
            }
            Refusal::DeadLetter(dlq) => {
                stats.dead_lettered.fetch_add(1, Relaxed);
                tracing::warn!(producer = row.producer, destination = %row.destination, table = %table,
                    reason = %row.reason, dead_letter = %dlq, "the broker refused a row; sent to the dead-letter destination");
                Ok(Some(dlq))
            }
        }
    }
}

/// A row a broker refused, as the producer knows it.
pub struct Refused<'a> {
    /// `kafka`, `redis`, …
    pub producer: &'static str,
    /// What a destination is called: `topic`, `key`, `subject`, `routing key`.
    pub destination_kind: &'static str,
    /// The topic, key, subject or routing key that refused it.
    pub destination: &'a str,
    pub database: &'a str,
    pub table: &'a str,
    pub reason: &'a str,
    /// The other way out, for the stop message ("fix the limit (…)").
    pub fix: &'a str,
}

/// Maxwell's dead-letter row for a message the broker refused:
/// `{"database":…,"table":…,"reason":…,"data":{primary key}}`.
pub fn dead_letter_row(database: &str, table: &str, pk_object: &[u8], reason: &str) -> Vec<u8> {
    let mut s = Vec::with_capacity(128 + pk_object.len());
    s.extend_from_slice(b"{\"database\":");
    write_str(&mut s, database);
    s.extend_from_slice(b",\"table\":");
    write_str(&mut s, table);
    s.extend_from_slice(b",\"reason\":");
    write_str(&mut s, reason);
    s.extend_from_slice(b",\"data\":");
    s.extend_from_slice(if pk_object.is_empty() {
        b"{}"
    } else {
        pk_object
    });
    s.push(b'}');
    s
}

/// `{"col":value,...}` from the message's primary key, appended to `out`.
pub fn pk_object(out: &mut Vec<u8>, msg: &Message<'_>) {
    out.push(b'{');
    if let Some(pk) = &msg.primary_key {
        for (n, (c, v)) in pk
            .columns
            .iter()
            .zip(split_array(pk.values_json))
            .enumerate()
        {
            if n > 0 {
                out.push(b',');
            }
            write_str(out, c);
            out.push(b':');
            out.extend_from_slice(v);
        }
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PrimaryKey;

    fn refused() -> Refused<'static> {
        Refused {
            producer: "test",
            destination_kind: "key",
            destination: "d.t",
            database: "d",
            table: "t",
            reason: "too large",
            fix: "raise the limit",
        }
    }

    #[test]
    fn stop_names_destination_table_reason_and_ways_out() {
        let stats = ProducerStats::default();
        let e = Refusal::Stop
            .apply(&refused(), &stats)
            .unwrap_err()
            .to_string();
        for part in [
            "key 'd.t' refused",
            "d.t for good",
            "too large",
            "--dead_letter_topic",
            "--ignore_producer_error=true",
            "raise the limit",
        ] {
            assert!(e.contains(part), "{part}: {e}");
        }
    }

    #[test]
    fn drop_and_dead_letter_are_counted() {
        let stats = ProducerStats::default();
        assert_eq!(Refusal::Drop.apply(&refused(), &stats).unwrap(), None);
        let dlq = Refusal::DeadLetter("dlq".into());
        assert_eq!(dlq.apply(&refused(), &stats).unwrap(), Some("dlq"));
        assert_eq!(stats.dropped.load(Relaxed), 1);
        assert_eq!(stats.dead_lettered.load(Relaxed), 1);
    }

    #[test]
    fn skeleton_row_as_maxwell_writes_it() {
        let cols = ["id".to_string(), "k".to_string()];
        let msg = Message {
            json: b"{}",
            database: "d",
            table: "t",
            kind: "insert",
            primary_key: Some(PrimaryKey {
                columns: &cols,
                values_json: br#"[1,"a\"b"]"#,
            }),
            partition_values: None,
            xid: None,
        };
        let mut pk = Vec::new();
        pk_object(&mut pk, &msg);
        assert_eq!(
            String::from_utf8(dead_letter_row("d", "t", &pk, "no")).unwrap(),
            r#"{"database":"d","table":"t","reason":"no","data":{"id":1,"k":"a\"b"}}"#
        );
        assert_eq!(
            dead_letter_row("d", "t", b"", "no"),
            br#"{"database":"d","table":"t","reason":"no","data":{}}"#
        );
    }
}
