//! The HTTP endpoint every node serves from process start, leader or not:
//! `/ping`, `/healthcheck`, `/leader`, `/status`, `/metrics` under
//! `http_path_prefix`. A deliberately small HTTP/1.x server (GET/HEAD, one
//! request per connection): these are probes and scrapes, not an API, and a
//! full HTTP stack would double the build for nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::telemetry::{Role, Telemetry};

/// How long the binlog connection may be down before /healthcheck says so.
pub const UNHEALTHY_AFTER_OUTAGE: Duration = Duration::from_secs(60);

pub struct HttpServer {
    listener: TcpListener,
    prefix: String,
    pub address: String,
}

impl HttpServer {
    /// Binds now, so that a port in use is a startup error naming the option.
    pub async fn bind(bind_address: &str, port: u16, prefix: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((bind_address, port)).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot serve HTTP on {bind_address}:{port}: {e}; choose another --http_port \
                 (0 picks a free one) or --http_bind_address"
            )
        })?;
        let address = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| format!("{bind_address}:{port}"));
        let prefix = prefix.trim_end_matches('/').to_string();
        Ok(HttpServer {
            listener,
            prefix,
            address,
        })
    }

    pub async fn serve(self, telemetry: Arc<Telemetry>) {
        let shared = Arc::new((self.prefix, self.address));
        loop {
            let Ok((stream, _)) = self.listener.accept().await else {
                // Out of file descriptors or similar: do not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let t = telemetry.clone();
            let s = shared.clone();
            tokio::spawn(async move {
                // A client that sends nothing is not waited on forever.
                let _ =
                    tokio::time::timeout(Duration::from_secs(10), handle(stream, &t, &s.0, &s.1))
                        .await;
            });
        }
    }
}

async fn handle(
    mut stream: TcpStream,
    t: &Telemetry,
    prefix: &str,
    address: &str,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && !buf.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 16 * 1024 {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body) = if method != "GET" && method != "HEAD" {
        (405, "text/plain", "only GET and HEAD\n".to_string())
    } else {
        route(path, t, prefix, address)
    };
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if method != "HEAD" {
        response.push_str(&body);
    }
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn route(path: &str, t: &Telemetry, prefix: &str, address: &str) -> (u16, &'static str, String) {
    let Some(rest) = path.strip_prefix(prefix) else {
        return (404, "text/plain", "not found\n".into());
    };
    match rest {
        "/ping" => (200, "text/plain", "pong\n".into()),
        "/healthcheck" => health(t),
        "/leader" => {
            if t.role() == Role::Leader {
                (200, "text/plain", "leader\n".into())
            } else {
                (503, "text/plain", format!("{}\n", t.role().name()))
            }
        }
        "/status" => (
            200,
            "application/json",
            t.status_json(address, &t.session()) + "\n",
        ),
        "/metrics" => (200, "text/plain; version=0.0.4", t.prometheus()),
        _ => (404, "text/plain", "not found\n".into()),
    }
}

/// Healthy unless the node hit a fatal error, or, as leader, has been
/// without its binlog connection for longer than UNHEALTHY_AFTER_OUTAGE.
fn health(t: &Telemetry) -> (u16, &'static str, String) {
    if let Some(f) = t.fatal() {
        return (
            503,
            "application/json",
            format!(
                "{{\"healthy\":false,\"reason\":{}}}\n",
                crate::telemetry::json_str(&f)
            ),
        );
    }
    if t.role() == Role::Leader {
        if let Some(out) = t.current_outage().filter(|d| *d > UNHEALTHY_AFTER_OUTAGE) {
            return (
                503,
                "application/json",
                format!(
                    "{{\"healthy\":false,\"reason\":\"binlog connection down for {} s\"}}\n",
                    out.as_secs()
                ),
            );
        }
    }
    (200, "application/json", "{\"healthy\":true}\n".into())
}
