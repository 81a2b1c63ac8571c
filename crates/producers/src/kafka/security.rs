//! Kafka's TLS and SASL failures. librdkafka retries a certificate it
//! refuses and a login the brokers refuse for ever, and says little about
//! why a certificate failed ("certificate verify failed"). These failures
//! do not fix themselves: the producer stops with a message naming the
//! `kafka.*` option to change, the cause of a refused certificate found by
//! a TLS handshake of sluice's own with the same CA (rustls, the checks
//! every other connection of sluice makes).

use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use rdkafka::error::RDKafkaErrorCode;
use rustls::{CertificateError, ClientConnection};
use sluice_secure::tls::{find_rustls_error, SslMode, TlsOptions};

/// A failure that stops the producer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The brokers refused the SASL login.
    Login(String),
    /// librdkafka refused the broker's certificate.
    Certificate(String),
}

/// The failure librdkafka's error `reason` is, if it is one that retrying
/// does not fix (not a broker away or a handshake cut short).
pub fn failure(code: Option<RDKafkaErrorCode>, reason: &str) -> Option<Failure> {
    let lower = reason.to_ascii_lowercase();
    if code == Some(RDKafkaErrorCode::Authentication) || lower.contains("sasl authentication") {
        Some(Failure::Login(reason.to_string()))
    } else if lower.contains("certificate verify failed") {
        Some(Failure::Certificate(reason.to_string()))
    } else {
        None
    }
}

/// What went wrong and which option changes it. `client` is librdkafka's
/// configuration (CA, client certificate for the probe).
pub fn explain(f: &Failure, client: &[(String, String)]) -> String {
    match f {
        Failure::Login(reason) => format!(
            "the brokers refused the login ({reason}): check kafka.sasl.mechanism, kafka.sasl.username and kafka.sasl.password (and kafka.security.protocol=sasl_ssl or sasl_plaintext)"
        ),
        Failure::Certificate(reason) => {
            let cause = match probe(reason, client) {
                Some(CertificateError::UnknownIssuer) => {
                    "it is not signed by a CA sluice trusts: set kafka.ssl.ca.location to the CA certificate that signed it"
                }
                Some(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
                    "it has expired: renew it on the broker"
                }
                Some(CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }) => {
                    "it is not valid yet: check the clocks of this machine and of the CA"
                }
                Some(
                    CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
                ) => {
                    "it is not issued for the host name it was reached by: connect by a name it lists (the broker's advertised listener), or set kafka.ssl.endpoint.identification.algorithm=none to verify the CA but not the name"
                }
                _ => {
                    "check kafka.ssl.ca.location (the CA that signed it), the host name (kafka.ssl.endpoint.identification.algorithm=none skips it) and its validity dates"
                }
            };
            format!(
                "TLS to the brokers failed ({reason}): the broker's certificate was refused: {cause} (kafka.enable.ssl.certificate.verification=false encrypts without verifying)"
            )
        }
    }
}

/// The reason rustls refuses the certificate of the broker `reason` names
/// (`ssl://host:port/…`), verifying as librdkafka does by default: chain
/// against kafka.ssl.ca.location and host name.
fn probe(reason: &str, client: &[(String, String)]) -> Option<CertificateError> {
    let setting = |k: &str| client.iter().find(|(n, _)| n == k).map(|(_, v)| v.into());
    let addr = reason.split("ssl://").nth(1)?.split('/').next()?;
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let tls = TlsOptions {
        mode: SslMode::VerifyIdentity,
        ca: setting("ssl.ca.location"),
        cert: setting("ssl.certificate.location"),
        key: setting("ssl.key.location"),
        option_prefix: String::new(),
    };
    let mut conn =
        ClientConnection::new(tls.client_config().ok()?, tls.server_name(host).ok()?).ok()?;
    let target = (host, port.parse::<u16>().ok()?)
        .to_socket_addrs()
        .ok()?
        .next()?;
    let mut tcp = TcpStream::connect_timeout(&target, Duration::from_secs(5)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_millis(250)))
        .ok()?;
    let started = Instant::now();
    while conn.is_handshaking() && started.elapsed() < Duration::from_secs(5) {
        match conn.complete_io(&mut tcp) {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => {
                return match find_rustls_error(&e) {
                    Some(rustls::Error::InvalidCertificate(c)) => Some(c.clone()),
                    _ => None,
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_certificates_and_logins_stop_the_producer_naming_the_option() {
        let verify = "ssl://127.0.0.1:1/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified";
        let f = failure(Some(RDKafkaErrorCode::SSL), verify).unwrap();
        // Nothing answers at port 1: the cause stays open, the options are named.
        let m = explain(&f, &[]);
        assert!(
            m.contains("kafka.ssl.ca.location")
                && m.contains("kafka.ssl.endpoint.identification.algorithm=none"),
            "{m}"
        );
        let f = failure(
            Some(RDKafkaErrorCode::Authentication),
            "SASL authentication error: Authentication failed",
        )
        .unwrap();
        assert!(explain(&f, &[]).contains("kafka.sasl.password"));
        assert!(failure(
            Some(RDKafkaErrorCode::SSL),
            "SSL handshake failed: Disconnected"
        )
        .is_none());
        assert!(failure(
            Some(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down"
        )
        .is_none());
    }
}
