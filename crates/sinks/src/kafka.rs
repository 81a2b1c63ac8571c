//! The Kafka producer (feature `kafka`): librdkafka (bundled, ≥ 2.12, which
//! re-bootstraps when no known broker answers), idempotent, `acks=all` by
//! default, every `kafka.*` option passed through.
//!
//! Delivery is acknowledged: `send` enqueues, `flush` returns only when
//! every message sent so far is acknowledged by the broker, and the
//! position is stored only after a flush — so a row is never counted as
//! delivered before Kafka has it. librdkafka retries transient errors
//! itself (until `kafka.message.timeout.ms`, 300 s by default); a message
//! that fails definitively stops progress with an error, or goes to
//! `dead_letter_topic` as Maxwell's skeleton row when one is configured.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use crate::route::{self, KeyFormat, Partitioner};
use crate::{Message, ProducerStats, Sink, SinkError};

pub struct KafkaOptions {
    pub topic: String,
    pub ddl_topic: String,
    pub key_format: KeyFormat,
    pub partitioner: Partitioner,
    pub dead_letter_topic: Option<String>,
    /// librdkafka properties (`bootstrap.servers`, …).
    pub client: Vec<(String, String)>,
}

/// What a delivery report needs to name (and dead-letter) its message.
struct Pending {
    topic: String,
    key: Vec<u8>,
    database: String,
    table: String,
    skeleton: Vec<u8>,
    sent_at: Instant,
}

struct Failure {
    error: KafkaError,
    pending: Box<Pending>,
}

struct Context {
    failures: Mutex<Vec<Failure>>,
    stats: Arc<ProducerStats>,
}

impl ClientContext for Context {}

impl ProducerContext for Context {
    type DeliveryOpaque = Box<Pending>;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Box<Pending>) {
        match result {
            Ok(_) => {
                self.stats.acked.fetch_add(1, Relaxed);
                self.stats
                    .ack_latency_us
                    .fetch_add(pending.sent_at.elapsed().as_micros() as u64, Relaxed);
            }
            Err((error, _)) => {
                self.stats.failed.fetch_add(1, Relaxed);
                if let Ok(mut f) = self.failures.lock() {
                    f.push(Failure {
                        error: error.clone(),
                        pending,
                    });
                }
            }
        }
    }
}

pub struct KafkaSink {
    producer: ThreadedProducer<Context>,
    opts: KafkaOptions,
    partitions: HashMap<String, (i32, Instant)>,
    stats: Arc<ProducerStats>,
}

/// Partition counts are looked up again after this long (topics grow).
const PARTITIONS_TTL: Duration = Duration::from_secs(60);

fn err(message: String) -> SinkError {
    SinkError::Producer {
        producer: "kafka",
        message,
    }
}

/// Errors that a retry cannot fix: the message itself is refused.
fn is_definite(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::MessageBatchTooLarge
        )
    )
}

impl KafkaSink {
    pub fn new(opts: KafkaOptions, stats: Arc<ProducerStats>) -> Result<Self, SinkError> {
        let mut cfg = ClientConfig::new();
        // Maxwell-compatible safety defaults; kafka.* overrides them.
        cfg.set("acks", "all");
        cfg.set("enable.idempotence", "true");
        cfg.set("client.id", "sluice");
        for (k, v) in &opts.client {
            cfg.set(k, v);
        }
        let context = Context {
            failures: Mutex::new(Vec::new()),
            stats: stats.clone(),
        };
        let producer: ThreadedProducer<Context> =
            cfg.create_with_context(context).map_err(|e| {
                err(format!(
                    "cannot create the producer: {e} (check the kafka.* options)"
                ))
            })?;
        Ok(KafkaSink {
            producer,
            opts,
            partitions: HashMap::new(),
            stats,
        })
    }

    /// The topic's partition count, from the cluster's metadata; waits
    /// (retrying) while no broker answers.
    fn partition_count(&mut self, topic: &str) -> Result<i32, SinkError> {
        if let Some((n, at)) = self.partitions.get(topic) {
            if at.elapsed() < PARTITIONS_TTL {
                return Ok(*n);
            }
        }
        let mut attempt = 0u32;
        loop {
            let md = self
                .producer
                .client()
                .fetch_metadata(Some(topic), Duration::from_secs(10));
            match md {
                Ok(md) => {
                    let n = md
                        .topics()
                        .iter()
                        .find(|t| t.name() == topic)
                        .filter(|t| t.error().is_none())
                        .map(|t| t.partitions().len() as i32)
                        .unwrap_or(0);
                    if n > 0 {
                        self.partitions
                            .insert(topic.to_string(), (n, Instant::now()));
                        return Ok(n);
                    }
                    if attempt >= 20 {
                        return Err(err(format!(
                            "topic '{topic}' does not exist (or has no partitions) and was not created; create it or allow auto-creation"
                        )));
                    }
                }
                Err(e) => {
                    if attempt.is_multiple_of(10) {
                        tracing::warn!(topic, error = %e, "kafka: cannot read the topic's metadata; retrying");
                    }
                }
            }
            attempt += 1;
            self.stats.retried.fetch_add(1, Relaxed);
            std::thread::sleep(Duration::from_millis(200 * u64::from(attempt.min(10))));
        }
    }

    fn enqueue(
        &mut self,
        topic: &str,
        key: &[u8],
        payload: &[u8],
        partition: Option<i32>,
        pending: Box<Pending>,
    ) -> Result<(), (KafkaError, Box<Pending>)> {
        let mut record = BaseRecord::with_opaque_to(topic, pending)
            .key(key)
            .payload(payload);
        if let Some(p) = partition {
            record = record.partition(p);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    // The local queue is full: wait for acknowledgements.
                    self.stats.retried.fetch_add(1, Relaxed);
                    std::thread::sleep(Duration::from_millis(10));
                    record = r;
                }
                Err((e, r)) => return Err((e, r.delivery_opaque)),
            }
        }
    }

    /// A message Kafka refused for good: to the dead-letter topic, or an
    /// error that stops progress.
    fn refused(&mut self, error: &KafkaError, pending: &Pending) -> Result<(), SinkError> {
        let Some(dlq) = self.opts.dead_letter_topic.clone() else {
            return Err(err(format!(
                "topic '{}' refused a row of {}.{} for good: {error}. Progress stops here (the position is not moved past it); configure --dead_letter_topic to divert such rows, or fix the limit (e.g. kafka.message.max.bytes and the broker's)",
                pending.topic, pending.database, pending.table
            )));
        };
        tracing::warn!(topic = %pending.topic, table = %format!("{}.{}", pending.database, pending.table), error = %error,
            dead_letter_topic = %dlq, "kafka refused a row; sent to the dead-letter topic");
        self.stats.dead_lettered.fetch_add(1, Relaxed);
        let reason =
            serde_json::to_string(&error.to_string()).unwrap_or_else(|_| "\"refused\"".into());
        let json = insert_reason(&pending.skeleton, &reason);
        let key = pending.key.clone();
        let inner = Box::new(Pending {
            topic: dlq.clone(),
            key: key.clone(),
            database: pending.database.clone(),
            table: pending.table.clone(),
            skeleton: Vec::new(),
            sent_at: Instant::now(),
        });
        self.enqueue(&dlq, &key, &json, None, inner)
            .map_err(|(e, _)| err(format!("cannot send to the dead-letter topic '{dlq}': {e}")))
    }
}

/// Adds `"reason":…` after `"table":…` of a skeleton row.
fn insert_reason(skeleton: &[u8], reason: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(skeleton);
    match text.find(",\"data\":") {
        Some(i) => format!("{},\"reason\":{}{}", &text[..i], reason, &text[i..]).into_bytes(),
        None => skeleton.to_vec(),
    }
}

/// Maxwell's dead-letter row: database, table, and the primary key as
/// `data`.
fn skeleton(msg: &Message<'_>) -> Vec<u8> {
    let mut s = Vec::with_capacity(64);
    s.extend_from_slice(b"{\"database\":");
    s.extend_from_slice(&serde_json::to_vec(msg.database).unwrap_or_default());
    s.extend_from_slice(b",\"table\":");
    s.extend_from_slice(&serde_json::to_vec(msg.table).unwrap_or_default());
    s.extend_from_slice(b",\"data\":{");
    if let Some(pk) = msg.primary_key.as_ref() {
        for (i, (c, v)) in pk
            .columns
            .iter()
            .zip(route::split_json_array(pk.values_json))
            .enumerate()
        {
            if i > 0 {
                s.push(b',');
            }
            s.extend_from_slice(&serde_json::to_vec(c).unwrap_or_default());
            s.push(b':');
            s.extend_from_slice(&v);
        }
    }
    s.extend_from_slice(b"}}");
    s
}

fn uuid() -> String {
    let n: u128 = rand::random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        (n >> 96) as u32,
        (n >> 80) as u16,
        (n >> 64) as u16 & 0xfff,
        ((n >> 48) as u16 & 0x3fff) | 0x8000,
        n as u64 & 0xffff_ffff_ffff
    )
}

/// Maxwell's `random` partitioning hashes 10 random alphanumerics.
fn random_string() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 10)
}

impl Sink for KafkaSink {
    fn send(&mut self, msg: &Message<'_>) -> Result<(), SinkError> {
        let is_ddl = msg.kind.contains('-');
        let template = if is_ddl {
            &self.opts.ddl_topic
        } else {
            &self.opts.topic
        };
        let topic = route::render_template(template, msg);
        let key = route::key(self.opts.key_format, msg, uuid);
        let partitions = self.partition_count(&topic)?;
        let partition = self
            .opts
            .partitioner
            .partition(msg, partitions, &mut random_string);
        let pending = Box::new(Pending {
            topic: topic.clone(),
            key: key.clone(),
            database: msg.database.to_string(),
            table: msg.table.to_string(),
            skeleton: skeleton(msg),
            sent_at: Instant::now(),
        });
        self.stats.sent.fetch_add(1, Relaxed);
        self.stats.bytes.fetch_add(msg.json.len() as u64, Relaxed);
        match self.enqueue(&topic, &key, msg.json, Some(partition), pending) {
            Ok(()) => Ok(()),
            Err((e, pending)) if is_definite(&e) => {
                self.stats.failed.fetch_add(1, Relaxed);
                self.refused(&e, &pending)
            }
            Err((e, _)) => Err(err(format!(
                "cannot enqueue a message for topic '{topic}': {e}"
            ))),
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        loop {
            // Waits while brokers are away: librdkafka keeps retrying until
            // message.timeout.ms, then reports the failure below.
            let _ = self.producer.flush(Duration::from_secs(1));
            let failures: Vec<Failure> = match self.producer.context().failures.lock() {
                Ok(mut f) => std::mem::take(&mut *f),
                Err(_) => return Err(err("delivery bookkeeping is poisoned".into())),
            };
            for f in failures {
                if is_definite(&f.error) {
                    self.refused(&f.error, &f.pending)?;
                } else {
                    return Err(err(format!(
                        "a row of {}.{} for topic '{}' was not delivered: {} (after librdkafka's retries, kafka.message.timeout.ms)",
                        f.pending.database, f.pending.table, f.pending.topic, f.error
                    )));
                }
            }
            if self.producer.in_flight_count() == 0 {
                return Ok(());
            }
        }
    }
}
