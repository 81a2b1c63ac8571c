//! One replication session: connect, authenticate, register as a replica,
//! request the binlog from a position, and hand out verified events. It never
//! reconnects by itself: a dead session is reported, and the caller decides.

use std::time::Duration;

use tokio::net::TcpStream;

use crate::event::{types, ChecksumAlg, Event, EventHeader, HEADER_LEN};
use crate::packet::{parse_err, PacketIo, Reader};
use crate::{auth, BinlogPosition, SourceError};

const CLIENT_LONG_PASSWORD: u32 = 1;
const CLIENT_LONG_FLAG: u32 = 4;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_TRANSACTIONS: u32 = 0x2000;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_MULTI_RESULTS: u32 = 0x20000;
const CLIENT_PLUGIN_AUTH: u32 = 0x80000;
const CLIENT_PLUGIN_AUTH_LENENC: u32 = 0x200000;

/// COM_BINLOG_DUMP flag asking MariaDB for ANNOTATE_ROWS events.
const BINLOG_SEND_ANNOTATE_ROWS_EVENT: u16 = 2;
/// MariaDB replica capability: understands GTID events (MARIA_SLAVE_CAPABILITY_GTID).
const MARIADB_SLAVE_CAPABILITY_GTID: u32 = 4;

#[derive(Debug, Clone)]
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
}

struct Handshake {
    capabilities: u32,
    scramble: Vec<u8>,
    plugin: String,
    server_version: String,
}

fn parse_handshake(p: &[u8]) -> Result<Handshake, SourceError> {
    let mut r = Reader::new(p);
    let proto = r.u8()?;
    if proto != 10 {
        return Err(SourceError::protocol(format!(
            "unsupported handshake protocol version {proto}"
        )));
    }
    let server_version = String::from_utf8_lossy(r.nul_terminated()?).into_owned();
    let _conn_id = r.u32()?;
    let mut scramble = r.take(8)?.to_vec();
    r.u8()?;
    let mut capabilities = r.u16()? as u32;
    let mut plugin = String::from("mysql_native_password");
    if r.remaining() > 0 {
        let _charset = r.u8()?;
        let _status = r.u16()?;
        capabilities |= (r.u16()? as u32) << 16;
        let auth_len = r.u8()? as usize;
        r.take(10)?;
        if capabilities & CLIENT_SECURE_CONNECTION != 0 {
            let n = auth_len.saturating_sub(8).max(13);
            let part2 = r.take(n.min(r.remaining()))?;
            // The last byte is a NUL terminator, not scramble.
            let end = part2.iter().position(|&b| b == 0).unwrap_or(part2.len());
            scramble.extend_from_slice(&part2[..end]);
        }
        if capabilities & CLIENT_PLUGIN_AUTH != 0 && r.remaining() > 0 {
            let rest = r.rest();
            let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            plugin = String::from_utf8_lossy(&rest[..end]).into_owned();
        }
    }
    Ok(Handshake {
        capabilities,
        scramble,
        plugin,
        server_version,
    })
}

fn scramble_for(
    plugin: &str,
    password: &str,
    scramble: &[u8],
    user: &str,
) -> Result<Vec<u8>, SourceError> {
    match plugin {
        "mysql_native_password" => Ok(auth::native_password(password.as_bytes(), scramble)),
        "caching_sha2_password" => Ok(auth::caching_sha2_password(password.as_bytes(), scramble)),
        "mysql_clear_password" => {
            let mut v = password.as_bytes().to_vec();
            v.push(0);
            Ok(v)
        }
        other => Err(SourceError::Auth {
            user: user.to_string(),
            message: format!(
                "the server asks for authentication plugin '{other}', which sluice does not speak; \
                 give the replication user mysql_native_password or caching_sha2_password"
            ),
        }),
    }
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
        let mut io = PacketIo::new(stream, addr.clone());
        let deadline = opts.connect_timeout;
        let server_version = tokio::time::timeout(deadline, Self::authenticate(&mut io, opts))
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

    async fn authenticate(io: &mut PacketIo, opts: &SessionOptions) -> Result<String, SourceError> {
        let p = io.read_packet().await?;
        if p.first() == Some(&0xFF) {
            return Err(parse_err(&p));
        }
        let hs = parse_handshake(&p)?;
        let mut caps = CLIENT_LONG_PASSWORD
            | CLIENT_LONG_FLAG
            | CLIENT_PROTOCOL_41
            | CLIENT_TRANSACTIONS
            | CLIENT_SECURE_CONNECTION
            | CLIENT_MULTI_RESULTS
            | CLIENT_PLUGIN_AUTH;
        caps &= hs.capabilities | CLIENT_LONG_PASSWORD;
        if hs.capabilities & CLIENT_PLUGIN_AUTH_LENENC != 0 {
            caps |= CLIENT_PLUGIN_AUTH_LENENC;
        }
        if caps & CLIENT_PROTOCOL_41 == 0 {
            return Err(SourceError::protocol("server does not speak protocol 4.1"));
        }
        let auth_data = scramble_for(&hs.plugin, &opts.password, &hs.scramble, &opts.user)?;
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(&caps.to_le_bytes());
        out.extend_from_slice(&(16u32 << 20).to_le_bytes());
        out.push(45); // utf8mb4_general_ci
        out.extend_from_slice(&[0u8; 23]);
        out.extend_from_slice(opts.user.as_bytes());
        out.push(0);
        // One length byte serves both the length-encoded and the 4.1 form:
        // scrambles are at most 32 bytes.
        out.push(auth_data.len() as u8);
        out.extend_from_slice(&auth_data);
        out.extend_from_slice(hs.plugin.as_bytes());
        out.push(0);
        io.write_packet(&out).await?;
        let mut plugin = hs.plugin.clone();
        loop {
            let p = io.read_packet().await?;
            match p.first() {
                Some(0x00) => return Ok(hs.server_version),
                Some(0xFF) => {
                    return Err(match parse_err(&p) {
                        SourceError::Server { code, message, .. } if code == 1045 || code == 1698 => {
                            SourceError::Auth {
                                user: opts.user.clone(),
                                message,
                            }
                        }
                        e => e,
                    })
                }
                Some(0xFE) => {
                    // Auth switch request: plugin name, then new scramble.
                    let mut r = Reader::new(&p[1..]);
                    plugin = String::from_utf8_lossy(r.nul_terminated()?).into_owned();
                    let data = r.rest();
                    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                    let reply = scramble_for(&plugin, &opts.password, &data[..end], &opts.user)?;
                    io.write_packet(&reply).await?;
                }
                Some(0x01) if plugin == "caching_sha2_password" => match p.get(1) {
                    Some(3) => continue, // fast auth succeeded; OK follows
                    _ => {
                        return Err(SourceError::Auth {
                            user: opts.user.clone(),
                            message: "caching_sha2_password needs full authentication (RSA or TLS), which \
                                      sluice does not do yet: log in once with the mysql client so the \
                                      server caches the credential, or use mysql_native_password"
                                .into(),
                        })
                    }
                },
                _ => {
                    return Err(SourceError::protocol(format!(
                        "unexpected packet during authentication (first byte {:?})",
                        p.first()
                    )))
                }
            }
        }
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

    async fn request_dump(&mut self, opts: &SessionOptions) -> Result<(), SourceError> {
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
        let by_gtid = match (&opts.start.gtid, opts.gtid_mode) {
            (Some(g), true) if !g.is_empty() => {
                if !self.is_mariadb() {
                    return Err(SourceError::protocol(
                        "gtid_mode is implemented for MariaDB only; on MySQL resume by file and offset (gtid_mode=false)",
                    ));
                }
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

    fn decode_packet(&mut self, p: &[u8]) -> Result<Event, SourceError> {
        match p.first() {
            Some(0x00) => {}
            Some(0xFF) => {
                return Err(match parse_err(p) {
                    SourceError::Server {
                        code: 1236,
                        message,
                        ..
                    } => SourceError::BinlogPurged {
                        position: self.file.clone(),
                        message,
                    },
                    e => e,
                })
            }
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

    #[test]
    fn handshake_mariadb() {
        let mut p = vec![10];
        p.extend_from_slice(b"5.5.5-10.11.6-MariaDB\0");
        p.extend_from_slice(&7u32.to_le_bytes());
        p.extend_from_slice(b"abcdefgh");
        p.push(0);
        p.extend_from_slice(&0xF7FEu16.to_le_bytes());
        p.push(45);
        p.extend_from_slice(&2u16.to_le_bytes());
        p.extend_from_slice(&0x81BFu16.to_le_bytes());
        p.push(21);
        p.extend_from_slice(&[0; 10]);
        p.extend_from_slice(b"ijklmnopqrst\0");
        p.extend_from_slice(b"mysql_native_password\0");
        let hs = parse_handshake(&p).unwrap();
        assert_eq!(hs.scramble, b"abcdefghijklmnopqrst");
        assert_eq!(hs.plugin, "mysql_native_password");
        assert!(hs.server_version.contains("MariaDB"));
        assert!(parse_handshake(&p[..20]).is_err());
    }
}
