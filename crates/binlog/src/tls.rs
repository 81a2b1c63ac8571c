//! TLS towards MySQL/MariaDB: the settings and their checks are sluice's
//! shared ones (`sluice_secure::tls`: MySQL's five ssl modes, `ssl_ca`,
//! `ssl_cert`, `ssl_key`); this module adds the asynchronous handshake over
//! the replication session's tokio stream.

use tokio::net::TcpStream;

pub use sluice_secure::tls::*;
pub use tokio_rustls::client::TlsStream;

/// Connects TLS over an established TCP stream, with this mode's checks.
#[derive(Clone)]
pub struct TlsConnector {
    inner: tokio_rustls::TlsConnector,
    options: TlsOptions,
}

impl TlsConnector {
    /// A connector for `options`, or `None` for DISABLED. Reads the
    /// certificate files now (they are small): a file replaced on disk is
    /// picked up by the next connection.
    pub fn new(options: &TlsOptions) -> Result<Option<TlsConnector>, TlsError> {
        if !options.mode.wants_tls() {
            return Ok(None);
        }
        Ok(Some(TlsConnector {
            inner: tokio_rustls::TlsConnector::from(options.client_config()?),
            options: options.clone(),
        }))
    }

    pub fn options(&self) -> &TlsOptions {
        &self.options
    }

    /// The TLS handshake; `host` is the name or address the TCP connection
    /// went to (checked under VERIFY_IDENTITY only).
    pub async fn connect(
        &self,
        host: &str,
        tcp: TcpStream,
    ) -> Result<TlsStream<TcpStream>, ConnectTlsError> {
        let name = self.options.server_name(host)?;
        self.inner.connect(name, tcp).await.map_err(|e| {
            match find_rustls_error(&e) {
                Some(tls) => ConnectTlsError::Tls(self.options.explain(tls, host)),
                // The connection broke: a network failure, worth a retry.
                None => ConnectTlsError::Io(e),
            }
        })
    }
}

/// A TLS connection attempt failed: definitely (`Tls`: the configuration
/// or the server's certificate) or maybe transiently (`Io`: the network).
#[derive(Debug, thiserror::Error)]
pub enum ConnectTlsError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("I/O error during the TLS handshake: {0}")]
    Io(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_has_no_connector() {
        assert!(TlsConnector::new(&TlsOptions::default()).unwrap().is_none());
    }
}
