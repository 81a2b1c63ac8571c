//! Every producer, registered once: its `producer=` name, its options, and
//! how its options become a configuration that builds it. Adding a producer
//! is a module of its own plus one line in [`PRODUCERS`].

use std::fmt::Debug;
use std::sync::Arc;

use sluice_core::{declare_options, ConfigError, Opt, OptionInfo, Section, Values};

use crate::{Producer, ProducerError, ProducerStats};

declare_options! { OPTIONS;
    PRODUCER: String = Opt::new("producer", Section::Producers, "stdout",
        "where rows go: stdout | file | kafka | redis | rabbitmq | nats");
}

/// A producer's configuration, read from its options: builds the producer
/// (again on every rebuild: SIGHUP, unconfirmed deliveries).
pub trait ProducerConfig: Debug + Send + Sync {
    /// The `producer=` name.
    fn name(&self) -> &'static str;
    fn build(&self, stats: Arc<ProducerStats>) -> Result<Box<dyn Producer>, ProducerError>;
    /// What the pipeline must add to every message for this producer.
    fn routing(&self) -> Routing {
        Routing::default()
    }
    /// What the configuration should say once logging has started (options
    /// translated or dropped).
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// What a producer needs of each message beyond its JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    /// The primary key (message keys, partitions, dead letters).
    pub primary_key: bool,
    /// Values of these columns (`producer_partition_by=column`).
    pub partition_columns: Vec<String>,
}

/// Reads a producer's options into its configuration.
pub type Configure = fn(&dyn Values) -> Result<Arc<dyn ProducerConfig>, ConfigError>;

pub struct Registration {
    pub name: &'static str,
    pub options: &'static [OptionInfo],
    /// A family of options passed to the client as they are (`kafka.`).
    pub passthrough: Option<&'static str>,
    pub configure: Configure,
}

/// Every producer sluice has.
pub const PRODUCERS: &[Registration] = &[
    crate::stdout::REGISTRATION,
    crate::file::REGISTRATION,
    crate::kafka::REGISTRATION,
    crate::redis::REGISTRATION,
    crate::rabbitmq::REGISTRATION,
    crate::nats::REGISTRATION,
];

/// Maxwell's producers that sluice does not have.
const NOT_AVAILABLE: &[&str] = &[
    "kinesis", "sqs", "sns", "pubsub", "bigquery", "pulsar", "profiler", "none", "custom",
];

/// Options every producer shares, then each producer's own.
pub fn all_options() -> impl Iterator<Item = &'static OptionInfo> {
    OPTIONS
        .iter()
        .chain(crate::refusal::OPTIONS)
        .chain(PRODUCERS.iter().flat_map(|p| p.options))
}

/// Whether `name` belongs to a pass-through family (`kafka.acks`).
pub fn is_passthrough(name: &str) -> bool {
    PRODUCERS
        .iter()
        .filter_map(|p| p.passthrough)
        .any(|prefix| {
            name.strip_prefix(prefix)
                .is_some_and(|rest| !rest.is_empty())
        })
}

/// The producers this build has: `kafka, redis, …, file or stdout`.
pub fn names() -> String {
    let names: Vec<&str> = PRODUCERS.iter().map(|p| p.name).collect();
    match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// The configuration of the producer `producer=` names.
pub fn configure(values: &dyn Values) -> Result<Arc<dyn ProducerConfig>, ConfigError> {
    let name = PRODUCER.get(values)?;
    if let Some(p) = PRODUCERS.iter().find(|p| p.name == name) {
        return (p.configure)(values);
    }
    let why = if NOT_AVAILABLE.contains(&name.as_str()) {
        format!("producer '{name}' is not available in sluice")
    } else {
        format!("'{name}' is not a producer")
    };
    Err(PRODUCER.error(values, format!("{why}; use {}", names())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_option_is_declared_once_and_belongs_to_its_section() {
        let mut seen = HashSet::new();
        for o in all_options() {
            assert!(seen.insert(o.name), "'{}' is declared twice", o.name);
        }
        for p in PRODUCERS {
            for o in p.options {
                assert_eq!(o.section, Section::Producer(p.name), "{}", o.name);
            }
        }
    }
}
