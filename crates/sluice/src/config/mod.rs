//! The configuration: Maxwell's option names, read from the command line, a
//! config file and the environment ([`sources`]), each option declared once
//! ([`options`] and the producers' modules) and read through its typed
//! declaration. A bad value stops sluice before anything connects, naming
//! the option, where it was written and what to write instead.

mod help;
pub mod maxwell;
pub mod options;
pub mod properties;
pub mod servers;
pub(crate) mod sources;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sluice_binlog::BinlogPosition;
pub use sluice_core::ConfigError;
use sluice_core::{OptionInfo, Values};
use sluice_pipeline::{ColumnPattern, OutputConfig};
use sluice_producers::{registry, ProducerConfig};

use crate::http::HttpOptions;
use crate::logging::LogOptions;

pub use help::help;
use options::*;
pub use servers::{MysqlServer, Servers};
pub use sources::Sources;

#[derive(Debug, Clone)]
pub struct Config {
    /// The MySQL servers: state, replication, schema (often one).
    pub servers: Servers,
    pub schema_database: String,
    pub client_id: String,
    pub replica_server_id: u32,
    pub producer: Arc<dyn ProducerConfig>,
    pub init_position: Option<BinlogPosition>,
    pub stop_position: Option<BinlogPosition>,
    pub output: OutputConfig,
    /// `filter` (and Maxwell's system tables, always left out).
    pub filter: Option<sluice_pipeline::Filter>,
    /// `encrypt` with `secret_key`.
    pub encryptor: Option<sluice_pipeline::Encryptor>,
    /// `replay`: no position, heartbeat or schema history is written.
    pub replay: bool,
    /// `recapture_schema`: the current catalog becomes the schema at start.
    pub recapture_schema: bool,
    /// `binlog_files`: read these instead of a server's stream.
    pub file_source: Option<crate::file_source::FileSource>,
    /// Heartbeat period asked of the server (`binlog_heartbeat_period_ms`).
    pub heartbeat: Duration,
    pub reconnect_retries: u32,
    pub reconnect_max_backoff: Duration,
    pub txn_buffer_bytes: usize,
    /// Threads rendering rows (`worker_threads`, 0 resolved to the cores).
    pub worker_threads: usize,
    pub tmp_dir: Option<PathBuf>,
    pub gtid_mode: bool,
    /// `ddl_parse_errors=skip`.
    pub skip_bad_ddl: bool,
    /// None: no heartbeats are written into the binlog.
    pub heartbeat_interval: Option<Duration>,
    pub http: HttpOptions,
    /// Some with --ha.
    pub ha: Option<HaOptions>,
    pub log: LogOptions,
    /// Said once logging has started: options accepted but ignored, and
    /// the like.
    pub warnings: Vec<String>,
    pub bootstrap: crate::bootstrap::BootstrapOptions,
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

pub enum Parsed {
    Run(Box<Config>),
    Help,
    Version,
}

/// Every option sluice knows: its own, then the producers'.
pub fn all_options() -> Vec<&'static OptionInfo> {
    OPTIONS
        .iter()
        .chain(servers::OPTIONS)
        .chain(crate::file_source::OPTIONS)
        .chain(crate::logging::OPTIONS)
        .chain(crate::http::OPTIONS)
        .chain(crate::bootstrap::OPTIONS)
        .chain(registry::all_options())
        .collect()
}

/// Parses the command line (without the program name) and the sources it
/// names.
pub fn parse(args: &[String], env: &BTreeMap<String, String>) -> Result<Parsed, ConfigError> {
    let options = all_options();
    let known = sources::Known {
        options: &options,
        passthrough: registry::is_passthrough,
    };
    match sources::gather(args, env, &known)? {
        sources::Request::Help => Ok(Parsed::Help),
        sources::Request::Version => Ok(Parsed::Version),
        sources::Request::Run(values) => {
            let warnings = values.warnings().to_vec();
            build(&values, warnings).map(|c| Parsed::Run(Box::new(c)))
        }
    }
}

fn position(
    opt: sluice_core::Opt<String>,
    v: &dyn Values,
) -> Result<Option<BinlogPosition>, ConfigError> {
    let text = opt.get(v)?;
    if text.is_empty() {
        return Ok(None);
    }
    let p = BinlogPosition::parse(&text).map_err(|m| opt.error(v, m))?;
    if p.offset > u64::from(u32::MAX) {
        // Never clamped: the replication protocol and Maxwell's positions
        // table carry 32-bit offsets.
        return Err(opt.error(
            v,
            format!(
                "offset {} is above 4294967295: binlog offsets are 32-bit numbers in the replication protocol and in the positions table",
                p.offset
            ),
        ));
    }
    Ok(Some(p))
}

/// A spill file is needed in the middle of a large transaction: a
/// directory that cannot take one must stop sluice at start, not then.
fn check_tmp_dir(dir: &Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("does not exist".into()),
        Err(e) => return Err(format!("cannot be read ({e})")),
        Ok(m) if !m.is_dir() => return Err("is not a directory".into()),
        Ok(_) => {}
    }
    tempfile::tempfile_in(dir)
        .map(drop)
        .map_err(|e| format!("does not take a spill file ({e})"))
}

fn millis(opt: sluice_core::Opt<u64>, v: &dyn Values) -> Result<Duration, ConfigError> {
    opt.get(v).map(Duration::from_millis)
}

fn build(v: &dyn Values, mut warnings: Vec<String>) -> Result<Config, ConfigError> {
    let servers = Servers::from_options(v, &mut warnings)?;
    let replica_server_id = REPLICA_SERVER_ID.get(v)?;
    if replica_server_id == 0 {
        return Err(REPLICA_SERVER_ID.error(
            v,
            "0 is not allowed; pick an id no other replica of the server uses",
        ));
    }
    let producer = registry::configure(v)?;
    warnings.extend(producer.warnings());
    let exclude_columns = EXCLUDE_COLUMNS
        .get(v)?
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| ColumnPattern::parse(s).map_err(|m| EXCLUDE_COLUMNS.error(v, m)))
        .collect::<Result<Vec<_>, _>>()?;
    let routing = producer.routing();
    let output = OutputConfig {
        binlog_position: OUTPUT_BINLOG_POSITION.get(v)?,
        gtid_position: OUTPUT_GTID_POSITION.get(v)?,
        commit_info: OUTPUT_COMMIT_INFO.get(v)?,
        xoffset: OUTPUT_XOFFSET.get(v)?,
        nulls: OUTPUT_NULLS.get(v)?,
        server_id: OUTPUT_SERVER_ID.get(v)?,
        thread_id: OUTPUT_THREAD_ID.get(v)?,
        row_query: OUTPUT_ROW_QUERY.get(v)?,
        primary_keys: OUTPUT_PRIMARY_KEYS.get(v)?,
        primary_key_columns: OUTPUT_PRIMARY_KEY_COLUMNS.get(v)?,
        null_zero_dates: OUTPUT_NULL_ZERODATES.get(v)?,
        push_timestamp: OUTPUT_PUSH_TIMESTAMP.get(v)?,
        exclude_columns,
        ddl: OUTPUT_DDL.get(v)?,
        routing: routing.primary_key,
        partition_columns: routing.partition_columns,
        schema_id: OUTPUT_SCHEMA_ID.get(v)?,
        naming: {
            let text = OUTPUT_NAMING_STRATEGY.get(v)?;
            sluice_pipeline::encode::Naming::parse(text.trim()).ok_or_else(|| {
                OUTPUT_NAMING_STRATEGY.error(
                    v,
                    format!(
                        "'{text}' is not underscore_to_camelcase (or empty: names as they are)"
                    ),
                )
            })?
        },
        row_query_max_length: ROW_QUERY_MAX_LENGTH.get(v)?,
    };
    let skip_bad_ddl = match DDL_PARSE_ERRORS.get(v)?.to_ascii_lowercase().as_str() {
        "fail" => false,
        "skip" => true,
        other => return Err(DDL_PARSE_ERRORS.error(v, format!("'{other}' is not fail or skip"))),
    };
    let schema_database = SCHEMA_DATABASE.get(v)?;
    let filter = match FILTER.get(v)?.trim() {
        "" => None,
        text => {
            let f = sluice_pipeline::Filter::parse(text, &schema_database)
                .map_err(|e| FILTER.error(v, e.to_string()))?;
            warnings.extend(f.warnings().into_iter().map(|w| format!("filter: {w}")));
            Some(f)
        }
    };
    let secret_key = SECRET_KEY.get(v)?;
    let encryptor = sluice_pipeline::Encryptor::from_options(
        &ENCRYPT.get(v)?,
        (!secret_key.is_empty()).then_some(secret_key.as_str()),
    )
    .map_err(|e| match e {
        sluice_pipeline::encrypt::EncryptError::KeyLength(_) => SECRET_KEY.error(v, e.to_string()),
        other => ENCRYPT.error(v, other.to_string()),
    })?;
    let replay = REPLAY.get(v)?;
    let init_position = position(INIT_POSITION, v)?;
    if replay && init_position.is_none() {
        warnings.push("replay without init_position starts at the stored position (or the server's current one) and stores nothing: nothing is replayed that a normal run would not send".into());
    }
    let heartbeat_ms = BINLOG_HEARTBEAT_PERIOD_MS.get(v)?;
    if !(100..=4_294_967).contains(&heartbeat_ms) {
        return Err(BINLOG_HEARTBEAT_PERIOD_MS.error(v, "must be between 100 and 4294967 ms"));
    }
    let txn_buffer_bytes = TXN_BUFFER_BYTES.get(v)?;
    if txn_buffer_bytes < 4096 {
        return Err(TXN_BUFFER_BYTES.error(v, "must be at least 4096"));
    }
    let heartbeat_interval_ms = HEARTBEAT_INTERVAL_MS.get(v)?;
    if heartbeat_interval_ms != 0 && heartbeat_interval_ms < 100 {
        return Err(HEARTBEAT_INTERVAL_MS.error(v, "must be 0 (off) or at least 100"));
    }
    let tmp_dir = TMP_DIR.get(v)?;
    if !tmp_dir.is_empty() {
        check_tmp_dir(Path::new(&tmp_dir)).map_err(|why| {
            TMP_DIR.error(v, format!("'{tmp_dir}' {why}; name an existing directory sluice may write to, or leave tmp_dir unset (the system temp dir)"))
        })?;
    }
    Ok(Config {
        servers,
        schema_database,
        client_id: CLIENT_ID.get(v)?,
        replica_server_id,
        producer,
        init_position,
        stop_position: position(STOP_POSITION, v)?,
        output,
        filter,
        encryptor,
        replay,
        recapture_schema: RECAPTURE_SCHEMA.get(v)?,
        file_source: crate::file_source::FileSource::from_options(v)?,
        heartbeat: Duration::from_millis(heartbeat_ms),
        reconnect_retries: REPLICATION_RECONNECTION_RETRIES.get(v)?,
        reconnect_max_backoff: millis(REPLICATION_RECONNECT_MAX_BACKOFF_MS, v)?
            .max(Duration::from_millis(200)),
        txn_buffer_bytes,
        worker_threads: match WORKER_THREADS.get(v)? {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        },
        tmp_dir: (!tmp_dir.is_empty()).then(|| PathBuf::from(tmp_dir)),
        gtid_mode: GTID_MODE.get(v)?,
        skip_bad_ddl,
        heartbeat_interval: (heartbeat_interval_ms > 0)
            .then(|| Duration::from_millis(heartbeat_interval_ms)),
        http: HttpOptions::from_options(v)?,
        ha: ha(v)?,
        log: LogOptions::from_options(v)?,
        warnings,
        bootstrap: crate::bootstrap::BootstrapOptions::from_options(v)?,
    })
}

fn ha(v: &dyn Values) -> Result<Option<HaOptions>, ConfigError> {
    if !HA.get(v)? {
        return Ok(None);
    }
    let zookeeper = ZOOKEEPER.get(v)?;
    if zookeeper.trim().is_empty() {
        return Err(ZOOKEEPER.error(v, "--ha needs --zookeeper=host:port[,host:port...]"));
    }
    let root = ZOOKEEPER_ROOT.get(v)?;
    if !root.starts_with('/') || root.len() < 2 || root.ends_with('/') {
        return Err(
            ZOOKEEPER_ROOT.error(v, format!("'{root}' must be an absolute path like /sluice"))
        );
    }
    Ok(Some(HaOptions {
        zookeeper,
        root,
        session_timeout: millis(SESSION_TIMEOUT_MS, v)?.max(Duration::from_secs(1)),
        connection_timeout: millis(CONNECTION_TIMEOUT_MS, v)?.max(Duration::from_millis(100)),
        base_sleep: millis(BASE_SLEEP_TIME_MS, v)?.max(Duration::from_millis(10)),
        max_retries: MAX_RETRIES.get(v)?,
    }))
}

#[cfg(test)]
mod tests;
