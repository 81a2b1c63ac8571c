//! Option declarations. Every option is declared once, as a typed constant
//! next to the code that uses it ([`Opt`]), with its name, default, help
//! text and [`Section`]; [`declare_options!`](crate::declare_options) also
//! lists the declarations of a module for `--help`, the README check and
//! the unknown-name check. Values are read through [`Opt::get`], so a
//! misspelt option is a compile error, not an empty string at run time.
//!
//! Where values come from (command line, config file, environment) is the
//! daemon's business: it hands them over as [`Values`].

use std::fmt;
use std::marker::PhantomData;

/// Where an option is listed in `--help` and in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Section {
    General,
    Connection,
    Replication,
    Output,
    Filter,
    Schema,
    HighAvailability,
    Http,
    /// Options every producer shares (refused rows).
    Producers,
    /// The options of one producer, by its `producer=` name.
    Producer(&'static str),
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Section::General => f.write_str("General"),
            Section::Connection => f.write_str("Connection to MySQL/MariaDB"),
            Section::Replication => f.write_str("Replication and positions"),
            Section::Output => f.write_str("Output (JSON rows)"),
            Section::Filter => f.write_str("Filters"),
            Section::Schema => f.write_str("Schema changes"),
            Section::HighAvailability => f.write_str("High availability"),
            Section::Http => f.write_str("HTTP endpoint and metrics"),
            Section::Producers => f.write_str("Every producer"),
            Section::Producer(name) => write!(f, "producer={name}"),
        }
    }
}

/// An option without its type: what `--help` and the checks need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionInfo {
    pub name: &'static str,
    /// As written on the command line; empty: no default.
    pub default: &'static str,
    pub help: &'static str,
    pub section: Section,
    /// What a value looks like, for messages (`a number of milliseconds`).
    pub value: &'static str,
    /// Never echoed: logs, `/status` and error messages show `****`.
    pub secret: bool,
}

/// A declared option whose value is a `T`.
pub struct Opt<T> {
    info: OptionInfo,
    _value: PhantomData<fn() -> T>,
}

impl<T> Clone for Opt<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Opt<T> {}

impl<T: OptionValue> Opt<T> {
    pub const fn new(
        name: &'static str,
        section: Section,
        default: &'static str,
        help: &'static str,
    ) -> Self {
        Opt {
            info: OptionInfo {
                name,
                default,
                help,
                section,
                value: T::WHAT,
                secret: false,
            },
            _value: PhantomData,
        }
    }

    /// A password or key: its value is never shown.
    pub const fn secret(mut self) -> Self {
        self.info.secret = true;
        self
    }

    pub const fn info(&self) -> OptionInfo {
        self.info
    }

    pub const fn name(&self) -> &'static str {
        self.info.name
    }

    /// The value, its default, or an error naming the option, where the
    /// value came from and what was expected.
    pub fn get(&self, values: &dyn Values) -> Result<T, ConfigError> {
        let setting = self.setting(values);
        T::parse(setting.value).map_err(|why| {
            let shown = if self.info.secret {
                "****"
            } else {
                setting.value
            };
            self.error(values, format!("'{shown}' is not {}{why}", T::WHAT))
        })
    }

    /// The value as written and where it came from (`default` when unset).
    pub fn setting<'v>(&self, values: &'v dyn Values) -> Setting<'v> {
        match values.lookup(self.info.name) {
            Some((value, origin)) => Setting { value, origin },
            None => Setting {
                value: self.info.default,
                origin: "default",
            },
        }
    }

    /// Whether the option was given at all (not left at its default).
    pub fn is_set(&self, values: &dyn Values) -> bool {
        values.lookup(self.info.name).is_some()
    }

    /// A configuration error about this option's value: `message` says what
    /// is wrong and how to fix it.
    pub fn error(&self, values: &dyn Values, message: impl Into<String>) -> ConfigError {
        ConfigError::Bad {
            name: self.info.name.to_string(),
            origin: self.setting(values).origin.to_string(),
            message: message.into(),
        }
    }
}

/// One option's raw value and its origin.
#[derive(Debug, Clone, Copy)]
pub struct Setting<'v> {
    pub value: &'v str,
    /// `command line`, `config.properties:12`, `environment variable X`,
    /// `default`.
    pub origin: &'v str,
}

/// The values given for options, by name (the daemon's configuration
/// sources).
pub trait Values {
    /// The value and its origin; `None` when the option was not given.
    fn lookup(&self, name: &str) -> Option<(&str, &str)>;
    /// Every given option whose name starts with `prefix` (pass-through
    /// families such as `kafka.*`), as (name, value).
    fn with_prefix(&self, prefix: &str) -> Vec<(String, String)>;
}

/// Options given in code, by name, all from one origin: what a program
/// that embeds sluice, or a unit test, passes instead of a command line.
#[derive(Debug, Clone, Default)]
pub struct Given {
    pairs: Vec<(String, String)>,
    origin: String,
}

impl Given {
    /// `pairs` as if written on the command line.
    pub fn new(pairs: &[(&str, &str)]) -> Given {
        Given::from(pairs, "command line")
    }

    pub fn from(pairs: &[(&str, &str)], origin: &str) -> Given {
        Given {
            pairs: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            origin: origin.to_string(),
        }
    }
}

impl Values for Given {
    fn lookup(&self, name: &str) -> Option<(&str, &str)> {
        // The last one given wins, as on a command line.
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| (v.as_str(), self.origin.as_str()))
    }

    fn with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        self.pairs
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .cloned()
            .collect()
    }
}

/// A type an option's text converts to.
pub trait OptionValue: Sized {
    /// What a value looks like, for `--help` and messages.
    const WHAT: &'static str;
    /// `Err` adds detail after "'x' is not WHAT" (may be empty).
    fn parse(text: &str) -> Result<Self, String>;
}

impl OptionValue for String {
    const WHAT: &'static str = "a string";
    fn parse(text: &str) -> Result<Self, String> {
        Ok(text.to_string())
    }
}

impl OptionValue for bool {
    const WHAT: &'static str = "true or false";
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(String::new()),
        }
    }
}

macro_rules! numbers {
    ($($t:ty => $what:literal),*) => {$(
        impl OptionValue for $t {
            const WHAT: &'static str = $what;
            fn parse(text: &str) -> Result<Self, String> {
                text.trim().parse().map_err(|_| String::new())
            }
        }
    )*};
}

numbers!(u16 => "a whole number (0-65535)", u32 => "a whole number", u64 => "a whole number",
    usize => "a whole number", i64 => "a whole number");

/// Empty text is "not set".
impl<T: OptionValue> OptionValue for Option<T> {
    const WHAT: &'static str = T::WHAT;
    fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            Ok(None)
        } else {
            T::parse(text).map(Some)
        }
    }
}

/// Declares options as typed constants and lists them:
///
/// ```
/// use sluice_core::{declare_options, Opt, Section};
/// declare_options! { OPTIONS;
///     /// The server to replicate from.
///     HOST: String = Opt::new("host", Section::Connection, "localhost", "MySQL/MariaDB host");
///     PORT: u16 = Opt::new("port", Section::Connection, "3306", "MySQL/MariaDB port");
/// }
/// assert_eq!(OPTIONS.len(), 2);
/// assert_eq!(PORT.name(), "port");
/// ```
#[macro_export]
macro_rules! declare_options {
    ($list:ident; $($(#[$doc:meta])* $id:ident : $t:ty = $decl:expr;)*) => {
        $($(#[$doc])* pub const $id: $crate::options::Opt<$t> = $decl;)*
        /// Every option declared here, in declaration order.
        pub const $list: &[$crate::options::OptionInfo] = &[$($id.info()),*];
    };
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown option '{name}' (from {origin}); run with --help for the list{hint}")]
    Unknown {
        name: String,
        origin: String,
        hint: String,
    },
    #[error("option '{name}' (from {origin}): {message}")]
    Bad {
        name: String,
        origin: String,
        message: String,
    },
    #[error("cannot read config file {path}: {message}")]
    File { path: String, message: String },
    #[error("{0}")]
    Usage(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Values with an origin each (Given has one for all).
    struct Map(BTreeMap<&'static str, (&'static str, &'static str)>);

    impl Values for Map {
        fn lookup(&self, name: &str) -> Option<(&str, &str)> {
            self.0.get(name).copied()
        }
        fn with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
            self.0
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, (v, _))| (k.to_string(), v.to_string()))
                .collect()
        }
    }

    declare_options! { ALL;
        PORT: u16 = Opt::new("port", Section::Connection, "3306", "port");
        FLAG: bool = Opt::new("flag", Section::Output, "false", "a flag");
        PASSWORD: String = Opt::new("password", Section::Connection, "", "secret").secret();
        LIMIT: Option<u64> = Opt::new("limit", Section::General, "", "optional");
    }

    #[test]
    fn given_values_take_the_last_of_a_name_and_list_a_family() {
        let g = Given::new(&[("port", "1"), ("kafka.acks", "all"), ("port", "2")]);
        assert_eq!(g.lookup("port"), Some(("2", "command line")));
        assert_eq!(g.lookup("host"), None);
        assert_eq!(
            g.with_prefix("kafka."),
            vec![("kafka.acks".to_string(), "all".to_string())]
        );
    }

    #[test]
    fn typed_values_defaults_and_errors_name_option_and_origin() {
        let none = Map(BTreeMap::new());
        assert_eq!(PORT.get(&none).unwrap(), 3306);
        assert!(!FLAG.get(&none).unwrap());
        assert_eq!(LIMIT.get(&none).unwrap(), None);
        assert_eq!(PORT.setting(&none).origin, "default");
        let given = Map(BTreeMap::from([
            ("port", ("abc", "command line")),
            ("flag", ("yes", "config.properties:3")),
            ("limit", ("12", "environment variable X")),
        ]));
        assert!(FLAG.get(&given).unwrap());
        assert_eq!(LIMIT.get(&given).unwrap(), Some(12));
        let e = PORT.get(&given).unwrap_err().to_string();
        assert_eq!(
            e,
            "option 'port' (from command line): 'abc' is not a whole number (0-65535)"
        );
        assert_eq!(ALL.len(), 4);
        assert_eq!(ALL[2].name, "password");
    }

    #[test]
    fn a_secret_is_never_shown_in_an_error() {
        declare_options! { S;
            KEY: u32 = Opt::new("key", Section::General, "", "k").secret();
        }
        let given = Map(BTreeMap::from([("key", ("hunter2", "command line"))]));
        let e = KEY.get(&given).unwrap_err().to_string();
        assert!(!e.contains("hunter2") && e.contains("****"), "{e}");
        assert!(S[0].secret && PASSWORD.info().secret);
    }
}
