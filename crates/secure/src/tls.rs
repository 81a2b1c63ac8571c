//! TLS client settings with the semantics of MySQL's own client, for every
//! connection sluice opens (MySQL/MariaDB, the brokers): the five
//! `--ssl-mode` values (Maxwell's `ssl`, `replication_ssl` and
//! `schema_ssl`; the producers' `<producer>_ssl` take all but PREFERRED), a
//! private CA (`ssl_ca`) and a client certificate (`ssl_cert`, `ssl_key`).
//! rustls with the ring provider (aws-lc-rs would need cmake and a long C
//! build).
//!
//! | mode            | without TLS on the server | verification            |
//! |-----------------|---------------------------|-------------------------|
//! | DISABLED        | plain                     | -                       |
//! | PREFERRED       | plain                     | none (encryption only)  |
//! | REQUIRED        | refused                   | none (encryption only)  |
//! | VERIFY_CA       | refused                   | chain and validity      |
//! | VERIFY_IDENTITY | refused                   | chain, validity, host   |
//!
//! The chain is verified against `ssl_ca` when given, else against the
//! Mozilla root set (webpki-roots), the set the SQL connections use too.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};

/// MySQL's `--ssl-mode` values, as Maxwell spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    #[default]
    Disabled,
    Preferred,
    Required,
    VerifyCa,
    VerifyIdentity,
}

impl SslMode {
    pub const ALL: [SslMode; 5] = [
        SslMode::Disabled,
        SslMode::Preferred,
        SslMode::Required,
        SslMode::VerifyCa,
        SslMode::VerifyIdentity,
    ];

    /// Parses Maxwell's value (case-insensitively); `option` is the name the
    /// value came from (`ssl`, `replication_ssl`, ...) for the message.
    pub fn parse(option: &str, value: &str) -> Result<SslMode, TlsError> {
        let v = value.trim();
        SslMode::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(v))
            .ok_or_else(|| TlsError::InvalidMode {
                option: option.to_string(),
                value: value.to_string(),
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disabled => "DISABLED",
            SslMode::Preferred => "PREFERRED",
            SslMode::Required => "REQUIRED",
            SslMode::VerifyCa => "VERIFY_CA",
            SslMode::VerifyIdentity => "VERIFY_IDENTITY",
        }
    }

    /// Whether a server without TLS is refused.
    pub fn requires_tls(self) -> bool {
        matches!(
            self,
            SslMode::Required | SslMode::VerifyCa | SslMode::VerifyIdentity
        )
    }

    /// Whether TLS is used when the server offers it.
    pub fn wants_tls(self) -> bool {
        self != SslMode::Disabled
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The TLS settings of one connection role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    pub mode: SslMode,
    /// `ssl_ca`: PEM file with the CA certificate(s) to trust (VERIFY_CA and
    /// VERIFY_IDENTITY only, as MySQL's client).
    pub ca: Option<PathBuf>,
    /// `ssl_cert`: PEM client certificate (chain), with `key`.
    pub cert: Option<PathBuf>,
    /// `ssl_key`: PEM private key of `cert` (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// The prefix of the option group these came from (`""`,
    /// `"replication_"`, `"schema_"`): messages name the option to change
    /// (`replication_ssl`, `replication_ssl_ca`, ...).
    pub option_prefix: String,
}

impl TlsOptions {
    /// The full name of option `name` (`ssl`, `ssl_ca`, ...) in this group.
    pub fn option(&self, name: &str) -> String {
        format!("{}{name}", self.option_prefix)
    }

    /// The rustls client configuration for this mode (DISABLED gets the
    /// configuration of REQUIRED: callers do not connect with TLS then).
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match self.mode {
            SslMode::Disabled | SslMode::Preferred | SslMode::Required => {
                if self.ca.is_some() {
                    tracing::warn!(
                        "{} is ignored with {}={}: the server's certificate is not verified; \
                         use VERIFY_CA or VERIFY_IDENTITY to verify it",
                        self.option("ssl_ca"),
                        self.option("ssl"),
                        self.mode
                    );
                }
                Arc::new(RelaxedVerifier {
                    relaxed: Relaxed::EncryptOnly,
                    provider: provider.clone(),
                })
            }
            SslMode::VerifyCa => Arc::new(RelaxedVerifier {
                relaxed: Relaxed::ChainOnly(self.webpki_verifier(&provider)?),
                provider: provider.clone(),
            }),
            SslMode::VerifyIdentity => self.webpki_verifier(&provider)?,
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match self.client_identity()? {
            Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| {
                TlsError::ClientCertificate {
                    cert_option: self.option("ssl_cert"),
                    key_option: self.option("ssl_key"),
                    message: e.to_string(),
                }
            })?,
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }

    /// The name the server's certificate is checked against: `host`, the
    /// name or address the TCP connection went to (checked under
    /// VERIFY_IDENTITY only; the other modes accept hosts whose names are
    /// not DNS names).
    pub fn server_name(&self, host: &str) -> Result<ServerName<'static>, TlsError> {
        match ServerName::try_from(host.to_string()) {
            Ok(name) => Ok(name),
            Err(_) if self.mode != SslMode::VerifyIdentity => Ok(
                ServerName::try_from("localhost").map_err(|e| TlsError::Setup(e.to_string()))?
            ),
            Err(e) => Err(TlsError::Handshake {
                host: host.to_string(),
                message: format!(
                    "'{host}' is not a host name a certificate can be checked against ({e}); \
                     connect by a DNS name or IP address, or set {}=VERIFY_CA",
                    self.option("ssl")
                ),
            }),
        }
    }

    fn webpki_verifier(
        &self,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
        let mut roots = RootCertStore::empty();
        match &self.ca {
            Some(path) => {
                let option = self.option("ssl_ca");
                for cert in read_certificates(&option, path)? {
                    roots.add(cert).map_err(|e| TlsError::BadFile {
                        option: option.clone(),
                        path: path.clone(),
                        message: format!("not a usable CA certificate: {e}"),
                    })?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| TlsError::Setup(e.to_string()))
    }

    fn client_identity(
        &self,
    ) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, TlsError> {
        let (cert_option, key_option) = (self.option("ssl_cert"), self.option("ssl_key"));
        match (&self.cert, &self.key) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(TlsError::Incomplete {
                given: cert_option,
                missing: key_option,
            }),
            (None, Some(_)) => Err(TlsError::Incomplete {
                given: key_option,
                missing: cert_option,
            }),
            (Some(cert), Some(key)) => {
                let chain = read_certificates(&cert_option, cert)?;
                let data = read_file(&key_option, key)?;
                let key_der =
                    PrivateKeyDer::from_pem_slice(&data).map_err(|e| TlsError::BadFile {
                        option: key_option,
                        path: key.clone(),
                        message: format!("no usable PEM private key ({e})"),
                    })?;
                Ok(Some((chain, key_der)))
            }
        }
    }

    /// Says why a TLS handshake failed and which option changes it.
    pub fn explain(&self, err: &rustls::Error, host: &str) -> TlsError {
        let ssl = self.option("ssl");
        let ssl_ca = self.option("ssl_ca");
        let ca_source = match &self.ca {
            Some(p) => format!("{ssl_ca} ({})", p.display()),
            None => format!("the public root CAs ({ssl_ca} is not set)"),
        };
        let message = match err {
            rustls::Error::InvalidCertificate(cert_err) => match cert_err {
                CertificateError::UnknownIssuer => format!(
                    "the server's certificate is not signed by a CA in {ca_source}: set {ssl_ca} to \
                     the CA certificate that signed the server's certificate (for a managed service, \
                     its CA bundle), or {ssl}=REQUIRED to encrypt without verifying"
                ),
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => format!(
                    "the server's certificate has expired ({cert_err}): renew it on the server; \
                     {ssl}=REQUIRED encrypts without verifying it"
                ),
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    format!(
                        "the server's certificate is not valid yet ({cert_err}): check the clocks of \
                         this machine and of the CA; {ssl}=REQUIRED encrypts without verifying it"
                    )
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. }
                    if self.mode == SslMode::VerifyCa =>
                {
                    format!(
                        "the server's certificate is not valid for host name '{host}' ({cert_err}) \
                         and lists no name that could be checked in its place (the SQL \
                         connections check one even under VERIFY_CA): connect by a name the \
                         certificate lists"
                    )
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => format!(
                    "the server's certificate is not valid for host name '{host}' ({cert_err}): \
                     connect by a name the certificate lists, or set {ssl}=VERIFY_CA to verify \
                     the CA but not the host name"
                ),
                other => format!(
                    "the server's certificate was rejected ({other}): check it and {ssl_ca}, or set \
                     {ssl}=REQUIRED to encrypt without verifying"
                ),
            },
            rustls::Error::AlertReceived(
                alert @ (AlertDescription::CertificateRequired
                | AlertDescription::BadCertificate
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateUnknown
                | AlertDescription::AccessDenied
                | AlertDescription::CertificateExpired
                | AlertDescription::UnsupportedCertificate),
            ) => format!(
                "the server refused the TLS handshake ({alert:?}): if it requires a client \
                 certificate, set {} and {} to a certificate its CA signed",
                self.option("ssl_cert"),
                self.option("ssl_key")
            ),
            rustls::Error::AlertReceived(
                AlertDescription::ProtocolVersion | AlertDescription::HandshakeFailure,
            )
            | rustls::Error::PeerIncompatible(_)
            | rustls::Error::PeerMisbehaved(_) => format!(
                "no TLS version or cipher in common with the server ({err}): sluice speaks TLS 1.2 \
                 and 1.3 with modern ciphers; enable one on the server (MySQL: tls_version), or set \
                 {ssl}=DISABLED on a trusted network",
                err = match err {
                    rustls::Error::AlertReceived(a) => format!("{a:?}"),
                    e => e.to_string(),
                }
            ),
            other => format!("TLS handshake failed ({other}); {ssl} is {}", self.mode),
        };
        TlsError::Handshake {
            host: host.to_string(),
            message,
        }
    }
}

/// The rustls error inside an error chain (tokio-rustls and mysql_async
/// wrap it in `std::io::Error`).
pub fn find_rustls_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut cur: Option<&'a (dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // io::Error hides its payload from `source()` in some versions.
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                return Some(tls);
            }
        }
        cur = e.source();
    }
    None
}

/// TLS configuration and handshake errors; each names the option to change.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsError {
    #[error("invalid {option} value '{value}': use DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY")]
    InvalidMode { option: String, value: String },
    #[error("cannot read {option} file {}: {message}", path.display())]
    BadFile {
        option: String,
        path: PathBuf,
        message: String,
    },
    #[error("{given} is set but {missing} is not: a client certificate needs both")]
    Incomplete { given: String, missing: String },
    #[error("the client certificate ({cert_option}) and key ({key_option}) cannot be used together: {message}")]
    ClientCertificate {
        cert_option: String,
        key_option: String,
        message: String,
    },
    #[error("the server at {host} does not offer TLS and {option}={mode} requires it: enable TLS on the server (its ssl_cert and ssl_key settings), or set {option}=PREFERRED to connect without encryption when the server offers none")]
    NotOffered {
        host: String,
        option: String,
        mode: SslMode,
    },
    #[error("the server at {host} requires TLS (require_secure_transport=ON) and {option}=DISABLED: set {option}=REQUIRED, VERIFY_CA or VERIFY_IDENTITY")]
    RequiredByServer { host: String, option: String },
    #[error("TLS to {host} failed: {message}")]
    Handshake { host: String, message: String },
    #[error("TLS setup failed: {0}")]
    Setup(String),
}

fn read_file(option: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::BadFile {
        option: option.to_string(),
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn read_certificates(option: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let data = read_file(option, path)?;
    let bad = |message: String| TlsError::BadFile {
        option: option.to_string(),
        path: path.to_path_buf(),
        message,
    };
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("invalid PEM ({e})")))?;
    if certs.is_empty() {
        return Err(bad(
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
        ));
    }
    Ok(certs)
}

/// What a verifier other than VERIFY_IDENTITY's checks of the server's
/// certificate. The handshake signatures are checked in every mode, so the
/// peer holds the key of the certificate it showed.
#[derive(Debug)]
enum Relaxed {
    /// REQUIRED and PREFERRED: any certificate is accepted, as MySQL's
    /// client does.
    EncryptOnly,
    /// VERIFY_CA: the full web-PKI check except the host name. webpki checks
    /// the chain and the validity period before the name, so a name
    /// mismatch is only reported for a certificate that passed everything
    /// else.
    ChainOnly(Arc<WebPkiServerVerifier>),
}

#[derive(Debug)]
struct RelaxedVerifier {
    relaxed: Relaxed,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for RelaxedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Relaxed::ChainOnly(webpki) = &self.relaxed else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_case_insensitively_and_name_the_option() {
        assert_eq!(
            SslMode::parse("ssl", "VERIFY_CA").unwrap(),
            SslMode::VerifyCa
        );
        assert_eq!(
            SslMode::parse("ssl", "verify_identity").unwrap(),
            SslMode::VerifyIdentity
        );
        assert_eq!(
            SslMode::parse("ssl", " Preferred ").unwrap(),
            SslMode::Preferred
        );
        for m in SslMode::ALL {
            assert_eq!(SslMode::parse("ssl", m.as_str()).unwrap(), m);
        }
        let err = SslMode::parse("replication_ssl", "VERIFY").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("replication_ssl"), "{msg}");
        assert!(msg.contains("'VERIFY'"), "{msg}");
        assert!(msg.contains("VERIFY_IDENTITY"), "{msg}");
    }

    #[test]
    fn only_verifying_and_required_modes_refuse_plain_servers() {
        assert!(!SslMode::Disabled.requires_tls());
        assert!(!SslMode::Preferred.requires_tls());
        assert!(SslMode::Required.requires_tls());
        assert!(SslMode::VerifyCa.requires_tls());
        assert!(SslMode::VerifyIdentity.requires_tls());
        assert!(!SslMode::Disabled.wants_tls());
        assert!(SslMode::Preferred.wants_tls());
    }

    #[test]
    fn missing_ca_file_names_the_option_and_path() {
        let opts = TlsOptions {
            mode: SslMode::VerifyCa,
            ca: Some("/nonexistent/ca.pem".into()),
            option_prefix: "replication_".into(),
            ..Default::default()
        };
        let msg = opts.client_config().err().unwrap().to_string();
        assert!(msg.contains("replication_ssl_ca"), "{msg}");
        assert!(msg.contains("/nonexistent/ca.pem"), "{msg}");
    }

    #[test]
    fn ca_file_without_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("sluice-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let opts = TlsOptions {
            mode: SslMode::VerifyIdentity,
            ca: Some(path),
            ..Default::default()
        };
        let msg = opts.client_config().err().unwrap().to_string();
        assert!(
            msg.contains("ssl_ca") && msg.contains("no PEM certificate"),
            "{msg}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn client_certificate_needs_its_key() {
        let opts = TlsOptions {
            mode: SslMode::Required,
            cert: Some("/x/client.pem".into()),
            ..Default::default()
        };
        let msg = opts.client_config().err().unwrap().to_string();
        assert!(msg.contains("ssl_cert is set but ssl_key is not"), "{msg}");
    }

    #[test]
    fn verification_failures_say_what_failed_and_which_option_to_change() {
        let opts = TlsOptions {
            mode: SslMode::VerifyIdentity,
            ca: Some("/etc/ca.pem".into()),
            option_prefix: "schema_".into(),
            ..Default::default()
        };
        let unknown = opts
            .explain(
                &rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
                "db",
            )
            .to_string();
        assert!(
            unknown.contains("not signed by a CA in schema_ssl_ca (/etc/ca.pem)"),
            "{unknown}"
        );
        let expired = opts
            .explain(
                &rustls::Error::InvalidCertificate(CertificateError::Expired),
                "db",
            )
            .to_string();
        assert!(
            expired.contains("expired") && expired.contains("schema_ssl=REQUIRED"),
            "{expired}"
        );
        let name = opts
            .explain(
                &rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
                "db.example",
            )
            .to_string();
        assert!(
            name.contains("not valid for host name 'db.example'")
                && name.contains("schema_ssl=VERIFY_CA"),
            "{name}"
        );
        let client = opts
            .explain(
                &rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
                "db",
            )
            .to_string();
        assert!(
            client.contains("schema_ssl_cert") && client.contains("schema_ssl_key"),
            "{client}"
        );
    }
}
