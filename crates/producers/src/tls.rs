//! TLS for the producers that speak their broker's protocol (Redis,
//! RabbitMQ, NATS): the four options each of them declares
//! (`<producer>_ssl`, `_ssl_ca`, `_ssl_cert`, `_ssl_key`) read into sluice's
//! shared TLS settings (`sluice_secure::tls`, the ones MySQL's connections
//! use), so every connection has the same modes, checks and messages.

use sluice_core::{ConfigError, Opt, Values};
use sluice_secure::tls::{SslMode, TlsError, TlsOptions};

/// A producer's TLS options.
#[derive(Clone, Copy)]
pub struct TlsOpts {
    /// `<producer>_ssl`: DISABLED | REQUIRED | VERIFY_CA | VERIFY_IDENTITY.
    pub ssl: Opt<String>,
    pub ca: Opt<String>,
    pub cert: Opt<String>,
    pub key: Opt<String>,
}

/// The modes a broker connection takes: MySQL's PREFERRED (fall back to
/// plain text when the server offers no TLS) has no meaning where the
/// client decides alone.
const MODES: &str = "DISABLED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY";

impl TlsOpts {
    /// The settings. `asked`: TLS is asked for in another way (`rediss://`,
    /// `amqps://`, `tls://`, `rabbitmq_use_ssl=true`); a `<producer>_ssl`
    /// left at DISABLED then means VERIFY_IDENTITY, the safe default. The
    /// certificate files are read once here, so a missing or unusable one
    /// stops sluice at start naming its option.
    pub fn read(&self, values: &dyn Values, asked: bool) -> Result<TlsOptions, ConfigError> {
        let name = self.ssl.name();
        let prefix = name.strip_suffix("ssl").unwrap_or(name).to_string();
        let value = self.ssl.get(values)?;
        let mode = match SslMode::parse(name, &value) {
            Ok(SslMode::Preferred) | Err(_) => {
                return Err(self
                    .ssl
                    .error(values, format!("'{value}' is not one of {MODES}")))
            }
            Ok(SslMode::Disabled) if asked => SslMode::VerifyIdentity,
            Ok(mode) => mode,
        };
        let path = |opt: Opt<String>| -> Result<_, ConfigError> {
            Ok(Some(opt.get(values)?)
                .filter(|p| !p.is_empty())
                .map(Into::into))
        };
        let tls = TlsOptions {
            mode,
            ca: path(self.ca)?,
            cert: path(self.cert)?,
            key: path(self.key)?,
            option_prefix: prefix,
        };
        if tls.mode.wants_tls() {
            tls.client_config()
                .map_err(|e| self.blame(values, &e).error(values, e.to_string()))?;
        }
        Ok(tls)
    }

    /// The option a configuration error is about.
    fn blame(&self, values: &dyn Values, e: &TlsError) -> Opt<String> {
        let named = match e {
            TlsError::BadFile { option, .. } => option.as_str(),
            TlsError::Incomplete { given, .. } => given.as_str(),
            TlsError::ClientCertificate { cert_option, .. } => cert_option.as_str(),
            _ => "",
        };
        [self.ca, self.cert, self.key]
            .into_iter()
            .find(|o| o.name() == named && o.is_set(values))
            .unwrap_or(self.ssl)
    }
}

/// The mode a connection uses when the server requires TLS although the
/// configuration did not ask for it (NATS `tls_required`): DISABLED
/// becomes the safe VERIFY_IDENTITY, any other mode stays.
pub fn required_by_server(tls: &TlsOptions) -> TlsOptions {
    let mut t = tls.clone();
    if !t.mode.wants_tls() {
        t.mode = SslMode::VerifyIdentity;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::Given;
    use sluice_core::{declare_options, Section};

    declare_options! { TEST;
        T_SSL: String = Opt::new("t_ssl", Section::Producer("t"), "DISABLED", "");
        T_SSL_CA: String = Opt::new("t_ssl_ca", Section::Producer("t"), "", "");
        T_SSL_CERT: String = Opt::new("t_ssl_cert", Section::Producer("t"), "", "");
        T_SSL_KEY: String = Opt::new("t_ssl_key", Section::Producer("t"), "", "");
    }

    const OPTS: TlsOpts = TlsOpts {
        ssl: T_SSL,
        ca: T_SSL_CA,
        cert: T_SSL_CERT,
        key: T_SSL_KEY,
    };

    #[test]
    fn modes_and_the_url_that_asks_for_tls() {
        let none = Given::new(&[]);
        assert_eq!(OPTS.read(&none, false).unwrap().mode, SslMode::Disabled);
        // rediss://, amqps://, tls://: DISABLED means the safe mode.
        let tls = OPTS.read(&none, true).unwrap();
        assert_eq!(tls.mode, SslMode::VerifyIdentity);
        assert_eq!(tls.option("ssl_ca"), "t_ssl_ca");
        let required = Given::new(&[("t_ssl", "required")]);
        assert_eq!(OPTS.read(&required, true).unwrap().mode, SslMode::Required);
        assert_eq!(
            required_by_server(&OPTS.read(&none, false).unwrap()).mode,
            SslMode::VerifyIdentity
        );
    }

    #[test]
    fn preferred_and_unusable_files_are_refused_naming_the_option() {
        let e = OPTS
            .read(&Given::new(&[("t_ssl", "PREFERRED")]), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'t_ssl'") && e.contains("VERIFY_IDENTITY"),
            "{e}"
        );
        let e = OPTS
            .read(
                &Given::new(&[("t_ssl", "VERIFY_CA"), ("t_ssl_ca", "/nonexistent/ca.pem")]),
                false,
            )
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'t_ssl_ca'") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
        let e = OPTS
            .read(&Given::new(&[("t_ssl_cert", "/x/c.pem")]), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'t_ssl_cert'") && e.contains("t_ssl_key"), "{e}");
        // Not read while TLS is off.
        assert!(OPTS
            .read(&Given::new(&[("t_ssl_ca", "/nonexistent/ca.pem")]), false)
            .is_ok());
    }
}
