//! TLS for the HTTP endpoint (rustls, ring provider): the server side from
//! `http_ssl_cert`/`http_ssl_key`, and the client side the cluster view uses
//! to read other nodes' `/status`, verifying them against `http_ssl_ca`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why the certificate or the key cannot be used.
#[derive(Debug)]
pub struct LoadError {
    /// The key is at fault (else the certificate).
    pub about_key: bool,
    pub message: String,
}

/// The HTTPS side of the endpoint. Debug shows the files, never the key.
#[derive(Clone)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    config: Arc<ServerConfig>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish()
    }
}

fn read(path: &Path, about_key: bool) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|e| LoadError {
        about_key,
        message: format!("cannot read {}: {e}", path.display()),
    })
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: invalid PEM ({e})", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
            path.display()
        ));
    }
    Ok(certs)
}

impl ServerTls {
    pub fn load(cert: &Path, key: &Path) -> Result<ServerTls, LoadError> {
        let chain = certificates(cert).map_err(|message| LoadError {
            about_key: false,
            message,
        })?;
        let key_der = PrivateKeyDer::from_pem_slice(&read(key, true)?).map_err(|e| LoadError {
            about_key: true,
            message: format!(
                "{}: no usable PEM private key ({e}); PKCS#8, PKCS#1 (RSA) and SEC1 (EC) keys work",
                key.display()
            ),
        })?;
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key_der))
            .map_err(|e| LoadError {
                about_key: true,
                message: format!(
                    "{} does not fit {} ({e}): the key must be the certificate's own",
                    key.display(),
                    cert.display()
                ),
            })?;
        Ok(ServerTls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            config: Arc::new(config),
        })
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }
}

/// How the cluster view reaches other nodes over HTTPS.
#[derive(Clone)]
pub struct PeerTls {
    connector: TlsConnector,
    /// What the roots are, for messages.
    pub roots: String,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTls")
            .field("roots", &self.roots)
            .finish()
    }
}

impl PeerTls {
    /// Verifies peers against the CA certificates in `ca`, or the public
    /// root CAs.
    pub fn new(ca: Option<&Path>) -> Result<PeerTls, String> {
        let mut roots = RootCertStore::empty();
        let what = match ca {
            Some(path) => {
                for cert in certificates(path)? {
                    roots.add(cert).map_err(|e| {
                        format!("{}: not a usable CA certificate: {e}", path.display())
                    })?;
                }
                path.display().to_string()
            }
            None => {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                "the public root CAs".to_string()
            }
        };
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(PeerTls {
            connector: TlsConnector::from(Arc::new(config)),
            roots: what,
        })
    }

    pub fn connector(&self) -> &TlsConnector {
        &self.connector
    }

    /// The name a peer's certificate must carry: the host of `host:port`
    /// (an IP address or a DNS name).
    pub fn server_name(address: &str) -> Result<ServerName<'static>, String> {
        let host = address
            .rsplit_once(':')
            .map_or(address, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        ServerName::try_from(host.to_string())
            .map_err(|_| format!("'{host}' is neither an IP address nor a DNS name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_from_addresses() {
        assert!(matches!(
            PeerTls::server_name("127.0.0.1:8080").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            PeerTls::server_name("[::1]:8080").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            PeerTls::server_name("node-1.example:8080").unwrap(),
            ServerName::DnsName(_)
        ));
        assert!(PeerTls::server_name("bad name:1").is_err());
    }

    #[test]
    fn public_roots_by_default() {
        assert_eq!(PeerTls::new(None).unwrap().roots, "the public root CAs");
        let e = PeerTls::new(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn a_key_file_without_a_key_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        std::fs::write(&cert, "nothing").unwrap();
        std::fs::write(&key, "nothing").unwrap();
        let e = ServerTls::load(&cert, &key).unwrap_err();
        assert!(
            !e.about_key && e.message.contains("no PEM certificate"),
            "{e:?}"
        );
    }
}
