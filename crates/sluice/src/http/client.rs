//! A minimal HTTP/1.1 GET client for the cluster view: one request per
//! connection to another node's endpoint (the same small server), plain or
//! TLS, with a deadline for everything.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::tls::PeerTls;

/// Answers larger than this are not a node's `/status`.
const MAX_RESPONSE: usize = 4 << 20;

/// How to reach other nodes.
#[derive(Debug, Clone, Default)]
pub struct Client {
    /// HTTPS (the nodes share the TLS settings).
    pub tls: Option<PeerTls>,
    /// The `Authorization` header value (the nodes share http_auth).
    pub authorization: Option<String>,
    pub timeout: Duration,
}

impl Client {
    /// GETs `path` from `address` (`host:port`): (status, body).
    pub async fn get(&self, address: &str, path: &str) -> Result<(u16, String), String> {
        match tokio::time::timeout(self.timeout, self.exchange(address, path)).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }

    async fn exchange(&self, address: &str, path: &str) -> Result<(u16, String), String> {
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: sluice/{}\r\nAccept: application/json\r\nConnection: close\r\n",
            env!("CARGO_PKG_VERSION")
        );
        if let Some(a) = &self.authorization {
            request.push_str(&format!("Authorization: {a}\r\n"));
        }
        request.push_str("\r\n");
        let raw = match &self.tls {
            Some(tls) => {
                let name = PeerTls::server_name(address)?;
                let stream = tls
                    .connector()
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS ({}): {e}", tls.roots))?;
                round_trip(stream, &request).await?
            }
            None => round_trip(tcp, &request).await?,
        };
        parse_response(&raw)
    }
}

async fn round_trip<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &str,
) -> Result<Vec<u8>, String> {
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&chunk[..n]);
                if raw.len() > MAX_RESPONSE {
                    return Err(format!("answer larger than {MAX_RESPONSE} bytes"));
                }
            }
            // A TLS peer that closes without close_notify still sent
            // everything Content-Length promised; parse_response checks.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(e) => return Err(format!("cannot read the answer: {e}")),
        }
    }
    Ok(raw)
}

/// (status, body) of a complete HTTP/1.x response.
pub fn parse_response(raw: &[u8]) -> Result<(u16, String), String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("not an HTTP answer (no end of headers)")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| format!("not an HTTP answer: {status_line:.60}"))?;
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok());
    let body = match length {
        Some(n) if body.len() < n => {
            return Err(format!("answer cut short: {} of {n} bytes", body.len()))
        }
        Some(n) => &body[..n],
        None => body,
    };
    Ok((status, String::from_utf8_lossy(body).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_parsed_and_truncation_is_noticed() {
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef").unwrap(),
            (200, "abc".into())
        );
        assert_eq!(
            parse_response(b"HTTP/1.0 503 X\r\n\r\nbusy").unwrap(),
            (503, "busy".into())
        );
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc")
                .unwrap_err()
                .contains("cut short")
        );
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }

    #[tokio::test]
    async fn a_silent_peer_times_out() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap().to_string();
        let client = Client {
            timeout: Duration::from_millis(200),
            ..Client::default()
        };
        let t0 = std::time::Instant::now();
        let e = client.get(&addr, "/status").await.unwrap_err();
        assert!(e.contains("no answer"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(2));
    }
}
