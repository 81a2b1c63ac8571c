//! The RabbitMQ producer: Maxwell's `rabbitmq_*` options (exchange and its
//! type, durability and auto-delete, declared or not; `%db%`/`%table%`
//! routing-key template; persistent messages) over AMQP 0-9-1, spoken here
//! (connection, one channel, exchange declaration, publisher confirms:
//! no driver crate).
//!
//! Delivery is acknowledged with publisher confirms: a batch counts as
//! delivered only when the broker has confirmed every message (for
//! persistent messages routed to durable queues: written to disk). A nack,
//! a lost connection or a broker shutting down sends the batch again on a
//! new connection (at least once). A channel the broker closes under a
//! batch (e.g. a message over `max_message_size`) is narrowed down to the
//! message by sending again one at a time, and that message is refused.
//! Like Maxwell, messages are not `mandatory` unless `rabbitmq_mandatory`
//! is set: then a row routed to no queue comes back (basic.return, named
//! by its batch index as message-id) and is refused instead of discarded.
//!
//! TLS: `rabbitmq_use_ssl=true` (Maxwell's switch) or an `amqps://`
//! `rabbitmq_uri` turns it on, verifying the broker's certificate and name
//! (`rabbitmq_ssl`, default VERIFY_IDENTITY then; Maxwell's Java client
//! trusted any certificate), against `rabbitmq_ssl_ca`, with an optional
//! client certificate (`rabbitmq_ssl_cert`, `rabbitmq_ssl_key`).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use sluice_core::{declare_options, Opt, Section};

use crate::acked::{Acked, AckedConfig, AckedProducer, Batch, Fault, Refusal, Wire};
use crate::conn::{io_fault, Conn, Link};
use crate::registry::Registration;
use crate::tls::TlsOpts;
use crate::Message;
use sluice_secure::tls::TlsOptions;

const SECTION: Section = Section::Producer("rabbitmq");

declare_options! { OPTIONS;
    RABBITMQ_HOST: String = Opt::new("rabbitmq_host", SECTION, "localhost", "RabbitMQ host");
    RABBITMQ_PORT: u16 = Opt::new("rabbitmq_port", SECTION, "5672", "RabbitMQ port");
    RABBITMQ_USER: String = Opt::new("rabbitmq_user", SECTION, "guest", "RabbitMQ user");
    RABBITMQ_PASS: String = Opt::new("rabbitmq_pass", SECTION, "guest", "RabbitMQ password").secret();
    RABBITMQ_VIRTUAL_HOST: String = Opt::new("rabbitmq_virtual_host", SECTION, "/", "RabbitMQ virtual host");
    RABBITMQ_URI: String = Opt::new("rabbitmq_uri", SECTION, "",
        "amqp://user:pass@host:port/vhost, or amqps:// for TLS; overrides host, port, user, pass and virtual host").secret();
    RABBITMQ_HANDSHAKE_TIMEOUT: u64 = Opt::new("rabbitmq_handshake_timeout", SECTION, "10000",
        "RabbitMQ connection handshake timeout, ms");
    RABBITMQ_EXCHANGE: String = Opt::new("rabbitmq_exchange", SECTION, "maxwell", "exchange rows are published to");
    RABBITMQ_EXCHANGE_TYPE: String = Opt::new("rabbitmq_exchange_type", SECTION, "fanout",
        "type of the exchange when sluice declares it: fanout | direct | topic | headers");
    RABBITMQ_EXCHANGE_DURABLE: bool = Opt::new("rabbitmq_exchange_durable", SECTION, "false", "declare the exchange durable");
    RABBITMQ_EXCHANGE_AUTODELETE: bool = Opt::new("rabbitmq_exchange_autodelete", SECTION, "false",
        "declare the exchange auto-delete");
    RABBITMQ_ROUTING_KEY_TEMPLATE: String = Opt::new("rabbitmq_routing_key_template", SECTION, "%db%.%table%",
        "routing key; %db% and %table% are replaced");
    RABBITMQ_MESSAGE_PERSISTENT: bool = Opt::new("rabbitmq_message_persistent", SECTION, "false",
        "publish persistent messages (delivery mode 2)");
    RABBITMQ_MANDATORY: bool = Opt::new("rabbitmq_mandatory", SECTION, "false",
        "publish mandatory: a row the exchange routes to no queue is returned and refused (stop, dead letter or drop) instead of discarded by the broker (Maxwell: false)");
    RABBITMQ_DECLARE_EXCHANGE: bool = Opt::new("rabbitmq_declare_exchange", SECTION, "true",
        "declare the exchange at connect (false: it must exist)");
    RABBITMQ_USE_SSL: bool = Opt::new("rabbitmq_use_ssl", SECTION, "false",
        "TLS to RabbitMQ (Maxwell's switch; an amqps:// rabbitmq_uri does the same); verified as rabbitmq_ssl says, VERIFY_IDENTITY unless set");
    RABBITMQ_SSL: String = Opt::new("rabbitmq_ssl", SECTION, "DISABLED",
        "TLS to RabbitMQ: DISABLED | REQUIRED (encrypted, any certificate, as Maxwell's useSslProtocol) | VERIFY_CA (signed by rabbitmq_ssl_ca) | VERIFY_IDENTITY (and issued for the host); with rabbitmq_use_ssl=true or amqps://, DISABLED means VERIFY_IDENTITY");
    RABBITMQ_SSL_CA: String = Opt::new("rabbitmq_ssl_ca", SECTION, "",
        "PEM file of the CA(s) that sign the broker's certificate (default: the public root CAs)");
    RABBITMQ_SSL_CERT: String = Opt::new("rabbitmq_ssl_cert", SECTION, "",
        "PEM client certificate, for a broker with fail_if_no_peer_cert (with rabbitmq_ssl_key)");
    RABBITMQ_SSL_KEY: String = Opt::new("rabbitmq_ssl_key", SECTION, "", "PEM private key of rabbitmq_ssl_cert");
}

const TLS: TlsOpts = TlsOpts {
    ssl: RABBITMQ_SSL,
    ca: RABBITMQ_SSL_CA,
    cert: RABBITMQ_SSL_CERT,
    key: RABBITMQ_SSL_KEY,
};

pub const REGISTRATION: Registration = Registration {
    name: "rabbitmq",
    options: OPTIONS,
    passthrough: None,
    configure: |values| Ok(Arc::new(Acked(configure(values)?))),
};

fn configure(values: &dyn sluice_core::Values) -> Result<RabbitOptions, sluice_core::ConfigError> {
    let kind = RABBITMQ_EXCHANGE_TYPE.get(values)?;
    if !["fanout", "direct", "topic", "headers"].contains(&kind.as_str()) && !kind.starts_with("x-")
    {
        return Err(RABBITMQ_EXCHANGE_TYPE.error(
            values,
            format!("'{kind}' is not fanout, direct, topic, headers or a plugin's x-… type"),
        ));
    }
    let mut o = RabbitOptions {
        host: RABBITMQ_HOST.get(values)?,
        port: RABBITMQ_PORT.get(values)?,
        user: RABBITMQ_USER.get(values)?,
        password: RABBITMQ_PASS.get(values)?,
        virtual_host: RABBITMQ_VIRTUAL_HOST.get(values)?,
        exchange: RABBITMQ_EXCHANGE.get(values)?,
        exchange_type: kind,
        durable: RABBITMQ_EXCHANGE_DURABLE.get(values)?,
        auto_delete: RABBITMQ_EXCHANGE_AUTODELETE.get(values)?,
        declare: RABBITMQ_DECLARE_EXCHANGE.get(values)?,
        routing_key: RABBITMQ_ROUTING_KEY_TEMPLATE.get(values)?,
        persistent: RABBITMQ_MESSAGE_PERSISTENT.get(values)?,
        mandatory: RABBITMQ_MANDATORY.get(values)?,
        handshake_timeout: Duration::from_millis(RABBITMQ_HANDSHAKE_TIMEOUT.get(values)?.max(1)),
        refusal: Refusal::from_options(values)?,
        tls: TlsOptions::default(),
    };
    let uri = RABBITMQ_URI.get(values)?;
    let mut tls_asked = RABBITMQ_USE_SSL.get(values)?;
    if !uri.is_empty() {
        // The URI may hold a password: the message does not repeat it.
        tls_asked |= apply_uri(&mut o, &uri).map_err(|m| RABBITMQ_URI.error(values, m))?;
    }
    o.tls = TLS.read(values, tls_asked)?;
    Ok(o)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RabbitOptions {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub virtual_host: String,
    pub exchange: String,
    pub exchange_type: String,
    pub durable: bool,
    pub auto_delete: bool,
    pub declare: bool,
    pub routing_key: String,
    pub persistent: bool,
    /// Publish `mandatory`: a row the exchange routes to no queue comes
    /// back (basic.return) and is refused instead of discarded.
    pub mandatory: bool,
    pub handshake_timeout: Duration,
    pub refusal: Refusal,
    pub tls: TlsOptions,
}

/// `amqp[s]://user:password@host:port/vhost` (Maxwell's `rabbitmq_uri`):
/// fills the connection fields it names; returns whether it asks for TLS
/// (`amqps://`, port 5671 by default). The vhost is percent-decoded (`%2f`
/// is `/`); an empty path is the default vhost `/`.
pub fn apply_uri(opts: &mut RabbitOptions, uri: &str) -> Result<bool, String> {
    let (tls, rest) = match uri.split_once("://") {
        Some(("amqp", rest)) => (false, rest),
        Some(("amqps", rest)) => (true, rest),
        _ => return Err("does not start with amqp:// or amqps://".to_string()),
    };
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (rest, None),
    };
    let (auth, hostport) = match authority.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, authority),
    };
    // Errors never quote the user, password or port: without an `@` a
    // password can stand where the port is expected.
    if let Some(a) = auth {
        let (u, p) = a.split_once(':').unwrap_or((a, ""));
        opts.user = percent_decode(u).map_err(|_| "the user has a bad percent escape (%XX)")?;
        opts.password =
            percent_decode(p).map_err(|_| "the password has a bad percent escape (%XX)")?;
    }
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse().map_err(|_| {
                "the port is not a number (amqp://user:password@host:port/vhost)".to_string()
            })?,
        ),
        None if tls => (hostport, 5671),
        None => (hostport, 5672),
    };
    if !host.is_empty() {
        opts.host = host.to_string();
    }
    opts.port = port;
    opts.virtual_host = match path {
        None | Some("") => "/".into(),
        Some(p) => percent_decode(p)?,
    };
    Ok(tls)
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape in '{s}'"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("'{s}' is not UTF-8"))
}

/// Maxwell's routing key: `%db%` and `%table%` replaced.
pub fn render_routing_key(template: &str, msg: &Message<'_>) -> String {
    template
        .replace("%db%", msg.database)
        .replace("%table%", msg.table)
}

pub type RabbitProducer = AckedProducer<RabbitWire>;

impl AckedConfig for RabbitOptions {
    type Wire = RabbitWire;

    fn wire(&self) -> RabbitWire {
        RabbitWire {
            opts: self.clone(),
            link: Link::default(),
            frame_max: 131_072,
            next_tag: 1,
            out: Vec::new(),
            frame: Vec::new(),
            published: 0,
        }
    }

    fn template(&self) -> &str {
        &self.routing_key
    }

    fn render(&self) -> fn(&str, &Message<'_>) -> String {
        render_routing_key
    }

    fn refusal(&self) -> &Refusal {
        &self.refusal
    }
}

pub struct RabbitWire {
    opts: RabbitOptions,
    link: Link,
    frame_max: usize,
    /// Delivery tag of the next publish on the channel.
    next_tag: u64,
    out: Vec<u8>,
    frame: Vec<u8>,
    /// Messages published of the batch being delivered.
    published: usize,
}

// Frame types and the methods used (class, method).
const METHOD: u8 = 1;
const HEADER: u8 = 2;
const BODY: u8 = 3;
const FRAME_END: u8 = 0xCE;
const CONNECTION_START: (u16, u16) = (10, 10);
const CONNECTION_START_OK: (u16, u16) = (10, 11);
const CONNECTION_TUNE: (u16, u16) = (10, 30);
const CONNECTION_TUNE_OK: (u16, u16) = (10, 31);
const CONNECTION_OPEN: (u16, u16) = (10, 40);
const CONNECTION_OPEN_OK: (u16, u16) = (10, 41);
const CONNECTION_CLOSE: (u16, u16) = (10, 50);
const CONNECTION_CLOSE_OK: (u16, u16) = (10, 51);
const CONNECTION_BLOCKED: (u16, u16) = (10, 60);
const CONNECTION_UNBLOCKED: (u16, u16) = (10, 61);
const CHANNEL_OPEN: (u16, u16) = (20, 10);
const CHANNEL_OPEN_OK: (u16, u16) = (20, 11);
const CHANNEL_CLOSE: (u16, u16) = (20, 40);
const CHANNEL_CLOSE_OK: (u16, u16) = (20, 41);
const EXCHANGE_DECLARE: (u16, u16) = (40, 10);
const EXCHANGE_DECLARE_OK: (u16, u16) = (40, 11);
const CONFIRM_SELECT: (u16, u16) = (85, 10);
const CONFIRM_SELECT_OK: (u16, u16) = (85, 11);
const BASIC_PUBLISH: (u16, u16) = (60, 40);
const BASIC_RETURN: (u16, u16) = (60, 50);
const BASIC_ACK: (u16, u16) = (60, 80);
const BASIC_NACK: (u16, u16) = (60, 120);
const CHANNEL: u16 = 1;

/// AMQP field encodings, appended to a buffer.
trait Put {
    fn u8(&mut self, v: u8) -> &mut Self;
    fn u16(&mut self, v: u16) -> &mut Self;
    fn u32(&mut self, v: u32) -> &mut Self;
    fn u64(&mut self, v: u64) -> &mut Self;
    fn short_str(&mut self, s: &[u8]) -> &mut Self;
    fn long_str(&mut self, s: &[u8]) -> &mut Self;
}

impl Put for Vec<u8> {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn short_str(&mut self, s: &[u8]) -> &mut Self {
        self.push(s.len().min(255) as u8);
        self.extend_from_slice(&s[..s.len().min(255)]);
        self
    }
    fn long_str(&mut self, s: &[u8]) -> &mut Self {
        self.u32(s.len() as u32);
        self.extend_from_slice(s);
        self
    }
}

/// Appends one frame whose payload `fill` writes.
fn frame(out: &mut Vec<u8>, kind: u8, channel: u16, fill: impl FnOnce(&mut Vec<u8>)) {
    out.u8(kind).u16(channel).u32(0);
    let start = out.len();
    fill(out);
    let len = (out.len() - start) as u32;
    out[start - 4..start].copy_from_slice(&len.to_be_bytes());
    out.push(FRAME_END);
}

fn method(
    out: &mut Vec<u8>,
    channel: u16,
    (class, id): (u16, u16),
    args: impl FnOnce(&mut Vec<u8>),
) {
    frame(out, METHOD, channel, |o| {
        o.u16(class).u16(id);
        args(o);
    });
}

/// Reads fields of a received method.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
    }
    fn short_str(&mut self) -> Option<String> {
        let n = self.u8()? as usize;
        self.take(n)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// A method received: its id and its arguments.
struct Received<'a> {
    id: (u16, u16),
    args: Cursor<'a>,
}

/// (reply code, reply text) of a Connection.Close or Channel.Close.
fn close_reason(args: &mut Cursor<'_>) -> (u16, String) {
    let code = args.u16().unwrap_or(0);
    let text = args.short_str().unwrap_or_default();
    (code, text)
}

/// Publisher confirms of one batch. Delivery tags are consecutive from
/// `first`; a confirm marks its tag, a `multiple` one every tag up to it.
struct Confirms {
    first: u64,
    done: Vec<bool>,
    /// Every tag below `first + lowest` is confirmed.
    lowest: usize,
    unconfirmed: usize,
    nacked: usize,
}

impl Confirms {
    fn new(first: u64, count: usize) -> Self {
        Confirms {
            first,
            done: vec![false; count],
            lowest: 0,
            unconfirmed: count,
            nacked: 0,
        }
    }

    fn apply(&mut self, tag: u64, multiple: bool, nack: bool) {
        // A confirm of an earlier batch, or beyond this one, names nothing
        // of it (tags past the last are read as the last).
        let Some(upto) = tag.checked_sub(self.first).map(|i| i as usize) else {
            return;
        };
        let upto = upto.min(self.done.len().saturating_sub(1));
        let from = if multiple { self.lowest } else { upto };
        for d in self.done.get_mut(from..=upto).unwrap_or_default() {
            if !*d {
                *d = true;
                self.unconfirmed -= 1;
                self.nacked += usize::from(nack);
            }
        }
        while self.done.get(self.lowest) == Some(&true) {
            self.lowest += 1;
        }
    }
}

/// The message-id (the batch index) of a returned message's header frame.
fn returned_index(header: &[u8]) -> Option<usize> {
    let mut c = Cursor(header);
    c.take(12)?; // class, weight, body size
    let flags = c.u16()?;
    // Properties in flag order, up to message-id (0x0080).
    for bit in [
        0x8000u16, 0x4000, 0x2000, 0x1000, 0x0800, 0x0400, 0x0200, 0x0100,
    ] {
        if flags & bit == 0 {
            continue;
        }
        match bit {
            0x2000 => {
                let n = c.u32()? as usize; // headers table
                c.take(n)?;
            }
            0x1000 | 0x0800 => {
                c.u8()?;
            }
            _ => {
                c.short_str()?;
            }
        }
    }
    if flags & 0x0080 == 0 {
        return None;
    }
    c.short_str()?.parse().ok()
}

impl RabbitWire {
    fn send_out(&mut self) -> Result<(), Fault> {
        let out = std::mem::take(&mut self.out);
        let r = self.link.get()?.write_all(&out).map_err(io_fault);
        self.out = out;
        self.out.clear();
        r
    }

    /// Reads the next frame into `self.frame`; returns its type and channel.
    fn read_frame(&mut self) -> Result<(u8, u16), Fault> {
        let mut head = [0u8; 7];
        self.link.get()?.read_exact(&mut head).map_err(io_fault)?;
        let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
        if size > (16 << 20).max(self.frame_max) {
            return Err(Fault::Transient(format!(
                "frame of {size} bytes from the broker: not AMQP 0-9-1?"
            )));
        }
        let mut frame = std::mem::take(&mut self.frame);
        frame.resize(size + 1, 0);
        let r = self.link.get()?.read_exact(&mut frame).map_err(io_fault);
        self.frame = frame;
        r?;
        if self.frame.pop() != Some(FRAME_END) {
            return Err(Fault::Transient("bad frame end from the broker".into()));
        }
        Ok((head[0], u16::from_be_bytes([head[1], head[2]])))
    }

    /// The next method frame (other frames, e.g. heartbeats, are skipped).
    fn read_method(&mut self) -> Result<Received<'_>, Fault> {
        loop {
            let (kind, _) = self.read_frame()?;
            if kind == METHOD && self.frame.len() >= 4 {
                let mut c = Cursor(&self.frame);
                let id = (c.u16().unwrap_or(0), c.u16().unwrap_or(0));
                return Ok(Received {
                    id,
                    args: Cursor(&self.frame[4..]),
                });
            }
        }
    }

    /// Waits for `expected` during setup; a close instead is definite
    /// (the options contradict the broker), except a broker shutting down.
    fn expect(&mut self, expected: (u16, u16), doing: &str) -> Result<Vec<u8>, Fault> {
        let declare_hint = if doing.starts_with("declaring") {
            " (an existing exchange must have the same rabbitmq_exchange_type, rabbitmq_exchange_durable and rabbitmq_exchange_autodelete; or set rabbitmq_declare_exchange=false)"
        } else {
            ""
        };
        loop {
            let m = self.read_method()?;
            let id = m.id;
            let mut args = m.args;
            match id {
                id if id == expected => return Ok(args.0.to_vec()),
                CONNECTION_CLOSE | CHANNEL_CLOSE => {
                    let (code, text) = close_reason(&mut args);
                    let ok = if id == CONNECTION_CLOSE {
                        CONNECTION_CLOSE_OK
                    } else {
                        CHANNEL_CLOSE_OK
                    };
                    let chan = if id == CONNECTION_CLOSE { 0 } else { CHANNEL };
                    method(&mut self.out, chan, ok, |_| {});
                    let _ = self.send_out();
                    return Err(if code == 320 {
                        Fault::Transient(format!("the broker is shutting down: {text}"))
                    } else {
                        Fault::Definite(format!(
                            "the broker refused {doing}: {code} {text}{declare_hint}"
                        ))
                    });
                }
                CONNECTION_BLOCKED | CONNECTION_UNBLOCKED => {}
                other => {
                    return Err(Fault::Transient(format!(
                        "unexpected method {other:?} while {doing}"
                    )))
                }
            }
        }
    }
}

impl Wire for RabbitWire {
    const NAME: &'static str = "rabbitmq";
    const DESTINATION: &'static str = "routing key";

    fn endpoint(&self) -> String {
        format!("{}:{}", self.opts.host, self.opts.port)
    }

    fn link(&self) -> &Link {
        &self.link
    }

    fn link_mut(&mut self) -> &mut Link {
        &mut self.link
    }

    fn connect(&mut self, abort: &Arc<AtomicBool>) -> Result<(), Fault> {
        let o = &self.opts;
        let conn = Conn::open_secured(&o.host, o.port, &o.tls, o.handshake_timeout, abort.clone())?;
        self.link.set(conn);
        let r = self.handshake();
        match &r {
            Ok(()) => self.link.get()?.set_deadline(crate::conn::READ_DEADLINE),
            Err(_) => self.link.close(),
        }
        r
    }

    fn deliver(&mut self, batch: &Batch, refused: &mut Vec<(usize, String)>) -> Result<(), Fault> {
        self.out.clear();
        self.published = 0;
        let first = self.next_tag;
        let body_max = self.frame_max - 8;
        // content-type, delivery-mode when persistent, and the batch index
        // as message-id when mandatory (a returned message names itself).
        let flags: u16 = 0x8000
            | if self.opts.persistent { 0x1000 } else { 0 }
            | if self.opts.mandatory { 0x0080 } else { 0 };
        let mut index = itoa::Buffer::new();
        for (i, item) in batch.items.iter().enumerate() {
            let (key, body) = (batch.dest(item), batch.payload(item));
            if key.len() > 255 {
                refused.push((
                    i,
                    format!("the routing key is {} bytes; AMQP allows 255", key.len()),
                ));
                continue;
            }
            method(&mut self.out, CHANNEL, BASIC_PUBLISH, |o| {
                o.u16(0)
                    .short_str(self.opts.exchange.as_bytes())
                    .short_str(key)
                    .u8(u8::from(self.opts.mandatory));
            });
            frame(&mut self.out, HEADER, CHANNEL, |o| {
                o.u16(60).u16(0).u64(body.len() as u64).u16(flags);
                o.short_str(b"application/json");
                if self.opts.persistent {
                    o.u8(2);
                }
                if self.opts.mandatory {
                    o.short_str(index.format(i).as_bytes());
                }
            });
            for chunk in body.chunks(body_max) {
                frame(&mut self.out, BODY, CHANNEL, |o| o.extend_from_slice(chunk));
            }
            self.published += 1;
            self.next_tag += 1;
        }
        if self.published == 0 {
            return Ok(());
        }
        self.send_out()?;
        let mut confirms = Confirms::new(first, self.published);
        while confirms.unconfirmed > 0 {
            let m = self.read_method()?;
            let id = m.id;
            let mut args = m.args;
            match id {
                BASIC_ACK | BASIC_NACK => {
                    let tag = args.u64().unwrap_or(0);
                    let multiple = args.u8().unwrap_or(0) & 1 == 1;
                    confirms.apply(tag, multiple, id == BASIC_NACK);
                }
                BASIC_RETURN => {
                    // Unroutable: the returned message (its header frame
                    // follows) carries its batch index as message-id. Its
                    // confirm comes after, and counts it as answered.
                    let (code, text) = close_reason(&mut args);
                    let (kind, _) = self.read_frame()?;
                    let i = (kind == HEADER)
                        .then(|| returned_index(&self.frame))
                        .flatten()
                        .filter(|&i| i < batch.len());
                    match i {
                        Some(i) => refused.push((
                            i,
                            format!(
                                "no queue is bound for routing key '{}' on exchange '{}' ({code} {text}; rabbitmq_mandatory)",
                                String::from_utf8_lossy(batch.dest(&batch.items[i])),
                                self.opts.exchange
                            ),
                        )),
                        None => {
                            return Err(Fault::Unattributed(format!(
                                "the broker returned a message: {code} {text}"
                            )))
                        }
                    }
                }
                CHANNEL_CLOSE => {
                    let (code, text) = close_reason(&mut args);
                    method(&mut self.out, CHANNEL, CHANNEL_CLOSE_OK, |_| {});
                    let _ = self.send_out();
                    return Err(match code {
                        // The exchange is gone: declaring it again fixes that.
                        404 if self.opts.declare => Fault::Transient(format!("{code} {text}")),
                        404 => Fault::Definite(format!(
                            "exchange '{}' does not exist: {text} (declare it, or set rabbitmq_declare_exchange=true)",
                            self.opts.exchange
                        )),
                        403 => Fault::Definite(format!("the broker refused publishing: {code} {text} (check the user's permissions)")),
                        // 406 (e.g. a message over max_message_size) and
                        // the like: one message of the batch.
                        _ => Fault::Unattributed(format!("the broker closed the channel: {code} {text}")),
                    });
                }
                CONNECTION_CLOSE => {
                    let (code, text) = close_reason(&mut args);
                    method(&mut self.out, 0, CONNECTION_CLOSE_OK, |_| {});
                    let _ = self.send_out();
                    return Err(Fault::Transient(format!(
                        "the broker closed the connection: {code} {text}"
                    )));
                }
                CONNECTION_BLOCKED => {
                    // A resource alarm: the broker holds the publishes until
                    // it clears. A blocked connection is not a dead one, so
                    // the read deadline is lifted meanwhile (an abort still
                    // wakes the wait).
                    let reason = args.short_str().unwrap_or_default();
                    tracing::warn!(server = %self.endpoint(), reason = %reason,
                        "rabbitmq: the broker blocks publishing (a resource alarm); waiting for it to clear");
                    self.link
                        .get()?
                        .set_deadline(Duration::from_secs(365 * 86_400));
                }
                CONNECTION_UNBLOCKED => {
                    tracing::info!(server = %self.endpoint(), "rabbitmq: the broker unblocked publishing");
                    self.link.get()?.set_deadline(crate::conn::READ_DEADLINE);
                }
                _ => {}
            }
        }
        if confirms.nacked > 0 {
            return Err(Fault::Transient(format!(
                "the broker nacked {} messages (an internal error, or a full queue rejecting publishes)",
                confirms.nacked
            )));
        }
        Ok(())
    }
}

impl RabbitWire {
    fn handshake(&mut self) -> Result<(), Fault> {
        self.out.clear();
        self.out.extend_from_slice(b"AMQP\x00\x00\x09\x01");
        self.send_out()?;
        self.expect(CONNECTION_START, "the connection")?;
        let user = self.opts.user.clone();
        let password = self.opts.password.clone();
        method(&mut self.out, 0, CONNECTION_START_OK, |o| {
            let mut props = Vec::new();
            props.short_str(b"product").u8(b'S').long_str(b"sluice");
            props
                .short_str(b"version")
                .u8(b'S')
                .long_str(env!("CARGO_PKG_VERSION").as_bytes());
            let mut caps = Vec::new();
            for cap in [
                &b"publisher_confirms"[..],
                b"authentication_failure_close",
                b"connection.blocked",
            ] {
                caps.short_str(cap).u8(b't').u8(1);
            }
            props.short_str(b"capabilities").u8(b'F').long_str(&caps);
            o.long_str(&props);
            o.short_str(b"PLAIN");
            let mut response = vec![0u8];
            response.extend_from_slice(user.as_bytes());
            response.push(0);
            response.extend_from_slice(password.as_bytes());
            o.long_str(&response);
            o.short_str(b"en_US");
        });
        self.send_out()?;
        let tune = self.expect(CONNECTION_TUNE, "the login (rabbitmq_user, rabbitmq_pass)")?;
        let mut t = Cursor(&tune);
        // channel-max: one channel is all this producer opens.
        t.u16();
        let frame_max = t.u32().unwrap_or(0) as usize;
        self.frame_max = match frame_max {
            0 => 131_072,
            n => n.clamp(4096, 131_072),
        };
        // Heartbeats off: this producer only talks while it delivers, and
        // every read has a deadline of its own.
        method(&mut self.out, 0, CONNECTION_TUNE_OK, |o| {
            o.u16(1).u32(self.frame_max as u32).u16(0);
        });
        let vhost = self.opts.virtual_host.clone();
        method(&mut self.out, 0, CONNECTION_OPEN, |o| {
            o.short_str(vhost.as_bytes()).short_str(b"").u8(0);
        });
        self.send_out()?;
        self.expect(
            CONNECTION_OPEN_OK,
            "the virtual host (rabbitmq_virtual_host)",
        )?;
        method(&mut self.out, CHANNEL, CHANNEL_OPEN, |o| {
            o.short_str(b"");
        });
        self.send_out()?;
        self.expect(CHANNEL_OPEN_OK, "opening a channel")?;
        if self.opts.declare && !self.opts.exchange.is_empty() {
            let o = &self.opts;
            let bits = u8::from(o.durable) << 1 | u8::from(o.auto_delete) << 2;
            let (name, kind) = (o.exchange.clone(), o.exchange_type.clone());
            method(&mut self.out, CHANNEL, EXCHANGE_DECLARE, |b| {
                b.u16(0)
                    .short_str(name.as_bytes())
                    .short_str(kind.as_bytes())
                    .u8(bits)
                    .u32(0);
            });
            self.send_out()?;
            let doing = format!(
                "declaring exchange '{}' ({})",
                self.opts.exchange, self.opts.exchange_type
            );
            self.expect(EXCHANGE_DECLARE_OK, &doing)?;
        }
        method(&mut self.out, CHANNEL, CONFIRM_SELECT, |o| {
            o.u8(0);
        });
        self.send_out()?;
        self.expect(CONFIRM_SELECT_OK, "publisher confirms")?;
        self.next_tag = 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> RabbitOptions {
        RabbitOptions {
            host: "localhost".into(),
            port: 5672,
            user: "guest".into(),
            password: "guest".into(),
            virtual_host: "/".into(),
            exchange: "maxwell".into(),
            exchange_type: "fanout".into(),
            durable: false,
            auto_delete: false,
            declare: true,
            routing_key: "%db%.%table%".into(),
            persistent: false,
            mandatory: false,
            handshake_timeout: Duration::from_secs(10),
            refusal: Refusal::Stop,
            tls: TlsOptions::default(),
        }
    }

    #[test]
    fn uri() {
        let mut o = opts();
        apply_uri(&mut o, "amqp://u:p%40ss@rabbit:5673/prod%2fcdc").unwrap();
        assert_eq!((o.user.as_str(), o.password.as_str()), ("u", "p@ss"));
        assert_eq!((o.host.as_str(), o.port), ("rabbit", 5673));
        assert_eq!(o.virtual_host, "prod/cdc");
        let mut o = opts();
        apply_uri(&mut o, "amqp://h").unwrap();
        assert_eq!(
            (o.host.as_str(), o.port, o.virtual_host.as_str()),
            ("h", 5672, "/")
        );
        let mut o = opts();
        assert!(apply_uri(&mut o, "amqps://h/v").unwrap());
        assert_eq!((o.host.as_str(), o.port), ("h", 5671));
        assert!(!apply_uri(&mut opts(), "amqp://h").unwrap());
        assert!(apply_uri(&mut opts(), "http://h").is_err());
        assert!(apply_uri(&mut opts(), "amqp://h:x").is_err());
    }

    #[test]
    fn uri_errors_never_quote_the_credentials() {
        for bad in [
            "amqp://u:Sekr3t/vh",
            "amqp://u:Sekr3t%zz@h/vh",
            "amqp://Sekr3t%zz:p@h/vh",
        ] {
            let e = apply_uri(&mut opts(), bad).unwrap_err();
            assert!(!e.contains("Sekr3t"), "{bad}: {e}");
        }
    }

    #[test]
    fn routing_key_is_maxwells() {
        let m = Message {
            json: b"{}",
            database: "shop",
            table: "orders",
            kind: "insert",
            primary_key: None,
            partition_values: None,
            xid: None,
        };
        assert_eq!(render_routing_key("%db%.%table%", &m), "shop.orders");
        assert_eq!(render_routing_key("cdc.%db%", &m), "cdc.shop");
    }

    #[test]
    fn confirms_single_multiple_out_of_order_and_stray() {
        let mut c = Confirms::new(11, 5); // tags 11..=15
        c.apply(12, false, false);
        assert_eq!((c.unconfirmed, c.lowest), (4, 0));
        c.apply(11, true, false);
        assert_eq!((c.unconfirmed, c.lowest), (3, 2));
        c.apply(12, true, false); // below what is confirmed: nothing
        c.apply(3, true, false); // an earlier batch: nothing
        assert_eq!(c.unconfirmed, 3);
        c.apply(14, false, true);
        assert_eq!((c.unconfirmed, c.nacked, c.lowest), (2, 1, 2));
        c.apply(99, true, false); // past the last: up to the last
        assert_eq!((c.unconfirmed, c.nacked, c.lowest), (0, 1, 5));
    }

    #[test]
    fn a_returned_message_names_its_index() {
        let mut h = Vec::new();
        h.u16(60).u16(0).u64(5).u16(0x8000 | 0x1000 | 0x0080);
        h.short_str(b"application/json").u8(2).short_str(b"17");
        assert_eq!(returned_index(&h), Some(17));
        let mut h = Vec::new();
        h.u16(60).u16(0).u64(5).u16(0x8000);
        h.short_str(b"application/json");
        assert_eq!(returned_index(&h), None);
    }

    #[test]
    fn frames() {
        let mut out = Vec::new();
        method(&mut out, 1, BASIC_PUBLISH, |o| {
            o.u16(0).short_str(b"x").short_str(b"k").u8(0);
        });
        // type, channel, size, class/method, args, end
        assert_eq!(out[0], METHOD);
        assert_eq!(&out[1..3], &[0, 1]);
        assert_eq!(
            u32::from_be_bytes([out[3], out[4], out[5], out[6]]) as usize,
            out.len() - 8
        );
        assert_eq!(&out[7..11], &[0, 60, 0, 40]);
        assert_eq!(*out.last().unwrap(), FRAME_END);
    }
}
