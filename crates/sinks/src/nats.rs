//! The NATS producer: Maxwell's `nats_url` (one or more
//! `nats://[user:password@|token@]host:port`, comma-separated) and
//! `nats_subject` template, over the NATS text protocol spoken here (a
//! handful of verbs: no driver crate).
//!
//! Acknowledgement depends on what is behind the subject:
//! - core NATS (`nats_jetstream=false`, Maxwell's behaviour): a batch is
//!   published and followed by a PING; the server's PONG says it has
//!   processed every message before it (core NATS keeps nothing: only
//!   subscribers connected at that moment receive the rows);
//! - JetStream (`nats_jetstream=true`): every message is published with a
//!   reply subject, and counts as delivered only when the stream's
//!   acknowledgement (`{"stream":…,"seq":…}`) has come back, i.e. the row is
//!   stored. A stream's error answer is a refusal of that row; "no
//!   responders" (no stream captures the subject, or JetStream is still
//!   starting) is retried.
//!
//! Several servers in `nats_url` are tried in turn on every reconnect, each
//! name resolved anew.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::acked::{AckedOptions, AckedSink, Batch, Fault, Refusal, Wire};
use crate::conn::Conn;
use crate::{route, ProducerStats};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsServer {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
}

impl NatsServer {
    /// `nats://[user:password@|token@]host[:port]`, comma-separated.
    pub fn parse_list(urls: &str) -> Result<Vec<NatsServer>, String> {
        let mut out = Vec::new();
        for url in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let rest = url
                .strip_prefix("nats://")
                .ok_or_else(|| match url.split_once("://") {
                    Some(("tls", _)) => format!("'{url}': TLS is not supported yet; use nats://"),
                    _ => format!("'{url}' does not start with nats://"),
                })?;
            let rest = rest.trim_end_matches('/');
            let (auth, hostport) = match rest.rsplit_once('@') {
                Some((a, h)) => (Some(a), h),
                None => (None, rest),
            };
            let (host, port) = match hostport.rsplit_once(':') {
                Some((h, p)) => (
                    h,
                    p.parse::<u16>()
                        .map_err(|_| format!("'{url}': '{p}' is not a port number"))?,
                ),
                None => (hostport, 4222),
            };
            if host.is_empty() {
                return Err(format!("'{url}' names no host"));
            }
            let (mut user, mut password, mut token) = (None, None, None);
            match auth.map(|a| a.split_once(':')) {
                Some(Some((u, p))) => {
                    user = Some(u.to_string());
                    password = Some(p.to_string());
                }
                Some(None) => token = auth.map(str::to_string),
                None => {}
            }
            out.push(NatsServer {
                host: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                port,
                user,
                password,
                token,
            });
        }
        if out.is_empty() {
            return Err("names no server".into());
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsOptions {
    pub servers: Vec<NatsServer>,
    pub subject: String,
    pub jetstream: bool,
    pub refusal: Refusal,
}

pub type NatsSink = AckedSink<NatsWire>;

pub fn sink(opts: NatsOptions, stats: Arc<ProducerStats>) -> NatsSink {
    let acked = AckedOptions {
        template: opts.subject.clone(),
        render: route::render_template,
        refusal: opts.refusal.clone(),
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    AckedSink::new(
        NatsWire {
            opts,
            next: 0,
            current: 0,
            conn: None,
            max_payload: 1 << 20,
            inbox: format!("_INBOX.sluice{:x}{:x}", std::process::id(), nanos),
            out: Vec::new(),
            line: Vec::new(),
            body: Vec::new(),
            answered: Vec::new(),
        },
        acked,
        stats,
    )
}

pub struct NatsWire {
    opts: NatsOptions,
    /// The server tried on the next connect, and the one connected.
    next: usize,
    current: usize,
    conn: Option<Conn>,
    max_payload: usize,
    /// Reply subjects of JetStream acknowledgements: `<inbox>.<index>`.
    inbox: String,
    out: Vec<u8>,
    line: Vec<u8>,
    body: Vec<u8>,
    answered: Vec<bool>,
}

fn io_fault(e: std::io::Error) -> Fault {
    Fault::Transient(e.to_string())
}

/// Why a subject cannot be published to (the server would drop the
/// connection over it), if it cannot.
fn bad_subject(subject: &[u8]) -> Option<&'static str> {
    if subject.is_empty() {
        Some("the subject is empty")
    } else if subject
        .iter()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        Some("the subject contains white space, which NATS subjects cannot")
    } else {
        None
    }
}

/// What a `-ERR` line means for the batch.
fn server_error(text: &str) -> Fault {
    let lower = text.to_ascii_lowercase();
    if lower.contains("authorization") || lower.contains("authentication") {
        Fault::Definite(format!(
            "the server refused the connection: {text} (check the credentials in nats_url)"
        ))
    } else {
        Fault::Transient(format!("server error: {text}"))
    }
}

/// `Permissions Violation for Publish to "subject"`: the subject refused.
fn refused_subject(text: &str) -> Option<&str> {
    let rest = text.split_once("Permissions Violation for Publish to")?.1;
    Some(
        rest.trim()
            .trim_matches(|c| c == '"' || c == '\'' || c == ' '),
    )
}

impl NatsWire {
    fn conn(&mut self) -> Result<&mut Conn, Fault> {
        self.conn
            .as_mut()
            .ok_or_else(|| Fault::Transient("not connected".into()))
    }

    /// Reads the server's answers until `remaining` are in: the PONG of
    /// core NATS, or one JetStream acknowledgement per published message.
    /// Answers the server's PINGs; a publish permission error refuses the
    /// messages of that subject, any other -ERR ends the connection.
    fn read_until(
        &mut self,
        batch: &Batch,
        refused: &mut Vec<(usize, String)>,
        mut remaining: usize,
    ) -> Result<(), Fault> {
        let mut transient = None;
        while remaining > 0 {
            let mut line = std::mem::take(&mut self.line);
            let r = self.conn()?.read_line(&mut line).map_err(io_fault);
            self.line = line;
            r?;
            let text = String::from_utf8_lossy(&self.line).into_owned();
            let mut words = text.split_ascii_whitespace();
            match words.next().unwrap_or_default() {
                "PONG" if !self.opts.jetstream => remaining = 0,
                "PING" => self.conn()?.write_all(b"PONG\r\n").map_err(io_fault)?,
                "+OK" | "PONG" | "INFO" => {}
                "-ERR" => {
                    let msg = text[4..].trim().trim_matches('\'').to_string();
                    match refused_subject(&msg) {
                        Some(subject) => {
                            for (i, item) in batch.items.iter().enumerate() {
                                if batch.dest(item) == subject.as_bytes() && !self.answered[i] {
                                    self.answered[i] = true;
                                    refused.push((i, msg.clone()));
                                    if self.opts.jetstream {
                                        remaining = remaining.saturating_sub(1);
                                    }
                                }
                            }
                        }
                        None => return Err(server_error(&msg)),
                    }
                }
                verb @ ("MSG" | "HMSG") => {
                    // MSG <subject> <sid> [reply] <len>
                    // HMSG <subject> <sid> [reply] <header len> <total len>
                    let parts: Vec<&str> = words.collect();
                    let subject = parts.first().copied().unwrap_or_default().to_string();
                    let total: usize =
                        parts.last().and_then(|n| n.parse().ok()).ok_or_else(|| {
                            Fault::Transient(format!("malformed line from the server: {text}"))
                        })?;
                    let header_len: usize = if verb == "HMSG" {
                        parts
                            .get(parts.len().saturating_sub(2))
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0)
                    } else {
                        0
                    };
                    let mut body = std::mem::take(&mut self.body);
                    body.resize(total + 2, 0);
                    let r = self.conn()?.read_exact(&mut body).map_err(io_fault);
                    self.body = body;
                    r?;
                    let Some(i) = subject
                        .strip_prefix(self.inbox.as_str())
                        .and_then(|s| s.strip_prefix('.'))
                        .and_then(|n| n.parse::<usize>().ok())
                        .filter(|&i| i < batch.len() && !self.answered[i])
                    else {
                        continue; // a late answer of an earlier batch
                    };
                    self.answered[i] = true;
                    remaining -= 1;
                    let (headers, payload) = self.body[..total].split_at(header_len.min(total));
                    if let Some(status) = std::str::from_utf8(headers)
                        .ok()
                        .and_then(|h| h.lines().next())
                        .and_then(|l| l.strip_prefix("NATS/1.0"))
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                    {
                        if status.starts_with("503") {
                            transient.get_or_insert(format!(
                                "no JetStream stream answered for subject '{}' (create a stream that captures it, or wait for JetStream to start)",
                                String::from_utf8_lossy(batch.dest(&batch.items[i]))
                            ));
                        } else {
                            refused.push((i, format!("JetStream answered {status}")));
                        }
                        continue;
                    }
                    match serde_json::from_slice::<serde_json::Value>(payload) {
                        Ok(v) if v.get("error").is_some() => {
                            let e = &v["error"];
                            let code = e.get("code").and_then(|c| c.as_u64()).unwrap_or(0);
                            let desc = e
                                .get("description")
                                .and_then(|d| d.as_str())
                                .unwrap_or("error")
                                .to_string();
                            if code == 503 {
                                transient.get_or_insert(format!("JetStream unavailable: {desc}"));
                            } else {
                                refused.push((
                                    i,
                                    format!("JetStream refused it: {desc} (code {code})"),
                                ));
                            }
                        }
                        Ok(v) if v.get("stream").is_some() => {}
                        _ => {
                            return Err(Fault::Transient(format!(
                                "unexpected JetStream answer: {}",
                                String::from_utf8_lossy(payload)
                            )))
                        }
                    }
                }
                _ => {
                    return Err(Fault::Transient(format!(
                        "unexpected line from the server: {text}"
                    )))
                }
            }
        }
        match transient {
            Some(e) => Err(Fault::Transient(e)),
            None => Ok(()),
        }
    }
}

impl Wire for NatsWire {
    const NAME: &'static str = "nats";

    fn endpoint(&self) -> String {
        let s = &self.opts.servers[self.current % self.opts.servers.len()];
        format!("{}:{}", s.host, s.port)
    }

    fn is_connected(&self) -> bool {
        self.conn.as_ref().is_some_and(Conn::is_fresh)
    }

    fn connect(&mut self, abort: &Arc<AtomicBool>) -> Result<(), Fault> {
        // Each attempt tries the next server of the list.
        self.current = self.next % self.opts.servers.len();
        self.next = self.current + 1;
        let server = self.opts.servers[self.current].clone();
        let mut conn = Conn::open(&server.host, server.port, abort.clone()).map_err(io_fault)?;
        conn.read_line(&mut self.line).map_err(io_fault)?;
        let info: serde_json::Value = self
            .line
            .strip_prefix(b"INFO ")
            .and_then(|j| serde_json::from_slice(j).ok())
            .ok_or_else(|| {
                Fault::Transient(format!(
                    "not a NATS server (it said '{}')",
                    String::from_utf8_lossy(&self.line)
                ))
            })?;
        if info["tls_required"].as_bool() == Some(true) {
            return Err(Fault::Definite(
                "the server requires TLS, which sluice's NATS producer does not speak yet".into(),
            ));
        }
        self.max_payload = info["max_payload"].as_u64().unwrap_or(1 << 20) as usize;
        let headers = info["headers"].as_bool() == Some(true);
        let mut connect = serde_json::json!({
            "verbose": false,
            "pedantic": false,
            "lang": "rust-sluice",
            "version": env!("CARGO_PKG_VERSION"),
            "protocol": 1,
            "name": "sluice",
            "headers": headers,
            "no_responders": headers,
        });
        if let Some(u) = &server.user {
            connect["user"] = u.clone().into();
            connect["pass"] = server.password.clone().unwrap_or_default().into();
        }
        if let Some(t) = &server.token {
            connect["auth_token"] = t.clone().into();
        }
        let mut hello = format!("CONNECT {connect}\r\n");
        if self.opts.jetstream {
            hello.push_str(&format!("SUB {}.* 1\r\n", self.inbox));
        }
        hello.push_str("PING\r\n");
        conn.write_all(hello.as_bytes()).map_err(io_fault)?;
        loop {
            conn.read_line(&mut self.line).map_err(io_fault)?;
            let line = String::from_utf8_lossy(&self.line).into_owned();
            match line.split_ascii_whitespace().next().unwrap_or_default() {
                "PONG" => break,
                "PING" => conn.write_all(b"PONG\r\n").map_err(io_fault)?,
                "-ERR" => return Err(server_error(line[4..].trim().trim_matches('\''))),
                _ => {}
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
        self.answered.clear();
        self.answered.resize(batch.len(), false);
        let mut published = 0;
        let mut num = itoa::Buffer::new();
        for (i, item) in batch.items.iter().enumerate() {
            let (subject, payload) = (batch.dest(item), batch.payload(item));
            if let Some(why) = bad_subject(subject) {
                self.answered[i] = true;
                refused.push((i, why.into()));
                continue;
            }
            if payload.len() > self.max_payload {
                self.answered[i] = true;
                refused.push((
                    i,
                    format!(
                        "{} bytes is more than the server's max_payload of {} bytes",
                        payload.len(),
                        self.max_payload
                    ),
                ));
                continue;
            }
            self.out.extend_from_slice(b"PUB ");
            self.out.extend_from_slice(subject);
            if self.opts.jetstream {
                self.out.push(b' ');
                self.out.extend_from_slice(self.inbox.as_bytes());
                self.out.push(b'.');
                self.out.extend_from_slice(num.format(i).as_bytes());
            }
            self.out.push(b' ');
            self.out
                .extend_from_slice(num.format(payload.len()).as_bytes());
            self.out.extend_from_slice(b"\r\n");
            self.out.extend_from_slice(payload);
            self.out.extend_from_slice(b"\r\n");
            published += 1;
        }
        if published == 0 {
            return Ok(());
        }
        if !self.opts.jetstream {
            // The PONG comes after the server has processed every PUB.
            self.out.extend_from_slice(b"PING\r\n");
        }
        let out = std::mem::take(&mut self.out);
        let r = self.conn()?.write_all(&out).map_err(io_fault);
        self.out = out;
        r?;
        let waiting = if self.opts.jetstream { published } else { 1 };
        self.read_until(batch, refused, waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let s = NatsServer::parse_list("nats://a:1, nats://u:p@b:2,nats://tok@c").unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].host.as_str(), s[0].port), ("a", 1));
        assert_eq!(s[1].user.as_deref(), Some("u"));
        assert_eq!(s[1].password.as_deref(), Some("p"));
        assert_eq!((s[2].token.as_deref(), s[2].port), (Some("tok"), 4222));
        assert!(NatsServer::parse_list("http://x").is_err());
        assert!(NatsServer::parse_list("tls://x")
            .unwrap_err()
            .contains("TLS"));
        assert!(NatsServer::parse_list("nats://x:notaport").is_err());
        assert!(NatsServer::parse_list("").is_err());
    }

    #[test]
    fn subjects() {
        assert!(bad_subject(b"db.table").is_none());
        assert!(bad_subject(b"db.my table").is_some());
        assert!(bad_subject(b"").is_some());
        assert_eq!(
            refused_subject("Permissions Violation for Publish to \"a.b\""),
            Some("a.b")
        );
    }
}
