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
//!
//! TLS (`tls://` URLs, `nats_ssl`, or a server that requires it) starts
//! after the server's INFO, as NATS does; logins by key (`nats_nkey`,
//! `nats_creds`) sign the INFO's nonce (see [`crate::nats_auth`]).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use sluice_core::{declare_options, Opt, Section};

use crate::acked::{Acked, AckedConfig, AckedProducer, Batch, Fault, Refusal, Wire};
use crate::conn::{io_fault, Conn, Link};
use crate::nats_auth::{self, KeyLogin};
use crate::registry::Registration;
use crate::tls::{self, TlsOpts};
use sluice_secure::tls::TlsOptions;

const SECTION: Section = Section::Producer("nats");

declare_options! { OPTIONS;
    NATS_URL: String = Opt::new("nats_url", SECTION, "nats://localhost:4222",
        "NATS server(s): nats://[user:pass@|token@]host:port or tls://… (TLS), comma-separated (tried in turn)").secret();
    NATS_SUBJECT: String = Opt::new("nats_subject", SECTION, "%{database}.%{table}",
        "NATS subject; %{database}, %{table} and %{type} are replaced");
    NATS_JETSTREAM: bool = Opt::new("nats_jetstream", SECTION, "false",
        "true: publish to JetStream and count a row as delivered only when its stream acknowledges it; false: core NATS (Maxwell's), delivered once the server has it");
    NATS_SSL: String = Opt::new("nats_ssl", SECTION, "DISABLED",
        "TLS to NATS: DISABLED | REQUIRED (encrypted, any certificate) | VERIFY_CA (signed by nats_ssl_ca) | VERIFY_IDENTITY (and issued for the host); a tls:// URL, or a server that requires TLS, makes DISABLED mean VERIFY_IDENTITY");
    NATS_SSL_CA: String = Opt::new("nats_ssl_ca", SECTION, "",
        "PEM file of the CA(s) that sign the servers' certificates (default: the public root CAs)");
    NATS_SSL_CERT: String = Opt::new("nats_ssl_cert", SECTION, "",
        "PEM client certificate, for servers with tls verify (with nats_ssl_key)");
    NATS_SSL_KEY: String = Opt::new("nats_ssl_key", SECTION, "", "PEM private key of nats_ssl_cert");
    NATS_CREDS: String = Opt::new("nats_creds", SECTION, "",
        "credentials file (user JWT and NKey seed, as nsc writes it): log in by signing the server's nonce");
    NATS_NKEY: String = Opt::new("nats_nkey", SECTION, "",
        "NKey seed file (SU…, as nk -gen user writes it): log in as that NKey user by signing the server's nonce");
}

const TLS: TlsOpts = TlsOpts {
    ssl: NATS_SSL,
    ca: NATS_SSL_CA,
    cert: NATS_SSL_CERT,
    key: NATS_SSL_KEY,
};

pub const REGISTRATION: Registration = Registration {
    name: "nats",
    options: OPTIONS,
    passthrough: None,
    configure: |values| {
        let servers = NatsServer::parse_list(&NATS_URL.get(values)?)
            .map_err(|m| NATS_URL.error(values, m))?;
        let tls_asked = servers.iter().any(|s| s.tls);
        let login = match (NATS_CREDS.get(values)?, NATS_NKEY.get(values)?) {
            (c, n) if !c.is_empty() && !n.is_empty() => {
                return Err(NATS_NKEY.error(
                    values,
                    "nats_creds holds the key already: set one of nats_creds and nats_nkey",
                ))
            }
            (c, _) if !c.is_empty() => Some(KeyLogin::Creds(c.into())),
            (_, n) if !n.is_empty() => Some(KeyLogin::Nkey(n.into())),
            _ => None,
        };
        if let Some(l) = &login {
            let opt = match l {
                KeyLogin::Creds(_) => NATS_CREDS,
                KeyLogin::Nkey(_) => NATS_NKEY,
            };
            nats_auth::check(l).map_err(|m| opt.error(values, m))?;
        }
        Ok(Arc::new(Acked(NatsOptions {
            servers,
            subject: NATS_SUBJECT.get(values)?,
            jetstream: NATS_JETSTREAM.get(values)?,
            refusal: Refusal::from_options(values)?,
            tls: TLS.read(values, tls_asked)?,
            login,
        })))
    },
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsServer {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// A `tls://` URL.
    pub tls: bool,
}

impl NatsServer {
    /// `nats://[user:password@|token@]host[:port]` or `tls://…`,
    /// comma-separated.
    pub fn parse_list(urls: &str) -> Result<Vec<NatsServer>, String> {
        let mut out = Vec::new();
        // Errors name the entry, never quote it: it may carry a password.
        let entries = urls.split(',').map(str::trim).filter(|u| !u.is_empty());
        for (n, url) in entries.enumerate() {
            let entry = format!("server {} of the list", n + 1);
            let (tls, rest) = match url.split_once("://") {
                Some(("nats", rest)) => (false, rest),
                Some(("tls", rest)) => (true, rest),
                _ => return Err(format!("{entry} does not start with nats:// or tls://")),
            };
            let rest = rest.trim_end_matches('/');
            let (auth, hostport) = match rest.rsplit_once('@') {
                Some((a, h)) => (Some(a), h),
                None => (None, rest),
            };
            let (host, port) = match hostport.rsplit_once(':') {
                Some((h, p)) => (
                    h,
                    p.parse::<u16>().map_err(|_| {
                        format!(
                            "{entry}: the port is not a number (nats://[user:password@]host:port)"
                        )
                    })?,
                ),
                None => (hostport, 4222),
            };
            if host.is_empty() {
                return Err(format!("{entry} names no host"));
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
                tls,
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
    /// TLS to every server (`nats_ssl`, or a tls:// URL in the list); a
    /// server that requires TLS gets it even when this is DISABLED.
    pub tls: TlsOptions,
    /// `nats_creds` or `nats_nkey`.
    pub login: Option<KeyLogin>,
}

pub type NatsProducer = AckedProducer<NatsWire>;

impl AckedConfig for NatsOptions {
    type Wire = NatsWire;

    fn wire(&self) -> NatsWire {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        NatsWire {
            opts: self.clone(),
            next: 0,
            current: 0,
            link: Link::default(),
            max_payload: 1 << 20,
            inbox: format!("_INBOX.sluice{:x}{:x}", std::process::id(), nanos),
            out: Vec::new(),
            line: Vec::new(),
            body: Vec::new(),
            answered: Vec::new(),
        }
    }

    fn template(&self) -> &str {
        &self.subject
    }

    fn refusal(&self) -> &Refusal {
        &self.refusal
    }
}

pub struct NatsWire {
    opts: NatsOptions,
    /// The server tried on the next connect, and the one connected.
    next: usize,
    current: usize,
    link: Link,
    max_payload: usize,
    /// Reply subjects of JetStream acknowledgements: `<inbox>.<index>`.
    inbox: String,
    out: Vec<u8>,
    line: Vec<u8>,
    body: Vec<u8>,
    answered: Vec<bool>,
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
            "the server refused the connection: {text} (check the credentials in nats_url, nats_creds or nats_nkey)"
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
            let r = self.link.get()?.read_line(&mut line).map_err(io_fault);
            self.line = line;
            r?;
            let text = String::from_utf8_lossy(&self.line).into_owned();
            let mut words = text.split_ascii_whitespace();
            match words.next().unwrap_or_default() {
                "PONG" if !self.opts.jetstream => remaining = 0,
                "PING" => self.link.get()?.write_all(b"PONG\r\n").map_err(io_fault)?,
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
                    let r = self.link.get()?.read_exact(&mut body).map_err(io_fault);
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
    const DESTINATION: &'static str = "subject";

    fn endpoint(&self) -> String {
        let s = &self.opts.servers[self.current % self.opts.servers.len()];
        format!("{}:{}", s.host, s.port)
    }

    fn link(&self) -> &Link {
        &self.link
    }

    fn link_mut(&mut self) -> &mut Link {
        &mut self.link
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
        let server_tls = |k: &str| info[k].as_bool() == Some(true);
        if self.opts.tls.mode.wants_tls() || server_tls("tls_required") {
            if !server_tls("tls_required") && !server_tls("tls_available") {
                return Err(Fault::Definite(format!(
                    "the server does not offer TLS and {} asks for it: configure TLS on the server (a tls block), or connect with nats:// and nats_ssl=DISABLED on a trusted network",
                    if server.tls { "its tls:// URL" } else { "nats_ssl" }
                )));
            }
            conn.start_tls(&tls::required_by_server(&self.opts.tls), &server.host)?;
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
        if let Some(login) = &self.opts.login {
            let nonce = info["nonce"].as_str().ok_or_else(|| {
                Fault::Definite(
                    "the server sent no nonce to sign: it has no NKey or JWT users, so nats_creds and nats_nkey cannot log in (configure the user on the server, or log in with nats_url's user and password)".into(),
                )
            })?;
            for (field, value) in
                nats_auth::connect_fields(login, nonce.as_bytes()).map_err(Fault::Definite)?
            {
                connect[field] = value.into();
            }
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
        self.link.set(conn);
        Ok(())
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
        let r = self.link.get()?.write_all(&out).map_err(io_fault);
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
        let t = NatsServer::parse_list("tls://x:4443,nats://y").unwrap();
        assert!(t[0].tls && !t[1].tls);
        assert_eq!((t[0].host.as_str(), t[0].port), ("x", 4443));
        assert!(NatsServer::parse_list("nats://x:notaport").is_err());
        assert!(NatsServer::parse_list("").is_err());
    }

    #[test]
    fn errors_never_quote_the_credentials() {
        for bad in [
            "http://u:Sekr3t@h:4222",
            "nats://u:Sekr3t",
            "nats://u:Sekr3t@h:x",
            "tls://u:Sekr3t@h:x",
            "nats://a:1,nats://Sekr3t@",
        ] {
            let e = NatsServer::parse_list(bad).unwrap_err();
            assert!(!e.contains("Sekr3t"), "{bad}: {e}");
            assert!(e.contains("server "), "{e}");
        }
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
