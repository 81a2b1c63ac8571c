//! One replication session: connect, authenticate, register as a replica,
//! request the binlog from a position, and hand out verified events. It never
//! reconnects by itself: a dead session is reported, and the caller decides.

use std::time::Duration;

use tokio::net::TcpStream;

use crate::auth::AuthOptions;
use crate::event::{types, ChecksumAlg, Event, EventHeader, HEADER_LEN};
use crate::packet::{parse_err, PacketIo, STREAM_LIMIT};
use crate::tls::TlsOptions;
use crate::{BinlogPosition, SourceError};

/// Above max_allowed_packet: the packet's first byte, the event header and
/// checksum (the server checks the event's data against the limit).
const EVENT_HEADROOM: usize = 64 << 10;
const STREAM_PHASE: &str = "in the binlog stream (the server's max_allowed_packet, at most 1 GiB)";

/// COM_BINLOG_DUMP flag asking MariaDB for ANNOTATE_ROWS events.
const BINLOG_SEND_ANNOTATE_ROWS_EVENT: u16 = 2;
/// MariaDB replica capability: understands GTID events (MARIA_SLAVE_CAPABILITY_GTID).
const MARIADB_SLAVE_CAPABILITY_GTID: u32 = 4;

#[derive(Clone)]
pub struct SessionOptions {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// `replica_server_id`: must be unique among the server's replicas.
    pub server_id: u32,
    pub start: BinlogPosition,
    /// Heartbeat period asked of the server; the read deadline derives from it.
    pub heartbeat: Duration,
    pub connect_timeout: Duration,
    /// MariaDB: start after `start.gtid` (`@slave_connect_state`) instead of
    /// at `start.file`/`start.offset`, when the position has a GTID.
    pub gtid_mode: bool,
    /// `replication_ssl` and the certificate options.
    pub tls: TlsOptions,
    /// `enable_cleartext_plugin`, `server_public_key_path`.
    pub auth: AuthOptions,
}

/// Written by hand so that the password never reaches a log line.
impl std::fmt::Debug for SessionOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("server_id", &self.server_id)
            .field("start", &self.start)
            .field("heartbeat", &self.heartbeat)
            .field("connect_timeout", &self.connect_timeout)
            .field("gtid_mode", &self.gtid_mode)
            .field("tls", &self.tls)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl SessionOptions {
    /// How long a silent connection is trusted: three heartbeats, at least
    /// two seconds more than one.
    pub fn read_deadline(&self) -> Duration {
        (self.heartbeat * 3).max(self.heartbeat + Duration::from_secs(2))
    }
}

pub struct BinlogSession {
    io: PacketIo,
    buf: Vec<u8>,
    verify_crc: bool,
    seen_fde: bool,
    read_deadline: Duration,
    file: String,
    server_version: String,
    server_id: u32,
    /// The largest packet of the stream (see `request_dump`).
    stream_limit: usize,
}

impl BinlogSession {
    /// Connects (resolving the host name anew), authenticates, registers as
    /// a replica and requests the binlog from `opts.start`.
    pub async fn connect(opts: &SessionOptions) -> Result<Self, SourceError> {
        let addr = format!("{}:{}", opts.host, opts.port);
        let io_err = |source| SourceError::Io {
            addr: addr.clone(),
            source,
        };
        let stream = tokio::time::timeout(opts.connect_timeout, async {
            let addrs: Vec<_> = tokio::net::lookup_host(&addr).await?.collect();
            let mut last =
                std::io::Error::new(std::io::ErrorKind::NotFound, "host resolved to no address");
            for a in addrs {
                match TcpStream::connect(a).await {
                    Ok(s) => return Ok(s),
                    Err(e) => last = e,
                }
            }
            Err(last)
        })
        .await
        .map_err(|_| {
            io_err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connect timed out",
            ))
        })?
        .map_err(io_err)?;
        let io = PacketIo::new(stream, addr.clone());
        let deadline = opts.connect_timeout;
        let (io, server_version) =
            tokio::time::timeout(deadline, crate::handshake::establish(io, opts))
                .await
                .map_err(|_| SourceError::ReadTimeout(deadline))??;
        let mut session = BinlogSession {
            io,
            buf: Vec::with_capacity(1 << 16),
            verify_crc: false,
            seen_fde: false,
            read_deadline: opts.read_deadline(),
            file: opts.start.file.clone(),
            server_version,
            server_id: opts.server_id,
            stream_limit: STREAM_LIMIT,
        };
        tokio::time::timeout(deadline, session.request_dump(opts))
            .await
            .map_err(|_| SourceError::ReadTimeout(deadline))??;
        Ok(session)
    }

    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    pub fn is_mariadb(&self) -> bool {
        self.server_version.to_ascii_lowercase().contains("mariadb")
    }

    /// Whether the session is encrypted (TLS).
    pub fn is_tls(&self) -> bool {
        self.io.is_tls()
    }

    async fn query(&mut self, sql: &str) -> Result<(), SourceError> {
        let mut cmd = Vec::with_capacity(sql.len() + 1);
        cmd.push(0x03);
        cmd.extend_from_slice(sql.as_bytes());
        self.io.command(&cmd).await?;
        let p = self.io.read_packet().await?;
        match p.first() {
            Some(0x00) => Ok(()),
            Some(0xFF) => Err(parse_err(&p)),
            _ => Err(SourceError::protocol(format!(
                "'{sql}' returned a result set; expected OK"
            ))),
        }
    }

    /// The first column of the first row of a text result set, as a number
    /// (None: no row, NULL, or not a number). Bounded like every read here:
    /// a handful of columns, packets under the handshake limit.
    async fn query_u64(&mut self, sql: &str) -> Result<Option<u64>, SourceError> {
        let mut cmd = vec![0x03];
        cmd.extend_from_slice(sql.as_bytes());
        self.io.command(&cmd).await?;
        let p = self.io.read_packet().await?;
        let columns = match p.first() {
            Some(0x00) => return Ok(None),
            Some(0xFF) => return Err(parse_err(&p)),
            _ => crate::packet::Reader::new(&p).lenenc()?,
        };
        if columns == 0 || columns > 64 {
            return Err(SourceError::protocol(format!(
                "'{sql}' answered with a result set of {columns} columns"
            )));
        }
        let is_eof = |p: &[u8]| p.first() == Some(&0xFE) && p.len() < 9;
        for _ in 0..columns {
            self.io.read_packet().await?;
        }
        if !is_eof(&self.io.read_packet().await?[..]) {
            return Err(SourceError::protocol(format!(
                "'{sql}': no end of the column definitions"
            )));
        }
        let mut value = None;
        loop {
            let row = self.io.read_packet().await?;
            if is_eof(&row[..]) {
                return Ok(value);
            }
            if row.first() == Some(&0xFF) {
                return Err(parse_err(&row));
            }
            if value.is_none() && row.first() != Some(&0xFB) {
                let text = crate::packet::Reader::new(&row).lenenc_bytes()?;
                value = std::str::from_utf8(text).ok().and_then(|t| t.parse().ok());
            }
        }
    }

    async fn request_dump(&mut self, opts: &SessionOptions) -> Result<(), SourceError> {
        // No event is larger than the server's max_allowed_packet (events
        // are written under it), and none above 1 GiB: the most the stream
        // may make this process hold at once.
        let server_max = self
            .query_u64("SELECT @@global.max_allowed_packet")
            .await?
            .unwrap_or(STREAM_LIMIT as u64);
        self.stream_limit = usize::try_from(server_max)
            .unwrap_or(STREAM_LIMIT)
            .saturating_add(EVENT_HEADROOM)
            .clamp(1 << 20, STREAM_LIMIT);
        // Tell the server we verify checksums, and at which period to send
        // heartbeats when there is nothing else to send.
        self.query("SET @master_binlog_checksum = @@global.binlog_checksum")
            .await?;
        self.query(&format!(
            "SET @master_heartbeat_period = {}",
            opts.heartbeat.as_nanos().max(1_000_000)
        ))
        .await?;
        if self.is_mariadb() {
            self.query(&format!(
                "SET @mariadb_slave_capability = {MARIADB_SLAVE_CAPABILITY_GTID}"
            ))
            .await?;
        }
        let mut mysql_gtids = None;
        let by_gtid = match (&opts.start.gtid, opts.gtid_mode) {
            (Some(g), true) if !g.is_empty() && !self.is_mariadb() => {
                // MySQL: the executed GTID set goes in the dump command.
                let set = crate::mysql_gtid::GtidSet::parse(g).map_err(SourceError::protocol)?;
                mysql_gtids = Some(set);
                true
            }
            (Some(g), true) if !g.is_empty() => {
                // Validated digits and separators only: safe to inline.
                let state = crate::GtidState::parse(g).map_err(SourceError::protocol)?;
                self.query(&format!("SET @slave_connect_state = '{state}'"))
                    .await?;
                // The server refuses a position it does not have instead of
                // silently starting elsewhere.
                self.query("SET @slave_gtid_strict_mode = 1").await?;
                self.query("SET @slave_gtid_ignore_duplicates = 0").await?;
                true
            }
            _ => false,
        };
        let mut reg = vec![0x15];
        reg.extend_from_slice(&opts.server_id.to_le_bytes());
        let host = b"sluice";
        reg.push(host.len() as u8);
        reg.extend_from_slice(host);
        reg.push(0); // user
        reg.push(0); // password
        reg.extend_from_slice(&0u16.to_le_bytes());
        reg.extend_from_slice(&0u32.to_le_bytes());
        reg.extend_from_slice(&0u32.to_le_bytes());
        self.io.command(&reg).await?;
        let p = self.io.read_packet().await?;
        if p.first() == Some(&0xFF) {
            return Err(parse_err(&p));
        }
        let offset = u32::try_from(opts.start.offset).map_err(|_| {
            SourceError::protocol(format!(
                "binlog offset {} does not fit 32 bits",
                opts.start.offset
            ))
        })?;
        if let Some(set) = mysql_gtids {
            let cmd = crate::mysql_gtid::com_binlog_dump_gtid(opts.server_id, "", 4, &set);
            self.io.command(&cmd).await?;
            self.io.set_limit(self.stream_limit, STREAM_PHASE);
            return Ok(());
        }
        let mut dump = vec![0x12];
        // By GTID: no file name; the server finds the file and says which
        // one in its first (rotate) event.
        let (offset, file) = if by_gtid {
            (4u32, "")
        } else {
            (offset, opts.start.file.as_str())
        };
        dump.extend_from_slice(&offset.to_le_bytes());
        dump.extend_from_slice(&BINLOG_SEND_ANNOTATE_ROWS_EVENT.to_le_bytes());
        dump.extend_from_slice(&opts.server_id.to_le_bytes());
        dump.extend_from_slice(file.as_bytes());
        self.io.command(&dump).await?;
        self.io.set_limit(self.stream_limit, STREAM_PHASE);
        Ok(())
    }

    /// The binlog file events currently come from.
    pub fn current_file(&self) -> &str {
        &self.file
    }

    /// The next event, checksum verified and removed. Fails with
    /// `ReadTimeout` when the server sends nothing (not even a heartbeat)
    /// within the read deadline.
    pub async fn next_event(&mut self) -> Result<Event, SourceError> {
        let deadline = self.read_deadline;
        let mut buf = std::mem::take(&mut self.buf);
        let res = tokio::time::timeout(deadline, self.io.read_packet_into(&mut buf)).await;
        let out = match res {
            Err(_) => Err(SourceError::ReadTimeout(deadline)),
            Ok(Err(e)) => Err(e),
            Ok(Ok(())) => self.decode_packet(&buf),
        };
        self.buf = buf;
        out
    }

    /// Fills `out` with the next event (waiting for it, as `next_event`)
    /// plus every further event already received, up to `max_events` events
    /// or `max_bytes` of event bodies.
    pub async fn next_batch(
        &mut self,
        out: &mut Vec<Event>,
        max_events: usize,
        max_bytes: usize,
    ) -> Result<(), SourceError> {
        let first = self.next_event().await?;
        let mut bytes = first.body.len();
        out.push(first);
        let mut buf = std::mem::take(&mut self.buf);
        let mut result = Ok(());
        while out.len() < max_events
            && bytes < max_bytes
            && self.io.try_buffered_packet_into(&mut buf)
        {
            match self.decode_packet(&buf) {
                Ok(ev) => {
                    bytes += ev.body.len();
                    out.push(ev);
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.buf = buf;
        result
    }

    /// An error the server sent instead of an event, named by its cause
    /// where the code alone does not say it.
    fn stream_error(&self, p: &[u8]) -> SourceError {
        match parse_err(p) {
            // MariaDB's ER_SLAVE_SAME_ID; MySQL sends 1236 with the text.
            SourceError::Server { code, message, .. }
                if code == 4052
                    || (code == 1236 && message.contains("same server_uuid/server_id")) =>
            {
                SourceError::SameServerId {
                    server_id: self.server_id,
                    message,
                }
            }
            SourceError::Server { code, message, .. }
                if code == 1236 && message.contains("Could not find first log file") =>
            {
                SourceError::BinlogUnavailable {
                    file: self.file.clone(),
                    message,
                }
            }
            SourceError::Server {
                code,
                state,
                message,
            } if code == 1236 => SourceError::Server {
                code,
                state,
                message: format!("{message} (reading binlog file {})", self.file),
            },
            e => e,
        }
    }

    fn decode_packet(&mut self, p: &[u8]) -> Result<Event, SourceError> {
        match p.first() {
            Some(0x00) => {}
            Some(0xFF) => return Err(self.stream_error(p)),
            Some(0xFE) if p.len() < 9 => return Err(SourceError::EndOfStream),
            _ => {
                return Err(SourceError::protocol(
                    "unexpected packet in the binlog stream",
                ))
            }
        }
        let data = &p[1..];
        if data.len() < HEADER_LEN {
            return Err(SourceError::protocol(
                "binlog event shorter than its header",
            ));
        }
        let header = EventHeader::parse(data)?;
        if header.event_size as usize != data.len() {
            return Err(SourceError::protocol(format!(
                "event size {} in header, {} bytes received",
                header.event_size,
                data.len()
            )));
        }
        if header.event_type == types::FORMAT_DESCRIPTION {
            let fde = crate::event::FormatDescription::parse_with_footer(&data[HEADER_LEN..])?;
            self.verify_crc = fde.checksum == ChecksumAlg::Crc32;
            self.seen_fde = true;
        }
        let mut end = data.len();
        if !self.verify_crc && !self.seen_fde {
            // Events before the first format description (the artificial
            // ROTATE) carry a checksum when the server uses one; recognise it.
            if let Ok(without) = verify_checksum(data) {
                end = without;
            }
        }
        if self.verify_crc {
            end = verify_checksum(data).map_err(|(expected, computed)| SourceError::Checksum {
                file: self.file.clone(),
                offset: (header.log_pos as u64).saturating_sub(header.event_size as u64),
                expected,
                computed,
            })?;
        }
        if header.event_type == types::FORMAT_DESCRIPTION && self.verify_crc {
            end -= 1; // the algorithm byte
        }
        if header.event_type == types::ROTATE {
            if let Ok(rot) = crate::event::Rotate::parse(&data[HEADER_LEN..end]) {
                self.file = rot.file;
            }
        }
        Ok(Event {
            header,
            body: data[HEADER_LEN..end].to_vec(),
        })
    }
}

/// Checks an event's trailing CRC32 (over header and body); returns the
/// length without it, or (expected, computed) on mismatch.
pub fn verify_checksum(data: &[u8]) -> Result<usize, (u32, u32)> {
    if data.len() < HEADER_LEN + 4 {
        return Err((0, 0));
    }
    let end = data.len() - 4;
    let expected = u32::from_le_bytes([data[end], data[end + 1], data[end + 2], data[end + 3]]);
    let computed = crc32fast::hash(&data[..end]);
    if expected == computed {
        Ok(end)
    } else {
        Err((expected, computed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_detects_a_flipped_bit() {
        let mut ev = vec![7u8; 40];
        let crc = crc32fast::hash(&ev);
        ev.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(verify_checksum(&ev), Ok(40));
        ev[25] ^= 1;
        assert!(verify_checksum(&ev).is_err());
        assert!(verify_checksum(&ev[..10]).is_err());
    }
}
