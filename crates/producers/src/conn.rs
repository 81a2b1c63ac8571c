//! A TCP connection to a broker for the producers that speak their protocol
//! themselves (Redis, NATS, RabbitMQ): the host name resolved anew on every
//! connect (an endpoint that moved is found again), every address tried, and
//! reads that wait at most a deadline and give up early when the producer is
//! being replaced, so a half-open socket or a frozen broker never holds
//! delivery (or a shutdown) forever. A connection may run TLS (rustls over
//! the same socket: the reads keep their deadline and abort checks).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConnection, StreamOwned};
use sluice_secure::tls::{find_rustls_error, TlsError, TlsOptions};

/// How long one read may wait for the broker before the connection counts
/// as dead (and the batch is sent again on a new one).
pub const READ_DEADLINE: Duration = Duration::from_secs(15);
/// Connect (and each write) timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Reads wake up this often to look at the abort flag.
const POLL: Duration = Duration::from_millis(250);
/// A connection unused for longer is opened anew before it is used: idle
/// connections go stale (NATS drops a client that leaves its PINGs
/// unanswered, load balancers drop quiet TCP connections), and a fresh one
/// is cheaper than a failed delivery and its retry.
pub const MAX_IDLE: Duration = Duration::from_secs(60);

/// The socket, with or without TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Whether a socket error only means "nothing yet" (the read timeout that
/// wakes a wait up to look at the abort flag).
fn is_wait(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// The TLS settings of a connection and the host its certificate must name.
struct TlsPeer {
    options: TlsOptions,
    host: String,
}

pub struct Conn {
    reader: BufReader<Stream>,
    /// Set once TLS is started: failures are explained with its options.
    tls: Option<TlsPeer>,
    abort: Arc<AtomicBool>,
    deadline: Duration,
    last_used: Instant,
}

impl Conn {
    pub fn open(host: &str, port: u16, abort: Arc<AtomicBool>) -> io::Result<Conn> {
        let addrs: Vec<_> = (host, port).to_socket_addrs()?.collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"));
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(s) => {
                    s.set_read_timeout(Some(POLL))?;
                    s.set_write_timeout(Some(CONNECT_TIMEOUT))?;
                    s.set_nodelay(true)?;
                    return Ok(Conn {
                        reader: BufReader::with_capacity(64 * 1024, Stream::Plain(s)),
                        tls: None,
                        abort,
                        deadline: READ_DEADLINE,
                        last_used: Instant::now(),
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Opens a connection that starts TLS at once when `tls` asks for it
    /// (Redis, RabbitMQ; NATS starts it after the server's greeting), its
    /// reads bounded by `deadline` until the caller sets another.
    pub fn open_secured(
        host: &str,
        port: u16,
        tls: &TlsOptions,
        deadline: Duration,
        abort: Arc<AtomicBool>,
    ) -> Result<Conn, crate::acked::Fault> {
        let mut conn = Conn::open(host, port, abort).map_err(io_fault)?;
        conn.set_deadline(deadline);
        if tls.mode.wants_tls() {
            conn.start_tls(tls, host)?;
        }
        Ok(conn)
    }

    /// How long a read may wait from now on.
    pub fn set_deadline(&mut self, deadline: Duration) {
        self.deadline = deadline;
    }

    pub fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.last_used = Instant::now();
        let stream = self.reader.get_mut();
        // TLS holds the last record back until flushed.
        let r = stream.write_all(data).and_then(|()| stream.flush());
        r.map_err(|e| self.explained(e))
    }

    /// Starts TLS on this connection (at once for Redis and RabbitMQ, after
    /// the server's greeting for NATS): the handshake with `tls`'s checks,
    /// `host` being the name the certificate must carry. A certificate or
    /// setting the handshake refuses is definite, naming the option to
    /// change; a network failure is transient.
    pub fn start_tls(&mut self, tls: &TlsOptions, host: &str) -> Result<(), crate::acked::Fault> {
        use crate::acked::Fault;
        if !self.reader.buffer().is_empty() {
            return Err(Fault::Transient(
                "the server sent data before the TLS handshake".into(),
            ));
        }
        let config = tls.client_config().map_err(definite)?;
        let name = tls.server_name(host).map_err(definite)?;
        let client = ClientConnection::new(config, name)
            .map_err(|e| definite(TlsError::Setup(e.to_string())))?;
        // The socket is shared with the plain stream it replaces.
        let tcp = self.reader.get_ref().tcp().try_clone().map_err(io_fault)?;
        let mut stream = StreamOwned::new(client, tcp);
        self.tls = Some(TlsPeer {
            options: tls.clone(),
            host: host.to_string(),
        });
        let started = Instant::now();
        while stream.conn.is_handshaking() {
            match stream.conn.complete_io(&mut stream.sock) {
                Ok(_) => {}
                Err(e) if is_wait(&e) => self.check_wait(started).map_err(io_fault)?,
                Err(e) => return Err(io_fault(self.explained(e))),
            }
        }
        self.reader = BufReader::with_capacity(64 * 1024, Stream::Tls(Box::new(stream)));
        self.last_used = Instant::now();
        Ok(())
    }

    /// An I/O error of a TLS connection that carries TLS's reason (a
    /// certificate refused, an alert from the server) says which option
    /// changes it; [`io_fault`] makes it definite.
    fn explained(&self, e: io::Error) -> io::Error {
        let (Some(peer), Some(tls)) = (&self.tls, find_rustls_error(&e)) else {
            return e;
        };
        io::Error::new(
            io::ErrorKind::InvalidData,
            peer.options.explain(tls, &peer.host),
        )
    }

    /// While waiting: an error once aborted or past the deadline.
    fn check_wait(&self, started: Instant) -> io::Result<()> {
        if self.abort.load(Relaxed) {
            return Err(io::Error::other(
                "abandoned (producer replaced or stopping)",
            ));
        }
        if started.elapsed() >= self.deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {:?}", self.deadline),
            ));
        }
        Ok(())
    }

    /// Usable without opening a new one (see [`MAX_IDLE`]).
    pub fn is_fresh(&self) -> bool {
        self.used_within(MAX_IDLE)
    }

    fn used_within(&self, limit: Duration) -> bool {
        self.last_used.elapsed() < limit
    }

    /// Waits for at least one byte to be buffered; errors once the deadline
    /// passes without one, on end of stream, or when aborted.
    fn fill(&mut self) -> io::Result<()> {
        let started = Instant::now();
        loop {
            match self.reader.fill_buf() {
                Ok([]) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    ))
                }
                Ok(_) => {
                    self.last_used = Instant::now();
                    return Ok(());
                }
                Err(e) if is_wait(&e) => self.check_wait(started)?,
                Err(e) => return Err(self.explained(e)),
            }
        }
    }

    /// One line without its CR LF.
    pub fn read_line(&mut self, line: &mut Vec<u8>) -> io::Result<()> {
        line.clear();
        loop {
            self.fill()?;
            let buf = self.reader.buffer();
            match buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    line.extend_from_slice(&buf[..i]);
                    self.reader.consume(i + 1);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    return Ok(());
                }
                None => {
                    let n = buf.len();
                    line.extend_from_slice(buf);
                    self.reader.consume(n);
                    if line.len() > 64 << 20 {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
                    }
                }
            }
        }
    }

    pub fn read_exact(&mut self, out: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < out.len() {
            self.fill()?;
            let n = self.reader.read(&mut out[done..])?;
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_keep_a_connection_fresh_and_reads_have_a_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let abort = Arc::new(AtomicBool::new(false));
        let mut c = Conn::open("localhost", port, abort.clone()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        assert!(c.is_fresh());
        std::thread::sleep(Duration::from_millis(20));
        assert!(!c.used_within(Duration::from_millis(10)));
        c.write_all(b"PING\r\n").unwrap();
        assert!(c.used_within(Duration::from_millis(10)));
        server.write_all(b"PONG\r\n").unwrap();
        let mut line = Vec::new();
        c.read_line(&mut line).unwrap();
        assert_eq!(line, b"PONG");
        // A silent peer: the read gives up at the deadline, or at once
        // when aborted.
        c.set_deadline(Duration::from_millis(300));
        let began = Instant::now();
        let e = c.read_line(&mut line).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(began.elapsed() >= Duration::from_millis(300));
        c.set_deadline(Duration::from_secs(60));
        abort.store(true, Relaxed);
        let began = Instant::now();
        assert!(c.read_line(&mut line).is_err());
        assert!(began.elapsed() < Duration::from_secs(2));
    }
}

/// A wire's connection, when it has one (shared by the protocols of the
/// acknowledged-delivery core).
#[derive(Default)]
pub struct Link(Option<Conn>);

impl Link {
    /// Open, and not idle for so long that it has likely gone stale.
    pub fn is_open(&self) -> bool {
        self.0.as_ref().is_some_and(Conn::is_fresh)
    }

    pub fn set(&mut self, conn: Conn) {
        self.0 = Some(conn);
    }

    pub fn close(&mut self) {
        self.0 = None;
    }

    pub fn get(&mut self) -> Result<&mut Conn, crate::acked::Fault> {
        self.0
            .as_mut()
            .ok_or_else(|| crate::acked::Fault::Transient("not connected".into()))
    }
}

/// A failed read or write: the connection is gone, try a new one; unless
/// TLS refused it (a certificate, a missing client certificate), which a
/// new connection does not change.
pub fn io_fault(e: io::Error) -> crate::acked::Fault {
    match e.get_ref().and_then(|i| i.downcast_ref::<TlsError>()) {
        Some(tls) => definite(tls.clone()),
        None => crate::acked::Fault::Transient(e.to_string()),
    }
}

fn definite(e: TlsError) -> crate::acked::Fault {
    crate::acked::Fault::Definite(e.to_string())
}
