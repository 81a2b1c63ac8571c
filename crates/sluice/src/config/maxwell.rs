//! What sluice does with each option of Maxwell 1.45 (spec
//! `maxwell-compat.md` §5.4), so that a Maxwell `config.properties` starts
//! unchanged or says exactly why not:
//!
//! - [`Disposition::Implemented`]: sluice has the option, or will have it
//!   (the spec's plan); [`NOT_YET_IN_SLUICE`] lists those it does not have
//!   yet, which must keep being refused until they are built.
//! - [`Disposition::Ignored`]: accepted with one warning, because it does
//!   not change the rows (launcher, JVM and metrics-reporting options).
//! - [`Disposition::Refused`]: a configuration error (exit 2): without it
//!   the output would change or be lost.

/// What sluice does with a Maxwell option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Implemented,
    /// Accepted with a warning saying `why` it does not matter.
    Ignored {
        why: &'static str,
    },
    /// Refused, saying why and what to do instead.
    Refused {
        why_and_instead: &'static str,
    },
    /// An option of a producer sluice does not have: refused, naming the
    /// producers it has.
    OtherProducer {
        producer: &'static str,
    },
}

use Disposition::{Ignored, Implemented, OtherProducer, Refused};

const HA_ZOOKEEPER: Disposition = Ignored {
    why: "sluice's high availability elects its leader through ZooKeeper (ha=true with zookeeper=host:port), not JGroups raft",
};
const DATADOG: Disposition = Ignored {
    why: "sluice does not push metrics to Datadog; it serves them in Prometheus format at /metrics on http_port (the Datadog agent can scrape it)",
};
const JVM_METRICS: Disposition = Ignored {
    why: "Maxwell's Dropwizard/JVM metrics reporting; sluice serves Prometheus metrics at /metrics on http_port",
};
const PUBSUB: Disposition = OtherProducer {
    producer: "Google Cloud Pub/Sub",
};
const BIGQUERY: Disposition = OtherProducer {
    producer: "BigQuery",
};
const LEGACY_FILTER: Disposition = Refused {
    why_and_instead:
        "removed in Maxwell 1.37.1: write the equivalent filter=… instead (sluice prints it)",
};
const KINESIS: Disposition = OtherProducer {
    producer: "Kinesis",
};
const SQS: Disposition = OtherProducer { producer: "SQS" };
const SNS: Disposition = OtherProducer { producer: "SNS" };
const REDIS_SENTINEL: Disposition = Refused {
    why_and_instead:
        "Redis Sentinel is not supported: set redis_host and redis_port to the Redis master",
};

/// Every option of Maxwell 1.45's daemon (`MaxwellConfig`), including the
/// older names it still reads and the file-only `kinesis_md5_keys`.
/// `kafka.*` and `custom_producer.*` are prefixes: see [`lookup`].
#[rustfmt::skip]
pub const MAXWELL_OPTIONS: &[(&str, Disposition)] = &[
    // General
    ("config", Implemented),
    ("env_config", Implemented),
    ("env_config_prefix", Implemented),
    ("log_level", Implemented),
    ("help", Implemented),
    ("daemon", Ignored { why: "sluice runs in the foreground; let the service manager (systemd, a container runtime) run it in the background" }),
    ("producer", Implemented),
    ("client_id", Implemented),
    ("custom_producer.factory", CUSTOM_PRODUCER),
    ("custom_health.factory", Ignored { why: "a JVM class for Maxwell's /healthcheck; sluice's /healthcheck reports its own state" }),
    // MySQL connections (§4)
    ("host", Implemented),
    ("port", Implemented),
    ("user", Implemented),
    ("password", Implemented),
    ("jdbc_options", Implemented),
    ("binlog_heartbeat", Ignored { why: "sluice always asks the server for heartbeats (binlog_heartbeat_period_ms, 5 s) and reconnects when none arrives for three periods" }),
    ("ssl", Implemented),
    ("replication_ssl", Implemented),
    ("schema_ssl", Implemented),
    ("schema_database", Implemented),
    ("replica_server_id", Implemented),
    ("replication_reconnection_retries", Implemented),
    ("replication_host", Implemented),
    ("replication_user", Implemented),
    ("replication_password", Implemented),
    ("replication_port", Implemented),
    ("replication_jdbc_options", Implemented),
    ("schema_host", Implemented),
    ("schema_user", Implemented),
    ("schema_password", Implemented),
    ("schema_port", Implemented),
    ("schema_jdbc_options", Implemented),
    ("max_schemas", Ignored { why: "Maxwell's schema-delta compaction; sluice keeps its schema history its own way" }),
    ("gtid_mode", Implemented),
    ("master_recovery", Refused { why_and_instead: "non-GTID master failover recovery is not supported; use gtid_mode=true to follow a failover (master_recovery=false changes nothing)" }),
    // Operation
    ("ha", Implemented),
    ("jgroups_config", HA_ZOOKEEPER),
    ("raft_member_id", HA_ZOOKEEPER),
    ("bootstrapper", Implemented),
    ("init_position", Implemented),
    ("replay", Implemented),
    ("ignore_producer_error", Implemented),
    ("recapture_schema", Implemented),
    ("buffer_memory_usage", Ignored { why: "sluice bounds the memory of a transaction with txn_buffer_bytes (16 MiB by default) and spills the rest to a temporary file" }),
    ("binlog_event_queue_size", Ignored { why: "sluice has no such queue between the binlog reader and the decoder (its buffers are bounded by size)" }),
    // Producers
    ("output_file", Implemented),
    ("kafka.bootstrap.servers", Implemented),
    ("kafka_topic", Implemented),
    ("ddl_kafka_topic", Implemented),
    ("kafka_key_format", Implemented),
    ("kafka_partition_hash", Implemented),
    ("kafka_version", Ignored { why: "librdkafka negotiates the protocol version with the brokers" }),
    ("kafka_partition_by", Implemented),
    ("kafka_partition_columns", Implemented),
    ("kafka_partition_by_fallback", Implemented),
    ("dead_letter_topic", Implemented),
    ("producer_partition_by", Implemented),
    ("producer_partition_columns", Implemented),
    ("producer_partition_by_fallback", Implemented),
    ("producer_ack_timeout", Ignored { why: "sluice's producers time out by themselves (kafka.message.timeout.ms for Kafka; a 15 s read deadline, reconnects and resends for the others) and never count an unacknowledged row as delivered" }),
    ("kinesis_stream", KINESIS),
    ("kinesis_md5_keys", KINESIS),
    ("sqs_queue_uri", SQS),
    ("sqs_service_endpoint", SQS),
    ("sqs_signing_region", SQS),
    ("sns_topic", SNS),
    ("sns_attrs", SNS),
    ("nats_url", Implemented),
    ("nats_subject", Implemented),
    ("bigquery_project_id", BIGQUERY),
    ("bigquery_dataset", BIGQUERY),
    ("bigquery_table", BIGQUERY),
    ("pubsub_project_id", PUBSUB),
    ("pubsub_topic", PUBSUB),
    ("ddl_pubsub_topic", PUBSUB),
    ("pubsub_request_bytes_threshold", PUBSUB),
    ("pubsub_message_count_batch_size", PUBSUB),
    ("pubsub_message_ordering_key", PUBSUB),
    ("pubsub_publish_delay_threshold", PUBSUB),
    ("pubsub_retry_delay", PUBSUB),
    ("pubsub_retry_delay_multiplier", PUBSUB),
    ("pubsub_max_retry_delay", PUBSUB),
    ("pubsub_initial_rpc_timeout", PUBSUB),
    ("pubsub_rpc_timeout_multiplier", PUBSUB),
    ("pubsub_max_rpc_timeout", PUBSUB),
    ("pubsub_total_timeout", PUBSUB),
    ("pubsub_emulator", PUBSUB),
    ("rabbitmq_user", Implemented),
    ("rabbitmq_pass", Implemented),
    ("rabbitmq_host", Implemented),
    ("rabbitmq_port", Implemented),
    ("rabbitmq_uri", Implemented),
    ("rabbitmq_handshake_timeout", Implemented),
    ("rabbitmq_virtual_host", Implemented),
    ("rabbitmq_exchange", Implemented),
    ("rabbitmq_exchange_type", Implemented),
    ("rabbitmq_exchange_durable", Implemented),
    ("rabbitmq_exchange_autodelete", Implemented),
    ("rabbitmq_routing_key_template", Implemented),
    ("rabbitmq_message_persistent", Implemented),
    ("rabbitmq_declare_exchange", Implemented),
    ("redis_host", Implemented),
    ("redis_port", Implemented),
    ("redis_auth", Implemented),
    ("redis_database", Implemented),
    ("redis_type", Implemented),
    ("redis_key", Implemented),
    ("redis_stream_json_key", Implemented),
    ("redis_sentinels", REDIS_SENTINEL),
    ("redis_sentinel_master_name", REDIS_SENTINEL),
    // Output (§3)
    ("output_binlog_position", Implemented),
    ("output_gtid_position", Implemented),
    ("output_commit_info", Implemented),
    ("output_xoffset", Implemented),
    ("output_nulls", Implemented),
    ("output_server_id", Implemented),
    ("output_thread_id", Implemented),
    ("output_schema_id", Implemented),
    ("output_row_query", Implemented),
    ("output_primary_keys", Implemented),
    ("output_primary_key_columns", Implemented),
    ("output_null_zerodates", Implemented),
    ("output_ddl", Implemented),
    ("output_push_timestamp", Implemented),
    ("output_naming_strategy", Implemented),
    ("row_query_max_length", Implemented),
    ("exclude_columns", Implemented),
    ("secret_key", Implemented),
    ("encrypt", Implemented),
    // Filtering (§1)
    ("filter", Implemented),
    ("ignore_missing_schema", Implemented),
    ("javascript", Refused { why_and_instead: "JavaScript filters (Nashorn) are not supported: rows would be output unfiltered and unchanged; express the row selection with filter=… (tables and column values)" }),
    ("include_dbs", LEGACY_FILTER),
    ("exclude_dbs", LEGACY_FILTER),
    ("include_tables", LEGACY_FILTER),
    ("exclude_tables", LEGACY_FILTER),
    ("blacklist_dbs", LEGACY_FILTER),
    ("blacklist_tables", LEGACY_FILTER),
    ("include_column_values", LEGACY_FILTER),
    // Metrics and HTTP (§5.2, §5.3)
    ("metrics_prefix", Implemented),
    ("metrics_type", Ignored { why: "sluice always serves Prometheus metrics at /metrics (and /ping, /healthcheck) on http_port" }),
    ("metrics_slf4j_interval", JVM_METRICS),
    ("metrics_jvm", JVM_METRICS),
    ("metrics_age_slo", JVM_METRICS),
    ("metrics_datadog_type", DATADOG),
    ("metrics_datadog_tags", DATADOG),
    ("metrics_datadog_interval", DATADOG),
    ("metrics_datadog_apikey", DATADOG),
    ("metrics_datadog_site", DATADOG),
    ("metrics_datadog_host", DATADOG),
    ("metrics_datadog_port", DATADOG),
    ("http_port", Implemented),
    ("http_path_prefix", Implemented),
    ("http_bind_address", Implemented),
    ("http_diagnostic", Ignored { why: "sluice always serves /diagnostic (and /status, which reports the binlog connection and the producer)" }),
    ("http_diagnostic_timeout", Ignored { why: "sluice's /diagnostic reads the node's state and makes no round trip of its own" }),
    ("http_config", Implemented),
    // Vitess source (newer Maxwell builds)
    ("vitess", Refused { why_and_instead: "reading from Vitess (VStream) is not supported; sluice reads the MySQL/MariaDB binlog" }),
];

/// Implemented options sluice does not have yet: until they are built, a
/// configuration that sets one is refused (spec §5.4). A test checks that
/// every other `Implemented` name is declared.
pub const NOT_YET_IN_SLUICE: &[&str] = &[];

/// Options of Maxwell's `maxwell-bootstrap` utility (spec §2.2), for a
/// `sluice bootstrap` subcommand.
pub const BOOTSTRAP_UTILITY_OPTIONS: &[(&str, Disposition)] = &[
    ("database", Implemented),
    ("table", Implemented),
    ("where", Implemented),
    ("client_id", Implemented),
    ("comment", Implemented),
    ("abort", Implemented),
    ("monitor", Implemented),
    ("log_level", Implemented),
    ("host", Implemented),
    ("user", Implemented),
    ("password", Implemented),
    ("port", Implemented),
    ("replication_host", Implemented),
    ("replication_user", Implemented),
    ("replication_password", Implemented),
    ("replication_port", Implemented),
    ("schema_database", Implemented),
    ("config", Implemented),
    ("env_config", Implemented),
];

const TRUSTSTORE: Disposition = Ignored {
    why: "a Java keystore (JKS); librdkafka reads PEM files: set kafka.ssl.ca.location (and kafka.ssl.certificate.location, kafka.ssl.key.location for a client certificate)",
};

/// `kafka.*` settings of the Java Kafka client that librdkafka does not
/// know (spec §8): passing them on would make librdkafka refuse the whole
/// configuration. Keys without the `kafka.` prefix; a key ending in `.` is
/// a prefix.
#[rustfmt::skip]
pub const KAFKA_JAVA_CLIENT_ONLY: &[(&str, Disposition)] = &[
    ("metadata.fetch.timeout.ms", Ignored { why: "a Java client setting (removed in Kafka 0.9 clients); librdkafka has no equivalent" }),
    ("key.serializer", Ignored { why: "sluice writes keys and values as JSON bytes itself" }),
    ("value.serializer", Ignored { why: "sluice writes keys and values as JSON bytes itself" }),
    ("schema.registry.url", Ignored { why: "Maxwell's output is JSON, not Avro: no schema registry is used" }),
    ("max.block.ms", Ignored { why: "a Java client setting; sluice applies back-pressure itself" }),
    ("buffer.memory", Ignored { why: "a Java client setting; the librdkafka equivalent is kafka.queue.buffering.max.kbytes" }),
    ("ssl.truststore.", TRUSTSTORE),
    ("ssl.keystore.", TRUSTSTORE),
];

const PASSTHROUGH: Disposition = Implemented;
const CUSTOM_PRODUCER: Disposition = OtherProducer {
    producer: "custom (JVM class)",
};

/// The disposition of a Kafka client setting (key after `kafka.`).
pub fn kafka_client_disposition(key: &str) -> &'static Disposition {
    KAFKA_JAVA_CLIENT_ONLY
        .iter()
        .find(|(k, _)| {
            if k.ends_with('.') {
                key.starts_with(k)
            } else {
                key == *k
            }
        })
        .map(|(_, d)| d)
        .unwrap_or(&PASSTHROUGH)
}

/// What sluice does with Maxwell option `name`; `None` for a name Maxwell
/// does not have either.
pub fn lookup(name: &str) -> Option<&'static Disposition> {
    if let Some((_, d)) = MAXWELL_OPTIONS.iter().find(|(n, _)| *n == name) {
        return Some(d);
    }
    if let Some(key) = name.strip_prefix("kafka.").filter(|k| !k.is_empty()) {
        return Some(kafka_client_disposition(key));
    }
    if name.starts_with("custom_producer.") || name.starts_with("custom_producer_") {
        return Some(&CUSTOM_PRODUCER);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn no_duplicates(table: &[(&str, Disposition)]) {
        let mut seen = HashSet::new();
        for (name, _) in table {
            assert!(seen.insert(*name), "{name} is listed twice");
        }
    }

    #[test]
    fn tables_have_no_duplicates() {
        no_duplicates(MAXWELL_OPTIONS);
        no_duplicates(BOOTSTRAP_UTILITY_OPTIONS);
        no_duplicates(KAFKA_JAVA_CLIENT_ONLY);
        let mut seen = HashSet::new();
        for name in NOT_YET_IN_SLUICE {
            assert!(seen.insert(*name), "{name} is listed twice");
        }
    }

    #[test]
    fn not_yet_built_options_are_classified_implemented() {
        for name in NOT_YET_IN_SLUICE {
            assert_eq!(lookup(name), Some(&Implemented), "{name}");
        }
    }

    /// The 80 names spec §5.4 found missing from sluice (families expanded),
    /// plus the older filter options: each has a disposition.
    #[test]
    fn every_name_missing_from_sluice_has_a_disposition() {
        #[rustfmt::skip]
        let missing = [
            "bigquery_project_id", "bigquery_dataset", "bigquery_table",
            "binlog_event_queue_size", "binlog_heartbeat", "bootstrapper", "buffer_memory_usage",
            "custom_health.factory", "custom_producer.factory", "daemon", "ddl_pubsub_topic",
            "encrypt", "env_config", "filter", "http_config", "http_diagnostic",
            "http_diagnostic_timeout", "ignore_missing_schema", "javascript", "jdbc_options",
            "jgroups_config", "kafka_version", "kinesis_stream", "master_recovery", "max_schemas",
            "metrics_age_slo", "metrics_datadog_type", "metrics_datadog_tags",
            "metrics_datadog_interval", "metrics_datadog_apikey", "metrics_datadog_site",
            "metrics_datadog_host", "metrics_datadog_port", "metrics_jvm",
            "metrics_slf4j_interval", "metrics_type", "output_naming_strategy", "output_schema_id",
            "producer_ack_timeout", "pubsub_project_id", "pubsub_topic",
            "pubsub_request_bytes_threshold", "pubsub_message_count_batch_size",
            "pubsub_message_ordering_key", "pubsub_publish_delay_threshold", "pubsub_retry_delay",
            "pubsub_retry_delay_multiplier", "pubsub_max_retry_delay",
            "pubsub_initial_rpc_timeout", "pubsub_rpc_timeout_multiplier",
            "pubsub_max_rpc_timeout", "pubsub_total_timeout", "pubsub_emulator",
            "raft_member_id", "recapture_schema", "redis_sentinel_master_name", "redis_sentinels",
            "replay", "replication_host", "replication_user", "replication_password",
            "replication_port", "replication_ssl", "replication_jdbc_options",
            "row_query_max_length", "schema_host", "schema_port", "schema_user",
            "schema_password", "schema_ssl", "schema_jdbc_options", "secret_key", "sns_topic",
            "sns_attrs", "sqs_queue_uri", "sqs_service_endpoint", "sqs_signing_region", "ssl",
            "kinesis_md5_keys", "include_dbs", "exclude_dbs", "include_tables", "exclude_tables",
            "blacklist_dbs", "blacklist_tables", "include_column_values",
        ];
        for name in missing {
            assert!(lookup(name).is_some(), "{name} has no disposition");
        }
    }

    #[test]
    fn dispositions_of_typical_options() {
        assert_eq!(lookup("kafka_topic"), Some(&Implemented));
        assert_eq!(lookup("kafka.acks"), Some(&Implemented));
        assert_eq!(lookup("kafka.bootstrap.servers"), Some(&Implemented));
        assert!(matches!(
            lookup("kafka.key.serializer"),
            Some(Ignored { .. })
        ));
        assert!(matches!(
            lookup("kafka.ssl.truststore.location"),
            Some(Ignored { why }) if why.contains("ssl.ca.location")
        ));
        assert!(matches!(lookup("metrics_type"), Some(Ignored { .. })));
        assert!(matches!(lookup("javascript"), Some(Refused { .. })));
        assert!(matches!(
            lookup("include_dbs"),
            Some(Refused { why_and_instead }) if why_and_instead.contains("filter")
        ));
        assert!(matches!(
            lookup("custom_producer.foo"),
            Some(OtherProducer { .. })
        ));
        assert_eq!(lookup("no_such_option"), None);
        assert_eq!(lookup("kafka."), None);
    }
}
