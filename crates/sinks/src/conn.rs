//! A TCP connection to a broker for the producers that speak their protocol
//! themselves (Redis, NATS, RabbitMQ): the host name resolved anew on every
//! connect (an endpoint that moved is found again), every address tried, and
//! reads that wait at most a deadline and give up early when the producer is
//! being replaced, so a half-open socket or a frozen broker never holds
//! delivery (or a shutdown) forever.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

pub struct Conn {
    reader: BufReader<TcpStream>,
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
                        reader: BufReader::with_capacity(64 * 1024, s),
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

    /// How long a read may wait from now on.
    pub fn set_deadline(&mut self, deadline: Duration) {
        self.deadline = deadline;
    }

    pub fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.last_used = Instant::now();
        self.reader.get_mut().write_all(data)
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
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
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
                }
                Err(e) => return Err(e),
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
