//! MySQL client/server packet framing: 3-byte length, 1-byte sequence id,
//! payloads of 16 MiB - 1 continued in further packets.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{
    AsyncBufRead, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf,
};
use tokio::net::TcpStream;

use crate::tls::{ConnectTlsError, TlsConnector, TlsStream};
use crate::SourceError;

const MAX_PAYLOAD: usize = 0xFF_FFFF;

/// The largest packet accepted while logging in and registering: greetings,
/// auth exchanges (an RSA key is under 1 KiB) and OK/ERR packets are small.
pub const HANDSHAKE_LIMIT: usize = 1 << 20;

/// The largest packet of the binlog stream: a 1 GiB event (the most a dump
/// thread sends: MySQL and MariaDB raise its max_allowed_packet to 1 GiB)
/// plus the packet's leading byte.
pub const STREAM_LIMIT: usize = (1 << 30) + 1;

/// The connection under the packet layer. An enum rather than a boxed
/// trait object: the binlog stream is read through it at hundreds of MB/s,
/// and a match costs less than a virtual call on every read.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Reads and writes packets. The session reads and writes in turn (never
/// at once), so one buffered stream serves both directions.
pub struct PacketIo {
    reader: BufReader<Stream>,
    seq: u8,
    addr: String,
    /// No packet larger than this is read (or allocated for), and what the
    /// connection is doing, for the error.
    limit: usize,
    phase: &'static str,
}

impl PacketIo {
    pub fn new(stream: TcpStream, addr: String) -> Self {
        let _ = stream.set_nodelay(true);
        PacketIo {
            reader: BufReader::with_capacity(1 << 18, Stream::Plain(stream)),
            seq: 0,
            addr,
            limit: HANDSHAKE_LIMIT,
            phase: "during the handshake",
        }
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self.reader.get_ref(), Stream::Tls(_))
    }

    /// Runs the TLS handshake (after the SSL request packet); `host` is what
    /// the certificate is checked against under VERIFY_IDENTITY.
    pub async fn start_tls(
        self,
        connector: &TlsConnector,
        host: &str,
    ) -> Result<PacketIo, SourceError> {
        // Bytes the server sent before the handshake were not protected by
        // it: whoever injected them must not get them read as if they had.
        if !self.reader.buffer().is_empty() {
            return Err(SourceError::protocol(
                "the server sent data before the TLS handshake; refusing to continue",
            ));
        }
        let PacketIo {
            reader,
            seq,
            addr,
            limit,
            phase,
        } = self;
        let tcp = match reader.into_inner() {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(_) => return Err(SourceError::protocol("TLS started twice")),
        };
        let tls = connector.connect(host, tcp).await.map_err(|e| match e {
            ConnectTlsError::Tls(t) => SourceError::Tls(t),
            ConnectTlsError::Io(source) => SourceError::Io {
                addr: addr.clone(),
                source,
            },
        })?;
        Ok(PacketIo {
            reader: BufReader::with_capacity(1 << 18, Stream::Tls(Box::new(tls))),
            seq,
            addr,
            limit,
            phase,
        })
    }

    fn io_err(&self, source: std::io::Error) -> SourceError {
        SourceError::Io {
            addr: self.addr.clone(),
            source,
        }
    }

    /// The largest packet read from now on, and what the connection does
    /// (named in the error).
    pub fn set_limit(&mut self, limit: usize, phase: &'static str) {
        self.limit = limit;
        self.phase = phase;
    }

    fn too_large(&self, size: usize) -> SourceError {
        SourceError::PacketTooLarge {
            addr: self.addr.clone(),
            size: size as u64,
            limit: self.limit as u64,
            phase: self.phase,
        }
    }

    /// Reads the server's first packet, which must be a greeting (protocol
    /// 10) or an error: anything else (an HTTP server's answer, another
    /// protocol, noise) is reported as not being a MySQL server, showing
    /// what came, before anything is allocated for it.
    pub async fn read_greeting(&mut self) -> Result<Vec<u8>, SourceError> {
        let header = self.read_header().await?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
        let mut start = header.to_vec();
        start.extend(self.reader.buffer().first());
        if !greeting_plausible(&start) {
            let mut seen = header.to_vec();
            let more = self.reader.buffer();
            seen.extend_from_slice(&more[..more.len().min(28)]);
            return Err(SourceError::NotMysql {
                addr: self.addr.clone(),
                seen: describe_bytes(&seen),
            });
        }
        self.seq = 1;
        let mut buf = vec![0u8; len];
        self.fill(&mut buf).await?;
        if !matches!(buf[0], 10 | 0xFF) {
            let mut seen = header.to_vec();
            seen.extend_from_slice(&buf[..buf.len().min(28)]);
            return Err(SourceError::NotMysql {
                addr: self.addr.clone(),
                seen: describe_bytes(&seen),
            });
        }
        Ok(buf)
    }

    /// Starts a new command: the next packet written has sequence id 0.
    pub fn reset_seq(&mut self) {
        self.seq = 0;
    }

    /// A packet's 4-byte header (length and sequence id).
    async fn read_header(&mut self) -> Result<[u8; 4], SourceError> {
        let mut header = [0u8; 4];
        self.fill(&mut header).await?;
        Ok(header)
    }

    /// Fills `buf` from the connection; a connection closed before is the
    /// end of the stream.
    async fn fill(&mut self, buf: &mut [u8]) -> Result<(), SourceError> {
        match self.reader.read_exact(buf).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(SourceError::EndOfStream)
            }
            Err(e) => Err(self.io_err(e)),
        }
    }

    /// Reads one logical packet (joining continuation packets) into `buf`.
    pub async fn read_packet_into(&mut self, buf: &mut Vec<u8>) -> Result<(), SourceError> {
        buf.clear();
        loop {
            let header = self.read_header().await?;
            let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
            self.seq = header[3].wrapping_add(1);
            let start = buf.len();
            if start + len > self.limit {
                return Err(self.too_large(start + len));
            }
            buf.resize(start + len, 0);
            self.fill(&mut buf[start..]).await?;
            if len < MAX_PAYLOAD {
                return Ok(());
            }
        }
    }

    /// Takes the next packet if it already sits complete in the read buffer
    /// (no I/O, so it never waits); lets the reader batch events cheaply.
    pub fn try_buffered_packet_into(&mut self, buf: &mut Vec<u8>) -> bool {
        let avail = self.reader.buffer();
        if avail.len() < 4 {
            return false;
        }
        let len = u32::from_le_bytes([avail[0], avail[1], avail[2], 0]) as usize;
        // Oversized packets are refused by `read_packet_into`.
        if len >= MAX_PAYLOAD || len > self.limit || avail.len() < 4 + len {
            return false;
        }
        self.seq = avail[3].wrapping_add(1);
        buf.clear();
        buf.extend_from_slice(&avail[4..4 + len]);
        std::pin::Pin::new(&mut self.reader).consume(4 + len);
        true
    }

    pub async fn read_packet(&mut self) -> Result<Vec<u8>, SourceError> {
        let mut buf = Vec::new();
        self.read_packet_into(&mut buf).await?;
        Ok(buf)
    }

    pub async fn write_packet(&mut self, payload: &[u8]) -> Result<(), SourceError> {
        let mut out = Vec::with_capacity(payload.len() + 8);
        let mut chunks = payload.chunks(MAX_PAYLOAD).peekable();
        if payload.is_empty() {
            out.extend_from_slice(&[0, 0, 0, self.seq]);
            self.seq = self.seq.wrapping_add(1);
        }
        while let Some(chunk) = chunks.next() {
            let len = chunk.len() as u32;
            out.extend_from_slice(&len.to_le_bytes()[..3]);
            out.push(self.seq);
            self.seq = self.seq.wrapping_add(1);
            out.extend_from_slice(chunk);
            if chunks.peek().is_none() && chunk.len() == MAX_PAYLOAD {
                out.extend_from_slice(&[0, 0, 0, self.seq]);
                self.seq = self.seq.wrapping_add(1);
            }
        }
        // Flushing matters under TLS: rustls may hold the record back.
        let w = self.reader.get_mut();
        let res = match w.write_all(&out).await {
            Ok(()) => w.flush().await,
            Err(e) => Err(e),
        };
        res.map_err(|e| self.io_err(e))
    }

    /// Sends a command packet (sequence id 0).
    pub async fn command(&mut self, payload: &[u8]) -> Result<(), SourceError> {
        self.reset_seq();
        self.write_packet(payload).await
    }
}

/// Whether the first bytes a server sent can start a MySQL greeting: a
/// packet header (a length a greeting can have, sequence id 0), then
/// protocol version 10 or an error packet. Judges what is there.
pub fn greeting_plausible(first: &[u8]) -> bool {
    let len = match first {
        [a, b, c, ..] => u32::from_le_bytes([*a, *b, *c, 0]) as usize,
        _ => return true,
    };
    (1..=HANDSHAKE_LIMIT).contains(&len)
        && first.get(3).is_none_or(|&seq| seq == 0)
        && first.get(4).is_none_or(|&b| b == 10 || b == 0xFF)
}

/// Bytes as they would read as text (`"HTTP/1.1 400"`), or in hex when
/// they are not text; for errors about what a peer sent.
pub fn describe_bytes(bytes: &[u8]) -> String {
    let text = bytes
        .iter()
        .all(|&b| b.is_ascii_graphic() || b == b' ' || b == b'\r' || b == b'\n' || b == b'\t');
    if text {
        format!("{:?}", String::from_utf8_lossy(bytes))
    } else {
        let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("the bytes {}", hex.join(" "))
    }
}

/// Parses an ERR packet (first byte 0xFF).
pub fn parse_err(packet: &[u8]) -> SourceError {
    if packet.len() < 3 {
        return SourceError::protocol("truncated error packet");
    }
    let code = u16::from_le_bytes([packet[1], packet[2]]);
    let (state, msg) = if packet.len() >= 9 && packet[3] == b'#' {
        (
            String::from_utf8_lossy(&packet[4..9]).into_owned(),
            &packet[9..],
        )
    } else {
        (String::new(), &packet[3..])
    };
    SourceError::Server {
        code,
        state,
        message: String::from_utf8_lossy(msg).into_owned(),
    }
}

/// A little-endian byte reader that reports truncation instead of panicking:
/// everything it reads comes from the network.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], SourceError> {
        if self.remaining() < n {
            return Err(SourceError::protocol(format!(
                "truncated data: wanted {n} bytes, {} left",
                self.remaining()
            )));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.data[self.pos..];
        self.pos = self.data.len();
        s
    }

    pub fn u8(&mut self) -> Result<u8, SourceError> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, SourceError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self) -> Result<u32, SourceError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u48(&mut self) -> Result<u64, SourceError> {
        let b = self.take(6)?;
        Ok(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], 0, 0,
        ]))
    }

    pub fn u64(&mut self) -> Result<u64, SourceError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Length-encoded integer.
    pub fn lenenc(&mut self) -> Result<u64, SourceError> {
        match self.u8()? {
            0xFC => Ok(self.u16()? as u64),
            0xFD => {
                let b = self.take(3)?;
                Ok(u32::from_le_bytes([b[0], b[1], b[2], 0]) as u64)
            }
            0xFE => self.u64(),
            0xFB | 0xFF => Err(SourceError::protocol(
                "unexpected NULL/invalid length-encoded integer",
            )),
            v => Ok(v as u64),
        }
    }

    pub fn lenenc_bytes(&mut self) -> Result<&'a [u8], SourceError> {
        let n = self.lenenc()?;
        self.take(usize::try_from(n).map_err(|_| SourceError::protocol("length too large"))?)
    }

    pub fn nul_terminated(&mut self) -> Result<&'a [u8], SourceError> {
        let rest = &self.data[self.pos..];
        match rest.iter().position(|&b| b == 0) {
            Some(i) => {
                self.pos += i + 1;
                Ok(&rest[..i])
            }
            None => Err(SourceError::protocol("missing NUL terminator")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_truncation() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16().unwrap(), 0x0201);
        assert!(r.u16().is_err());
        assert_eq!(r.u8().unwrap(), 3);
    }

    #[test]
    fn lenenc_forms() {
        assert_eq!(Reader::new(&[0xFA]).lenenc().unwrap(), 250);
        assert_eq!(Reader::new(&[0xFC, 0x01, 0x02]).lenenc().unwrap(), 0x0201);
        assert_eq!(Reader::new(&[0xFD, 1, 2, 3]).lenenc().unwrap(), 0x030201);
        assert!(Reader::new(&[0xFE, 1]).lenenc().is_err());
    }

    #[test]
    fn greetings_are_told_from_other_protocols() {
        assert!(greeting_plausible(&[0x4a, 0, 0, 0, 10, b'8']));
        assert!(greeting_plausible(&[0x17, 0, 0, 0, 0xFF]));
        assert!(greeting_plausible(&[0x4a, 0]));
        assert!(!greeting_plausible(b"HTTP/1.1 400"));
        assert!(!greeting_plausible(b"SSH-2.0-OpenSSH"));
        assert!(!greeting_plausible(&[0x4a, 0, 0, 1, 10]));
        assert!(!greeting_plausible(&[0x4a, 0, 0, 0, 9]));
        assert!(!greeting_plausible(&[0, 0, 0, 0, 10]));
    }

    #[test]
    fn bytes_are_described_as_text_or_hex() {
        assert_eq!(describe_bytes(b"HTTP/1.1 400"), "\"HTTP/1.1 400\"");
        assert_eq!(describe_bytes(&[0, 0xFF, 7]), "the bytes 00 ff 07");
    }

    #[test]
    fn err_packet() {
        let mut p = vec![0xFF, 0xD4, 0x04, b'#'];
        p.extend_from_slice(b"HY000Could not find first log file");
        match parse_err(&p) {
            SourceError::Server {
                code,
                state,
                message,
            } => {
                assert_eq!(code, 1236);
                assert_eq!(state, "HY000");
                assert!(message.starts_with("Could not find"));
            }
            e => panic!("{e:?}"),
        }
    }
}
