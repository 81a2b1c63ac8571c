//! The server's side of one connection: framing, sequence ids, TLS, and
//! playing steps.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::packets::{binlog_event, err_packet, ok_packet};
use crate::{Recording, Step, WAIT};

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while switching to TLS.
    None,
}

pub(crate) struct Conn {
    io: Io,
    seq: u8,
    /// The client's capabilities, from its first packet.
    client_caps: Option<u32>,
    /// The client closed the connection between packets.
    closed: bool,
}

const COM_QUIT: u8 = 0x01;
const COM_QUERY: u8 = 0x03;
const COM_PING: u8 = 0x0E;
const COM_BINLOG_DUMP: u8 = 0x12;
const COM_REGISTER_SLAVE: u8 = 0x15;
const COM_BINLOG_DUMP_GTID: u8 = 0x1E;

impl Conn {
    pub(crate) fn new(tcp: TcpStream) -> Conn {
        let _ = tcp.set_nodelay(true);
        Conn {
            io: Io::Plain(tcp),
            seq: 0,
            client_caps: None,
            closed: false,
        }
    }

    pub(crate) fn is_tls(&self) -> bool {
        matches!(self.io, Io::Tls(_))
    }

    async fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        let read = async {
            match &mut self.io {
                Io::Plain(s) => s.read_exact(buf).await.map(|_| ()),
                Io::Tls(s) => s.read_exact(buf).await.map(|_| ()),
                Io::None => Err(std::io::Error::other("no connection")),
            }
        };
        tokio::time::timeout(WAIT, read)
            .await
            .map_err(|_| std::io::Error::other("the client sent nothing for 20 s"))?
    }

    async fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        async fn write<S: AsyncWrite + AsyncRead + Unpin>(
            s: &mut S,
            data: &[u8],
        ) -> std::io::Result<()> {
            s.write_all(data).await?;
            s.flush().await
        }
        match &mut self.io {
            Io::Plain(s) => write(s, data).await,
            Io::Tls(s) => write(s.as_mut(), data).await,
            Io::None => Err(std::io::Error::other("no connection")),
        }
    }

    /// Reads one packet (joining 16 MiB continuations) and records it.
    async fn read_packet(&mut self, rec: &mut Recording) -> Result<Vec<u8>, String> {
        let mut payload = Vec::new();
        loop {
            let mut header = [0u8; 4];
            if let Err(e) = self.read_exact(&mut header).await {
                self.closed = payload.is_empty() && e.kind() == std::io::ErrorKind::UnexpectedEof;
                return Err(format!("reading a packet header: {e}"));
            }
            rec.bytes.extend_from_slice(&header);
            let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
            self.seq = header[3].wrapping_add(1);
            let start = payload.len();
            payload.resize(start + len, 0);
            self.read_exact(&mut payload[start..])
                .await
                .map_err(|e| format!("reading a packet of {len} bytes: {e}"))?;
            rec.bytes.extend_from_slice(&payload[start..]);
            if len < 0xFF_FFFF {
                break;
            }
        }
        if self.client_caps.is_none() && payload.len() >= 4 {
            self.client_caps = Some(u32::from_le_bytes([
                payload[0], payload[1], payload[2], payload[3],
            ]));
        }
        rec.packets.push(payload.clone());
        Ok(payload)
    }

    async fn send_packet(&mut self, payload: &[u8]) -> Result<(), String> {
        let mut out = Vec::with_capacity(payload.len() + 8);
        for chunk in payload.chunks(0xFF_FFFF) {
            out.extend_from_slice(&(chunk.len() as u32).to_le_bytes()[..3]);
            out.push(self.seq);
            self.seq = self.seq.wrapping_add(1);
            out.extend_from_slice(chunk);
        }
        if payload.len().is_multiple_of(0xFF_FFFF) {
            out.extend_from_slice(&[0, 0, 0, self.seq]);
            self.seq = self.seq.wrapping_add(1);
        }
        self.write_all(&out)
            .await
            .map_err(|e| format!("sending a packet: {e}"))
    }

    pub(crate) async fn play(&mut self, step: Step, rec: &mut Recording) -> Result<(), String> {
        match step {
            Step::Greeting(g) => {
                self.seq = 0;
                self.send_packet(&g.payload()).await
            }
            Step::Read(mut check) => {
                let p = self.read_packet(rec).await?;
                check(&p)
            }
            Step::AcceptTls(config) => {
                let req = self.read_packet(rec).await?;
                if req.len() != 32 {
                    return Err(format!(
                        "expected the 32-byte SSL request, got {} bytes",
                        req.len()
                    ));
                }
                let tcp = match std::mem::replace(&mut self.io, Io::None) {
                    Io::Plain(tcp) => tcp,
                    _ => return Err("TLS started twice".into()),
                };
                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                let tls = tokio::time::timeout(WAIT, acceptor.accept(tcp))
                    .await
                    .map_err(|_| "TLS handshake timed out".to_string())?
                    .map_err(|e| format!("TLS handshake: {e}"))?;
                self.io = Io::Tls(Box::new(tls));
                Ok(())
            }
            Step::Send(p) => self.send_packet(&p).await,
            Step::SendRaw(bytes) => self
                .write_all(&bytes)
                .await
                .map_err(|e| format!("sending raw bytes: {e}")),
            Step::Sleep(d) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            Step::Replica { results, events } => self.commands(results, Some(events), rec).await,
            Step::Serve(results) => self.commands(results, None, rec).await,
            Step::AwaitClose => {
                let mut byte = [0u8; 1];
                match self.read_exact(&mut byte).await {
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(()),
                    Err(e) => Err(format!("waiting for the client to close: {e}")),
                    Ok(()) => {
                        rec.bytes.push(byte[0]);
                        Err("the client sent more data instead of closing".into())
                    }
                }
            }
        }
    }

    /// Answers commands; with `events`, until a binlog dump (which gets
    /// them), else until the client quits.
    async fn commands(
        &mut self,
        results: Vec<(String, crate::ResultSet)>,
        events: Option<Vec<Vec<u8>>>,
        rec: &mut Recording,
    ) -> Result<(), String> {
        loop {
            let cmd = match self.read_packet(rec).await {
                Ok(cmd) => cmd,
                // Closing without COM_QUIT ends a Serve step too.
                Err(_) if events.is_none() && self.closed => return Ok(()),
                Err(e) => return Err(e),
            };
            match cmd.first().copied() {
                Some(COM_QUERY) => {
                    let sql = String::from_utf8_lossy(&cmd[1..]);
                    match results.iter().find(|(q, _)| *q == sql) {
                        Some((_, rs)) => {
                            for p in rs.packets(self.client_caps.unwrap_or(0)) {
                                self.send_packet(&p).await?;
                            }
                        }
                        None => self.send_packet(&ok_packet()).await?,
                    }
                }
                Some(COM_REGISTER_SLAVE) | Some(COM_PING) => self.send_packet(&ok_packet()).await?,
                Some(COM_BINLOG_DUMP) | Some(COM_BINLOG_DUMP_GTID) => {
                    let Some(events) = &events else {
                        return Err("the client asked for the binlog".into());
                    };
                    for ev in events {
                        self.send_packet(&binlog_event(ev)).await?;
                    }
                    return Ok(());
                }
                Some(COM_QUIT) if events.is_none() => return Ok(()),
                Some(COM_QUIT) => return Err("the client quit before asking for the binlog".into()),
                other => {
                    self.send_packet(&err_packet(1047, "08S01", "Unknown command"))
                        .await?;
                    return Err(format!("unexpected command {other:?}"));
                }
            }
        }
    }
}
