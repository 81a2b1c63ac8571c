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
//!
//! TLS: `redis_ssl` (or a `rediss://` `redis_url`) with `redis_ssl_ca` and a
//! client certificate (`redis_ssl_cert`, `redis_ssl_key`), as Redis 6+
//! serves it on its `tls-port`.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use sluice_core::{declare_options, Opt, Section};

use crate::acked::{Acked, AckedConfig, AckedProducer, Batch, Fault, Refusal, Wire};
use crate::conn::{io_fault, Conn, Link};
use crate::registry::Registration;
use crate::tls::TlsOpts;
use sluice_secure::tls::TlsOptions;

const SECTION: Section = Section::Producer("redis");

declare_options! { OPTIONS;
    REDIS_HOST: String = Opt::new("redis_host", SECTION, "localhost", "Redis host");
    REDIS_PORT: u16 = Opt::new("redis_port", SECTION, "6379", "Redis port");
    REDIS_AUTH: String = Opt::new("redis_auth", SECTION, "", "Redis password (AUTH)").secret();
    REDIS_DATABASE: u32 = Opt::new("redis_database", SECTION, "0", "Redis database number (SELECT)");
    REDIS_KEY: String = Opt::new("redis_key", SECTION, "maxwell",
        "Redis key or channel; %{database}, %{table} and %{type} are replaced");
    REDIS_TYPE: String = Opt::new("redis_type", SECTION, "pubsub",
        "pubsub (PUBLISH) | xadd (a stream entry) | lpush | rpush");
    REDIS_STREAM_JSON_KEY: String = Opt::new("redis_stream_json_key", SECTION, "message",
        "field of the stream entry holding the JSON, with redis_type=xadd");
    REDIS_URL: String = Opt::new("redis_url", SECTION, "",
        "redis://[[user]:password@]host[:port][/database], or rediss:// for TLS; overrides redis_host, redis_port, redis_auth and redis_database").secret();
    REDIS_SSL: String = Opt::new("redis_ssl", SECTION, "DISABLED",
        "TLS to Redis: DISABLED | REQUIRED (encrypted, any certificate) | VERIFY_CA (signed by redis_ssl_ca) | VERIFY_IDENTITY (and issued for redis_host); a rediss:// redis_url makes DISABLED mean VERIFY_IDENTITY");
    REDIS_SSL_CA: String = Opt::new("redis_ssl_ca", SECTION, "",
        "PEM file of the CA(s) that sign the server's certificate (default: the public root CAs)");
    REDIS_SSL_CERT: String = Opt::new("redis_ssl_cert", SECTION, "",
        "PEM client certificate, for a server with tls-auth-clients (with redis_ssl_key)");
    REDIS_SSL_KEY: String = Opt::new("redis_ssl_key", SECTION, "", "PEM private key of redis_ssl_cert");
}

const TLS: TlsOpts = TlsOpts {
    ssl: REDIS_SSL,
    ca: REDIS_SSL_CA,
    cert: REDIS_SSL_CERT,
    key: REDIS_SSL_KEY,
};

pub const REGISTRATION: Registration = Registration {
    name: "redis",
    options: OPTIONS,
    passthrough: None,
    configure: |values| {
        let kind = REDIS_TYPE.get(values)?;
        let kind = RedisType::parse(&kind).ok_or_else(|| {
            REDIS_TYPE.error(
                values,
                format!("'{kind}' is not pubsub, xadd, lpush or rpush"),
            )
        })?;
        let mut o = RedisOptions {
            host: REDIS_HOST.get(values)?,
            port: REDIS_PORT.get(values)?,
            user: None,
            auth: Some(REDIS_AUTH.get(values)?).filter(|a| !a.is_empty()),
            database: REDIS_DATABASE.get(values)?,
            key: REDIS_KEY.get(values)?,
            kind,
            stream_json_key: REDIS_STREAM_JSON_KEY.get(values)?,
            refusal: Refusal::from_options(values)?,
            tls: TlsOptions::default(),
        };
        let url = REDIS_URL.get(values)?;
        let mut tls_asked = false;
        if !url.is_empty() {
            // The URL may hold a password: messages never quote it.
            tls_asked = apply_url(&mut o, &url).map_err(|m| REDIS_URL.error(values, m))?;
        }
        o.tls = TLS.read(values, tls_asked)?;
        Ok(Arc::new(Acked(o)))
    },
};

/// `redis[s]://[[user]:password@]host[:port][/database]`: fills the
/// connection fields it names; returns whether it asks for TLS
/// (`rediss://`). Messages never quote the URL (it may hold a password).
pub fn apply_url(o: &mut RedisOptions, url: &str) -> Result<bool, String> {
    let (tls, rest) = match url.split_once("://") {
        Some(("redis", rest)) => (false, rest),
        Some(("rediss", rest)) => (true, rest),
        _ => {
            return Err(
                "does not start with redis:// or rediss:// (redis[s]://[[user]:password@]host[:port][/database])"
                    .into(),
            )
        }
    };
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, p),
        None => (rest, ""),
    };
    let hostport = match authority.rsplit_once('@') {
        Some((auth, h)) => {
            match auth.split_once(':') {
                Some((user, pw)) => {
                    o.user = Some(user.to_string()).filter(|u| !u.is_empty());
                    o.auth = Some(pw.to_string()).filter(|p| !p.is_empty());
                }
                None => o.auth = Some(auth.to_string()).filter(|p| !p.is_empty()),
            }
            h
        }
        None => authority,
    };
    // An IPv6 address is in brackets: its colons are not the port's.
    let (host, port) = match hostport.strip_prefix('[').and_then(|h| h.split_once(']')) {
        Some((h, rest)) => (h, rest.strip_prefix(':')),
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    let port = match port {
        Some(p) => p
            .parse()
            .map_err(|_| "the port is not a number (redis[s]://host:port)".to_string())?,
        None => 6379,
    };
    if host.is_empty() {
        return Err("names no host (redis[s]://host:port)".into());
    }
    o.host = host.to_string();
    o.port = port;
    let db = path.trim_end_matches('/');
    if !db.is_empty() {
        o.database = db
            .parse()
            .map_err(|_| "the database (after the /) is not a number".to_string())?;
    }
    Ok(tls)
}

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
    /// An ACL user (Redis 6+), from `redis_url`: `AUTH user password`.
    pub user: Option<String>,
    pub auth: Option<String>,
    pub database: u32,
    pub key: String,
    pub kind: RedisType,
    pub stream_json_key: String,
    pub refusal: Refusal,
    pub tls: TlsOptions,
}

pub type RedisProducer = AckedProducer<RedisWire>;

impl AckedConfig for RedisOptions {
    type Wire = RedisWire;

    fn wire(&self) -> RedisWire {
        RedisWire {
            opts: self.clone(),
            link: Link::default(),
            out: Vec::new(),
            line: Vec::new(),
        }
    }

    fn template(&self) -> &str {
        &self.key
    }

    fn refusal(&self) -> &Refusal {
        &self.refusal
    }
}

pub struct RedisWire {
    opts: RedisOptions,
    link: Link,
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

impl Wire for RedisWire {
    const NAME: &'static str = "redis";
    const DESTINATION: &'static str = "key";

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
        let mut conn = Conn::open_secured(
            &o.host,
            o.port,
            &o.tls,
            crate::conn::READ_DEADLINE,
            abort.clone(),
        )?;
        let mut hello = Vec::new();
        let mut n = 0;
        match (&self.opts.user, &self.opts.auth) {
            (Some(user), pw) => {
                let pw = pw.as_deref().unwrap_or_default();
                resp_command(&mut hello, &[b"AUTH", user.as_bytes(), pw.as_bytes()]);
                n += 1;
            }
            (None, Some(pw)) => {
                resp_command(&mut hello, &[b"AUTH", pw.as_bytes()]);
                n += 1;
            }
            (None, None) => {}
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
                        "the server refused the connection setup (redis_auth or the password of redis_url, redis_database): {e}"
                    )))
                    }
                }
            }
        }
        self.link.set(conn);
        Ok(())
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
        let conn = self.link.get()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> RedisOptions {
        RedisOptions {
            host: "localhost".into(),
            port: 6379,
            user: None,
            auth: None,
            database: 0,
            key: "maxwell".into(),
            kind: RedisType::PubSub,
            stream_json_key: "message".into(),
            refusal: Refusal::Stop,
            tls: TlsOptions::default(),
        }
    }

    #[test]
    fn urls() {
        let mut o = opts();
        assert!(apply_url(&mut o, "rediss://app:Sekr3t@cache.example:6380/2").unwrap());
        assert_eq!(
            (o.host.as_str(), o.port, o.database),
            ("cache.example", 6380, 2)
        );
        assert_eq!(
            (o.user.as_deref(), o.auth.as_deref()),
            (Some("app"), Some("Sekr3t"))
        );
        let mut o = opts();
        assert!(!apply_url(&mut o, "redis://:pw@[::1]").unwrap());
        assert_eq!((o.host.as_str(), o.port), ("::1", 6379));
        assert_eq!((o.user.as_deref(), o.auth.as_deref()), (None, Some("pw")));
        for bad in [
            "http://u:Sekr3t@h",
            "redis://u:Sekr3t@h:x",
            "redis://u:Sekr3t@",
            "redis://u:Sekr3t@h/x",
        ] {
            let e = apply_url(&mut opts(), bad).unwrap_err();
            assert!(!e.contains("Sekr3t"), "{bad}: {e}");
        }
    }
}
