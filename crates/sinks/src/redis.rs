//! The Redis producer: Maxwell's `redis_type` (`pubsub`: PUBLISH, `xadd`:
//! XADD with the JSON under `redis_stream_json_key`, `lpush`, `rpush`) and
//! `redis_key` template, over a small RESP client of its own (no driver
//! crate needed for four commands).
//!
//! Delivery is acknowledged: commands are pipelined, and `flush` returns
//! only when the server has answered every one of them. A lost connection
//! is re-opened with backoff and the unanswered commands are sent again (at
//! least once); an error answer (e.g. WRONGTYPE) is definite and stops
//! progress with a message.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::route;
use crate::{Message, ProducerStats, Sink, SinkError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisType {
    PubSub,
    Xadd,
    Lpush,
    Rpush,
}

impl RedisType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pubsub" => RedisType::PubSub,
            "xadd" => RedisType::Xadd,
            "lpush" => RedisType::Lpush,
            "rpush" => RedisType::Rpush,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    pub host: String,
    pub port: u16,
    pub auth: Option<String>,
    pub database: u32,
    pub key: String,
    pub kind: RedisType,
    pub stream_json_key: String,
}

pub struct RedisSink {
    opts: RedisOptions,
    conn: Option<BufReader<TcpStream>>,
    /// Encoded commands not yet answered, and how many.
    pending: Vec<u8>,
    pending_count: usize,
    sent_at: Option<Instant>,
    stats: Arc<ProducerStats>,
    abort: Arc<AtomicBool>,
}

/// Commands are sent once this many bytes are waiting (memory stays flat on
/// a huge transaction).
const PIPELINE_BYTES: usize = 1 << 20;
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn err(message: String) -> SinkError {
    SinkError::Producer {
        producer: "redis",
        message,
    }
}

fn resp_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// One reply; `Err(Ok(text))` is an error reply, `Err(Err(e))` an I/O error.
fn read_reply(r: &mut BufReader<TcpStream>) -> Result<(), Result<String, std::io::Error>> {
    let mut line = String::new();
    if r.read_line(&mut line).map_err(Err)? == 0 {
        return Err(Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed",
        )));
    }
    let line = line.trim_end();
    let (kind, rest) = line.split_at(line.len().min(1));
    match kind {
        "+" | ":" => Ok(()),
        "-" => Err(Ok(rest.to_string())),
        "$" => {
            let n: i64 = rest.parse().unwrap_or(-1);
            if n >= 0 {
                let mut buf = vec![0u8; n as usize + 2];
                r.read_exact(&mut buf).map_err(Err)?;
            }
            Ok(())
        }
        "*" => {
            let n: i64 = rest.parse().unwrap_or(-1);
            for _ in 0..n.max(0) {
                read_reply(r)?;
            }
            Ok(())
        }
        _ => Err(Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("unexpected reply '{line}'"),
        ))),
    }
}

/// Error replies that a retry fixes: a server loading its data, busy with a
/// script, or a cluster/replica in transition.
fn is_transient(reply: &str) -> bool {
    ["LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"]
        .iter()
        .any(|p| reply.starts_with(p))
}

impl RedisSink {
    pub fn new(opts: RedisOptions, stats: Arc<ProducerStats>) -> Self {
        RedisSink {
            opts,
            conn: None,
            pending: Vec::new(),
            pending_count: 0,
            sent_at: None,
            stats,
            abort: Arc::new(AtomicBool::new(false)),
        }
    }

    fn connect(&self) -> Result<BufReader<TcpStream>, Result<String, std::io::Error>> {
        use std::net::ToSocketAddrs;
        let addr = (self.opts.host.as_str(), self.opts.port)
            .to_socket_addrs()
            .map_err(Err)?
            .next()
            .ok_or_else(|| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no address",
                ))
            })?;
        let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(Err)?;
        s.set_read_timeout(Some(IO_TIMEOUT)).map_err(Err)?;
        s.set_write_timeout(Some(IO_TIMEOUT)).map_err(Err)?;
        s.set_nodelay(true).map_err(Err)?;
        let mut r = BufReader::new(s);
        let mut hello = Vec::new();
        let mut n = 0;
        if let Some(pw) = &self.opts.auth {
            resp_command(&mut hello, &[b"AUTH", pw.as_bytes()]);
            n += 1;
        }
        if self.opts.database != 0 {
            resp_command(
                &mut hello,
                &[b"SELECT", self.opts.database.to_string().as_bytes()],
            );
            n += 1;
        }
        if n > 0 {
            r.get_mut().write_all(&hello).map_err(Err)?;
            for _ in 0..n {
                read_reply(&mut r)?;
            }
        }
        Ok(r)
    }

    /// Sends the waiting commands and reads every answer; reconnects and
    /// sends them all again after a connection failure.
    fn deliver(&mut self) -> Result<(), SinkError> {
        if self.pending_count == 0 {
            return Ok(());
        }
        let mut attempt = 0u32;
        loop {
            let result = (|| {
                if self.conn.is_none() {
                    self.conn = Some(self.connect()?);
                }
                let conn = self
                    .conn
                    .as_mut()
                    .ok_or_else(|| Err(std::io::Error::other("no connection")))?;
                conn.get_mut().write_all(&self.pending).map_err(Err)?;
                let mut first_error = None;
                for _ in 0..self.pending_count {
                    match read_reply(conn) {
                        Ok(()) => {}
                        Err(Ok(e)) => {
                            first_error.get_or_insert(e);
                        }
                        Err(Err(io)) => return Err(Err(io)),
                    }
                }
                match first_error {
                    Some(e) => Err(Ok(e)),
                    None => Ok(()),
                }
            })();
            match result {
                Ok(()) => {
                    self.stats
                        .acked
                        .fetch_add(self.pending_count as u64, Relaxed);
                    if let Some(t) = self.sent_at.take() {
                        self.stats.ack_latency_us.fetch_add(
                            t.elapsed().as_micros() as u64 * self.pending_count as u64,
                            Relaxed,
                        );
                    }
                    self.pending.clear();
                    self.pending_count = 0;
                    return Ok(());
                }
                Err(Ok(reply)) if is_transient(&reply) => {
                    // The server is (re)starting or busy: like a lost
                    // connection, the whole batch goes again.
                    self.conn = None;
                    if self.abort.load(Relaxed) {
                        return Err(err(format!(
                            "abandoned with {} commands unanswered",
                            self.pending_count
                        )));
                    }
                    attempt += 1;
                    self.stats.retried.fetch_add(1, Relaxed);
                    if attempt == 1 || attempt.is_multiple_of(10) {
                        tracing::warn!(attempt, reply = %reply, "redis: server not ready; retrying");
                    }
                    std::thread::sleep(Duration::from_millis((100u64 << attempt.min(6)).min(5000)));
                }
                Err(Ok(reply)) => {
                    self.stats.failed.fetch_add(1, Relaxed);
                    return Err(err(format!(
                        "the server refused a command for key template '{}': {reply}. Progress stops here (the position is not moved past it)",
                        self.opts.key
                    )));
                }
                Err(Err(io)) => {
                    self.conn = None;
                    if self.abort.load(Relaxed) {
                        return Err(err(format!(
                            "abandoned with {} commands unanswered",
                            self.pending_count
                        )));
                    }
                    attempt += 1;
                    self.stats.retried.fetch_add(1, Relaxed);
                    if attempt == 1 || attempt.is_multiple_of(10) {
                        tracing::warn!(server = %format!("{}:{}", self.opts.host, self.opts.port), attempt, error = %io,
                            "redis: cannot deliver; reconnecting (unanswered commands are sent again)");
                    }
                    std::thread::sleep(Duration::from_millis((100u64 << attempt.min(6)).min(5000)));
                }
            }
        }
    }
}

impl Sink for RedisSink {
    fn send(&mut self, msg: &Message<'_>) -> Result<(), SinkError> {
        let key = route::render_template(&self.opts.key, msg);
        match self.opts.kind {
            RedisType::PubSub => {
                resp_command(&mut self.pending, &[b"PUBLISH", key.as_bytes(), msg.json])
            }
            RedisType::Lpush => {
                resp_command(&mut self.pending, &[b"LPUSH", key.as_bytes(), msg.json])
            }
            RedisType::Rpush => {
                resp_command(&mut self.pending, &[b"RPUSH", key.as_bytes(), msg.json])
            }
            RedisType::Xadd => resp_command(
                &mut self.pending,
                &[
                    b"XADD",
                    key.as_bytes(),
                    b"*",
                    self.opts.stream_json_key.as_bytes(),
                    msg.json,
                ],
            ),
        }
        self.pending_count += 1;
        self.sent_at.get_or_insert_with(Instant::now);
        self.stats.sent.fetch_add(1, Relaxed);
        self.stats.bytes.fetch_add(msg.json.len() as u64, Relaxed);
        if self.pending.len() >= PIPELINE_BYTES {
            self.deliver()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.deliver()
    }

    fn abort_handle(&self) -> Option<Arc<AtomicBool>> {
        Some(self.abort.clone())
    }
}
