//! Bootstrapping: existing rows into the stream, the Maxwell way on the
//! outside (the `bootstrap` table, `bootstrap-start` / `-insert` /
//! `-complete`, `sluice bootstrap`), chunked, consistent and resumable on
//! the inside. Where each decision is taken:
//!
//! - [`controller`]: which request runs (Maxwell's poll), retries and
//!   failures;
//! - [`task`]: one snapshot, chunk by chunk, and when its cursor is stored
//!   (after the producer flushed the chunk);
//! - [`chunks`]: the key a table is read by and the chunk query;
//! - `sluice_pipeline::snapshot`: what is emitted at each watermark (DBLog's
//!   reconciliation with the binlog);
//! - [`exchange`]: chunks to the processor, deliveries back;
//! - [`tables`]: the state tables; [`cursor`]: the stored cursor;
//! - [`status`]: /status and /metrics; [`cli`] and [`progress`]: the
//!   subcommand; [`options`]: the options.

pub mod chunks;
pub mod cli;
pub mod controller;
pub mod cursor;
pub mod exchange;
pub mod options;
pub mod progress;
pub mod status;
pub mod tables;
pub mod task;

use std::sync::Arc;

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

pub use options::{BootstrapOptions, Bootstrapper, OPTIONS};

use crate::config::Config;
use crate::error::{Context, Error};
use crate::processing::StreamProcessor;
use crate::telemetry::Telemetry;

/// A number naming this stream's watermarks (a restarted stream reads the
/// old ones again and must not act on them).
fn new_session() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    h.finish()
}

/// Pools for the state tables and for reading rows: no COM_RESET_CONNECTION
/// each time a connection goes back to the pool (a round trip per statement
/// would cost more than the statement, and a chunk takes several); these
/// connections keep no session state another user could trip over.
fn pool(opts: mysql_async::OptsBuilder, found_rows: bool) -> mysql_async::Pool {
    let opts = opts
        .client_found_rows(found_rows)
        .pool_opts(mysql_async::PoolOpts::default().with_reset_connection(false));
    mysql_async::Pool::new(opts)
}

/// Creates the state tables when missing (the server was checked by the
/// startup already; a first start follows these statements in its stream).
pub async fn ensure_tables(cfg: &Config) -> Result<(), Error> {
    async {
        let mut conn = cfg.servers.state.connect(&cfg.servers.auth).await?;
        tables::ensure(&mut conn, &cfg.schema_database).await?;
        conn.disconnect().await.map_err(Error::from)
    }
    .await
    .with_context(|| {
        format!(
            "creating the bootstrap tables in database '{}' (the user needs all rights on it)",
            cfg.schema_database
        )
    })
}

/// Takes part in snapshots for one leadership term: wires the processor to
/// the snapshot side and starts the controller (not with
/// `bootstrapper=none`). The caller aborts the returned task when the
/// stream ends.
pub fn start(
    rt: &Runtime,
    cfg: &Config,
    epoch: u64,
    telemetry: &Arc<Telemetry>,
    processor: &mut StreamProcessor,
) -> Option<JoinHandle<()>> {
    // A replay writes nothing: no watermark, so no snapshot either.
    if cfg.bootstrap.mode == Bootstrapper::None || cfg.replay {
        return None;
    }
    // State tables and watermarks on the state host, rows from the
    // replication host (Maxwell's roles).
    let auth = &cfg.servers.auth;
    let opts = rt.block_on(async {
        let state = cfg.servers.state.pool_opts(auth).await?;
        let rows = cfg.servers.replication.pool_opts(auth).await?;
        Ok::<_, Error>((state, rows))
    });
    let (state_opts, rows_opts) = match opts {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(error = %e, "snapshots (bootstrap) cannot connect; none runs in this term");
            return None;
        }
    };
    let session = new_session();
    let exchange = exchange::Exchange::new();
    processor.set_snapshots(session, exchange.stream_side());
    let ctx = task::TaskContext {
        tables: tables::StateTables::new(
            pool(state_opts, true),
            &cfg.schema_database,
            &cfg.client_id,
            epoch,
        ),
        rows: pool(rows_opts, false),
        exchange,
        telemetry: telemetry.clone(),
        options: cfg.bootstrap.clone(),
        session,
        split_hosts: (cfg.servers.state.address() != cfg.servers.replication.address()).then(
            || task::SplitHosts {
                state: cfg.servers.state.address(),
                replication: cfg.servers.replication.address(),
            },
        ),
    };
    Some(rt.spawn(controller::run(ctx)))
}
