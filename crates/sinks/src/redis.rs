//! The Redis producer: Maxwell's `redis_type` (`pubsub`: PUBLISH, `xadd`:
//! XADD with the JSON under `redis_stream_json_key`, `lpush`, `rpush`) and
//! `redis_key` template, over a small RESP client of its own (no driver
//! crate needed for four commands).
//!
//! Delivery is acknowledged (see [`crate::acked`]): commands are pipelined,
//! and a batch counts as delivered only when the server has answered every
//! command. A lost connection, or a server that is loading, busy, out of
//! memory or read-only (a failover in progress) is retried on a new
//! connection and the batch sent again (at least once); any other error
//! answer (e.g. WRONGTYPE) is a refusal of that row.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::acked::{AckedOptions, AckedSink, Batch, Fault, Refusal, Wire};
use crate::conn::Conn;
use crate::{route, ProducerStats};

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
    pub refusal: Refusal,
}

pub type RedisSink = AckedSink<RedisWire>;

pub fn sink(opts: RedisOptions, stats: Arc<ProducerStats>) -> RedisSink {
    let acked = AckedOptions {
        template: opts.key.clone(),
        render: route::render_template,
        refusal: opts.refusal.clone(),
    };
    AckedSink::new(
        RedisWire {
            opts,
            conn: None,
            out: Vec::new(),
            line: Vec::new(),
        },
        acked,
        stats,
    )
}

pub struct RedisWire {
    opts: RedisOptions,
    conn: Option<Conn>,
    out: Vec<u8>,
    line: Vec<u8>,
}

fn resp_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// One reply: `Ok(None)` for a success, `Ok(Some(text))` for an error reply.
fn read_reply(conn: &mut Conn, line: &mut Vec<u8>) -> std::io::Result<Option<String>> {
    conn.read_line(line)?;
    let (kind, rest) = line.split_first().unwrap_or((&b'?', &[]));
    let number = || -> i64 {
        std::str::from_utf8(rest)
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(-1)
    };
    match kind {
        b'+' | b':' => Ok(None),
        b'-' => Ok(Some(String::from_utf8_lossy(rest).into_owned())),
        b'$' => {
            let n = number();
            if n >= 0 {
                let mut buf = vec![0u8; n as usize + 2];
                conn.read_exact(&mut buf)?;
            }
            Ok(None)
        }
        b'*' => {
            let mut first_error = None;
            for _ in 0..number().max(0) {
                let e = read_reply(conn, line)?;
                first_error = first_error.or(e);
            }
            Ok(first_error)
        }
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("unexpected reply '{}'", String::from_utf8_lossy(line)),
        )),
    }
}

/// Error replies that a retry fixes: a server loading its data, busy with a
/// script, out of memory until consumers catch up, or a replica/cluster in
/// transition.
fn is_transient(reply: &str) -> bool {
    [
        "LOADING",
        "BUSY",
        "MASTERDOWN",
        "TRYAGAIN",
        "CLUSTERDOWN",
        "OOM",
        "READONLY",
    ]
    .iter()
    .any(|p| reply.starts_with(p))
}

fn io_fault(e: std::io::Error) -> Fault {
    Fault::Transient(e.to_string())
}

impl Wire for RedisWire {
    const NAME: &'static str = "redis";

    fn endpoint(&self) -> String {
        format!("{}:{}", self.opts.host, self.opts.port)
    }

    fn is_connected(&self) -> bool {
        self.conn.as_ref().is_some_and(Conn::is_fresh)
    }

    fn connect(&mut self, abort: &Arc<AtomicBool>) -> Result<(), Fault> {
        let mut conn =
            Conn::open(&self.opts.host, self.opts.port, abort.clone()).map_err(io_fault)?;
        let mut hello = Vec::new();
        let mut n = 0;
        if let Some(pw) = &self.opts.auth {
            resp_command(&mut hello, &[b"AUTH", pw.as_bytes()]);
            n += 1;
        }
        if self.opts.database != 0 {
            let db = self.opts.database.to_string();
            resp_command(&mut hello, &[b"SELECT", db.as_bytes()]);
            n += 1;
        }
        if n > 0 {
            conn.write_all(&hello).map_err(io_fault)?;
            for _ in 0..n {
                match read_reply(&mut conn, &mut self.line).map_err(io_fault)? {
                    None => {}
                    Some(e) if is_transient(&e) => return Err(Fault::Transient(e)),
                    Some(e) => {
                        return Err(Fault::Definite(format!(
                        "the server refused the connection setup (redis_auth, redis_database): {e}"
                    )))
                    }
                }
            }
        }
        self.conn = Some(conn);
        Ok(())
    }

    fn disconnect(&mut self) {
        self.conn = None;
    }

    fn deliver(&mut self, batch: &Batch, refused: &mut Vec<(usize, String)>) -> Result<(), Fault> {
        self.out.clear();
        for item in &batch.items {
            let (key, json) = (batch.dest(item), batch.payload(item));
            let args: &[&[u8]] = match self.opts.kind {
                RedisType::PubSub => &[b"PUBLISH", key, json],
                RedisType::Lpush => &[b"LPUSH", key, json],
                RedisType::Rpush => &[b"RPUSH", key, json],
                RedisType::Xadd => &[
                    b"XADD",
                    key,
                    b"*",
                    self.opts.stream_json_key.as_bytes(),
                    json,
                ],
            };
            resp_command(&mut self.out, args);
        }
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| Fault::Transient("not connected".into()))?;
        conn.write_all(&self.out).map_err(io_fault)?;
        let mut transient = None;
        for i in 0..batch.len() {
            match read_reply(conn, &mut self.line).map_err(io_fault)? {
                None => {}
                // The whole batch goes again (the server is not ready).
                Some(e) if is_transient(&e) => {
                    transient.get_or_insert(e);
                }
                Some(e) => refused.push((i, e)),
            }
        }
        match transient {
            Some(e) => Err(Fault::Transient(format!("server not ready: {e}"))),
            None => Ok(()),
        }
    }
}
