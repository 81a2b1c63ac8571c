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

pub struct Conn {
    reader: BufReader<TcpStream>,
    abort: Arc<AtomicBool>,
    deadline: Duration,
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
        self.reader.get_mut().write_all(data)
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
                Ok(_) => return Ok(()),
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
