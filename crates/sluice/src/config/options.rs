//! The daemon's own options, each declared once (the producers declare
//! theirs in their modules). Names are Maxwell's where Maxwell has one.

use sluice_core::{declare_options, Opt, Section};

use Section::{Connection, Filter, General, HighAvailability, Output, Replication, Schema};

declare_options! { OPTIONS;
    CONFIG: String = Opt::new("config", General, "",
        "path to a config.properties file (Java properties: key=value lines)");
    ENV_CONFIG_PREFIX: String = Opt::new("env_config_prefix", General, "",
        "read options from environment variables with this prefix, e.g. SLUICE_ reads SLUICE_HOST");
    ENV_CONFIG: String = Opt::new("env_config", General, "",
        "read options from this environment variable, which holds a JSON object of them (Maxwell's env_config)");
    CLIENT_ID: String = Opt::new("client_id", General, "maxwell",
        "name of this sluice instance (positions are kept per client_id)");

    HOST: String = Opt::new("host", Connection, "localhost", "MySQL/MariaDB host");
    PORT: u16 = Opt::new("port", Connection, "3306", "MySQL/MariaDB port");
    USER: String = Opt::new("user", Connection, "maxwell",
        "user (needs REPLICATION SLAVE, REPLICATION CLIENT, SELECT)");
    PASSWORD: String = Opt::new("password", Connection, "", "password").secret();
    MYSQL_CONNECT_TIMEOUT_MS: u64 = Opt::new("mysql_connect_timeout_ms", Connection, "10000",
        "timeout for connecting and logging in to MySQL");
    MYSQL_QUERY_TIMEOUT_MS: u64 = Opt::new("mysql_query_timeout_ms", Connection, "60000",
        "longest wait for one answer from MySQL at startup or for an identity check (a lock such as FLUSH TABLES WITH READ LOCK, a stalled server); then sluice stops with the query named");
    SCHEMA_DATABASE: String = Opt::new("schema_database", Connection, "maxwell",
        "database where sluice keeps its state (positions, schema history, heartbeats)");

    REPLICA_SERVER_ID: u32 = Opt::new("replica_server_id", Replication, "6379",
        "server id sluice registers with; unique among the server's replicas");
    INIT_POSITION: String = Opt::new("init_position", Replication, "",
        "start at FILE:POSITION instead of the server's current position (when no position is stored)");
    STOP_POSITION: String = Opt::new("stop_position", Replication, "",
        "exit 0 once every event before FILE:POSITION is written (replays, benchmarks)");
    REPLAY: bool = Opt::new("replay", Replication, "false",
        "replay from init_position: store no position, write no heartbeat and no schema history (to re-send a range of the binlog)");
    GTID_MODE: bool = Opt::new("gtid_mode", Replication, "false",
        "MariaDB: resume by GTID instead of file:offset (survives a failover to another server that has the same GTIDs)");
    BINLOG_HEARTBEAT_PERIOD_MS: u64 = Opt::new("binlog_heartbeat_period_ms", Replication, "5000",
        "heartbeat period asked of the server; no data for 3 periods means a dead connection");
    REPLICATION_RECONNECTION_RETRIES: u32 = Opt::new("replication_reconnection_retries", Replication, "0",
        "reconnect attempts after the binlog connection is lost before giving up; 0 = never give up");
    REPLICATION_RECONNECT_MAX_BACKOFF_MS: u64 = Opt::new("replication_reconnect_max_backoff_ms", Replication, "10000",
        "longest wait between reconnect attempts (exponential backoff with jitter)");
    HEARTBEAT_INTERVAL_MS: u64 = Opt::new("heartbeat_interval_ms", Replication, "1000",
        "how often a heartbeat is written into the binlog (schema_database.heartbeats) to confirm the position and measure lag; 0 = never");
    TXN_BUFFER_BYTES: usize = Opt::new("txn_buffer_bytes", Replication, "16777216",
        "bytes of one open transaction kept in memory before spilling to a temporary file");
    WORKER_THREADS: usize = Opt::new("worker_threads", Replication, "0",
        "threads that decode rows and render their JSON, output kept in binlog order; 0 = one per available core; 1 = on the processor thread, no pool");
    TMP_DIR: String = Opt::new("tmp_dir", Replication, "",
        "directory for transaction spill files (default: the system temp dir)");

    OUTPUT_BINLOG_POSITION: bool = Opt::new("output_binlog_position", Output, "false",
        "add \"position\": \"FILE:OFFSET\" (the commit's end) to each row");
    OUTPUT_GTID_POSITION: bool = Opt::new("output_gtid_position", Output, "false",
        "add \"gtid\" of the transaction to each row");
    OUTPUT_COMMIT_INFO: bool = Opt::new("output_commit_info", Output, "true",
        "add \"xid\" and \"commit\": true (last row of a transaction)");
    OUTPUT_XOFFSET: bool = Opt::new("output_xoffset", Output, "false",
        "add \"xoffset\": row index within its transaction");
    OUTPUT_NULLS: bool = Opt::new("output_nulls", Output, "true", "include columns whose value is NULL");
    OUTPUT_SERVER_ID: bool = Opt::new("output_server_id", Output, "false",
        "add \"server_id\" of the originating server");
    OUTPUT_THREAD_ID: bool = Opt::new("output_thread_id", Output, "false",
        "add \"thread_id\" (where the binlog records one)");
    OUTPUT_ROW_QUERY: bool = Opt::new("output_row_query", Output, "false",
        "add \"query\": the statement that changed the row (needs binlog_annotate_row_events / binlog_rows_query_log_events)");
    OUTPUT_PRIMARY_KEYS: bool = Opt::new("output_primary_keys", Output, "false",
        "add \"primary_key\": [values]");
    OUTPUT_PRIMARY_KEY_COLUMNS: bool = Opt::new("output_primary_key_columns", Output, "false",
        "add \"primary_key_columns\": [names]");
    OUTPUT_NULL_ZERODATES: bool = Opt::new("output_null_zerodates", Output, "false",
        "render zero dates (0000-00-00...) as null");
    OUTPUT_PUSH_TIMESTAMP: bool = Opt::new("output_push_timestamp", Output, "false",
        "add \"_push_timestamp\": when the row was handed to the producer");
    OUTPUT_DDL: bool = Opt::new("output_ddl", Output, "false",
        "also emit DDL events (database-create, table-alter, …) in Maxwell's format");
    OUTPUT_SCHEMA_ID: bool = Opt::new("output_schema_id", Output, "false",
        "add \"schema_id\": the id (in schema_history) of the schema the row was decoded with; it changes with every DDL");
    OUTPUT_NAMING_STRATEGY: String = Opt::new("output_naming_strategy", Output, "",
        "underscore_to_camelcase: column names and the row's own fields in camelCase (user_id -> userId, server_id -> serverId), as Maxwell");
    ROW_QUERY_MAX_LENGTH: usize = Opt::new("row_query_max_length", Output, "0",
        "cut the query field (output_row_query) to this many characters; 0 = the whole statement");
    EXCLUDE_COLUMNS: String = Opt::new("exclude_columns", Output, "",
        "comma-separated column names (or /regex/) left out of the output");

    RECAPTURE_SCHEMA: bool = Opt::new("recapture_schema", Schema, "false",
        "capture the server's current catalog at start and record it as the schema at the start position (a way out of a schema history that went wrong)");
    DDL_PARSE_ERRORS: String = Opt::new("ddl_parse_errors", Schema, "fail",
        "a DDL statement sluice cannot follow: fail (stop, naming the statement and position) | skip (log, count in a metric, re-capture the tables it names)");

    FILTER: String = Opt::new("filter", Filter, "",
        "Maxwell's filter rules: include|exclude|blacklist: db.table[.column=value], comma-separated; names may be /regex/ (Java syntax) or *; the last matching rule wins");
    IGNORE_MISSING_SCHEMA: bool = Opt::new("ignore_missing_schema", Filter, "false",
        "Maxwell's option; sluice always skips excluded tables whose schema is missing");

    ENCRYPT: String = Opt::new("encrypt", Output, "none",
        "none | data (encrypt the data and old fields) | all (encrypt the whole row), AES-CBC with secret_key, as Maxwell");
    SECRET_KEY: String = Opt::new("secret_key", Output, "",
        "the key of encrypt: 16, 24 or 32 bytes (AES-128, -192, -256)").secret();

    HA: bool = Opt::new("ha", HighAvailability, "false",
        "high availability: run as one of several nodes; the leader elected through ZooKeeper reads and produces");
    ZOOKEEPER: String = Opt::new("zookeeper", HighAvailability, "",
        "ZooKeeper connect string host:port[,host:port...] (needed with --ha)");
    ZOOKEEPER_ROOT: String = Opt::new("zookeeper_root", HighAvailability, "/sluice",
        "ZooKeeper path under which each client_id elects its leader");
    SESSION_TIMEOUT_MS: u64 = Opt::new("session_timeout_ms", HighAvailability, "6000",
        "ZooKeeper session timeout asked for; a leader steps down after a quarter of the negotiated one without ZooKeeper");
    CONNECTION_TIMEOUT_MS: u64 = Opt::new("connection_timeout_ms", HighAvailability, "5000",
        "timeout for connecting to ZooKeeper");
    BASE_SLEEP_TIME_MS: u64 = Opt::new("base_sleep_time_ms", HighAvailability, "500",
        "first wait before retrying a failed election (doubling)");
    MAX_RETRIES: u32 = Opt::new("max_retries", HighAvailability, "5",
        "doublings of the election retry wait (retries themselves never stop)");
}
