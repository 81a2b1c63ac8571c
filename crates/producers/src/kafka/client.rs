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
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use super::security;
use super::KafkaOptions;
use crate::refusal::{self, Refused};
use crate::route;
use crate::{Message, Producer, ProducerError, ProducerStats};

/// Where a (database, table, kind) goes; shared by its messages.
struct Route {
    topic: String,
    database: String,
    table: String,
}

/// What a delivery report needs to name (and dead-letter) its message.
struct Pending {
    route: Arc<Route>,
    key: Vec<u8>,
    sent_at: Instant,
}

struct Failure {
    error: KafkaError,
    pending: Box<Pending>,
}

struct Context {
    failures: Mutex<Vec<Failure>>,
    stats: Arc<ProducerStats>,
    /// When each kind of client error was last logged: librdkafka repeats
    /// them every few milliseconds while brokers are down.
    logged: Mutex<HashMap<String, Instant>>,
    /// `kafka.debug` is set: librdkafka's debug lines are logged too.
    debug: bool,
    /// A TLS or SASL failure that retrying does not fix (librdkafka
    /// retries it for ever): it stops the producer.
    fatal: Mutex<Option<security::Failure>>,
}

/// A repeated client error is logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(10);

impl Context {
    fn should_log(&self, what: &str) -> bool {
        let Ok(mut logged) = self.logged.lock() else {
            return true;
        };
        match logged.get(what) {
            Some(at) if at.elapsed() < LOG_EVERY => false,
            _ => {
                logged.insert(what.to_string(), Instant::now());
                true
            }
        }
    }
}

impl ClientContext for Context {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        if matches!(
            level,
            L::Emerg | L::Alert | L::Critical | L::Error | L::Warning
        ) && self.should_log(fac)
        {
            tracing::warn!(facility = fac, "kafka client: {message}");
        } else if self.debug {
            tracing::info!(facility = fac, "kafka client: {message}");
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if let Some(why) = security::failure(error.rdkafka_error_code(), reason) {
            if let Ok(mut f) = self.fatal.lock() {
                f.get_or_insert(why);
            }
        }
        let kind = format!("{:?}", error.rdkafka_error_code());
        if self.should_log(&kind) {
            tracing::warn!(error = %error, "kafka client: {reason} (retrying; repeated messages are logged every {LOG_EVERY:?})");
        }
    }
}

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

pub struct KafkaProducer {
    producer: ThreadedProducer<Context>,
    opts: KafkaOptions,
    partitions: HashMap<String, (i32, Instant)>,
    /// Rendered topics by "kind\0database\0table" (templates are rendered
    /// once per table, not per row).
    routes: HashMap<String, Arc<Route>>,
    route_key: String,
    stats: Arc<ProducerStats>,
    /// Set when this producer is being replaced: `flush` gives up.
    abort: Arc<std::sync::atomic::AtomicBool>,
}

/// Partition counts are looked up again after this long (topics grow).
const PARTITIONS_TTL: Duration = Duration::from_secs(60);

fn err(message: String) -> ProducerError {
    ProducerError::Failed {
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

impl KafkaProducer {
    pub fn new(opts: KafkaOptions, stats: Arc<ProducerStats>) -> Result<Self, ProducerError> {
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
            logged: Mutex::new(HashMap::new()),
            debug: opts.client.iter().any(|(k, _)| k == "debug"),
            fatal: Mutex::new(None),
        };
        let producer: ThreadedProducer<Context> =
            cfg.create_with_context(context).map_err(|e| {
                err(format!(
                    "cannot create the producer: {e} (check the kafka.* options)"
                ))
            })?;
        Ok(KafkaProducer {
            producer,
            opts,
            partitions: HashMap::new(),
            routes: HashMap::new(),
            route_key: String::new(),
            stats,
            abort: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        })
    }

    /// A TLS or SASL failure that stops the producer, if one happened.
    fn fatal(&self) -> Result<(), ProducerError> {
        match self
            .producer
            .context()
            .fatal
            .lock()
            .ok()
            .and_then(|f| f.clone())
        {
            Some(why) => Err(err(security::explain(&why, &self.opts.client))),
            None => Ok(()),
        }
    }

    fn route(&mut self, msg: &Message<'_>) -> Arc<Route> {
        self.route_key.clear();
        for part in [msg.kind, msg.database, msg.table] {
            self.route_key.push_str(part);
            self.route_key.push('\0');
        }
        if let Some(r) = self.routes.get(self.route_key.as_str()) {
            return r.clone();
        }
        // DDL events (database-*, table-*) go to ddl_kafka_topic; rows,
        // bootstrap-* events included, to kafka_topic (as Maxwell).
        let template = if msg.kind.starts_with("database-") || msg.kind.starts_with("table-") {
            &self.opts.ddl_topic
        } else {
            &self.opts.topic
        };
        let r = Arc::new(Route {
            topic: route::render_template(template, msg),
            database: msg.database.to_string(),
            table: msg.table.to_string(),
        });
        self.routes.insert(self.route_key.clone(), r.clone());
        r
    }

    /// The topic's partition count, from the cluster's metadata; waits
    /// (retrying) while no broker answers.
    fn partition_count(&mut self, topic: &str) -> Result<i32, ProducerError> {
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
                    // Brokers away: a known count stays good (partitions are
                    // rarely added) and librdkafka queues the messages.
                    if let Some((n, _)) = self.partitions.get(topic) {
                        return Ok(*n);
                    }
                    if attempt.is_multiple_of(10) {
                        tracing::warn!(topic, error = %e, "kafka: cannot read the topic's metadata; retrying");
                    }
                }
            }
            self.fatal()?;
            if self.abort.load(Relaxed) {
                return Err(err(format!("abandoned while waiting for the metadata of topic '{topic}' (producer replaced)")));
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
    fn refused(&mut self, error: &KafkaError, pending: &Pending) -> Result<(), ProducerError> {
        let reason = error.to_string();
        let row = Refused {
            producer: "kafka",
            destination_kind: "topic",
            destination: &pending.route.topic,
            database: &pending.route.database,
            table: &pending.route.table,
            reason: &reason,
            fix: "fix the limit (e.g. kafka.message.max.bytes and the broker's)",
        };
        let Some(dlq) = self.opts.refusal.apply(&row, &self.stats)? else {
            return Ok(());
        };
        let dlq = dlq.to_string();
        let r = &pending.route;
        let json = skeleton(&r.database, &r.table, &pending.key, &reason);
        let key = pending.key.clone();
        let inner = Box::new(Pending {
            route: Arc::new(Route {
                topic: dlq.clone(),
                database: r.database.clone(),
                table: r.table.clone(),
            }),
            key: key.clone(),
            sent_at: Instant::now(),
        });
        self.enqueue(&dlq, &key, &json, None, inner)
            .map_err(|(e, _)| err(format!("cannot send to the dead-letter topic '{dlq}': {e}")))
    }
}

/// Maxwell's dead-letter row: `{"database","table","reason","data":{pk}}`,
/// the primary key read back from the message key (built only for the
/// rare refused row).
fn skeleton(database: &str, table: &str, key: &[u8], reason: &str) -> Vec<u8> {
    use serde_json::{Map, Value};
    let mut data = Map::new();
    match serde_json::from_slice::<Value>(key) {
        // hash: {"database":…,"table":…,"pk.id":1}
        Ok(Value::Object(m)) => {
            for (k, v) in m {
                if let Some(col) = k.strip_prefix("pk.") {
                    data.insert(col.to_string(), v);
                }
            }
        }
        // array: ["d","t",[{"id":1}]]
        Ok(Value::Array(a)) => {
            if let Some(Value::Array(pks)) = a.get(2) {
                for pk in pks {
                    if let Value::Object(m) = pk {
                        data.extend(m.clone());
                    }
                }
            }
        }
        _ => {}
    }
    let data = serde_json::to_vec(&Value::Object(data)).unwrap_or_else(|_| b"{}".to_vec());
    refusal::dead_letter_row(database, table, &data, reason)
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

impl Producer for KafkaProducer {
    fn abort_handle(&self) -> Option<Arc<std::sync::atomic::AtomicBool>> {
        Some(self.abort.clone())
    }

    /// Asks the cluster for its brokers once, so a certificate or a login
    /// the brokers refuse stops sluice at start; brokers that are merely
    /// away are waited for when rows arrive.
    fn prepare(&mut self) -> Result<(), ProducerError> {
        if let Err(e) = self
            .producer
            .client()
            .fetch_metadata(None, Duration::from_secs(5))
        {
            self.fatal()?;
            tracing::warn!(error = %e, "kafka: no broker answered yet; retrying when rows arrive");
        }
        Ok(())
    }

    fn send(&mut self, msg: &Message<'_>) -> Result<(), ProducerError> {
        let route = self.route(msg);
        let key = route::key(self.opts.key_format, msg, uuid);
        let partitions = self.partition_count(&route.topic)?;
        let partition = self
            .opts
            .partitioner
            .partition(msg, partitions, &mut random_string);
        let pending = Box::new(Pending {
            route: route.clone(),
            key: key.clone(),
            sent_at: Instant::now(),
        });
        self.stats.sent.fetch_add(1, Relaxed);
        self.stats.bytes.fetch_add(msg.json.len() as u64, Relaxed);
        match self.enqueue(&route.topic, &key, msg.json, Some(partition), pending) {
            Ok(()) => Ok(()),
            Err((e, pending)) if is_definite(&e) => {
                self.stats.failed.fetch_add(1, Relaxed);
                self.refused(&e, &pending)
            }
            Err((e, _)) => Err(err(format!(
                "cannot enqueue a message for topic '{}': {e}",
                route.topic
            ))),
        }
    }

    fn flush(&mut self) -> Result<(), ProducerError> {
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
                    return Err(ProducerError::Unconfirmed {
                        producer: "kafka",
                        message: format!(
                            "a row of {}.{} for topic '{}' was not delivered: {} (after librdkafka's retries, kafka.message.timeout.ms)",
                            f.pending.route.database, f.pending.route.table, f.pending.route.topic, f.error
                        ),
                    });
                }
            }
            if self.producer.in_flight_count() == 0 {
                return Ok(());
            }
            self.fatal()?;
            if self.abort.load(Relaxed) {
                // Replaced: what is not acknowledged is dropped here and
                // read again from the stored position by the next producer.
                let unacknowledged = self.producer.in_flight_count();
                self.producer
                    .purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
                return Err(err(format!(
                    "abandoned with {unacknowledged} messages unacknowledged (producer replaced)"
                )));
            }
        }
    }
}
