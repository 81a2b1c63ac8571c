//! Accepting connections (plain or TLS), reading one request, writing one
//! response. What a client can hold is bounded, so that no client can take
//! from the pipeline what it needs (file descriptors above all: a spill file
//! or a reconnect that fails with EMFILE stops the stream): at most
//! [`connection_cap`] connections at once (more are refused at once), 5 s
//! for the TLS handshake and the request head (3 s of silence at most),
//! 16 KiB of head, 10 s for everything.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::cluster::ClusterView;
use super::routes::{self, Endpoint, Response};
use crate::config::Config;
use crate::error::Error;
use crate::telemetry::Telemetry;

/// How long one connection may take (a client that sends nothing is not
/// waited on forever).
const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
/// How long the TLS handshake and the request head may take together (a
/// client sending its head a byte at a time is closed then).
const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// How long a client may send nothing while its head is incomplete.
const IDLE_TIMEOUT: Duration = Duration::from_secs(3);
/// Larger request heads are refused (431).
const MAX_HEAD: usize = 16 * 1024;
/// The most connections served at once.
const MAX_CONNECTIONS: usize = 64;

/// How many connections are served at once: [`MAX_CONNECTIONS`], or a
/// quarter of the open-file limit when that is lower, so that the pipeline
/// keeps the rest (its connections, spill files, output files).
pub fn connection_cap() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into the struct passed.
    let known = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    let soft = if known && limit.rlim_cur != libc::RLIM_INFINITY {
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    (soft / 4).clamp(4, MAX_CONNECTIONS)
}

pub struct HttpServer {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    endpoint: Endpoint,
    /// Where other nodes reach this endpoint (`http_connect_address`, or
    /// the bound address): the leader record and the cluster view say it.
    pub address: String,
}

impl HttpServer {
    /// Binds now, so that a port in use is a startup error naming the option.
    pub async fn bind(cfg: &Config) -> Result<Self, Error> {
        let h = &cfg.http;
        let (bind_address, port) = (h.bind_address.as_str(), h.port);
        let listener = TcpListener::bind((bind_address, port)).await.map_err(|e| {
            Error::definite(format!(
                "cannot serve HTTP on {bind_address}:{port}: {e}; choose another --http_port \
                 (0 picks a free one) or --http_bind_address"
            ))
        })?;
        let bound = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| format!("{bind_address}:{port}"));
        let address = h
            .connect_address
            .clone()
            .unwrap_or_else(|| advertised(&bound));
        if h.auth.is_some() && h.tls.is_none() && !is_loopback(bind_address) {
            tracing::warn!(
                "http_auth without http_ssl_cert: the password crosses the network in clear text"
            );
        }
        let endpoint = Endpoint {
            prefix: h.path_prefix.trim_end_matches('/').to_string(),
            address: address.clone(),
            auth: h.auth.clone(),
            config_endpoint: h.config_endpoint,
            mysql: cfg.servers.replication.address(),
            producer: cfg.producer.name(),
            cluster: ClusterView::new(cfg),
        };
        Ok(HttpServer {
            listener,
            tls: h.tls.as_ref().map(|t| t.acceptor()),
            endpoint,
            address,
        })
    }

    /// Serves until the runtime stops; also samples the counters behind the
    /// per-second figures once a second.
    pub async fn serve(self, telemetry: Arc<Telemetry>) {
        telemetry.set_producer_name(self.endpoint.producer);
        tokio::spawn(sample_rates(Arc::downgrade(&telemetry)));
        let endpoint = Arc::new(self.endpoint);
        let cap = connection_cap();
        let slots = Arc::new(tokio::sync::Semaphore::new(cap));
        let mut refused_since: Option<Instant> = None;
        loop {
            let Ok((stream, _)) = self.listener.accept().await else {
                // Out of file descriptors or similar: do not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                if self.tls.is_none() {
                    // Best effort, never waited for: the socket buffer takes it.
                    let _ = stream.try_write(BUSY);
                }
                drop(stream);
                if refused_since.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
                    tracing::warn!(
                        limit = cap,
                        "HTTP: too many connections at once; refusing more (503) until some end"
                    );
                    refused_since = Some(Instant::now());
                }
                continue;
            };
            let t = telemetry.clone();
            let e = endpoint.clone();
            let tls = self.tls.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let started = Instant::now();
                let _ = tokio::time::timeout(CONNECTION_DEADLINE, async {
                    match tls {
                        Some(acceptor) => {
                            // A client speaking plain HTTP to the TLS port
                            // fails the handshake: nothing to answer.
                            let shake =
                                tokio::time::timeout(HEAD_DEADLINE, acceptor.accept(stream));
                            if let Ok(Ok(s)) = shake.await {
                                let _ = handle(s, started, &t, &e).await;
                            }
                        }
                        None => {
                            let _ = handle(stream, started, &t, &e).await;
                        }
                    }
                })
                .await;
            });
        }
    }
}

/// The answer to a connection beyond the cap.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n";

async fn sample_rates(telemetry: std::sync::Weak<Telemetry>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        match telemetry.upgrade() {
            Some(t) => t.sample_rates(),
            None => return,
        }
    }
}

/// The address to advertise for a bound one: a wildcard address means
/// "every interface", which nobody can connect to; the host name can be.
fn advertised(bound: &str) -> String {
    let Some((host, port)) = bound.rsplit_once(':') else {
        return bound.to_string();
    };
    if host == "0.0.0.0" || host == "[::]" {
        let name = crate::telemetry::node_identity();
        let name = name.rsplit_once(':').map_or(name.as_str(), |(h, _)| h);
        format!("{name}:{port}")
    } else {
        bound.to_string()
    }
}

fn is_loopback(address: &str) -> bool {
    address == "localhost"
        || address
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

/// One parsed request head.
#[derive(Debug, Default)]
pub struct Request {
    pub method: String,
    /// Without the query.
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn parse(head: &str) -> Request {
        let mut lines = head.lines();
        let mut parts = lines.next().unwrap_or("").split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("");
        let path = target.split('?').next().unwrap_or("").to_string();
        let headers = lines
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Request {
            method,
            path,
            headers,
        }
    }
}

/// What a client sent before its request's end.
#[derive(Debug, PartialEq)]
enum Head {
    /// A head, complete or cut short by the client's end of sending.
    Read(String),
    TooLarge,
    /// Nothing at all, or silent too long.
    Nothing,
}

/// Reads up to the blank line ending the head. Each byte is looked at once
/// (a client sending a byte at a time costs linear time, not quadratic).
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<Head> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let Ok(read) = tokio::time::timeout(IDLE_TIMEOUT, stream.read(&mut chunk)).await else {
            return Ok(Head::Nothing);
        };
        let n = read?;
        if n == 0 {
            return Ok(if buf.is_empty() {
                Head::Nothing
            } else {
                Head::Read(String::from_utf8_lossy(&buf).into_owned())
            });
        }
        let scanned = buf.len();
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(&buf, scanned) {
            buf.truncate(end);
            return Ok(Head::Read(String::from_utf8_lossy(&buf).into_owned()));
        }
        if buf.len() > MAX_HEAD {
            return Ok(Head::TooLarge);
        }
    }
}

/// Where the head ends (after `\n\n` or `\n\r\n`), looking only at bytes
/// from `scanned` on (and the two before, a terminator's start).
fn head_end(buf: &[u8], scanned: usize) -> Option<usize> {
    let from = scanned.saturating_sub(2);
    (from..buf.len()).find_map(|i| match &buf[i..] {
        [b'\n', b'\n', ..] => Some(i + 2),
        [b'\n', b'\r', b'\n', ..] => Some(i + 3),
        _ => None,
    })
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    started: Instant,
    t: &Telemetry,
    endpoint: &Endpoint,
) -> std::io::Result<()> {
    let deadline = tokio::time::Instant::from_std(started + HEAD_DEADLINE);
    let head = match tokio::time::timeout_at(deadline, read_head(&mut stream)).await {
        Ok(head) => head?,
        Err(_) => Head::Nothing,
    };
    let (request, response) = match head {
        Head::Read(text) => {
            let request = Request::parse(&text);
            let response = routes::respond(&request, t, endpoint).await;
            (request, response)
        }
        Head::TooLarge => (
            Request::default(),
            Response::text(431, "request head larger than 16 KiB\n"),
        ),
        Head::Nothing => return Ok(()),
    };
    stream
        .write_all(&encode(&response, request.method == "HEAD"))
        .await?;
    stream.shutdown().await
}

fn encode(r: &Response, head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    );
    for (k, v) in &r.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(r.body.as_bytes());
    }
    bytes
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        299 => "Warning",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_parsed_with_their_headers() {
        let r = Request::parse(
            "GET /cdc/status?x=1 HTTP/1.1\r\nHost: a\r\nauthorization:  Basic abc \r\n\r\n",
        );
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/cdc/status"));
        assert_eq!(r.header("Authorization"), Some("Basic abc"));
        assert_eq!(r.header("host"), Some("a"));
        assert_eq!(r.header("cookie"), None);
        let garbage = Request::parse("\u{1}\u{2}");
        assert_eq!(garbage.path, "");
    }

    #[test]
    fn the_head_ends_at_the_first_blank_line_however_it_arrives() {
        let text = b"GET /ping HTTP/1.1\r\nHost: a\r\n\r\nbody";
        assert_eq!(head_end(text, 0), Some(text.len() - 4));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\n", 0), Some(16));
        // Fed a byte at a time, each call looks at the new byte (and two
        // before it): found exactly when its last byte arrives.
        let end = text.len() - 4;
        for cut in 1..=end {
            let found = head_end(&text[..cut], cut - 1);
            assert_eq!(found, (cut == end).then_some(end), "{cut}");
        }
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n", 0), None);
    }

    #[test]
    fn heads_are_read_within_limits() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (mut client, mut server) = tokio::io::duplex(64 * 1024);
            client
                .write_all(b"GET /ping HTTP/1.1\r\n\r\n")
                .await
                .unwrap();
            let head = read_head(&mut server).await.unwrap();
            assert_eq!(head, Head::Read("GET /ping HTTP/1.1\r\n\r\n".into()));
            // Too large: refused once past the limit.
            client.write_all(&[b'a'; MAX_HEAD + 1]).await.unwrap();
            assert_eq!(read_head(&mut server).await.unwrap(), Head::TooLarge);
        });
    }

    #[test]
    fn the_connection_cap_leaves_most_descriptors_to_the_pipeline() {
        let cap = connection_cap();
        assert!((4..=MAX_CONNECTIONS).contains(&cap), "{cap}");
    }

    #[test]
    fn wildcard_binds_advertise_the_host_name() {
        assert_eq!(advertised("127.0.0.1:8080"), "127.0.0.1:8080");
        let a = advertised("0.0.0.0:8080");
        assert!(a.ends_with(":8080") && !a.starts_with("0.0.0.0"), "{a}");
        assert!(!advertised("[::]:9").starts_with("[::]"));
    }

    #[test]
    fn head_answers_carry_no_body() {
        let r = Response::text(200, "pong\n");
        let full = String::from_utf8(encode(&r, false)).unwrap();
        assert!(full.ends_with("\r\n\r\npong\n") && full.contains("Content-Length: 5\r\n"));
        let head = String::from_utf8(encode(&r, true)).unwrap();
        assert!(head.ends_with("\r\n\r\n") && head.contains("Content-Length: 5\r\n"));
    }
}
