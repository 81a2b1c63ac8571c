//! MySQL client/server packet framing: 3-byte length, 1-byte sequence id,
//! payloads of 16 MiB - 1 continued in further packets.

use tokio::io::{AsyncBufRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::SourceError;

const MAX_PAYLOAD: usize = 0xFF_FFFF;

pub struct PacketIo {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    seq: u8,
    addr: String,
}

impl PacketIo {
    pub fn new(stream: TcpStream, addr: String) -> Self {
        let _ = stream.set_nodelay(true);
        let (r, w) = stream.into_split();
        PacketIo {
            reader: BufReader::with_capacity(1 << 18, r),
            writer: w,
            seq: 0,
            addr,
        }
    }

    fn io_err(&self, source: std::io::Error) -> SourceError {
        SourceError::Io {
            addr: self.addr.clone(),
            source,
        }
    }

    /// Starts a new command: the next packet written has sequence id 0.
    pub fn reset_seq(&mut self) {
        self.seq = 0;
    }

    /// Reads one logical packet (joining continuation packets) into `buf`.
    pub async fn read_packet_into(&mut self, buf: &mut Vec<u8>) -> Result<(), SourceError> {
        buf.clear();
        loop {
            let mut header = [0u8; 4];
            if let Err(e) = self.reader.read_exact(&mut header).await {
                return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    SourceError::EndOfStream
                } else {
                    self.io_err(e)
                });
            }
            let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
            self.seq = header[3].wrapping_add(1);
            let start = buf.len();
            buf.resize(start + len, 0);
            if let Err(e) = self.reader.read_exact(&mut buf[start..]).await {
                return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    SourceError::EndOfStream
                } else {
                    self.io_err(e)
                });
            }
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
        if len >= MAX_PAYLOAD || avail.len() < 4 + len {
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
        if let Err(e) = self.writer.write_all(&out).await {
            return Err(self.io_err(e));
        }
        Ok(())
    }

    /// Sends a command packet (sequence id 0).
    pub async fn command(&mut self, payload: &[u8]) -> Result<(), SourceError> {
        self.reset_seq();
        self.write_packet(payload).await
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
