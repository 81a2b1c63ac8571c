//! The MySQL servers sluice talks to, in Maxwell's three roles (spec §4.1):
//! the state host (`host`: positions, schema history, heartbeats), the
//! replication host (`replication_host`: the binlog, the server identity and
//! settings, by default the state host) and the schema host (`schema_host`:
//! schema captures, by default the replication host). Each role has its
//! address, login, TLS (`ssl`, `ssl_ca`, `ssl_cert`, `ssl_key`, with the
//! role's prefix) and `jdbc_options`.

use std::path::PathBuf;
use std::time::Duration;

use sluice_binlog::{AuthOptions, SslMode, TlsOptions};
use sluice_core::{declare_options, ConfigError, Opt, Section, Values};
use sluice_schema::connect::Endpoint;

use super::options::{
    HOST, MYSQL_CONNECT_TIMEOUT_MS, MYSQL_QUERY_TIMEOUT_MS, PASSWORD, PORT, USER,
};

use Section::Connection;

declare_options! { OPTIONS;
    SSL: String = Opt::new("ssl", Connection, "DISABLED",
        "TLS to the state host (and, by default, the others): DISABLED | PREFERRED | REQUIRED | VERIFY_CA | VERIFY_IDENTITY, as MySQL's client");
    SSL_CA: String = Opt::new("ssl_ca", Connection, "",
        "PEM file of the CA certificate(s) to trust with VERIFY_CA and VERIFY_IDENTITY (default: the Mozilla root set)");
    SSL_CERT: String = Opt::new("ssl_cert", Connection, "", "PEM client certificate (with ssl_key)");
    SSL_KEY: String = Opt::new("ssl_key", Connection, "", "PEM private key of ssl_cert");
    JDBC_OPTIONS: String = Opt::new("jdbc_options", Connection, "",
        "Maxwell's JDBC options k=v&k=v: connectTimeout (ms), sslMode and useSSL=false are honoured, the rest ignored");
    ENABLE_CLEARTEXT_PLUGIN: bool = Opt::new("enable_cleartext_plugin", Connection, "false",
        "send the password in clear text when a server asks for mysql_clear_password (PAM, LDAP) on a connection without TLS");
    SERVER_PUBLIC_KEY_PATH: String = Opt::new("server_public_key_path", Connection, "",
        "the server's RSA public key (PEM) for caching_sha2_password without TLS (default: asked of the server)");

    REPLICATION_HOST: String = Opt::new("replication_host", Connection, "",
        "read the binlog from this server (a replica) instead of host; needs replication_user and replication_password");
    REPLICATION_PORT: u16 = Opt::new("replication_port", Connection, "3306", "port of replication_host");
    REPLICATION_USER: String = Opt::new("replication_user", Connection, "", "user on replication_host");
    REPLICATION_PASSWORD: String = Opt::new("replication_password", Connection, "",
        "password on replication_host").secret();
    REPLICATION_SSL: String = Opt::new("replication_ssl", Connection, "", "TLS mode to replication_host (default: ssl)");
    REPLICATION_SSL_CA: String = Opt::new("replication_ssl_ca", Connection, "", "ssl_ca for replication_host (default: ssl_ca)");
    REPLICATION_SSL_CERT: String = Opt::new("replication_ssl_cert", Connection, "", "ssl_cert for replication_host (default: ssl_cert)");
    REPLICATION_SSL_KEY: String = Opt::new("replication_ssl_key", Connection, "", "ssl_key for replication_host (default: ssl_key)");
    REPLICATION_JDBC_OPTIONS: String = Opt::new("replication_jdbc_options", Connection, "",
        "jdbc_options for replication_host");

    SCHEMA_HOST: String = Opt::new("schema_host", Connection, "",
        "capture schemas from this server (e.g. behind a binlog router); needs replication_host, schema_user and schema_password");
    SCHEMA_PORT: u16 = Opt::new("schema_port", Connection, "3306", "port of schema_host");
    SCHEMA_USER: String = Opt::new("schema_user", Connection, "", "user on schema_host");
    SCHEMA_PASSWORD: String = Opt::new("schema_password", Connection, "", "password on schema_host").secret();
    SCHEMA_SSL: String = Opt::new("schema_ssl", Connection, "", "TLS mode to schema_host (default: ssl)");
    SCHEMA_SSL_CA: String = Opt::new("schema_ssl_ca", Connection, "", "ssl_ca for schema_host (default: ssl_ca)");
    SCHEMA_SSL_CERT: String = Opt::new("schema_ssl_cert", Connection, "", "ssl_cert for schema_host (default: ssl_cert)");
    SCHEMA_SSL_KEY: String = Opt::new("schema_ssl_key", Connection, "", "ssl_key for schema_host (default: ssl_key)");
    SCHEMA_JDBC_OPTIONS: String = Opt::new("schema_jdbc_options", Connection, "", "jdbc_options for schema_host");
}

/// One server and how to reach it.
#[derive(Debug, Clone)]
pub struct MysqlServer {
    pub endpoint: Endpoint,
    pub tls: TlsOptions,
    pub connect_timeout: Duration,
}

impl MysqlServer {
    pub fn address(&self) -> String {
        format!("{}:{}", self.endpoint.host, self.endpoint.port)
    }
}

/// The three roles (often the same server).
#[derive(Debug, Clone)]
pub struct Servers {
    /// Positions, schema history, heartbeats (`host`).
    pub state: MysqlServer,
    /// The binlog (`replication_host`, default: `host`).
    pub replication: MysqlServer,
    /// Schema captures (`schema_host`, default: the replication host).
    pub schema: MysqlServer,
    pub auth: AuthOptions,
    /// `mysql_query_timeout_ms`: the longest wait for one answer at startup
    /// and for identity checks.
    pub query_timeout: Duration,
}

/// The options of one role, by prefix.
struct Role {
    prefix: &'static str,
    ssl: Opt<String>,
    ca: Opt<String>,
    cert: Opt<String>,
    key: Opt<String>,
    jdbc: Opt<String>,
}

const STATE: Role = Role {
    prefix: "",
    ssl: SSL,
    ca: SSL_CA,
    cert: SSL_CERT,
    key: SSL_KEY,
    jdbc: JDBC_OPTIONS,
};

const REPLICATION: Role = Role {
    prefix: "replication_",
    ssl: REPLICATION_SSL,
    ca: REPLICATION_SSL_CA,
    cert: REPLICATION_SSL_CERT,
    key: REPLICATION_SSL_KEY,
    jdbc: REPLICATION_JDBC_OPTIONS,
};

const SCHEMA: Role = Role {
    prefix: "schema_",
    ssl: SCHEMA_SSL,
    ca: SCHEMA_SSL_CA,
    cert: SCHEMA_SSL_CERT,
    key: SCHEMA_SSL_KEY,
    jdbc: SCHEMA_JDBC_OPTIONS,
};

/// A file option: the role's own value, else the unprefixed one.
fn path(
    own: Opt<String>,
    shared: Opt<String>,
    v: &dyn Values,
) -> Result<Option<PathBuf>, ConfigError> {
    let own = own.get(v)?;
    let value = if own.is_empty() { shared.get(v)? } else { own };
    Ok((!value.is_empty()).then(|| PathBuf::from(value)))
}

/// What `jdbc_options` says that sluice honours.
#[derive(Debug, Default, PartialEq, Eq)]
struct Jdbc {
    connect_timeout: Option<Duration>,
    ssl_mode: Option<String>,
    use_ssl_false: bool,
}

/// `k=v&k=v` (pairs without `=` dropped, as Maxwell). Keys of the Java
/// driver that mean nothing here are named once in `warnings`.
fn jdbc(opt: Opt<String>, v: &dyn Values, warnings: &mut Vec<String>) -> Result<Jdbc, ConfigError> {
    let mut out = Jdbc::default();
    let mut ignored = Vec::new();
    for pair in opt.get(v)?.split('&') {
        let Some((k, val)) = pair.split_once('=') else {
            continue;
        };
        let (k, val) = (k.trim(), val.trim());
        match k {
            "connectTimeout" => {
                let ms: u64 = val.parse().map_err(|_| {
                    opt.error(
                        v,
                        format!("connectTimeout='{val}' is not a number of milliseconds"),
                    )
                })?;
                out.connect_timeout = Some(Duration::from_millis(ms.max(100)));
            }
            "sslMode" => out.ssl_mode = Some(val.to_string()),
            "useSSL" if val.eq_ignore_ascii_case("false") => out.use_ssl_false = true,
            _ => ignored.push(k.to_string()),
        }
    }
    if !ignored.is_empty() {
        warnings.push(format!(
            "{}: JVM driver options ignored: {}",
            opt.name(),
            ignored.join(", ")
        ));
    }
    Ok(out)
}

/// The TLS of a role: its own `ssl`, else `sslMode` of its jdbc options,
/// else the state host's `ssl` (for the other roles), else DISABLED when
/// `useSSL=false`.
fn tls(
    role: &Role,
    jdbc: &Jdbc,
    inherited: Option<SslMode>,
    v: &dyn Values,
) -> Result<TlsOptions, ConfigError> {
    let own = role.ssl.get(v)?;
    let (text, opt) = if role.ssl.is_set(v) && !own.is_empty() {
        (Some(own), role.ssl)
    } else if let Some(mode) = &jdbc.ssl_mode {
        (Some(mode.clone()), role.jdbc)
    } else {
        (None, role.ssl)
    };
    let mode = match text {
        Some(text) => SslMode::parse(opt.name(), &text).map_err(|e| opt.error(v, e.to_string()))?,
        None if jdbc.use_ssl_false => SslMode::Disabled,
        None => match inherited {
            Some(mode) => mode,
            None => {
                SslMode::parse(SSL.name(), &SSL.get(v)?).map_err(|e| SSL.error(v, e.to_string()))?
            }
        },
    };
    let tls = TlsOptions {
        mode,
        ca: path(role.ca, SSL_CA, v)?,
        cert: path(role.cert, SSL_CERT, v)?,
        key: path(role.key, SSL_KEY, v)?,
        option_prefix: role.prefix.to_string(),
    };
    if tls.cert.is_some() != tls.key.is_some() {
        return Err(role.key.error(
            v,
            format!(
                "{} and {} go together: a client certificate needs its key",
                tls.option("ssl_cert"),
                tls.option("ssl_key")
            ),
        ));
    }
    Ok(tls)
}

impl Servers {
    /// Maxwell's rules: `replication_*` only when both `replication_host`
    /// and `replication_user` are given (else the state host's settings are
    /// copied); `schema_host` only with `replication_host`, `schema_user` and
    /// `schema_password`; ports never inherited.
    pub fn from_options(
        v: &dyn Values,
        warnings: &mut Vec<String>,
    ) -> Result<Servers, ConfigError> {
        let port = PORT.get(v)?;
        if port == 0 {
            return Err(PORT.error(v, "0 is not a port number (1-65535)"));
        }
        let timeout =
            Duration::from_millis(MYSQL_CONNECT_TIMEOUT_MS.get(v)?).max(Duration::from_millis(100));
        let state_jdbc = jdbc(JDBC_OPTIONS, v, warnings)?;
        let state = MysqlServer {
            endpoint: Endpoint {
                host: HOST.get(v)?,
                port,
                user: USER.get(v)?,
                password: PASSWORD.get(v)?,
            },
            tls: tls(&STATE, &state_jdbc, None, v)?,
            connect_timeout: state_jdbc.connect_timeout.unwrap_or(timeout),
        };

        let (rhost, ruser) = (REPLICATION_HOST.get(v)?, REPLICATION_USER.get(v)?);
        let any_replication =
            !rhost.is_empty() || !ruser.is_empty() || REPLICATION_PASSWORD.is_set(v);
        let replication = if !rhost.is_empty() && !ruser.is_empty() {
            let j = jdbc(REPLICATION_JDBC_OPTIONS, v, warnings)?;
            MysqlServer {
                endpoint: Endpoint {
                    host: rhost,
                    port: REPLICATION_PORT.get(v)?,
                    user: ruser,
                    password: REPLICATION_PASSWORD.get(v)?,
                },
                tls: tls(&REPLICATION, &j, Some(state.tls.mode), v)?,
                connect_timeout: j.connect_timeout.unwrap_or(timeout),
            }
        } else if any_replication {
            return Err(REPLICATION_HOST.error(
                v,
                "please specify all of: replication_host, replication_user, replication_password",
            ));
        } else {
            for opt in [REPLICATION_SSL, REPLICATION_JDBC_OPTIONS] {
                if opt.is_set(v) {
                    warnings.push(format!("{} is ignored without replication_host and replication_user (the binlog is read from host)", opt.name()));
                }
            }
            state.clone()
        };

        let shost = SCHEMA_HOST.get(v)?;
        let schema = if !shost.is_empty() {
            if !REPLICATION_HOST.is_set(v) {
                return Err(SCHEMA_HOST.error(
                    v,
                    "specifying schema_host only makes sense along with replication_host",
                ));
            }
            let (user, password) = (SCHEMA_USER.get(v)?, SCHEMA_PASSWORD.get(v)?);
            if user.is_empty() || !SCHEMA_PASSWORD.is_set(v) {
                return Err(SCHEMA_HOST.error(
                    v,
                    "please specify all of: schema_host, schema_user, schema_password",
                ));
            }
            let j = jdbc(SCHEMA_JDBC_OPTIONS, v, warnings)?;
            MysqlServer {
                endpoint: Endpoint {
                    host: shost,
                    port: SCHEMA_PORT.get(v)?,
                    user,
                    password,
                },
                tls: tls(&SCHEMA, &j, Some(state.tls.mode), v)?,
                connect_timeout: j.connect_timeout.unwrap_or(timeout),
            }
        } else {
            replication.clone()
        };
        let key = SERVER_PUBLIC_KEY_PATH.get(v)?;
        Ok(Servers {
            query_timeout: Duration::from_millis(MYSQL_QUERY_TIMEOUT_MS.get(v)?)
                .max(Duration::from_millis(100)),
            state,
            replication,
            schema,
            auth: AuthOptions {
                enable_cleartext_plugin: ENABLE_CLEARTEXT_PLUGIN.get(v)?,
                server_public_key_path: (!key.is_empty()).then(|| PathBuf::from(key)),
            },
        })
    }
}
