//! `producer=kafka`: Maxwell's options, and every `kafka.*` option passed to
//! librdkafka as is. The options are always known (a Maxwell configuration
//! parses in every build); the client itself is compiled with the cargo
//! feature `kafka`, and a build without it refuses `producer=kafka` while
//! reading the configuration, naming the feature.

#[cfg(feature = "kafka")]
mod client;
mod delivery;
#[cfg(feature = "kafka")]
mod security;

use std::sync::Arc;

use sluice_core::{declare_options, ConfigError, Opt, Section, Values};

use crate::refusal::Refusal;
use crate::registry::{ProducerConfig, Registration, Routing};
use crate::route::{KeyFormat, PartitionBy, PartitionHash, Partitioner};
use crate::{Producer, ProducerError, ProducerStats};

#[cfg(feature = "kafka")]
pub use client::KafkaProducer;

const SECTION: Section = Section::Producer("kafka");

declare_options! { OPTIONS;
    KAFKA_TOPIC: String = Opt::new("kafka_topic", SECTION, "maxwell",
        "Kafka topic; %{database}, %{table} and %{type} are replaced (kafka.* options go to librdkafka, e.g. kafka.bootstrap.servers)");
    DDL_KAFKA_TOPIC: String = Opt::new("ddl_kafka_topic", SECTION, "",
        "Kafka topic of DDL events (default: kafka_topic)");
    KAFKA_KEY_FORMAT: String = Opt::new("kafka_key_format", SECTION, "hash",
        "Kafka message key: hash ({\"database\",\"table\",\"pk.id\"}) | array ([database, table, [{id}]])");
    PRODUCER_PARTITION_BY: String = Opt::new("producer_partition_by", SECTION, "database",
        "what rows are partitioned by: database | table | primary_key | transaction_id | column | random");
    PRODUCER_PARTITION_COLUMNS: String = Opt::new("producer_partition_columns", SECTION, "",
        "comma-separated columns, with producer_partition_by=column");
    PRODUCER_PARTITION_BY_FALLBACK: String = Opt::new("producer_partition_by_fallback", SECTION, "database",
        "with producer_partition_by=column, for rows without those columns: database | table | primary_key | transaction_id | random");
    KAFKA_PARTITION_HASH: String = Opt::new("kafka_partition_hash", SECTION, "default",
        "partition hash: default (Java String.hashCode, as Maxwell) | murmur3 (seed 25342, as Maxwell)");
}

/// Options of this family go to librdkafka without the prefix.
const PASSTHROUGH: &str = "kafka.";

pub const REGISTRATION: Registration = Registration {
    name: "kafka",
    options: OPTIONS,
    passthrough: Some(PASSTHROUGH),
    configure: |values| Ok(Arc::new(KafkaOptions::from_options(values)?)),
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaOptions {
    pub topic: String,
    pub ddl_topic: String,
    pub key_format: KeyFormat,
    pub partitioner: Partitioner,
    /// What happens to a row the brokers refuse for good.
    pub refusal: Refusal,
    /// librdkafka properties (`bootstrap.servers`, …).
    pub client: Vec<(String, String)>,
    /// What was done with settings written for Maxwell's Java producer.
    pub warnings: Vec<String>,
}

impl KafkaOptions {
    pub fn from_options(values: &dyn Values) -> Result<Self, ConfigError> {
        if !cfg!(feature = "kafka") {
            return Err(crate::registry::PRODUCER.error(values,
                "this sluice was built without Kafka support (cargo feature `kafka`, part of the default build): build it with `cargo build --release` (not --no-default-features) or `--features kafka`"));
        }
        let client: Vec<(String, String)> = values
            .with_prefix(PASSTHROUGH)
            .into_iter()
            .map(|(k, v)| (k[PASSTHROUGH.len()..].to_string(), v))
            .collect();
        let delivery::Reconciled { client, warnings } = delivery::reconcile(client)?;
        if !client.iter().any(|(k, _)| k == "bootstrap.servers") {
            return Err(ConfigError::Bad {
                name: "kafka.bootstrap.servers".into(),
                origin: "default".into(),
                message: "producer=kafka needs --kafka.bootstrap.servers=host:port[,host:port...]"
                    .into(),
            });
        }
        let key_format = match KAFKA_KEY_FORMAT.get(values)?.as_str() {
            "hash" => KeyFormat::Hash,
            "array" => KeyFormat::Array,
            other => {
                return Err(
                    KAFKA_KEY_FORMAT.error(values, format!("'{other}' is not hash or array"))
                )
            }
        };
        let by = |opt: Opt<String>| -> Result<PartitionBy, ConfigError> {
            let v = opt.get(values)?;
            PartitionBy::parse(&v).ok_or_else(|| {
                opt.error(values, format!("'{v}' is not one of database, table, primary_key, transaction_id, column, random"))
            })
        };
        let partition_by = by(PRODUCER_PARTITION_BY)?;
        let fallback = by(PRODUCER_PARTITION_BY_FALLBACK)?;
        let columns: Vec<String> = PRODUCER_PARTITION_COLUMNS
            .get(values)?
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        if partition_by == PartitionBy::Column && columns.is_empty() {
            return Err(PRODUCER_PARTITION_COLUMNS.error(
                values,
                "producer_partition_by=column needs --producer_partition_columns=col[,col...]",
            ));
        }
        let hash = match KAFKA_PARTITION_HASH.get(values)?.as_str() {
            "default" => PartitionHash::Default,
            "murmur3" => PartitionHash::Murmur3,
            other => {
                return Err(KAFKA_PARTITION_HASH
                    .error(values, format!("'{other}' is not default or murmur3")))
            }
        };
        let topic = KAFKA_TOPIC.get(values)?;
        let ddl_topic = Some(DDL_KAFKA_TOPIC.get(values)?)
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| topic.clone());
        Ok(KafkaOptions {
            topic,
            ddl_topic,
            key_format,
            partitioner: Partitioner {
                by: partition_by,
                fallback,
                columns,
                hash,
            },
            refusal: Refusal::from_options(values)?,
            client,
            warnings,
        })
    }
}

impl ProducerConfig for KafkaOptions {
    fn name(&self) -> &'static str {
        "kafka"
    }

    #[cfg(feature = "kafka")]
    fn build(&self, stats: Arc<ProducerStats>) -> Result<Box<dyn Producer>, ProducerError> {
        Ok(Box::new(KafkaProducer::new(self.clone(), stats)?))
    }

    #[cfg(not(feature = "kafka"))]
    fn build(&self, _: Arc<ProducerStats>) -> Result<Box<dyn Producer>, ProducerError> {
        // from_options refuses this build already; kept for completeness.
        Err(ProducerError::Failed {
            producer: "kafka",
            message: "this sluice was built without Kafka support (cargo feature kafka)".into(),
        })
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    /// Keys and partitions need the primary key, and partitioning by
    /// column needs those columns' values.
    fn routing(&self) -> Routing {
        Routing {
            primary_key: true,
            partition_columns: self.partitioner.columns.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::Given;

    /// A build without the client refuses producer=kafka while the
    /// configuration is read (the daemon exits 2), naming the feature.
    #[cfg(not(feature = "kafka"))]
    #[test]
    fn a_build_without_kafka_refuses_it_naming_the_feature() {
        let given = Given::new(&[
            ("producer", "kafka"),
            ("kafka.bootstrap.servers", "127.0.0.1:9092"),
        ]);
        let e = KafkaOptions::from_options(&given).unwrap_err();
        assert!(matches!(e, ConfigError::Bad { .. }), "{e:?}");
        let e = e.to_string();
        assert!(
            e.contains("'producer'") && e.contains("feature `kafka`"),
            "{e}"
        );
    }

    #[cfg(feature = "kafka")]
    #[test]
    fn a_build_with_kafka_reads_its_options() {
        let given = Given::new(&[
            ("producer", "kafka"),
            ("kafka.bootstrap.servers", "127.0.0.1:9092"),
        ]);
        let o = KafkaOptions::from_options(&given).unwrap();
        assert_eq!(
            o.client,
            vec![(
                "bootstrap.servers".to_string(),
                "127.0.0.1:9092".to_string()
            )]
        );
    }
}
