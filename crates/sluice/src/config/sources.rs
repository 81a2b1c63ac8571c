//! Where option values come from, lowest precedence first: defaults,
//! `--config FILE` (Java properties, as Maxwell reads it), the JSON object
//! in the environment variable `env_config` names, environment variables
//! named `<env_config_prefix><OPTION>`, the command line. Every value
//! remembers its origin, so an error can say where the bad value was
//! written.
//!
//! Maxwell's option names that sluice does not declare are looked up in
//! [`super::maxwell`]: accepted with a warning when they cannot change the
//! rows, refused with the reason and the alternative otherwise. Older names
//! of declared options are read as the new ones.

use std::collections::BTreeMap;
use std::io::Read;

use sluice_core::{ConfigError, OptionInfo, Values};

use super::maxwell::{self, Disposition};
use super::options::{CONFIG, ENV_CONFIG, ENV_CONFIG_PREFIX};
use super::properties;

/// A config file larger than this is not a config file (`/dev/zero`, a
/// log file given by mistake).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Maxwell's older names and the options they mean now.
const ALIASES: &[(&str, &str)] = &[
    ("kafka_partition_by", "producer_partition_by"),
    ("kafka_partition_columns", "producer_partition_columns"),
    (
        "kafka_partition_by_fallback",
        "producer_partition_by_fallback",
    ),
];

/// The values given, by option name, with their origins.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    values: BTreeMap<String, (String, String)>,
    warnings: Vec<String>,
    /// Maxwell's removed filter options, for the message that refuses them.
    legacy_filter: BTreeMap<String, String>,
}

impl Values for Sources {
    fn lookup(&self, name: &str) -> Option<(&str, &str)> {
        self.values.get(name).map(|(v, o)| (v.as_str(), o.as_str()))
    }

    fn with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        self.values
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }
}

impl Sources {
    /// What to tell the user once logging has started.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Records `name=value` from `origin`, after checking the name.
    fn set(
        &mut self,
        known: &Known<'_>,
        name: &str,
        value: String,
        origin: String,
    ) -> Result<(), ConfigError> {
        let name = match ALIASES.iter().find(|(old, _)| *old == name) {
            Some((old, new)) => {
                self.warnings.push(format!(
                    "{old} (from {origin}) is Maxwell's older name of {new}; read as {new}"
                ));
                *new
            }
            None => name,
        };
        match known.disposition(name) {
            Accepted::Declared => {
                self.values.insert(name.to_string(), (value, origin));
            }
            Accepted::Ignored(why) => self
                .warnings
                .push(format!("{name} (from {origin}) is ignored: {why}")),
            Accepted::LegacyFilter => {
                self.legacy_filter.insert(name.to_string(), value);
            }
            Accepted::Refused(why) => {
                return Err(ConfigError::Bad {
                    name: name.to_string(),
                    origin,
                    message: why,
                })
            }
            Accepted::NotYet => {
                return Err(ConfigError::Bad {
                    name: name.to_string(),
                    origin,
                    message: "Maxwell's option is not available in this version of sluice".into(),
                })
            }
            Accepted::Unknown => {
                return Err(ConfigError::Unknown {
                    name: name.to_string(),
                    origin,
                    hint: known.suggestion(name),
                })
            }
        }
        Ok(())
    }

    /// Maxwell's removed filter options are refused with the `filter` that
    /// says the same (spec §1.4).
    fn refuse_legacy_filter(&self, schema_database: &str) -> Result<(), ConfigError> {
        let Some(first) = self.legacy_filter.keys().next() else {
            return Ok(());
        };
        let get = |k: &str| self.legacy_filter.get(k).map(String::as_str);
        let legacy = sluice_pipeline::filter::LegacyOptions {
            include_dbs: get("include_dbs"),
            exclude_dbs: get("exclude_dbs"),
            include_tables: get("include_tables"),
            exclude_tables: get("exclude_tables"),
            blacklist_dbs: get("blacklist_dbs"),
            blacklist_tables: get("blacklist_tables"),
            include_column_values: get("include_column_values"),
        };
        let instead = match sluice_pipeline::Filter::from_legacy(&legacy, schema_database) {
            Ok(Some(f)) => format!("write filter={f} instead"),
            Ok(None) => "remove it".to_string(),
            Err(e) => format!("write the equivalent filter=… instead ({e})"),
        };
        Err(ConfigError::Bad {
            name: first.clone(),
            origin: "configuration".into(),
            message: format!("Maxwell removed this option in 1.37.1; {instead}"),
        })
    }
}

/// Which option names exist.
pub struct Known<'a> {
    pub options: &'a [&'static OptionInfo],
    /// `kafka.acks` and the like.
    pub passthrough: fn(&str) -> bool,
}

/// What a name is.
enum Accepted {
    Declared,
    Ignored(&'static str),
    LegacyFilter,
    Refused(String),
    /// A Maxwell option sluice does not have yet.
    NotYet,
    Unknown,
}

const LEGACY_FILTER_OPTIONS: &[&str] = &[
    "include_dbs",
    "exclude_dbs",
    "include_tables",
    "exclude_tables",
    "blacklist_dbs",
    "blacklist_tables",
    "include_column_values",
];

impl Known<'_> {
    fn disposition(&self, name: &str) -> Accepted {
        if self.options.iter().any(|o| o.name == name) {
            return Accepted::Declared;
        }
        if LEGACY_FILTER_OPTIONS.contains(&name) {
            return Accepted::LegacyFilter;
        }
        match maxwell::lookup(name) {
            // Java client settings librdkafka would refuse outright.
            Some(Disposition::Ignored { why }) => Accepted::Ignored(why),
            Some(Disposition::Refused { why_and_instead }) => {
                Accepted::Refused(why_and_instead.to_string())
            }
            Some(Disposition::OtherProducer { producer }) => Accepted::Refused(format!(
                "the {producer} producer is not supported; use producer={}",
                sluice_producers::registry::names()
            )),
            _ if (self.passthrough)(name) => Accepted::Declared,
            Some(Disposition::Implemented) => Accepted::NotYet,
            None => Accepted::Unknown,
        }
    }

    fn suggestion(&self, name: &str) -> String {
        let near = self
            .options
            .iter()
            .map(|o| (edit_distance(name, o.name), o.name))
            .min();
        match near {
            Some((d, n)) if d <= 3 => format!(" (did you mean '{n}'?)"),
            _ => String::new(),
        }
    }
}

/// What the command line asks for besides options.
pub enum Request {
    Run(Sources),
    Help,
    Version,
}

/// Reads the command line (without the program name), then the config file
/// and the environment it names; later sources win.
pub fn gather(
    args: &[String],
    env: &BTreeMap<String, String>,
    known: &Known<'_>,
) -> Result<Request, ConfigError> {
    let mut cli = Sources::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--help" || a == "-h" {
            return Ok(Request::Help);
        }
        if a == "--version" || a == "-V" {
            return Ok(Request::Version);
        }
        let Some(body) = a.strip_prefix("--") else {
            return Err(ConfigError::Usage(format!(
                "unexpected argument '{a}': options look like --name=value"
            )));
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => match args.get(i + 1) {
                Some(v) if !v.starts_with("--") => {
                    i += 1;
                    (body.to_string(), v.clone())
                }
                // A bare flag means true, as in Maxwell (--output_ddl).
                _ => (body.to_string(), "true".to_string()),
            },
        };
        cli.set(known, &name, value, "command line".into())?;
        i += 1;
    }
    let mut merged = Sources::default();
    if let Some((path, _)) = cli.lookup(CONFIG.name()) {
        let path = path.to_string();
        let text = read_config_file(&path)?;
        let entries = properties::parse(&text)
            .map_err(|e| ConfigError::Usage(format!("{path}:{}: {}", e.line, e.message)))?;
        for e in entries {
            merged.set(known, &e.key, e.value, format!("{path}:{}", e.line))?;
        }
    }
    let setting = |opt: sluice_core::Opt<String>, merged: &Sources| {
        cli.lookup(opt.name())
            .or_else(|| merged.lookup(opt.name()))
            .map(|(v, _)| v.to_string())
            .filter(|p| !p.is_empty())
    };
    if let Some(var) = setting(ENV_CONFIG, &merged) {
        read_env_config(&var, env, known, &mut merged)?;
    }
    if let Some(prefix) = setting(ENV_CONFIG_PREFIX, &merged) {
        for (k, v) in env {
            let Some(rest) = k.strip_prefix(&prefix) else {
                continue;
            };
            let name = rest.to_ascii_lowercase();
            let origin = format!("environment variable {k}");
            if matches!(known.disposition(&name), Accepted::Unknown) {
                merged.warnings.push(format!(
                    "environment variable {k} has the prefix {prefix} but names no option{}; ignored",
                    known.suggestion(&name)
                ));
                continue;
            }
            merged.set(known, &name, v.clone(), origin)?;
        }
    }
    merged.values.extend(cli.values);
    merged.warnings.extend(cli.warnings);
    merged.legacy_filter.extend(cli.legacy_filter);
    let schema_database = merged
        .lookup(super::options::SCHEMA_DATABASE.name())
        .map(|(v, _)| v.to_string())
        .unwrap_or_else(|| super::options::SCHEMA_DATABASE.info().default.to_string());
    merged.refuse_legacy_filter(&schema_database)?;
    Ok(Request::Run(merged))
}

fn read_config_file(path: &str) -> Result<String, ConfigError> {
    let fail = |message: String| ConfigError::File {
        path: path.to_string(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(fail(format!(
            "larger than {} KiB: not a config file",
            MAX_CONFIG_BYTES >> 10
        )));
    }
    String::from_utf8(bytes).map_err(|_| fail("not UTF-8 text".into()))
}

/// Maxwell's `env_config`: the named variable holds a JSON object of
/// options.
fn read_env_config(
    var: &str,
    env: &BTreeMap<String, String>,
    known: &Known<'_>,
    into: &mut Sources,
) -> Result<(), ConfigError> {
    let bad = |message: String| ConfigError::Bad {
        name: ENV_CONFIG.name().into(),
        origin: format!("environment variable {var}"),
        message,
    };
    let Some(text) = env.get(var) else {
        return Err(bad(format!("the environment variable {var} is not set")));
    };
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|e| bad(format!("not a JSON object of options: {e}")))?;
    for (k, v) in object {
        let value = match v {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => continue,
            other => other.to_string(),
        };
        into.set(
            known,
            &k,
            value,
            format!("environment variable {var} (env_config)"),
        )?;
    }
    Ok(())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}
