//! Configuration with Maxwell's option names, from (lowest to highest
//! precedence) defaults, `--config FILE` (Java properties), environment
//! variables named `<env_config_prefix><OPTION>` and the command line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use sluice_binlog::BinlogPosition;
use sluice_pipeline::{ColumnPattern, OutputConfig};

pub struct OptionSpec {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

const fn opt(name: &'static str, default: &'static str, help: &'static str) -> OptionSpec {
    OptionSpec {
        name,
        default,
        help,
    }
}

/// Every option sluice accepts. The names are Maxwell's where Maxwell has one.
pub const OPTIONS: &[OptionSpec] = &[
    opt("config", "", "path to a config.properties file (key=value lines)"),
    opt("env_config_prefix", "", "read options from environment variables with this prefix, e.g. SLUICE_ reads SLUICE_HOST"),
    opt("host", "localhost", "MySQL/MariaDB host"),
    opt("port", "3306", "MySQL/MariaDB port"),
    opt("user", "maxwell", "user (needs REPLICATION SLAVE, REPLICATION CLIENT, SELECT)"),
    opt("password", "", "password"),
    opt("schema_database", "maxwell", "database where sluice keeps its state"),
    opt("client_id", "maxwell", "name of this sluice instance (positions are kept per client_id)"),
    opt("replica_server_id", "6379", "server id sluice registers with; unique among the server's replicas"),
    opt("producer", "stdout", "where rows go: stdout | file | kafka | redis | rabbitmq | nats"),
    opt("output_file", "", "file to append to, with producer=file"),
    opt("init_position", "", "start at FILE:POSITION instead of the server's current position"),
    opt("stop_position", "", "exit 0 once every event before FILE:POSITION is written (replays, benchmarks)"),
    opt("output_binlog_position", "false", "add \"position\": \"FILE:OFFSET\" (the commit's end) to each row"),
    opt("output_gtid_position", "false", "add \"gtid\" of the transaction to each row"),
    opt("output_commit_info", "true", "add \"xid\" and \"commit\": true (last row of a transaction)"),
    opt("output_xoffset", "false", "add \"xoffset\": row index within its transaction"),
    opt("output_nulls", "true", "include columns whose value is NULL"),
    opt("output_server_id", "false", "add \"server_id\" of the originating server"),
    opt("output_thread_id", "false", "add \"thread_id\" (where the binlog records one)"),
    opt("output_row_query", "false", "add \"query\": the statement that changed the row (needs binlog_annotate_row_events / binlog_rows_query_log_events)"),
    opt("output_primary_keys", "false", "add \"primary_key\": [values]"),
    opt("output_primary_key_columns", "false", "add \"primary_key_columns\": [names]"),
    opt("output_null_zerodates", "false", "render zero dates (0000-00-00...) as null"),
    opt("output_push_timestamp", "false", "add \"_push_timestamp\": when the row was handed to the producer"),
    opt("output_ddl", "false", "also emit DDL events (database-create, table-alter, …) in Maxwell's format"),
    opt("ddl_parse_errors", "fail", "a DDL statement sluice cannot follow: fail (stop, naming the statement and position) | skip (log, count in a metric, re-capture the tables it names)"),
    opt("kafka_topic", "maxwell", "Kafka topic; %{database}, %{table} and %{type} are replaced (kafka.* options go to librdkafka, e.g. kafka.bootstrap.servers)"),
    opt("ddl_kafka_topic", "", "Kafka topic of DDL events (default: kafka_topic)"),
    opt("kafka_key_format", "hash", "Kafka message key: hash ({\"database\",\"table\",\"pk.id\"}) | array ([database, table, [{id}]])"),
    opt("producer_partition_by", "database", "what rows are partitioned by: database | table | primary_key | transaction_id | column | random"),
    opt("producer_partition_columns", "", "comma-separated columns, with producer_partition_by=column"),
    opt("producer_partition_by_fallback", "database", "with producer_partition_by=column, for rows without those columns: database | table | primary_key | transaction_id | random"),
    opt("kafka_partition_hash", "default", "partition hash: default (Java String.hashCode, as Maxwell) | murmur3 (seed 25342, as Maxwell)"),
    opt("dead_letter_topic", "", "where rows the broker refuses for good (e.g. too large) go instead, as a skeleton with the primary key and the reason: a Kafka topic, Redis key, NATS subject or RabbitMQ routing key; without it (and without ignore_producer_error) sluice stops"),
    opt("ignore_producer_error", "false", "true: a row the broker refuses for good is logged, counted (producer_dropped_total) and skipped; false (unlike Maxwell's default): sluice stops"),
    opt("redis_host", "localhost", "Redis host, with producer=redis"),
    opt("redis_port", "6379", "Redis port"),
    opt("redis_auth", "", "Redis password (AUTH)"),
    opt("redis_database", "0", "Redis database number (SELECT)"),
    opt("redis_key", "maxwell", "Redis key or channel; %{database}, %{table} and %{type} are replaced"),
    opt("redis_type", "pubsub", "pubsub (PUBLISH) | xadd (a stream entry) | lpush | rpush"),
    opt("redis_stream_json_key", "message", "field of the stream entry holding the JSON, with redis_type=xadd"),
    opt("rabbitmq_host", "localhost", "RabbitMQ host, with producer=rabbitmq"),
    opt("rabbitmq_port", "5672", "RabbitMQ port"),
    opt("rabbitmq_user", "guest", "RabbitMQ user"),
    opt("rabbitmq_pass", "guest", "RabbitMQ password"),
    opt("rabbitmq_virtual_host", "/", "RabbitMQ virtual host"),
    opt("rabbitmq_uri", "", "amqp://user:pass@host:port/vhost; overrides host, port, user, pass and virtual host"),
    opt("rabbitmq_handshake_timeout", "10000", "RabbitMQ connection handshake timeout, ms"),
    opt("rabbitmq_exchange", "maxwell", "exchange rows are published to"),
    opt("rabbitmq_exchange_type", "fanout", "type of the exchange when sluice declares it: fanout | direct | topic | headers"),
    opt("rabbitmq_exchange_durable", "false", "declare the exchange durable"),
    opt("rabbitmq_exchange_autodelete", "false", "declare the exchange auto-delete"),
    opt("rabbitmq_routing_key_template", "%db%.%table%", "routing key; %db% and %table% are replaced"),
    opt("rabbitmq_message_persistent", "false", "publish persistent messages (delivery mode 2)"),
    opt("rabbitmq_mandatory", "false", "publish mandatory: a row the exchange routes to no queue is returned and refused (stop, dead letter or drop) instead of discarded by the broker (Maxwell: false)"),
    opt("rabbitmq_declare_exchange", "true", "declare the exchange at connect (false: it must exist)"),
    opt("rabbitmq_use_ssl", "false", "TLS to RabbitMQ (not supported yet: true is refused)"),
    opt("nats_url", "nats://localhost:4222", "NATS server(s), with producer=nats: nats://[user:pass@|token@]host:port, comma-separated (tried in turn)"),
    opt("nats_subject", "%{database}.%{table}", "NATS subject; %{database}, %{table} and %{type} are replaced"),
    opt("nats_jetstream", "false", "true: publish to JetStream and count a row as delivered only when its stream acknowledges it; false: core NATS (Maxwell's), delivered once the server has it"),
    opt("exclude_columns", "", "comma-separated column names (or /regex/) left out of the output"),
    opt("binlog_heartbeat_period_ms", "5000", "heartbeat period asked of the server; no data for 3 periods means a dead connection"),
    opt("replication_reconnection_retries", "0", "reconnect attempts after the binlog connection is lost before giving up; 0 = never give up"),
    opt("replication_reconnect_max_backoff_ms", "10000", "longest wait between reconnect attempts (exponential backoff with jitter)"),
    opt("mysql_connect_timeout_ms", "10000", "timeout for connecting and logging in to MySQL"),
    opt("txn_buffer_bytes", "16777216", "bytes of one open transaction kept in memory before spilling to a temporary file"),
    opt("tmp_dir", "", "directory for transaction spill files (default: the system temp dir)"),
    opt("gtid_mode", "false", "MariaDB: resume by GTID instead of file:offset (survives a failover to another server that has the same GTIDs)"),
    opt("heartbeat_interval_ms", "1000", "how often a heartbeat is written into the binlog (schema_database.heartbeats) to confirm the position and measure lag; 0 = never"),
    opt("http_port", "8080", "port of the HTTP endpoint (/ping /healthcheck /leader /status /metrics) every node serves; 0 = any free port"),
    opt("http_bind_address", "127.0.0.1", "address the HTTP endpoint binds to (0.0.0.0 for all)"),
    opt("http_path_prefix", "/", "path prefix of the HTTP endpoints"),
    opt("metrics_prefix", "sluice", "prefix of the Prometheus metric names (MaxwellMetrics gives Maxwell's names where they exist)"),
    opt("ha", "false", "high availability: run as one of several nodes; the leader elected through ZooKeeper reads and produces"),
    opt("zookeeper", "", "ZooKeeper connect string host:port[,host:port...] (needed with --ha)"),
    opt("zookeeper_root", "/sluice", "ZooKeeper path under which each client_id elects its leader"),
    opt("session_timeout_ms", "6000", "ZooKeeper session timeout asked for; a leader steps down after a quarter of the negotiated one without ZooKeeper"),
    opt("connection_timeout_ms", "5000", "timeout for connecting to ZooKeeper"),
    opt("base_sleep_time_ms", "500", "first wait before retrying a failed election (doubling)"),
    opt("max_retries", "5", "doublings of the election retry wait (retries themselves never stop)"),
    opt("log_level", "info", "error | warn | info | debug | trace"),
];

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
    #[error("cannot read config file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub schema_database: String,
    pub client_id: String,
    pub replica_server_id: u32,
    pub producer: Producer,
    pub init_position: Option<BinlogPosition>,
    pub stop_position: Option<BinlogPosition>,
    pub output: OutputConfig,
    pub heartbeat: Duration,
    pub reconnect_retries: u32,
    pub reconnect_max_backoff: Duration,
    pub connect_timeout: Duration,
    pub txn_buffer_bytes: usize,
    pub tmp_dir: Option<PathBuf>,
    pub gtid_mode: bool,
    /// `ddl_parse_errors=skip`.
    pub skip_bad_ddl: bool,
    /// None: no heartbeats are written.
    pub heartbeat_interval: Option<Duration>,
    pub http_port: u16,
    pub http_bind_address: String,
    pub http_path_prefix: String,
    pub metrics_prefix: String,
    /// Some with --ha.
    pub ha: Option<HaOptions>,
    pub log_level: String,
}

#[derive(Debug, Clone)]
pub struct HaOptions {
    pub zookeeper: String,
    pub root: String,
    pub session_timeout: Duration,
    pub connection_timeout: Duration,
    pub base_sleep: Duration,
    pub max_retries: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Producer {
    Stdout,
    File(PathBuf),
    Kafka(KafkaConfig),
    Redis(sluice_sinks::redis::RedisOptions),
    RabbitMq(sluice_sinks::rabbitmq::RabbitOptions),
    Nats(sluice_sinks::nats::NatsOptions),
}

/// `producer=kafka`: Maxwell's options, and every `kafka.*` option passed
/// to librdkafka as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    pub topic: String,
    pub ddl_topic: String,
    pub key_format: sluice_sinks::route::KeyFormat,
    pub partition_by: sluice_sinks::route::PartitionBy,
    pub partition_by_fallback: sluice_sinks::route::PartitionBy,
    pub partition_columns: Vec<String>,
    pub partition_hash: sluice_sinks::route::PartitionHash,
    pub refusal: sluice_sinks::acked::Refusal,
    /// `kafka.bootstrap.servers=…` → (`bootstrap.servers`, …).
    pub client: Vec<(String, String)>,
}

pub enum Parsed {
    Run(Box<Config>),
    Help,
    Version,
}

/// `kafka.*` options go to the Kafka client as they are.
fn is_passthrough(name: &str) -> bool {
    name.strip_prefix("kafka.")
        .is_some_and(|rest| !rest.is_empty())
}

fn spec(name: &str) -> Option<&'static OptionSpec> {
    OPTIONS.iter().find(|o| o.name == name)
}

fn suggestion(name: &str) -> String {
    let near = OPTIONS
        .iter()
        .map(|o| (edit_distance(name, o.name), o.name))
        .min();
    match near {
        Some((d, n)) if d <= 3 => format!(" (did you mean '{n}'?)"),
        _ => String::new(),
    }
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

/// Raw values with where each came from, for error messages.
#[derive(Default)]
struct Raw {
    values: BTreeMap<String, (String, String)>,
}

impl Raw {
    fn set(&mut self, name: &str, value: String, origin: String) -> Result<(), ConfigError> {
        if spec(name).is_none() && !is_passthrough(name) {
            return Err(ConfigError::Unknown {
                name: name.to_string(),
                origin,
                hint: suggestion(name),
            });
        }
        self.values.insert(name.to_string(), (value, origin));
        Ok(())
    }
}

fn parse_properties(text: &str, path: &str, raw: &mut Raw) -> Result<(), ConfigError> {
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .or_else(|| line.split_once(':'))
            .ok_or_else(|| {
                ConfigError::Usage(format!(
                    "{path}:{}: expected key=value, found '{line}'",
                    n + 1
                ))
            })?;
        raw.set(k.trim(), v.trim().to_string(), format!("{path}:{}", n + 1))?;
    }
    Ok(())
}

/// Parses the command line (without the program name) and the sources it names.
pub fn parse(args: &[String], env: &BTreeMap<String, String>) -> Result<Parsed, ConfigError> {
    let mut cli = Raw::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--help" || a == "-h" {
            return Ok(Parsed::Help);
        }
        if a == "--version" || a == "-V" {
            return Ok(Parsed::Version);
        }
        let Some(body) = a.strip_prefix("--") else {
            return Err(ConfigError::Usage(format!(
                "unexpected argument '{a}': options look like --name=value"
            )));
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => {
                let n = body.to_string();
                match args.get(i + 1) {
                    Some(v) if !v.starts_with("--") => {
                        i += 1;
                        (n, v.clone())
                    }
                    // A bare flag means true, as in Maxwell (--output_ddl).
                    _ => (n, "true".to_string()),
                }
            }
        };
        cli.set(&name, value, "command line".into())?;
        i += 1;
    }
    let mut merged = Raw::default();
    let config_path = cli.values.get("config").map(|(v, _)| v.clone());
    if let Some(path) = &config_path {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::File {
            path: path.clone(),
            source,
        })?;
        parse_properties(&text, path, &mut merged)?;
    }
    let prefix = cli
        .values
        .get("env_config_prefix")
        .or(merged.values.get("env_config_prefix"))
        .map(|(v, _)| v.clone())
        .filter(|p| !p.is_empty());
    if let Some(prefix) = prefix {
        for (k, v) in env {
            if let Some(rest) = k.strip_prefix(&prefix) {
                let name = rest.to_ascii_lowercase();
                if spec(&name).is_some() {
                    merged.set(&name, v.clone(), format!("environment variable {k}"))?;
                } else {
                    tracing::warn!(variable = %k, "environment variable has the config prefix but names no option; ignored");
                }
            }
        }
    }
    merged.values.extend(cli.values);
    build(&merged).map(|c| Parsed::Run(Box::new(c)))
}

struct Get<'a>(&'a Raw);

impl Get<'_> {
    fn str(&self, name: &'static str) -> (String, String) {
        match self.0.values.get(name) {
            Some((v, o)) => (v.clone(), o.clone()),
            None => (
                spec(name).map(|s| s.default).unwrap_or("").to_string(),
                "default".into(),
            ),
        }
    }

    fn bad(name: &str, origin: String, message: String) -> ConfigError {
        ConfigError::Bad {
            name: name.to_string(),
            origin,
            message,
        }
    }

    fn bool(&self, name: &'static str) -> Result<bool, ConfigError> {
        let (v, o) = self.str(name);
        match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(Self::bad(
                name,
                o,
                format!("'{v}' is not a boolean; use true or false"),
            )),
        }
    }

    fn num<T: std::str::FromStr>(&self, name: &'static str, what: &str) -> Result<T, ConfigError> {
        let (v, o) = self.str(name);
        v.trim()
            .parse::<T>()
            .map_err(|_| Self::bad(name, o, format!("'{v}' is not {what}")))
    }
}

fn kafka_config(g: &Get) -> Result<KafkaConfig, ConfigError> {
    use sluice_sinks::route::{KeyFormat, PartitionBy, PartitionHash};
    let client: Vec<(String, String)> =
        g.0.values
            .iter()
            .filter(|(k, _)| is_passthrough(k))
            .map(|(k, (v, _))| (k["kafka.".len()..].to_string(), v.clone()))
            .collect();
    if !client.iter().any(|(k, _)| k == "bootstrap.servers") {
        return Err(Get::bad(
            "kafka.bootstrap.servers",
            "default".into(),
            "producer=kafka needs --kafka.bootstrap.servers=host:port[,host:port...]".into(),
        ));
    }
    let (kf, kf_origin) = g.str("kafka_key_format");
    let key_format = match kf.as_str() {
        "hash" => KeyFormat::Hash,
        "array" => KeyFormat::Array,
        other => {
            return Err(Get::bad(
                "kafka_key_format",
                kf_origin,
                format!("'{other}' is not hash or array"),
            ))
        }
    };
    let by = |name: &'static str| -> Result<PartitionBy, ConfigError> {
        let (v, o) = g.str(name);
        PartitionBy::parse(&v).ok_or_else(|| {
            Get::bad(name, o, format!("'{v}' is not one of database, table, primary_key, transaction_id, column, random"))
        })
    };
    let partition_by = by("producer_partition_by")?;
    let partition_by_fallback = by("producer_partition_by_fallback")?;
    let partition_columns: Vec<String> = g
        .str("producer_partition_columns")
        .0
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    if partition_by == PartitionBy::Column && partition_columns.is_empty() {
        return Err(Get::bad(
            "producer_partition_columns",
            "default".into(),
            "producer_partition_by=column needs --producer_partition_columns=col[,col...]".into(),
        ));
    }
    let (h, h_origin) = g.str("kafka_partition_hash");
    let partition_hash = match h.as_str() {
        "default" => PartitionHash::Default,
        "murmur3" => PartitionHash::Murmur3,
        other => {
            return Err(Get::bad(
                "kafka_partition_hash",
                h_origin,
                format!("'{other}' is not default or murmur3"),
            ))
        }
    };
    let topic = g.str("kafka_topic").0;
    let ddl_topic = Some(g.str("ddl_kafka_topic").0)
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| topic.clone());
    Ok(KafkaConfig {
        topic,
        ddl_topic,
        key_format,
        partition_by,
        partition_by_fallback,
        partition_columns,
        partition_hash,
        refusal: refusal(g)?,
        client,
    })
}

/// What happens to a row the broker refuses for good: `dead_letter_topic`,
/// `ignore_producer_error`, or stop.
fn refusal(g: &Get) -> Result<sluice_sinks::acked::Refusal, ConfigError> {
    use sluice_sinks::acked::Refusal;
    let dead_letter = g.str("dead_letter_topic").0;
    let ignore = g.bool("ignore_producer_error")?;
    Ok(match (dead_letter.is_empty(), ignore) {
        (false, true) => {
            return Err(Get::bad(
                "ignore_producer_error",
                g.str("ignore_producer_error").1,
                "cannot be combined with --dead_letter_topic: refused rows either go to the dead-letter destination or are dropped; choose one".into(),
            ))
        }
        (false, false) => Refusal::DeadLetter(dead_letter),
        (true, true) => Refusal::Drop,
        (true, false) => Refusal::Stop,
    })
}

fn rabbitmq_config(g: &Get) -> Result<sluice_sinks::rabbitmq::RabbitOptions, ConfigError> {
    if g.bool("rabbitmq_use_ssl")? {
        return Err(Get::bad(
            "rabbitmq_use_ssl",
            g.str("rabbitmq_use_ssl").1,
            "TLS to RabbitMQ is not supported yet; set it to false (e.g. reach the broker through a local TLS tunnel)".into(),
        ));
    }
    let ms: u64 = g.num("rabbitmq_handshake_timeout", "a number of milliseconds")?;
    let (kind, kind_origin) = g.str("rabbitmq_exchange_type");
    if !["fanout", "direct", "topic", "headers"].contains(&kind.as_str()) && !kind.starts_with("x-")
    {
        return Err(Get::bad(
            "rabbitmq_exchange_type",
            kind_origin,
            format!("'{kind}' is not fanout, direct, topic, headers or a plugin's x-… type"),
        ));
    }
    let mut o = sluice_sinks::rabbitmq::RabbitOptions {
        host: g.str("rabbitmq_host").0,
        port: g.num("rabbitmq_port", "a port number")?,
        user: g.str("rabbitmq_user").0,
        password: g.str("rabbitmq_pass").0,
        virtual_host: g.str("rabbitmq_virtual_host").0,
        exchange: g.str("rabbitmq_exchange").0,
        exchange_type: kind,
        durable: g.bool("rabbitmq_exchange_durable")?,
        auto_delete: g.bool("rabbitmq_exchange_autodelete")?,
        declare: g.bool("rabbitmq_declare_exchange")?,
        routing_key: g.str("rabbitmq_routing_key_template").0,
        persistent: g.bool("rabbitmq_message_persistent")?,
        mandatory: g.bool("rabbitmq_mandatory")?,
        handshake_timeout: Duration::from_millis(ms.max(1)),
        refusal: refusal(g)?,
    };
    let (uri, uri_origin) = g.str("rabbitmq_uri");
    if !uri.is_empty() {
        sluice_sinks::rabbitmq::apply_uri(&mut o, &uri)
            .map_err(|m| Get::bad("rabbitmq_uri", uri_origin, format!("'{uri}': {m}")))?;
    }
    Ok(o)
}

fn nats_config(g: &Get) -> Result<sluice_sinks::nats::NatsOptions, ConfigError> {
    let (url, url_origin) = g.str("nats_url");
    let servers = sluice_sinks::nats::NatsServer::parse_list(&url)
        .map_err(|m| Get::bad("nats_url", url_origin, format!("'{url}': {m}")))?;
    Ok(sluice_sinks::nats::NatsOptions {
        servers,
        subject: g.str("nats_subject").0,
        jetstream: g.bool("nats_jetstream")?,
        refusal: refusal(g)?,
    })
}

fn build(raw: &Raw) -> Result<Config, ConfigError> {
    let g = Get(raw);
    let port: u16 = g.num("port", "a port number (1-65535)")?;
    if port == 0 {
        return Err(Get::bad(
            "port",
            g.str("port").1,
            "0 is not a port number (1-65535)".into(),
        ));
    }
    let replica_server_id: u32 = g.num("replica_server_id", "a server id (1-4294967295)")?;
    if replica_server_id == 0 {
        return Err(Get::bad(
            "replica_server_id",
            g.str("replica_server_id").1,
            "0 is not allowed; pick an id no other replica of the server uses".into(),
        ));
    }
    let (producer_name, producer_origin) = g.str("producer");
    let producer = match producer_name.as_str() {
        "stdout" => Producer::Stdout,
        "file" => {
            let (f, _) = g.str("output_file");
            if f.is_empty() {
                return Err(Get::bad(
                    "output_file",
                    "default".into(),
                    "producer=file needs --output_file=PATH".into(),
                ));
            }
            Producer::File(PathBuf::from(f))
        }
        "kafka" => Producer::Kafka(kafka_config(&g)?),
        "redis" => {
            let (t, t_origin) = g.str("redis_type");
            let kind = sluice_sinks::redis::RedisType::parse(&t).ok_or_else(|| {
                Get::bad("redis_type", t_origin, format!("'{t}' is not pubsub, xadd, lpush or rpush"))
            })?;
            Producer::Redis(sluice_sinks::redis::RedisOptions {
                host: g.str("redis_host").0,
                port: g.num("redis_port", "a port number")?,
                auth: Some(g.str("redis_auth").0).filter(|a| !a.is_empty()),
                database: g.num("redis_database", "a database number")?,
                key: g.str("redis_key").0,
                kind,
                stream_json_key: g.str("redis_stream_json_key").0,
                refusal: refusal(&g)?,
            })
        }
        "rabbitmq" => Producer::RabbitMq(rabbitmq_config(&g)?),
        "nats" => Producer::Nats(nats_config(&g)?),
        "kinesis" | "sqs" | "sns" | "pubsub"
        | "bigquery" | "profiler" | "none" => {
            return Err(Get::bad(
                "producer",
                producer_origin,
                format!(
                "producer '{producer_name}' is not available in this version; use stdout, file, kafka, redis, rabbitmq or nats"
            ),
            ))
        }
        other => {
            return Err(Get::bad(
                "producer",
                producer_origin,
                format!("'{other}' is not a producer; use stdout, file, kafka, redis, rabbitmq or nats"),
            ))
        }
    };
    let (ip, ip_origin) = g.str("init_position");
    let init_position = if ip.is_empty() {
        None
    } else {
        Some(BinlogPosition::parse(&ip).map_err(|m| Get::bad("init_position", ip_origin, m))?)
    };
    let (sp, sp_origin) = g.str("stop_position");
    let stop_position = if sp.is_empty() {
        None
    } else {
        Some(BinlogPosition::parse(&sp).map_err(|m| Get::bad("stop_position", sp_origin, m))?)
    };
    let (ex, ex_origin) = g.str("exclude_columns");
    let exclude_columns = ex
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            ColumnPattern::parse(s).map_err(|m| Get::bad("exclude_columns", ex_origin.clone(), m))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let output = OutputConfig {
        binlog_position: g.bool("output_binlog_position")?,
        gtid_position: g.bool("output_gtid_position")?,
        commit_info: g.bool("output_commit_info")?,
        xoffset: g.bool("output_xoffset")?,
        nulls: g.bool("output_nulls")?,
        server_id: g.bool("output_server_id")?,
        thread_id: g.bool("output_thread_id")?,
        row_query: g.bool("output_row_query")?,
        primary_keys: g.bool("output_primary_keys")?,
        primary_key_columns: g.bool("output_primary_key_columns")?,
        null_zero_dates: g.bool("output_null_zerodates")?,
        push_timestamp: g.bool("output_push_timestamp")?,
        exclude_columns,
        ddl: g.bool("output_ddl")?,
        // Keys and partitions, and dead letters (which carry the key).
        routing: matches!(producer, Producer::Kafka(_)) || !g.str("dead_letter_topic").0.is_empty(),
        partition_columns: match &producer {
            Producer::Kafka(k) => k.partition_columns.clone(),
            _ => Vec::new(),
        },
    };
    let (ddl_errors, ddl_errors_origin) = g.str("ddl_parse_errors");
    let skip_bad_ddl = match ddl_errors.to_ascii_lowercase().as_str() {
        "fail" => false,
        "skip" => true,
        other => {
            return Err(Get::bad(
                "ddl_parse_errors",
                ddl_errors_origin,
                format!("'{other}' is not fail or skip"),
            ))
        }
    };
    let heartbeat_ms: u64 = g.num("binlog_heartbeat_period_ms", "a number of milliseconds")?;
    if !(100..=4_294_967).contains(&heartbeat_ms) {
        return Err(Get::bad(
            "binlog_heartbeat_period_ms",
            g.str("binlog_heartbeat_period_ms").1,
            "must be between 100 and 4294967 ms".into(),
        ));
    }
    let connect_ms: u64 = g.num("mysql_connect_timeout_ms", "a number of milliseconds")?;
    let reconnect_retries: u32 = g.num(
        "replication_reconnection_retries",
        "a number of attempts (0 = unlimited)",
    )?;
    let backoff_ms: u64 = g.num(
        "replication_reconnect_max_backoff_ms",
        "a number of milliseconds",
    )?;
    let txn_buffer_bytes: usize = g.num("txn_buffer_bytes", "a number of bytes")?;
    if txn_buffer_bytes < 4096 {
        return Err(Get::bad(
            "txn_buffer_bytes",
            g.str("txn_buffer_bytes").1,
            "must be at least 4096".into(),
        ));
    }
    let (tmp, _) = g.str("tmp_dir");
    let heartbeat_interval_ms: u64 = g.num("heartbeat_interval_ms", "a number of milliseconds")?;
    if heartbeat_interval_ms != 0 && heartbeat_interval_ms < 100 {
        return Err(Get::bad(
            "heartbeat_interval_ms",
            g.str("heartbeat_interval_ms").1,
            "must be 0 (off) or at least 100".into(),
        ));
    }
    let http_port: u16 = g.num("http_port", "a port number (0-65535)")?;
    let (http_path_prefix, hp_origin) = g.str("http_path_prefix");
    if !http_path_prefix.starts_with('/') {
        return Err(Get::bad(
            "http_path_prefix",
            hp_origin,
            format!("'{http_path_prefix}' must start with /"),
        ));
    }
    let ha = if g.bool("ha")? {
        let (zookeeper, zo) = g.str("zookeeper");
        if zookeeper.trim().is_empty() {
            return Err(Get::bad(
                "zookeeper",
                zo,
                "--ha needs --zookeeper=host:port[,host:port...]".into(),
            ));
        }
        let (root, ro) = g.str("zookeeper_root");
        if !root.starts_with('/') || root.len() < 2 || root.ends_with('/') {
            return Err(Get::bad(
                "zookeeper_root",
                ro,
                format!("'{root}' must be an absolute path like /sluice"),
            ));
        }
        let session_ms: u64 = g.num("session_timeout_ms", "a number of milliseconds")?;
        Some(HaOptions {
            zookeeper,
            root,
            session_timeout: Duration::from_millis(session_ms.max(1000)),
            connection_timeout: Duration::from_millis(
                g.num::<u64>("connection_timeout_ms", "a number of milliseconds")?
                    .max(100),
            ),
            base_sleep: Duration::from_millis(
                g.num::<u64>("base_sleep_time_ms", "a number of milliseconds")?
                    .max(10),
            ),
            max_retries: g.num("max_retries", "a number")?,
        })
    } else {
        None
    };
    let (metrics_prefix, mp_origin) = g.str("metrics_prefix");
    if !metrics_prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        || metrics_prefix.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(Get::bad(
            "metrics_prefix",
            mp_origin,
            format!("'{metrics_prefix}' is not a Prometheus name: letters, digits and _ only, not starting with a digit"),
        ));
    }
    let (log_level, lo) = g.str("log_level");
    if !matches!(
        log_level.as_str(),
        "error" | "warn" | "info" | "debug" | "trace"
    ) {
        return Err(Get::bad(
            "log_level",
            lo,
            format!("'{log_level}' is not one of error, warn, info, debug, trace"),
        ));
    }
    Ok(Config {
        host: g.str("host").0,
        port,
        user: g.str("user").0,
        password: g.str("password").0,
        schema_database: g.str("schema_database").0,
        client_id: g.str("client_id").0,
        replica_server_id,
        producer,
        init_position,
        stop_position,
        output,
        heartbeat: Duration::from_millis(heartbeat_ms),
        reconnect_retries,
        reconnect_max_backoff: Duration::from_millis(backoff_ms.max(200)),
        connect_timeout: Duration::from_millis(connect_ms.max(100)),
        txn_buffer_bytes,
        tmp_dir: if tmp.is_empty() {
            None
        } else {
            Some(PathBuf::from(tmp))
        },
        gtid_mode: g.bool("gtid_mode")?,
        skip_bad_ddl,
        heartbeat_interval: (heartbeat_interval_ms > 0)
            .then(|| Duration::from_millis(heartbeat_interval_ms)),
        http_port,
        http_bind_address: g.str("http_bind_address").0,
        http_path_prefix,
        metrics_prefix,
        ha,
        log_level,
    })
}

pub fn help() -> String {
    let mut s = String::from(
        "sluice: stream MySQL/MariaDB row changes as Maxwell-format JSON\n\n\
         usage: sluice [--option=value | --option value]...\n\n\
         Options (the same names work in --config files and, with env_config_prefix, in the environment):\n",
    );
    for o in OPTIONS {
        let d = if o.default.is_empty() {
            String::new()
        } else {
            format!(" [default: {}]", o.default)
        };
        s.push_str(&format!("  --{:<28} {}{}\n", o.name, o.help, d));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn run(v: &[&str]) -> Result<Config, ConfigError> {
        match parse(&args(v), &BTreeMap::new())? {
            Parsed::Run(c) => Ok(*c),
            _ => panic!("not a run"),
        }
    }

    #[test]
    fn defaults_match_maxwell() {
        let c = run(&[]).unwrap();
        assert_eq!(c.host, "localhost");
        assert_eq!(c.port, 3306);
        assert_eq!(c.user, "maxwell");
        assert_eq!(c.client_id, "maxwell");
        assert_eq!(c.replica_server_id, 6379);
        assert_eq!(c.producer, Producer::Stdout);
        assert!(c.output.commit_info && c.output.nulls && !c.output.xoffset);
    }

    #[test]
    fn both_argument_forms() {
        let c = run(&[
            "--host",
            "db1",
            "--port=3307",
            "--output_xoffset",
            "--producer=file",
            "--output_file",
            "/tmp/x",
        ])
        .unwrap();
        assert_eq!(c.host, "db1");
        assert_eq!(c.port, 3307);
        assert!(c.output.xoffset);
        assert_eq!(c.producer, Producer::File("/tmp/x".into()));
    }

    #[test]
    fn unknown_and_bad_values_name_the_option() {
        let e = run(&["--hots=x"]).unwrap_err().to_string();
        assert!(
            e.contains("'hots'") && e.contains("did you mean 'host'"),
            "{e}"
        );
        let e = run(&["--port=abc"]).unwrap_err().to_string();
        assert!(e.contains("'port'") && e.contains("abc"), "{e}");
        let e = run(&["--output_nulls=maybe"]).unwrap_err().to_string();
        assert!(
            e.contains("output_nulls") && e.contains("true or false"),
            "{e}"
        );
        let e = run(&["--producer=file"]).unwrap_err().to_string();
        assert!(e.contains("output_file"), "{e}");
        let e = run(&["--init_position=nope"]).unwrap_err().to_string();
        assert!(e.contains("init_position"), "{e}");
        let e = run(&["--exclude_columns=/(/"]).unwrap_err().to_string();
        assert!(e.contains("exclude_columns"), "{e}");
    }

    #[test]
    fn file_env_and_cli_precedence() {
        let dir = std::env::temp_dir().join(format!("sluice-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("config.properties");
        std::fs::write(
            &f,
            "# comment\nhost=fromfile\nport=1111\nuser=u1\nenv_config_prefix=SLX_\n",
        )
        .unwrap();
        let mut env = BTreeMap::new();
        env.insert("SLX_PORT".to_string(), "2222".to_string());
        env.insert("SLX_USER".to_string(), "fromenv".to_string());
        env.insert("OTHER".to_string(), "x".to_string());
        let p = parse(
            &args(&["--config", f.to_str().unwrap(), "--user=fromcli"]),
            &env,
        )
        .unwrap();
        let Parsed::Run(c) = p else { panic!() };
        assert_eq!(c.host, "fromfile");
        assert_eq!(c.port, 2222);
        assert_eq!(c.user, "fromcli");
        std::fs::write(&f, "hostt=x\n").unwrap();
        let e = parse(&args(&["--config", f.to_str().unwrap()]), &env)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("hostt") && e.contains("config.properties:1"),
            "{e}"
        );
        let mut env = BTreeMap::new();
        env.insert("SLX_PORT".to_string(), "zz".to_string());
        let e = parse(&args(&["--env_config_prefix=SLX_"]), &env)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("SLX_PORT"), "{e}");
    }

    #[test]
    fn ha_needs_a_zookeeper_and_an_absolute_root() {
        let e = run(&["--ha"]).unwrap_err().to_string();
        assert!(e.contains("'zookeeper'") && e.contains("--ha needs"), "{e}");
        let e = run(&["--ha", "--zookeeper=z:2181", "--zookeeper_root=x"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("zookeeper_root"), "{e}");
        let c = run(&["--ha", "--zookeeper=z1:2181,z2:2181"]).unwrap();
        let ha = c.ha.unwrap();
        assert_eq!(ha.zookeeper, "z1:2181,z2:2181");
        assert_eq!(ha.root, "/sluice");
        assert!(run(&[]).unwrap().ha.is_none());
        let e = run(&["--http_path_prefix=x"]).unwrap_err().to_string();
        assert!(e.contains("http_path_prefix"), "{e}");
    }

    #[test]
    fn help_lists_every_option_with_defaults() {
        let h = help();
        for o in OPTIONS {
            assert!(h.contains(&format!("--{}", o.name)), "{}", o.name);
        }
        assert!(h.contains("[default: 6379]"));
    }
}
