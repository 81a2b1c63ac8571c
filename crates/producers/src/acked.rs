//! Acknowledged delivery for the producers that speak their broker's
//! protocol themselves (Redis, NATS, RabbitMQ). A protocol only knows how
//! to connect and how to send a batch and read every answer (the [`Wire`]);
//! this module owns what must be the same for all of them:
//!
//! - messages are kept in a batch until the broker has acknowledged them,
//!   and `flush` returns only when every message sent so far is
//!   acknowledged, so the position never moves past an unacknowledged row;
//! - a lost connection, a timeout or a broker that is not ready yet is
//!   retried with exponential backoff and jitter on a new connection, and
//!   the whole unacknowledged batch is sent again (at least once);
//! - a message the broker refuses for good stops progress with a message
//!   naming destination and table, unless the user chose to divert such
//!   rows to a dead-letter destination or to drop and count them;
//! - a refusal the broker does not attribute to one message (an AMQP
//!   channel closed under a batch) is narrowed down by sending the batch
//!   again one message at a time.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::conn::Link;
pub use crate::refusal::Refusal;
use crate::refusal::{self, Refused};
use crate::registry::{ProducerConfig, Routing};
use crate::{Message, Producer, ProducerError, ProducerStats};

/// Why a batch was not (entirely) acknowledged.
#[derive(Debug)]
pub enum Fault {
    /// Connection lost, timeout, broker not ready: reconnect, send again.
    Transient(String),
    /// Something in the batch was refused, but the broker did not say
    /// which message: send again one at a time to find it.
    Unattributed(String),
    /// Will not get better by retrying (authentication, a topology that
    /// contradicts the options): stop with this message.
    Definite(String),
}

/// One message of a batch; ranges into the batch's byte arena.
pub struct Item {
    pub dest: Range<usize>,
    pub payload: Range<usize>,
    database: Range<usize>,
    table: Range<usize>,
    /// `{"id":1}`, kept only when refused rows go to a dead-letter
    /// destination.
    pk: Range<usize>,
}

/// Messages waiting for their acknowledgement, in one arena (no allocation
/// per message).
#[derive(Default)]
pub struct Batch {
    bytes: Vec<u8>,
    pub items: Vec<Item>,
}

impl Batch {
    fn push(&mut self, dest: &[u8], msg: &Message<'_>, keep_pk: bool) {
        let dest = self.add(dest);
        let payload = self.add(msg.json);
        let database = self.add(msg.database.as_bytes());
        let table = self.add(msg.table.as_bytes());
        let start = self.bytes.len();
        if keep_pk {
            refusal::pk_object(&mut self.bytes, msg);
        }
        let pk = start..self.bytes.len();
        self.items.push(Item {
            dest,
            payload,
            database,
            table,
            pk,
        });
    }

    fn add(&mut self, data: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        start..self.bytes.len()
    }

    pub fn dest(&self, i: &Item) -> &[u8] {
        &self.bytes[i.dest.clone()]
    }

    pub fn payload(&self, i: &Item) -> &[u8] {
        &self.bytes[i.payload.clone()]
    }

    fn text(&self, r: &Range<usize>) -> &str {
        std::str::from_utf8(&self.bytes[r.clone()]).unwrap_or("?")
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.items.clear();
    }

    fn single(&self, i: &Item) -> Batch {
        let mut b = Batch::default();
        let dest = b.add(self.dest(i));
        let payload = b.add(self.payload(i));
        let database = b.add(&self.bytes[i.database.clone()]);
        let table = b.add(&self.bytes[i.table.clone()]);
        let pk = b.add(&self.bytes[i.pk.clone()]);
        b.items.push(Item {
            dest,
            payload,
            database,
            table,
            pk,
        });
        b
    }
}

/// A broker protocol: connect, and deliver a batch.
pub trait Wire: Send {
    /// For messages: `redis`, `nats`, `rabbitmq`.
    const NAME: &'static str;
    /// What a destination is called: `key`, `subject`, `routing key`.
    const DESTINATION: &'static str;
    /// Where the broker is, for messages.
    fn endpoint(&self) -> String;
    /// The wire's connection.
    fn link(&self) -> &Link;
    fn link_mut(&mut self) -> &mut Link;
    fn is_connected(&self) -> bool {
        self.link().is_open()
    }
    /// Opens (and sets up) a new connection.
    fn connect(&mut self, abort: &Arc<AtomicBool>) -> Result<(), Fault>;
    fn disconnect(&mut self) {
        self.link_mut().close();
    }
    /// Sends every message and waits until the broker has answered each;
    /// the ones it refused for good are listed in `refused` with the
    /// reason (the others count as acknowledged).
    fn deliver(&mut self, batch: &Batch, refused: &mut Vec<(usize, String)>) -> Result<(), Fault>;
}

/// The configuration of a producer built on this core: its wire, the
/// template of its destinations and its refusal policy. Wrapped in
/// [`Acked`], it is a registered producer configuration.
pub trait AckedConfig: std::fmt::Debug + Send + Sync {
    type Wire: Wire + 'static;
    /// A new, unconnected wire.
    fn wire(&self) -> Self::Wire;
    /// Destination template (key, subject, routing key).
    fn template(&self) -> &str;
    /// Renders the template for a message.
    fn render(&self) -> fn(&str, &Message<'_>) -> String {
        crate::route::render_template
    }
    fn refusal(&self) -> &Refusal;
}

/// An [`AckedConfig`] as a producer configuration.
#[derive(Debug)]
pub struct Acked<C>(pub C);

impl<C: AckedConfig> ProducerConfig for Acked<C> {
    fn name(&self) -> &'static str {
        C::Wire::NAME
    }

    fn build(&self, stats: Arc<ProducerStats>) -> Result<Box<dyn Producer>, ProducerError> {
        let opts = AckedOptions {
            template: self.0.template().to_string(),
            render: self.0.render(),
            refusal: self.0.refusal().clone(),
        };
        Ok(Box::new(AckedProducer::new(self.0.wire(), opts, stats)))
    }

    fn routing(&self) -> Routing {
        Routing {
            primary_key: self.0.refusal().needs_primary_key(),
            partition_columns: Vec::new(),
        }
    }
}

/// Options of every acknowledging producer of this module.
pub struct AckedOptions {
    /// Destination template (key, subject, routing key).
    pub template: String,
    /// Renders the template for a message.
    pub render: fn(&str, &Message<'_>) -> String,
    pub refusal: Refusal,
}

pub struct AckedProducer<W: Wire> {
    wire: W,
    opts: AckedOptions,
    batch: Batch,
    refused: Vec<(usize, String)>,
    /// Rendered destinations by "kind\0database\0table".
    dests: HashMap<String, String>,
    dest_key: String,
    sent_at: Option<Instant>,
    stats: Arc<ProducerStats>,
    abort: Arc<AtomicBool>,
}

/// A batch is delivered once it holds this many bytes or messages (memory
/// stays flat on a huge transaction).
const BATCH_BYTES: usize = 1 << 20;
const BATCH_MESSAGES: usize = 4096;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl<W: Wire> AckedProducer<W> {
    pub fn new(wire: W, opts: AckedOptions, stats: Arc<ProducerStats>) -> Self {
        AckedProducer {
            wire,
            opts,
            batch: Batch::default(),
            refused: Vec::new(),
            dests: HashMap::new(),
            dest_key: String::new(),
            sent_at: None,
            stats,
            abort: Arc::new(AtomicBool::new(false)),
        }
    }

    fn err(message: String) -> ProducerError {
        ProducerError::Failed {
            producer: W::NAME,
            message,
        }
    }

    /// The rendered destination of a message (templates are rendered once
    /// per table, not per row); a function of the fields it uses, so the
    /// batch can be filled while it is borrowed.
    fn destination<'d>(
        dests: &'d mut HashMap<String, String>,
        key: &mut String,
        opts: &AckedOptions,
        msg: &Message<'_>,
    ) -> &'d str {
        key.clear();
        for part in [msg.kind, msg.database, msg.table] {
            key.push_str(part);
            key.push('\0');
        }
        if !dests.contains_key(key.as_str()) {
            dests.insert(key.clone(), (opts.render)(&opts.template, msg));
        }
        dests
            .get(key.as_str())
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// Delivers `batch` until every message is acknowledged or settled by
    /// the refusal policy; retries transient faults on new connections.
    fn deliver(&mut self, batch: &Batch) -> Result<(), ProducerError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut attempt = 0u32;
        loop {
            self.refused.clear();
            let result = if self.wire.is_connected() {
                Ok(())
            } else {
                self.wire.connect(&self.abort)
            }
            .and_then(|()| self.wire.deliver(batch, &mut self.refused));
            match result {
                Ok(()) => {
                    let refused = std::mem::take(&mut self.refused);
                    let acked = batch.len().saturating_sub(refused.len()) as u64;
                    self.stats.acked.fetch_add(acked, Relaxed);
                    if let Some(t) = self.sent_at {
                        self.stats
                            .ack_latency_us
                            .fetch_add(t.elapsed().as_micros() as u64 * acked, Relaxed);
                    }
                    if attempt > 0 {
                        tracing::info!(producer = W::NAME, server = %self.wire.endpoint(), attempts = attempt + 1, "delivered again");
                    }
                    return self.settle(batch, refused);
                }
                Err(Fault::Definite(e)) => {
                    self.wire.disconnect();
                    self.stats.failed.fetch_add(1, Relaxed);
                    return Err(Self::err(format!(
                        "{e} (server {}). Progress stops here: the position is not moved past the undelivered rows",
                        self.wire.endpoint()
                    )));
                }
                Err(Fault::Unattributed(e)) if batch.len() > 1 => {
                    tracing::warn!(producer = W::NAME, error = %e, messages = batch.len(),
                        "the server refused a message of the batch; sending it again one message at a time");
                    self.wire.disconnect();
                    for item in &batch.items {
                        self.deliver(&batch.single(item))?;
                    }
                    return Ok(());
                }
                Err(Fault::Unattributed(e)) => {
                    self.wire.disconnect();
                    return self.settle(batch, vec![(0, e)]);
                }
                Err(Fault::Transient(e)) => {
                    self.wire.disconnect();
                    if self.abort.load(Relaxed) {
                        return Err(Self::err(format!(
                            "abandoned with {} messages unacknowledged ({e})",
                            batch.len()
                        )));
                    }
                    attempt += 1;
                    self.stats.retried.fetch_add(1, Relaxed);
                    if attempt == 1 || attempt.is_multiple_of(10) {
                        tracing::warn!(producer = W::NAME, server = %self.wire.endpoint(), attempt, error = %e,
                            "cannot deliver; reconnecting (unacknowledged messages are sent again)");
                    }
                    backoff(attempt, &self.abort);
                }
            }
        }
    }

    /// Applies the refusal policy to the refused messages of a batch.
    fn settle(
        &mut self,
        batch: &Batch,
        refused: Vec<(usize, String)>,
    ) -> Result<(), ProducerError> {
        if refused.is_empty() {
            return Ok(());
        }
        let mut letters = Batch::default();
        for (i, reason) in refused {
            let Some(item) = batch.items.get(i) else {
                continue;
            };
            self.stats.failed.fetch_add(1, Relaxed);
            let dest = String::from_utf8_lossy(batch.dest(item));
            let row = Refused {
                producer: W::NAME,
                destination_kind: W::DESTINATION,
                destination: &dest,
                database: batch.text(&item.database),
                table: batch.text(&item.table),
                reason: &reason,
                fix: "fix the cause",
            };
            if let Some(dlq) = self.opts.refusal.apply(&row, &self.stats)? {
                let json = refusal::dead_letter_row(
                    row.database,
                    row.table,
                    &batch.bytes[item.pk.clone()],
                    &reason,
                );
                let msg = Message {
                    json: &json,
                    database: row.database,
                    table: row.table,
                    kind: "dead-letter",
                    primary_key: None,
                    partition_values: None,
                    xid: None,
                };
                letters.push(dlq.as_bytes(), &msg, false);
            }
        }
        if letters.is_empty() {
            return Ok(());
        }
        // A dead letter that is refused too stops progress.
        let policy = std::mem::take(&mut self.opts.refusal);
        let r = self.deliver(&letters);
        self.opts.refusal = policy;
        r
    }
}

/// Sleeps 100 ms · 2^attempt (at most 5 s) with ±25 % jitter, waking early
/// when aborted.
fn backoff(attempt: u32, abort: &AtomicBool) {
    let base = Duration::from_millis(100u64 << attempt.min(6)).min(MAX_BACKOFF);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = 0.75 + 0.5 * f64::from(nanos % 1000) / 1000.0;
    let until = Instant::now() + base.mul_f64(jitter);
    while Instant::now() < until && !abort.load(Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl<W: Wire> Producer for AckedProducer<W> {
    fn send(&mut self, msg: &Message<'_>) -> Result<(), ProducerError> {
        let keep_pk = self.opts.refusal.needs_primary_key();
        let dest = Self::destination(&mut self.dests, &mut self.dest_key, &self.opts, msg);
        self.batch.push(dest.as_bytes(), msg, keep_pk);
        self.sent_at.get_or_insert_with(Instant::now);
        self.stats.sent.fetch_add(1, Relaxed);
        self.stats.bytes.fetch_add(msg.json.len() as u64, Relaxed);
        if self.batch.bytes.len() >= BATCH_BYTES || self.batch.len() >= BATCH_MESSAGES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ProducerError> {
        let mut batch = std::mem::take(&mut self.batch);
        let r = self.deliver(&batch);
        // A failed batch is kept: nothing of it counts as delivered.
        if r.is_ok() {
            batch.clear();
            self.sent_at = None;
        }
        self.batch = batch;
        r
    }

    fn prepare(&mut self) -> Result<(), ProducerError> {
        match self.wire.connect(&self.abort) {
            Ok(()) => Ok(()),
            Err(Fault::Definite(e)) => {
                Err(Self::err(format!("{e} (server {})", self.wire.endpoint())))
            }
            Err(Fault::Transient(e) | Fault::Unattributed(e)) => {
                tracing::warn!(producer = W::NAME, server = %self.wire.endpoint(), error = %e,
                    "cannot connect yet; retrying when rows arrive");
                Ok(())
            }
        }
    }

    fn abort_handle(&self) -> Option<Arc<AtomicBool>> {
        Some(self.abort.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PrimaryKey;

    type Respond = Box<dyn FnMut(&Batch) -> Result<Vec<(usize, String)>, Fault> + Send>;

    /// A wire whose answers a test scripts; it records every batch as
    /// (destination, payload) pairs.
    struct Scripted {
        respond: Respond,
        delivered: Delivered,
        connected: bool,
        /// Unused: the scripted wire keeps its own connected flag.
        link: Link,
    }

    impl Wire for Scripted {
        const NAME: &'static str = "scripted";
        const DESTINATION: &'static str = "key";
        fn endpoint(&self) -> String {
            "test".into()
        }
        fn link(&self) -> &Link {
            &self.link
        }
        fn link_mut(&mut self) -> &mut Link {
            &mut self.link
        }
        fn is_connected(&self) -> bool {
            self.connected
        }
        fn connect(&mut self, _: &Arc<AtomicBool>) -> Result<(), Fault> {
            self.connected = true;
            Ok(())
        }
        fn disconnect(&mut self) {
            self.connected = false;
        }
        fn deliver(
            &mut self,
            batch: &Batch,
            refused: &mut Vec<(usize, String)>,
        ) -> Result<(), Fault> {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            self.delivered.lock().unwrap().push(
                batch
                    .items
                    .iter()
                    .map(|i| (text(batch.dest(i)), text(batch.payload(i))))
                    .collect(),
            );
            refused.extend((self.respond)(batch)?);
            Ok(())
        }
    }

    type Delivered = Arc<std::sync::Mutex<Vec<Vec<(String, String)>>>>;

    fn producer(
        refusal: Refusal,
        respond: Respond,
    ) -> (AckedProducer<Scripted>, Delivered, Arc<ProducerStats>) {
        let delivered = Delivered::default();
        let stats = Arc::new(ProducerStats::default());
        let wire = Scripted {
            respond,
            delivered: delivered.clone(),
            connected: false,
            link: Link::default(),
        };
        let opts = AckedOptions {
            template: "%{database}.%{table}".into(),
            render: crate::route::render_template,
            refusal,
        };
        (
            AckedProducer::new(wire, opts, stats.clone()),
            delivered,
            stats,
        )
    }

    fn send_rows(s: &mut AckedProducer<Scripted>, ids: &[i64]) {
        let cols = ["id".to_string()];
        for id in ids {
            let json = format!("{{\"id\":{id}}}");
            let values = format!("[{id}]");
            let msg = Message {
                json: json.as_bytes(),
                database: "d",
                table: "t",
                kind: "insert",
                primary_key: Some(PrimaryKey {
                    columns: &cols,
                    values_json: values.as_bytes(),
                }),
                partition_values: None,
                xid: None,
            };
            s.send(&msg).unwrap();
        }
    }

    fn count(c: &std::sync::atomic::AtomicU64) -> u64 {
        c.load(Relaxed)
    }

    #[test]
    fn a_transient_fault_sends_the_whole_batch_again() {
        let mut calls = 0;
        let (mut s, delivered, stats) = producer(
            Refusal::Stop,
            Box::new(move |_| {
                calls += 1;
                if calls == 1 {
                    Err(Fault::Transient("connection reset".into()))
                } else {
                    Ok(vec![])
                }
            }),
        );
        send_rows(&mut s, &[1, 2, 3]);
        s.flush().unwrap();
        let d = delivered.lock().unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0], d[1]);
        assert_eq!(d[1].len(), 3);
        assert_eq!(d[1][0], ("d.t".to_string(), "{\"id\":1}".to_string()));
        assert_eq!((count(&stats.acked), count(&stats.retried)), (3, 1));
        drop(d);
        // Delivered means gone: the next flush sends nothing again.
        s.flush().unwrap();
        assert_eq!(delivered.lock().unwrap().len(), 2);
    }

    #[test]
    fn a_refused_row_stops_by_default_and_nothing_counts_as_delivered() {
        let (mut s, _, stats) = producer(
            Refusal::Stop,
            Box::new(|_| Ok(vec![(1, "too large".into())])),
        );
        send_rows(&mut s, &[1, 2, 3]);
        let e = s.flush().unwrap_err().to_string();
        assert!(
            e.contains("'d.t' refused a row of d.t for good: too large"),
            "{e}"
        );
        assert!(
            e.contains("--dead_letter_topic") && e.contains("--ignore_producer_error"),
            "{e}"
        );
        assert_eq!(count(&stats.failed), 1);
        // The batch is kept: a later flush would deliver it again.
        assert_eq!(s.batch.len(), 3);
    }

    #[test]
    fn a_refused_row_goes_to_the_dead_letter_destination() {
        let (mut s, delivered, stats) = producer(
            Refusal::DeadLetter("dlq".into()),
            Box::new(|b: &Batch| {
                Ok(if b.len() == 3 {
                    vec![(1, "too large".into())]
                } else {
                    vec![]
                })
            }),
        );
        send_rows(&mut s, &[1, 2, 3]);
        s.flush().unwrap();
        let d = delivered.lock().unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].len(), 1);
        assert_eq!(d[1][0].0, "dlq");
        let letter: serde_json::Value = serde_json::from_str(&d[1][0].1).unwrap();
        assert_eq!(
            letter,
            serde_json::json!({"database": "d", "table": "t", "reason": "too large", "data": {"id": 2}})
        );
        assert_eq!((count(&stats.acked), count(&stats.dead_lettered)), (3, 1));
    }

    #[test]
    fn a_refused_row_is_dropped_and_counted_when_asked() {
        let (mut s, delivered, stats) =
            producer(Refusal::Drop, Box::new(|_| Ok(vec![(0, "no".into())])));
        send_rows(&mut s, &[1, 2]);
        s.flush().unwrap();
        assert_eq!(delivered.lock().unwrap().len(), 1);
        assert_eq!((count(&stats.acked), count(&stats.dropped)), (1, 1));
    }

    #[test]
    fn an_unattributed_refusal_is_narrowed_to_its_message() {
        // The broker refuses any batch holding id 2, without saying which.
        let (mut s, delivered, stats) = producer(
            Refusal::Drop,
            Box::new(|b: &Batch| {
                if b.items.iter().any(|i| b.payload(i) == b"{\"id\":2}") {
                    Err(Fault::Unattributed("channel closed".into()))
                } else {
                    Ok(vec![])
                }
            }),
        );
        send_rows(&mut s, &[1, 2, 3]);
        s.flush().unwrap();
        let d = delivered.lock().unwrap();
        let sizes: Vec<usize> = d.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![3, 1, 1, 1]);
        assert_eq!((count(&stats.acked), count(&stats.dropped)), (2, 1));
    }

    #[test]
    fn a_definite_fault_stops_without_retrying() {
        let (mut s, delivered, stats) = producer(
            Refusal::Drop,
            Box::new(|_| Err(Fault::Definite("bad login".into()))),
        );
        send_rows(&mut s, &[1]);
        let e = s.flush().unwrap_err().to_string();
        assert!(
            e.contains("bad login") && e.contains("Progress stops here"),
            "{e}"
        );
        assert_eq!(delivered.lock().unwrap().len(), 1);
        assert_eq!(count(&stats.retried), 0);
    }

    #[test]
    fn an_abandoned_producer_stops_retrying() {
        let (mut s, _, _) = producer(
            Refusal::Stop,
            Box::new(|_| Err(Fault::Transient("refused".into()))),
        );
        let abort = s.abort_handle().unwrap();
        send_rows(&mut s, &[1]);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            abort.store(true, Relaxed);
        });
        let began = Instant::now();
        let e = s.flush().unwrap_err().to_string();
        t.join().unwrap();
        assert!(
            e.contains("abandoned with 1 messages unacknowledged"),
            "{e}"
        );
        assert!(began.elapsed() < Duration::from_secs(3));
    }
}
