//! The HTTP endpoint's options. Certificates and keys are read here, while
//! the configuration is checked: a missing or unreadable file stops sluice
//! at start (exit 2) naming the option, not at the first request.

use std::path::PathBuf;

use sluice_core::{declare_options, ConfigError, Opt, Section, Values};

use super::auth::BasicAuth;
use super::tls::{PeerTls, ServerTls};

declare_options! { OPTIONS;
    HTTP_PORT: u16 = Opt::new("http_port", Section::Http, "8080",
        "port of the HTTP endpoint (/ping /healthcheck /leader /status /metrics) every node serves; 0 = any free port");
    HTTP_BIND_ADDRESS: String = Opt::new("http_bind_address", Section::Http, "127.0.0.1",
        "address the HTTP endpoint binds to (0.0.0.0 for all)");
    HTTP_PATH_PREFIX: String = Opt::new("http_path_prefix", Section::Http, "/", "path prefix of the HTTP endpoints");
    METRICS_PREFIX: String = Opt::new("metrics_prefix", Section::Http, "sluice",
        "prefix of the Prometheus metric names (MaxwellMetrics gives Maxwell's names where they exist)");
    HTTP_CONNECT_ADDRESS: String = Opt::new("http_connect_address", Section::Http, "",
        "host:port other nodes and the leader record use to reach this node's HTTP endpoint (default: the bound address; the host name when bound to 0.0.0.0 or ::)");
    HTTP_SSL_CERT: String = Opt::new("http_ssl_cert", Section::Http, "",
        "PEM certificate (chain) of the HTTP endpoint: with http_ssl_key, it serves HTTPS only");
    HTTP_SSL_KEY: String = Opt::new("http_ssl_key", Section::Http, "",
        "PEM private key of http_ssl_cert");
    HTTP_SSL_CA: String = Opt::new("http_ssl_ca", Section::Http, "",
        "PEM CA certificate(s) that signed the other nodes' http_ssl_cert, for the cluster view (default: the public root CAs)");
    HTTP_AUTH: String = Opt::new("http_auth", Section::Http, "",
        "user:password for HTTP basic authentication of /status, /metrics, /prometheus, /config, /diagnostic, /cluster and the status page (/ping, /healthcheck, /leader stay open); a secret, never shown").secret();
    HTTP_CONFIG: bool = Opt::new("http_config", Section::Http, "false",
        "serve /config (Maxwell's http_config: the filter as JSON); 404 when false");
}

/// Where and how the HTTP endpoint answers.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub port: u16,
    pub bind_address: String,
    pub path_prefix: String,
    pub metrics_prefix: String,
    /// `host:port` to advertise; None: derived from the bound address.
    pub connect_address: Option<String>,
    /// HTTPS with this certificate and key.
    pub tls: Option<ServerTls>,
    /// How the cluster view verifies other nodes' certificates (with TLS).
    pub peer_tls: Option<PeerTls>,
    /// Credentials for everything but the probes.
    pub auth: Option<BasicAuth>,
    /// `/config` is served.
    pub config_endpoint: bool,
}

/// Why requests could never match `prefix`: the server compares the
/// request's path byte for byte, and clients cut at `?` and `#`, split the
/// request line at spaces, percent-encode what a path may not hold and
/// resolve `.` and `..` segments.
fn check_path_prefix(prefix: &str) -> Result<(), String> {
    if !prefix.starts_with('/') {
        return Err("does not start with /".into());
    }
    if let Some(c) = prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/-._~!$&'()*+,;=:@".contains(*c)))
    {
        return Err(match c {
            '?' => "holds ? (a query follows it; it is not part of the path)".into(),
            '#' => "holds # (browsers keep the fragment to themselves)".into(),
            c if c.is_whitespace() => "holds a space (it ends the request's path)".into(),
            '%' => "holds % (clients' percent-encoding is not decoded)".into(),
            c => format!("holds {c:?}, which clients percent-encode"),
        });
    }
    if prefix.split('/').any(|s| s == "." || s == "..") {
        return Err("holds a . or .. segment (clients resolve them away)".into());
    }
    Ok(())
}

fn path(opt: Opt<String>, v: &dyn Values) -> Result<Option<PathBuf>, ConfigError> {
    let p = opt.get(v)?;
    Ok((!p.trim().is_empty()).then(|| PathBuf::from(p.trim())))
}

impl HttpOptions {
    pub fn from_options(v: &dyn Values) -> Result<HttpOptions, ConfigError> {
        let path_prefix = HTTP_PATH_PREFIX.get(v)?;
        if let Err(why) = check_path_prefix(&path_prefix) {
            return Err(HTTP_PATH_PREFIX.error(
                v,
                format!("'{path_prefix}' {why}, so no endpoint could be reached; write a URL path like /sluice (letters, digits and -._~!$&'()*+,;=:@ between slashes)"),
            ));
        }
        let metrics_prefix = METRICS_PREFIX.get(v)?;
        if !metrics_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
            || metrics_prefix.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(METRICS_PREFIX.error(v, format!("'{metrics_prefix}' is not a Prometheus name: letters, digits and _ only, not starting with a digit")));
        }
        let connect_address =
            Some(HTTP_CONNECT_ADDRESS.get(v)?.trim().to_string()).filter(|a| !a.is_empty());
        if let Some(a) = &connect_address {
            if a.rsplit_once(':')
                .and_then(|(h, p)| (!h.is_empty()).then_some(p))
                .and_then(|p| p.parse::<u16>().ok())
                .is_none()
            {
                return Err(HTTP_CONNECT_ADDRESS.error(v, format!("'{a}' is not host:port")));
            }
        }
        let tls = match (path(HTTP_SSL_CERT, v)?, path(HTTP_SSL_KEY, v)?) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(HTTP_SSL_KEY.error(
                    v,
                    "http_ssl_cert is set: set http_ssl_key to its private key (PEM) too",
                ))
            }
            (None, Some(_)) => {
                return Err(HTTP_SSL_CERT.error(
                    v,
                    "http_ssl_key is set: set http_ssl_cert to its certificate (PEM) too",
                ))
            }
            (Some(cert), Some(key)) => Some(ServerTls::load(&cert, &key).map_err(|e| {
                let opt = if e.about_key {
                    HTTP_SSL_KEY
                } else {
                    HTTP_SSL_CERT
                };
                opt.error(v, e.message)
            })?),
        };
        let ca = path(HTTP_SSL_CA, v)?;
        let peer_tls = match &tls {
            Some(_) => Some(PeerTls::new(ca.as_deref()).map_err(|m| HTTP_SSL_CA.error(v, m))?),
            None if ca.is_some() => {
                return Err(HTTP_SSL_CA.error(
                    v,
                    "only used with http_ssl_cert and http_ssl_key (HTTPS between nodes)",
                ))
            }
            None => None,
        };
        let auth = Some(HTTP_AUTH.get(v)?)
            .filter(|a| !a.is_empty())
            .map(|a| BasicAuth::parse(&a).map_err(|m| HTTP_AUTH.error(v, m)))
            .transpose()?;
        Ok(HttpOptions {
            port: HTTP_PORT.get(v)?,
            bind_address: HTTP_BIND_ADDRESS.get(v)?,
            path_prefix,
            metrics_prefix,
            connect_address,
            tls,
            peer_tls,
            auth,
            config_endpoint: HTTP_CONFIG.get(v)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::Given;

    fn options(pairs: &[(&'static str, &str)]) -> Result<HttpOptions, ConfigError> {
        HttpOptions::from_options(&Given::new(pairs))
    }

    #[test]
    fn certificate_and_key_go_together() {
        let e = options(&[("http_ssl_cert", "/x.pem")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'http_ssl_key'"), "{e}");
        let e = options(&[("http_ssl_key", "/x.key")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'http_ssl_cert'"), "{e}");
        let e = options(&[("http_ssl_ca", "/ca.pem")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'http_ssl_ca'"), "{e}");
    }

    #[test]
    fn an_unreadable_certificate_names_its_option_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.pem");
        std::fs::write(&key, "not a key").unwrap();
        let e = options(&[
            ("http_ssl_cert", "/nonexistent/cert.pem"),
            ("http_ssl_key", key.to_str().unwrap()),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("'http_ssl_cert'") && e.contains("/nonexistent/cert.pem"),
            "{e}"
        );
    }

    #[test]
    fn the_password_never_shows_in_errors_or_debug_output() {
        let o = options(&[("http_auth", "admin:s3cr3t-pw")]).unwrap();
        let shown = format!("{o:?}");
        assert!(
            !shown.contains("s3cr3t-pw") && shown.contains("admin"),
            "{shown}"
        );
        let e = options(&[("http_auth", "nocolon-s3cr3t")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'http_auth'") && !e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn a_connect_address_is_host_and_port() {
        assert_eq!(
            options(&[("http_connect_address", "node1.example:8080")])
                .unwrap()
                .connect_address
                .as_deref(),
            Some("node1.example:8080")
        );
        for bad in ["node1", ":8080", "node1:http"] {
            let e = options(&[("http_connect_address", bad)]).unwrap_err();
            assert!(e.to_string().contains("host:port"), "{e}");
        }
    }

    #[test]
    fn a_path_prefix_that_no_request_can_match_is_refused() {
        for good in ["/", "/sluice", "/cdc/v1/", "/a-b_c.d~e@f:1"] {
            assert_eq!(
                options(&[("http_path_prefix", good)]).unwrap().path_prefix,
                good
            );
        }
        for (bad, why) in [
            ("sluice", "start with /"),
            ("/cdc?x=1", "?"),
            ("/cdc#top", "#"),
            ("/my cdc", "space"),
            ("/my\tcdc", "space"),
            ("/caf\u{e9}", "percent-encode"),
            ("/a%20b", "%"),
            ("/a/../b", ".."),
            ("/a\"b", "percent-encode"),
        ] {
            let e = options(&[("http_path_prefix", bad)])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("'http_path_prefix'") && e.contains(why) && e.contains("/sluice"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn defaults_serve_plain_http_without_auth_or_config() {
        let o = options(&[]).unwrap();
        assert!(o.tls.is_none() && o.auth.is_none() && !o.config_endpoint);
        assert_eq!((o.port, o.path_prefix.as_str()), (8080, "/"));
    }
}
