//! Payloads of the server's packets (framing is the connection's job).

use crate::caps;

/// The initial handshake packet (protocol 10).
#[derive(Debug, Clone)]
pub struct Greeting {
    pub server_version: String,
    pub connection_id: u32,
    pub capabilities: u32,
    /// 20 bytes in real servers; sent as 8 + the rest + NUL.
    pub scramble: Vec<u8>,
    pub plugin: String,
    pub charset: u8,
    pub status: u16,
}

impl Greeting {
    /// A MySQL 8 greeting: caching_sha2_password, TLS offered.
    pub fn mysql8() -> Greeting {
        Greeting {
            server_version: "8.0.40".into(),
            connection_id: 11,
            capabilities: caps::LONG_PASSWORD
                | caps::LONG_FLAG
                | caps::CONNECT_WITH_DB
                | caps::PROTOCOL_41
                | caps::SSL
                | caps::TRANSACTIONS
                | caps::SECURE_CONNECTION
                | caps::MULTI_STATEMENTS
                | caps::MULTI_RESULTS
                | caps::PLUGIN_AUTH
                | caps::CONNECT_ATTRS
                | caps::PLUGIN_AUTH_LENENC
                | caps::DEPRECATE_EOF,
            scramble: b"0123456789abcdefghij".to_vec(),
            plugin: "caching_sha2_password".into(),
            charset: 255,
            status: 2,
        }
    }

    pub fn plugin(mut self, plugin: &str) -> Greeting {
        self.plugin = plugin.into();
        self
    }

    pub fn scramble(mut self, scramble: &[u8]) -> Greeting {
        self.scramble = scramble.to_vec();
        self
    }

    pub fn server_version(mut self, version: &str) -> Greeting {
        self.server_version = version.into();
        self
    }

    /// The same greeting without the TLS capability.
    pub fn without_tls(mut self) -> Greeting {
        self.capabilities &= !caps::SSL;
        self
    }

    pub fn payload(&self) -> Vec<u8> {
        let mut p = vec![10];
        p.extend_from_slice(self.server_version.as_bytes());
        p.push(0);
        p.extend_from_slice(&self.connection_id.to_le_bytes());
        let (first, rest) = self.scramble.split_at(self.scramble.len().min(8));
        p.extend_from_slice(first);
        p.extend(std::iter::repeat_n(0, 8 - first.len()));
        p.push(0);
        p.extend_from_slice(&(self.capabilities as u16).to_le_bytes());
        p.push(self.charset);
        p.extend_from_slice(&self.status.to_le_bytes());
        p.extend_from_slice(&((self.capabilities >> 16) as u16).to_le_bytes());
        p.push((self.scramble.len() + 1).min(255) as u8);
        p.extend_from_slice(&[0; 10]);
        p.extend_from_slice(rest);
        p.push(0);
        p.extend_from_slice(self.plugin.as_bytes());
        p.push(0);
        p
    }
}

pub fn ok_packet() -> Vec<u8> {
    // header, affected rows, last insert id, status (autocommit), warnings
    vec![0x00, 0, 0, 2, 0, 0, 0]
}

/// The OK packet that ends a result set under CLIENT_DEPRECATE_EOF.
fn ok_terminator() -> Vec<u8> {
    vec![0xFE, 0, 0, 2, 0, 0, 0]
}

pub fn eof_packet() -> Vec<u8> {
    vec![0xFE, 0, 0, 2, 0]
}

pub fn err_packet(code: u16, state: &str, message: &str) -> Vec<u8> {
    let mut p = vec![0xFF];
    p.extend_from_slice(&code.to_le_bytes());
    p.push(b'#');
    let mut st = state.as_bytes().to_vec();
    st.resize(5, b'0');
    p.extend_from_slice(&st);
    p.extend_from_slice(message.as_bytes());
    p
}

/// An auth switch request: the plugin and its data (sent as given; real
/// servers end 20-byte scrambles with a NUL).
pub fn auth_switch(plugin: &str, data: &[u8]) -> Vec<u8> {
    let mut p = vec![0xFE];
    p.extend_from_slice(plugin.as_bytes());
    p.push(0);
    p.extend_from_slice(data);
    p
}

/// A more-data packet (0x01 and the data): caching_sha2_password's 3
/// (fast auth succeeded) and 4 (perform full authentication), or a PEM key.
pub fn more_data(data: &[u8]) -> Vec<u8> {
    let mut p = vec![0x01];
    p.extend_from_slice(data);
    p
}

/// A binlog event as the dump stream sends it (0x00, then the event).
pub fn binlog_event(event: &[u8]) -> Vec<u8> {
    let mut p = vec![0x00];
    p.extend_from_slice(event);
    p
}

/// The first packet of a result set: its column count (any count, e.g. an
/// absurd one a hostile server announces).
pub fn column_count_packet(columns: u64) -> Vec<u8> {
    let mut p = Vec::new();
    put_lenenc(&mut p, columns);
    p
}

/// A column of a text result set.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// MySQL type code (`MYSQL_TYPE_VAR_STRING` = 0xFD, `LONGLONG` = 8).
    pub column_type: u8,
}

impl Column {
    pub fn text(name: &str) -> Column {
        Column {
            name: name.into(),
            column_type: 0xFD,
        }
    }
}

/// A text-protocol result set; `None` cells are NULL.
#[derive(Debug, Clone, Default)]
pub struct ResultSet {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl ResultSet {
    /// A result set of text columns.
    pub fn new(columns: &[&str], rows: &[&[Option<&str>]]) -> ResultSet {
        ResultSet {
            columns: columns.iter().map(|c| Column::text(c)).collect(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|c| c.map(str::to_string)).collect())
                .collect(),
        }
    }

    /// The packets that carry it, in the form the client's capabilities ask for.
    pub fn packets(&self, client_caps: u32) -> Vec<Vec<u8>> {
        let deprecate_eof = client_caps & caps::DEPRECATE_EOF != 0;
        let mut out = Vec::new();
        let mut count = Vec::new();
        put_lenenc(&mut count, self.columns.len() as u64);
        out.push(count);
        for c in &self.columns {
            let mut p = Vec::new();
            for s in ["def", "", "", "", c.name.as_str(), c.name.as_str()] {
                put_lenenc_str(&mut p, s.as_bytes());
            }
            p.push(0x0C);
            p.extend_from_slice(&45u16.to_le_bytes());
            p.extend_from_slice(&1024u32.to_le_bytes());
            p.push(c.column_type);
            p.extend_from_slice(&0u16.to_le_bytes());
            p.push(0);
            p.extend_from_slice(&[0, 0]);
            out.push(p);
        }
        if !deprecate_eof {
            out.push(eof_packet());
        }
        for row in &self.rows {
            let mut p = Vec::new();
            for cell in row {
                match cell {
                    Some(v) => put_lenenc_str(&mut p, v.as_bytes()),
                    None => p.push(0xFB),
                }
            }
            out.push(p);
        }
        out.push(if deprecate_eof {
            ok_terminator()
        } else {
            eof_packet()
        });
        out
    }
}

pub(crate) fn put_lenenc(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=250 => out.push(n as u8),
        251..=0xFFFF => {
            out.push(0xFC);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xFF_FFFF => {
            out.push(0xFD);
            out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xFE);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

fn put_lenenc_str(out: &mut Vec<u8>, s: &[u8]) {
    put_lenenc(out, s.len() as u64);
    out.extend_from_slice(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_carries_the_scramble_in_two_parts_and_the_plugin() {
        let g = Greeting::mysql8().scramble(b"0123456789abcdefghij");
        let p = g.payload();
        let v = b"8.0.40\0";
        assert_eq!(&p[1..1 + v.len()], v);
        let at = 1 + v.len() + 4;
        assert_eq!(&p[at..at + 8], b"01234567");
        // filler, caps (2), charset, status (2), caps (2), auth data length
        assert_eq!(p[at + 8 + 1 + 2 + 1 + 2 + 2], 21);
        assert!(p.ends_with(b"89abcdefghij\0caching_sha2_password\0"));
        let caps = u16::from_le_bytes([p[at + 9], p[at + 10]]) as u32;
        assert_ne!(caps & crate::caps::SSL, 0);
        let plain = Greeting::mysql8().without_tls().payload();
        let caps = u16::from_le_bytes([plain[at + 9], plain[at + 10]]) as u32;
        assert_eq!(caps & crate::caps::SSL, 0);
    }

    #[test]
    fn result_set_ends_as_the_client_asks() {
        let rs = ResultSet::new(&["a"], &[&[Some("x")], &[None]]);
        let old = rs.packets(0);
        // count, column, EOF, 2 rows, EOF
        assert_eq!(old.len(), 6);
        assert_eq!(old[2], eof_packet());
        assert_eq!(old[4], vec![0xFB]);
        let new = rs.packets(crate::caps::DEPRECATE_EOF);
        // count, column, 2 rows, OK (0xFE header)
        assert_eq!(new.len(), 5);
        assert_eq!(new[4][0], 0xFE);
    }

    #[test]
    fn err_packet_has_state_and_message() {
        let p = err_packet(1045, "28000", "denied");
        assert_eq!(&p[..4], &[0xFF, 0x15, 0x04, b'#']);
        assert_eq!(&p[4..9], b"28000");
        assert_eq!(&p[9..], b"denied");
    }
}
