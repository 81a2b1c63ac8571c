//! mysql_async options and connections with the ssl modes of MySQL's client
//! (the same [`TlsOptions`] as the replication session) and the login
//! options [`AuthOptions`].
//!
//! mysql_async (rustls, ring) does TLS, caching_sha2_password full
//! authentication (over TLS, or over RSA with the key fetched from the
//! server), MariaDB ed25519 and client certificates. Two modes need help
//! that [`connect`] gives and [`mysql_opts`] alone cannot:
//!
//! - PREFERRED: mysql_async either demands TLS or does not try it; `connect`
//!   tries TLS and, when the server offers none, connects again without.
//! - VERIFY_CA: mysql_async's "skip domain validation" recognises the name
//!   error by its text, which rustls 0.23.46 no longer prints, so it checks
//!   the name anyway. `connect` retries a name mismatch (the chain and
//!   validity having passed) with the name the certificate presents as the
//!   name to verify: accepted certificates are still ones the CA signed.
//!
//! For a pool, [`resolve_opts`] connects once that way and returns the
//! options that worked.

use mysql_async::{ClientIdentity, Conn, OptsBuilder, SslOpts};
use rustls::CertificateError;
use sluice_binlog::tls::find_rustls_error;
use sluice_binlog::{AuthOptions, SslMode, TlsError, TlsOptions};

/// Where and as whom to connect.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
}

/// Written by hand so that the password never reaches a log line.
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// mysql_async panicked on what the server sent (it does on a malformed
    /// RSA public key); the panic is contained to the connection attempt.
    #[error("cannot connect to MySQL at {addr}: the MySQL client library failed on the server's answer ({message}); a server or network that sends malformed data needs TLS ({option}=VERIFY_IDENTITY)")]
    ClientPanicked {
        addr: String,
        option: String,
        message: String,
    },
    /// What answered does not speak MySQL's protocol (an HTTP server,
    /// another service, noise): the client library would have called it a
    /// packet too large or out of order.
    #[error("cannot connect to MySQL at {addr}: the peer is not a MySQL server (where the MySQL greeting belongs it sent {seen}); check the host and port")]
    NotMysql { addr: String, seen: String },
    #[error("cannot connect to MySQL at {addr} as '{user}': {message}")]
    Mysql {
        addr: String,
        user: String,
        message: String,
        #[source]
        source: mysql_async::Error,
    },
}

/// mysql_async options for `endpoint` with TLS as `tls.mode` says; reads and
/// checks the certificate files now, so their errors name the options.
/// The options' `Debug` output shows the password (mysql_async derives
/// it): never log them.
///
/// PREFERRED gives the options of a TLS attempt (as REQUIRED): a server
/// without TLS refuses them; [`connect`] and [`resolve_opts`] fall back.
/// `mysql_clear_password` is allowed over TLS, and without TLS only with
/// `auth.enable_cleartext_plugin`. `auth.server_public_key_path` is not
/// supported by mysql_async: it always asks the server for its key.
pub fn mysql_opts(
    endpoint: &Endpoint,
    tls: &TlsOptions,
    auth: &AuthOptions,
) -> Result<OptsBuilder, TlsError> {
    let base = OptsBuilder::default()
        .ip_or_hostname(endpoint.host.clone())
        .tcp_port(endpoint.port)
        .user(Some(endpoint.user.clone()))
        .pass(Some(endpoint.password.clone()))
        .prefer_socket(false);
    if !tls.mode.wants_tls() {
        return Ok(base
            .ssl_opts(None::<SslOpts>)
            .enable_cleartext_plugin(auth.enable_cleartext_plugin));
    }
    // The same checks as the replication session's: unreadable files and
    // a key that does not match its certificate fail here, by name.
    tls.client_config()?;
    Ok(base
        .ssl_opts(Some(ssl_opts(tls)))
        .enable_cleartext_plugin(true))
}

/// mysql_async's TLS options. Files go by path (already checked by
/// `mysql_opts`): the key's bytes would otherwise show in the options'
/// `Debug` output.
fn ssl_opts(tls: &TlsOptions) -> SslOpts {
    let mut opts = SslOpts::default();
    match tls.mode {
        SslMode::Disabled | SslMode::Preferred | SslMode::Required => {
            opts = opts.with_danger_accept_invalid_certs(true);
        }
        SslMode::VerifyCa => opts = opts.with_danger_skip_domain_validation(true),
        SslMode::VerifyIdentity => {}
    }
    if let (Some(ca), SslMode::VerifyCa | SslMode::VerifyIdentity) = (&tls.ca, tls.mode) {
        opts = opts
            .with_root_certs(vec![ca.clone().into()])
            .with_disable_built_in_roots(true);
    }
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        opts = opts.with_client_identity(Some(ClientIdentity::new(
            cert.clone().into(),
            key.clone().into(),
        )));
    }
    opts
}

/// Connects with MySQL's semantics for every mode (see the module doc);
/// returns the connection and the options that made it.
pub async fn connect(
    endpoint: &Endpoint,
    tls: &TlsOptions,
    auth: &AuthOptions,
) -> Result<(Conn, OptsBuilder), ConnectError> {
    let opts = mysql_opts(endpoint, tls, auth)?;
    let err = match new_conn(&opts, endpoint, tls).await? {
        Ok(conn) => return Ok((conn, opts)),
        Err(e) => e,
    };
    if tls.mode == SslMode::Preferred && server_lacks_tls(&err) {
        tracing::info!(
            host = %endpoint.host,
            "the server offers no TLS: connecting without encryption ({}=PREFERRED)",
            tls.option("ssl")
        );
        let plain = TlsOptions {
            mode: SslMode::Disabled,
            ..tls.clone()
        };
        let opts = mysql_opts(endpoint, &plain, auth)?;
        return match new_conn(&opts, endpoint, &plain).await? {
            Ok(conn) => Ok((conn, opts)),
            Err(e) => Err(explain(e, endpoint, &plain)),
        };
    }
    if tls.mode == SslMode::VerifyCa {
        if let Some(name) = presented_name(&err) {
            let opts = opts.ssl_opts(Some(
                ssl_opts(tls).with_danger_tls_hostname_override(Some(name)),
            ));
            return match new_conn(&opts, endpoint, tls).await? {
                Ok(conn) => Ok((conn, opts)),
                Err(e) => Err(explain(e, endpoint, tls)),
            };
        }
    }
    if let Some(seen) = not_mysql(&err, endpoint).await {
        return Err(ConnectError::NotMysql {
            addr: format!("{}:{}", endpoint.host, endpoint.port),
            seen,
        });
    }
    Err(explain(err, endpoint, tls))
}

/// After a failure that is no answer of a MySQL server (an I/O or protocol
/// error, no TLS problem): what the peer sends first when nothing is asked
/// of it, described, when it cannot be the start of a MySQL greeting.
async fn not_mysql(err: &mysql_async::Error, endpoint: &Endpoint) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let protocol_failure = matches!(
        err,
        mysql_async::Error::Io(mysql_async::IoError::Io(_)) | mysql_async::Error::Driver(_)
    ) && find_rustls_error(err).is_none();
    if !protocol_failure {
        return None;
    }
    let probe = async {
        let mut tcp =
            tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port)).await?;
        let mut first = Vec::new();
        let mut buf = [0u8; 32];
        while first.len() < 5 {
            let n = tcp.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            first.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(first)
    };
    let first = tokio::time::timeout(std::time::Duration::from_secs(2), probe)
        .await
        .ok()?
        .ok()?;
    (!first.is_empty() && !sluice_binlog::packet::greeting_plausible(&first))
        .then(|| sluice_binlog::packet::describe_bytes(&first[..first.len().min(32)]))
}

/// One connection attempt in a task of its own, so that a panic in
/// mysql_async (on malformed server data) fails this attempt only.
async fn new_conn(
    opts: &OptsBuilder,
    endpoint: &Endpoint,
    tls: &TlsOptions,
) -> Result<Result<Conn, mysql_async::Error>, ConnectError> {
    tokio::spawn(Conn::new(opts.clone()))
        .await
        .map_err(|e| ConnectError::ClientPanicked {
            addr: format!("{}:{}", endpoint.host, endpoint.port),
            option: tls.option("ssl"),
            message: match e.try_into_panic() {
                Ok(p) => p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into()),
                Err(e) => e.to_string(),
            },
        })
}

/// The options a pool can use: PREFERRED and VERIFY_CA resolved by one
/// connection (closed again). A server that later gains or loses TLS needs
/// a new resolution.
pub async fn resolve_opts(
    endpoint: &Endpoint,
    tls: &TlsOptions,
    auth: &AuthOptions,
) -> Result<OptsBuilder, ConnectError> {
    let (conn, opts) = connect(endpoint, tls, auth).await?;
    // The options worked; a failure to say goodbye does not change that.
    let _ = conn.disconnect().await;
    Ok(opts)
}

fn server_lacks_tls(err: &mysql_async::Error) -> bool {
    matches!(
        err,
        mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer)
    )
}

/// The name to verify instead of the host under VERIFY_CA: one the
/// certificate presents (rustls lists them, as `DnsName("x")` or
/// `IpAddress(a.b.c.d)`, only after the chain and validity passed).
fn presented_name(err: &mysql_async::Error) -> Option<String> {
    match find_rustls_error(err)? {
        rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            presented,
            ..
        }) => presented.iter().find_map(|p| parse_presented(p)),
        _ => None,
    }
}

fn parse_presented(p: &str) -> Option<String> {
    let name = if let Some(rest) = p.strip_prefix("DnsName(\"") {
        rest.strip_suffix("\")")?
    } else {
        p.strip_prefix("IpAddress(")?.strip_suffix(')')?
    };
    // Wildcards cannot be connected to by name; try the next one.
    (!name.contains('*') && !name.is_empty()).then(|| name.to_string())
}

/// A mysql_async error in one line without repeats: its I/O errors say
/// their prefix twice ("Input/output error: Input/output error: Connection
/// refused"); said once here.
pub fn describe(err: &mysql_async::Error) -> String {
    match err {
        mysql_async::Error::Io(mysql_async::IoError::Io(e)) => format!("Input/output error: {e}"),
        other => other.to_string(),
    }
}

/// Turns a mysql_async error into one that says what to change: TLS
/// failures name the option, MariaDB's "access denied" on a plain
/// connection mentions require_secure_transport.
pub fn explain(err: mysql_async::Error, endpoint: &Endpoint, tls: &TlsOptions) -> ConnectError {
    if let Some(tls_err) = find_rustls_error(&err) {
        return ConnectError::Tls(tls.explain(tls_err, &endpoint.host));
    }
    if server_lacks_tls(&err) {
        return ConnectError::Tls(TlsError::NotOffered {
            host: endpoint.host.clone(),
            option: tls.option("ssl"),
            mode: tls.mode,
        });
    }
    let ssl = tls.option("ssl");
    let message = match &err {
        mysql_async::Error::Server(e) if e.code == 3159 => {
            return ConnectError::Tls(TlsError::RequiredByServer {
                host: endpoint.host.clone(),
                option: ssl,
            })
        }
        mysql_async::Error::Server(e) if e.code == 1045 && tls.mode == SslMode::Disabled => {
            format!(
                "{err} (this connection is not encrypted: if the server requires TLS \
             (require_secure_transport=ON, which MariaDB reports as access denied), set \
             {ssl}=REQUIRED, VERIFY_CA or VERIFY_IDENTITY)"
            )
        }
        mysql_async::Error::Driver(mysql_async::DriverError::CleartextPluginDisabled) => format!(
            "the server asks for the password in clear text (mysql_clear_password) on a \
             connection without TLS; it was not sent. Use TLS ({ssl}=REQUIRED, VERIFY_CA or \
             VERIFY_IDENTITY), or, on a trusted network, set enable_cleartext_plugin=true"
        ),
        _ => describe(&err),
    };
    ConnectError::Mysql {
        addr: format!("{}:{}", endpoint.host, endpoint.port),
        user: endpoint.user.clone(),
        message,
        source: err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_described_without_repeating_their_prefix() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = mysql_async::Error::Io(mysql_async::IoError::Io(refused));
        let text = describe(&e);
        assert_eq!(text.matches("Input/output error").count(), 1, "{text}");
        assert!(text.contains("refused"), "{text}");
    }

    #[test]
    fn presented_names_are_read_from_rustls_listing() {
        assert_eq!(
            parse_presented("DnsName(\"db.example\")").as_deref(),
            Some("db.example")
        );
        assert_eq!(
            parse_presented("IpAddress(10.0.0.7)").as_deref(),
            Some("10.0.0.7")
        );
        assert_eq!(parse_presented("DnsName(\"*.example\")"), None);
        assert_eq!(parse_presented("DirectoryName"), None);
    }

    #[test]
    fn endpoint_debug_hides_the_password() {
        let e = Endpoint {
            host: "h".into(),
            port: 1,
            user: "u".into(),
            password: "topsecret".into(),
        };
        assert!(!format!("{e:?}").contains("topsecret"));
    }

    #[test]
    fn disabled_allows_clear_password_only_when_opted_in() {
        let e = Endpoint {
            host: "h".into(),
            port: 1,
            user: "u".into(),
            password: "p".into(),
        };
        let off = mysql_async::Opts::from(
            mysql_opts(&e, &TlsOptions::default(), &AuthOptions::default()).unwrap(),
        );
        assert!(!off.enable_cleartext_plugin());
        assert!(off.ssl_opts().is_none());
        let required = TlsOptions {
            mode: SslMode::Required,
            ..Default::default()
        };
        let tls =
            mysql_async::Opts::from(mysql_opts(&e, &required, &AuthOptions::default()).unwrap());
        assert!(tls.enable_cleartext_plugin(), "allowed over TLS");
        assert!(tls.ssl_opts().is_some_and(|s| s.accept_invalid_certs()));
    }

    #[test]
    fn certificate_files_are_checked_by_option_name() {
        let e = Endpoint {
            host: "h".into(),
            port: 1,
            user: "u".into(),
            password: "p".into(),
        };
        let tls = TlsOptions {
            mode: SslMode::VerifyCa,
            ca: Some("/nonexistent/ca.pem".into()),
            option_prefix: "schema_".into(),
            ..Default::default()
        };
        let err = mysql_opts(&e, &tls, &AuthOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("schema_ssl_ca") && err.contains("/nonexistent/ca.pem"),
            "{err}"
        );
    }
}
