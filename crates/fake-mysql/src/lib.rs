//! A scripted fake MySQL server for tests. It listens on an ephemeral
//! 127.0.0.1 port, plays a list of [`Step`]s to the first client that
//! connects, and records everything the client sent, so a test can check
//! what arrived (and what did not: a password on a plain connection).
//!
//! It speaks just enough of the protocol to script a conversation: the
//! greeting, TLS, packets built with the helpers below (auth switch,
//! more-data, OK, ERR, text result sets, binlog events), raw bytes for
//! malformed traffic, and pauses for stalled servers.
//!
//! [`RepeatingServer`] plays a script to every connection (for a daemon,
//! which connects several times); [`column_count_packet`] and raw bytes
//! script hostile servers: absurd result sets, oversize and continued
//! packets, stalls after the login, corrupt binlog events.
//!
//! [`private_mariadb`] starts the real servers of the tests.

mod packets;
pub mod private_mariadb;
mod stream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use packets::{auth_switch, binlog_event, eof_packet, err_packet, more_data};
pub use packets::{column_count_packet, ok_packet, Column, Greeting, ResultSet};
use stream::Conn;

/// Capability flags (`CLIENT_*`) a greeting may offer.
pub mod caps {
    pub const LONG_PASSWORD: u32 = 1;
    pub const LONG_FLAG: u32 = 4;
    pub const CONNECT_WITH_DB: u32 = 8;
    pub const PROTOCOL_41: u32 = 0x200;
    pub const SSL: u32 = 0x800;
    pub const TRANSACTIONS: u32 = 0x2000;
    pub const SECURE_CONNECTION: u32 = 0x8000;
    pub const MULTI_STATEMENTS: u32 = 0x10000;
    pub const MULTI_RESULTS: u32 = 0x20000;
    pub const PLUGIN_AUTH: u32 = 0x80000;
    pub const CONNECT_ATTRS: u32 = 0x100000;
    pub const PLUGIN_AUTH_LENENC: u32 = 0x200000;
    pub const DEPRECATE_EOF: u32 = 0x1000000;
}

/// A check of a packet the client sent; `Err` stops the script with that
/// message (see [`Recording::failure`]).
pub type Check = Box<dyn FnMut(&[u8]) -> Result<(), String> + Send>;

/// One step of a script.
pub enum Step {
    /// Sends the initial handshake packet.
    Greeting(Greeting),
    /// Reads one packet and runs `check` on its payload.
    Read(Check),
    /// Reads the client's SSL request packet, then runs the TLS handshake as
    /// server; everything after is encrypted.
    AcceptTls(Arc<rustls::ServerConfig>),
    /// Sends one packet (the sequence id follows the last packet read).
    Send(Vec<u8>),
    /// Sends bytes as they are, without framing.
    SendRaw(Vec<u8>),
    /// Sends nothing for a while.
    Sleep(Duration),
    /// Answers commands like a primary until the client asks for the
    /// binlog: OK to queries (or the result set given for the exact SQL)
    /// and to COM_REGISTER_SLAVE; then sends `events` (each a whole binlog
    /// event, header included) and ends the step.
    Replica {
        results: Vec<(String, ResultSet)>,
        events: Vec<Vec<u8>>,
    },
    /// Answers commands like any server until the client quits (COM_QUIT
    /// or closing): OK to queries, or the result set given for the exact
    /// SQL; OK to COM_PING.
    Serve(Vec<(String, ResultSet)>),
    /// Waits until the client closes the connection.
    AwaitClose,
}

impl Step {
    /// Reads one packet, whatever it holds.
    pub fn read() -> Step {
        Step::Read(Box::new(|_| Ok(())))
    }

    /// Reads one packet and checks it.
    pub fn expect(check: impl FnMut(&[u8]) -> Result<(), String> + Send + 'static) -> Step {
        Step::Read(Box::new(check))
    }

    pub fn ok() -> Step {
        Step::Send(ok_packet())
    }

    pub fn err(code: u16, state: &str, message: &str) -> Step {
        Step::Send(err_packet(code, state, message))
    }
}

/// What the client sent.
#[derive(Debug, Default, Clone)]
pub struct Recording {
    /// Payloads of the packets read, in order (decrypted under TLS).
    pub packets: Vec<Vec<u8>>,
    /// Every byte read, framing included (decrypted under TLS).
    pub bytes: Vec<u8>,
    /// Whether the connection switched to TLS.
    pub tls: bool,
    /// Why the script stopped before its end (a failed check, the client
    /// closing, an I/O error), if it did.
    pub failure: Option<String>,
    /// Whether a client connected at all.
    pub connected: bool,
}

impl Recording {
    /// Whether `needle` appears anywhere in what the client sent.
    pub fn contains(&self, needle: &[u8]) -> bool {
        !needle.is_empty() && self.bytes.windows(needle.len()).any(|w| w == needle)
    }
}

/// A running fake server; [`FakeServer::finish`] returns its recording.
pub struct FakeServer {
    addr: SocketAddr,
    task: JoinHandle<Recording>,
}

/// How long the server waits for a client or for a packet before giving up
/// (a test that goes wrong fails instead of hanging).
const WAIT: Duration = Duration::from_secs(20);

impl FakeServer {
    /// Listens on 127.0.0.1 (ephemeral port) and plays `script` to the
    /// first client.
    pub async fn start(script: Vec<Step>) -> std::io::Result<FakeServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let mut rec = Recording::default();
            let tcp = match tokio::time::timeout(WAIT, listener.accept()).await {
                Ok(Ok((tcp, _))) => tcp,
                Ok(Err(e)) => {
                    rec.failure = Some(format!("accept: {e}"));
                    return rec;
                }
                Err(_) => {
                    rec.failure = Some("no client connected".into());
                    return rec;
                }
            };
            rec.connected = true;
            let mut conn = Conn::new(tcp);
            for step in script {
                if let Err(e) = conn.play(step, &mut rec).await {
                    rec.failure = Some(e);
                    break;
                }
            }
            rec.tls = conn.is_tls();
            rec
        });
        Ok(FakeServer { addr, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Waits for the script to end and returns what the client sent.
    pub async fn finish(self) -> Recording {
        match self.task.await {
            Ok(rec) => rec,
            Err(e) => Recording {
                failure: Some(format!("the server task failed: {e}")),
                ..Default::default()
            },
        }
    }
}

/// A fake server that plays a script to every client that connects (a
/// daemon opens several connections, and reconnects): `script(n)` gives the
/// steps for the n-th connection (0-based). Stops listening when dropped.
pub struct RepeatingServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
    recordings: Arc<std::sync::Mutex<Vec<Recording>>>,
}

impl RepeatingServer {
    pub async fn start(
        script: impl Fn(usize) -> Vec<Step> + Send + Sync + 'static,
    ) -> std::io::Result<RepeatingServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let recordings = Arc::new(std::sync::Mutex::new(Vec::new()));
        let done = recordings.clone();
        let task = tokio::spawn(async move {
            let mut n = 0;
            while let Ok((tcp, _)) = listener.accept().await {
                let steps = script(n);
                n += 1;
                let done = done.clone();
                tokio::spawn(async move {
                    let mut rec = Recording {
                        connected: true,
                        ..Default::default()
                    };
                    let mut conn = Conn::new(tcp);
                    for step in steps {
                        if let Err(e) = conn.play(step, &mut rec).await {
                            rec.failure = Some(e);
                            break;
                        }
                    }
                    rec.tls = conn.is_tls();
                    if let Ok(mut all) = done.lock() {
                        all.push(rec);
                    }
                });
            }
        });
        Ok(RepeatingServer {
            addr,
            task,
            recordings,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// What the clients sent, one recording per connection whose script
    /// has ended (in the order they ended).
    pub fn recordings(&self) -> Vec<Recording> {
        self.recordings
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}

impl Drop for RepeatingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A rustls server configuration (ring) from PEM files.
pub fn tls_server_config(
    cert_pem: &std::path::Path,
    key_pem: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert_pem)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert_pem.display()))?;
    let key =
        PrivateKeyDer::from_pem_file(key_pem).map_err(|e| format!("{}: {e}", key_pem.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| e.to_string())?;
    Ok(Arc::new(config))
}
