//! The connection phase: the server's greeting, the switch to TLS when the
//! ssl mode asks for it, and the login.

use crate::auth::{Login, Reply};
use crate::packet::{parse_err, PacketIo, Reader};
use crate::session::SessionOptions;
use crate::tls::{SslMode, TlsError};
use crate::SourceError;

const CLIENT_LONG_PASSWORD: u32 = 1;
const CLIENT_LONG_FLAG: u32 = 4;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_SSL: u32 = 0x800;
const CLIENT_TRANSACTIONS: u32 = 0x2000;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_MULTI_RESULTS: u32 = 0x20000;
const CLIENT_PLUGIN_AUTH: u32 = 0x80000;
const CLIENT_PLUGIN_AUTH_LENENC: u32 = 0x200000;

/// Largest packet we announce (the server's own limit applies as well).
const MAX_PACKET: u32 = 16 << 20;
const UTF8MB4_GENERAL_CI: u8 = 45;

/// MySQL's `ER_SECURE_TRANSPORT_REQUIRED`. MariaDB answers a plain login
/// under require_secure_transport=ON with "access denied" (1045) instead.
const ER_SECURE_TRANSPORT_REQUIRED: u16 = 3159;

pub(crate) struct Greeting {
    pub capabilities: u32,
    pub scramble: Vec<u8>,
    pub plugin: String,
    pub server_version: String,
}

pub(crate) fn parse_greeting(p: &[u8]) -> Result<Greeting, SourceError> {
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
    let mut plugin = String::from(crate::auth::NATIVE_PASSWORD);
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
    Ok(Greeting {
        capabilities,
        scramble,
        plugin,
        server_version,
    })
}

/// Reads the greeting, starts TLS if the mode and the server agree, and
/// logs in. Returns the connection (possibly now TLS) and the server version.
pub(crate) async fn establish(
    mut io: PacketIo,
    opts: &SessionOptions,
) -> Result<(PacketIo, String), SourceError> {
    let p = io.read_greeting().await?;
    if p.first() == Some(&0xFF) {
        return Err(parse_err(&p));
    }
    let greeting = parse_greeting(&p)?;
    let mut caps = CLIENT_LONG_PASSWORD
        | CLIENT_LONG_FLAG
        | CLIENT_PROTOCOL_41
        | CLIENT_TRANSACTIONS
        | CLIENT_SECURE_CONNECTION
        | CLIENT_MULTI_RESULTS
        | CLIENT_PLUGIN_AUTH;
    caps &= greeting.capabilities | CLIENT_LONG_PASSWORD;
    if greeting.capabilities & CLIENT_PLUGIN_AUTH_LENENC != 0 {
        caps |= CLIENT_PLUGIN_AUTH_LENENC;
    }
    if caps & CLIENT_PROTOCOL_41 == 0 {
        return Err(SourceError::protocol("server does not speak protocol 4.1"));
    }
    // The configured public key is read before anything is sent, so a bad
    // path fails the same way whatever the server asks for.
    let server_key = match &opts.auth.server_public_key_path {
        Some(path) => Some(tokio::fs::read(path).await.map_err(|e| SourceError::Auth {
            user: opts.user.clone(),
            message: format!("cannot read server_public_key_path {}: {e}", path.display()),
        })?),
        None => None,
    };
    let tls = &opts.tls;
    let server_offers_tls = greeting.capabilities & CLIENT_SSL != 0;
    if tls.mode.wants_tls() && server_offers_tls {
        // Built before the SSL request goes out: a configuration error
        // must not leave the server waiting for a TLS handshake.
        let connector = crate::tls::TlsConnector::new(tls)?
            .ok_or_else(|| SourceError::protocol("no TLS connector for a mode that wants TLS"))?;
        caps |= CLIENT_SSL;
        io.write_packet(&login_prefix(caps)).await?;
        io = io.start_tls(&connector, &opts.host).await?;
    } else if tls.mode.requires_tls() {
        return Err(TlsError::NotOffered {
            host: opts.host.clone(),
            option: tls.option("ssl"),
            mode: tls.mode,
        }
        .into());
    } else if tls.mode == SslMode::Preferred {
        tracing::info!(
            host = %opts.host,
            "the server offers no TLS: connecting without encryption ({}=PREFERRED)",
            tls.option("ssl")
        );
    }
    login(&mut io, opts, &greeting, caps, server_key.as_deref()).await?;
    Ok((io, greeting.server_version))
}

/// The fixed start of the handshake response, which alone is the SSL request.
fn login_prefix(caps: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&caps.to_le_bytes());
    out.extend_from_slice(&MAX_PACKET.to_le_bytes());
    out.push(UTF8MB4_GENERAL_CI);
    out.extend_from_slice(&[0u8; 23]);
    out
}

fn handshake_response(
    caps: u32,
    user: &str,
    plugin: &str,
    auth_data: &[u8],
) -> Result<Vec<u8>, SourceError> {
    let mut out = login_prefix(caps);
    out.extend_from_slice(user.as_bytes());
    out.push(0);
    if caps & CLIENT_PLUGIN_AUTH_LENENC != 0 {
        put_lenenc(&mut out, auth_data.len() as u64);
    } else {
        let len = u8::try_from(auth_data.len()).map_err(|_| {
            SourceError::protocol(
                "authentication data longer than 255 bytes and the server takes no longer ones",
            )
        })?;
        out.push(len);
    }
    out.extend_from_slice(auth_data);
    out.extend_from_slice(plugin.as_bytes());
    out.push(0);
    Ok(out)
}

fn put_lenenc(out: &mut Vec<u8>, n: u64) {
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

async fn login(
    io: &mut PacketIo,
    opts: &SessionOptions,
    greeting: &Greeting,
    caps: u32,
    server_key: Option<&[u8]>,
) -> Result<(), SourceError> {
    let mut conv = Login::new(
        &opts.user,
        opts.password.as_bytes(),
        io.is_tls(),
        &opts.auth,
        server_key,
        opts.tls.option("ssl"),
    );
    let (plugin, data) = conv.start(&greeting.plugin, &greeting.scramble)?;
    io.write_packet(&handshake_response(caps, &opts.user, &plugin, &data)?)
        .await?;
    loop {
        let p = io.read_packet().await?;
        match p.first() {
            Some(0x00) => return Ok(()),
            Some(0xFF) => return Err(login_error(&p, io.is_tls(), greeting, opts)),
            Some(0xFE) => {
                // Auth switch request: plugin name, then the plugin's data.
                let mut r = Reader::new(&p[1..]);
                let plugin = String::from_utf8_lossy(r.nul_terminated()?).into_owned();
                let reply = conv.switch(&plugin, r.rest())?;
                io.write_packet(&reply).await?;
            }
            Some(0x01) => match conv.more_data(&p[1..])? {
                Reply::Send(bytes) => io.write_packet(&bytes).await?,
                Reply::Wait => {}
            },
            first => {
                return Err(SourceError::protocol(format!(
                    "unexpected packet during {} authentication (first byte {first:?})",
                    conv.plugin()
                )))
            }
        }
    }
}

fn login_error(p: &[u8], tls: bool, greeting: &Greeting, opts: &SessionOptions) -> SourceError {
    match parse_err(p) {
        SourceError::Server { code, message, .. } if code == 1045 || code == 1698 => {
            let hint = if !tls && greeting.capabilities & CLIENT_SSL != 0 {
                format!(
                    " (this connection is not encrypted: if the server requires TLS \
                     (require_secure_transport=ON, which MariaDB reports as access denied), set \
                     {}=REQUIRED, VERIFY_CA or VERIFY_IDENTITY)",
                    opts.tls.option("ssl")
                )
            } else {
                String::new()
            };
            SourceError::Auth {
                user: opts.user.clone(),
                message: format!("{message}{hint}"),
            }
        }
        SourceError::Server { code, message, .. }
            if !tls
                && (code == ER_SECURE_TRANSPORT_REQUIRED
                    || message.contains("require_secure_transport")) =>
        {
            TlsError::RequiredByServer {
                host: opts.host.clone(),
                option: opts.tls.option("ssl"),
            }
            .into()
        }
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_mariadb() {
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
        let hs = parse_greeting(&p).unwrap();
        assert_eq!(hs.scramble, b"abcdefghijklmnopqrst");
        assert_eq!(hs.plugin, "mysql_native_password");
        assert!(hs.server_version.contains("MariaDB"));
        assert_eq!(
            hs.capabilities & CLIENT_SSL,
            0,
            "this greeting offers no TLS"
        );
        assert!(parse_greeting(&p[..20]).is_err());
    }

    #[test]
    fn ssl_request_is_the_32_byte_prefix_of_the_response() {
        let caps = CLIENT_PROTOCOL_41 | CLIENT_SSL | CLIENT_PLUGIN_AUTH;
        let req = login_prefix(caps);
        assert_eq!(req.len(), 32);
        let resp = handshake_response(caps, "u", "p", b"x").unwrap();
        assert_eq!(&resp[..32], &req[..]);
    }

    #[test]
    fn long_auth_data_is_length_encoded_or_refused() {
        let long = vec![b'a'; 300];
        let lenenc = CLIENT_PROTOCOL_41 | CLIENT_PLUGIN_AUTH | CLIENT_PLUGIN_AUTH_LENENC;
        let resp = handshake_response(lenenc, "u", "p", &long).unwrap();
        assert_eq!(&resp[34..37], &[0xFC, 44, 1]);
        assert!(handshake_response(CLIENT_PROTOCOL_41, "u", "p", &long).is_err());
    }
}
