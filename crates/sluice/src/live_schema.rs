//! The schema as the pipeline sees it while streaming: the server's live
//! catalog (for tables only the server knows, re-captured after a DDL that
//! was skipped) and the schema history every followed DDL is recorded in.
//! A server that is away is waited for (the binlog reader is reconnecting
//! meanwhile); an answer that is an error is final.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use sluice_binlog::BinlogPosition;
use sluice_pipeline::SchemaSource;
use sluice_schema::serial::Op;
use sluice_schema::{Catalog, Table};
use tokio::runtime::Handle;

use crate::schema_history::{HistoryError, SchemaHistory};

/// One schema query may take this long before it is abandoned and retried
/// (a frozen server or a half-open connection must not stall the pipeline
/// forever).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub struct LiveSchema {
    /// A pool, so a connection lost to a server restart is replaced;
    /// `None` (binlog files without a server): unknown tables stay unknown.
    pub pool: Option<mysql_async::Pool>,
    /// `None`: schema changes are followed but not recorded (binlog files).
    pub history: Option<SchemaHistory>,
    /// The server the history entries belong to (changes on a GTID failover).
    pub server_id: Arc<AtomicU32>,
    pub handle: Handle,
}

/// How a schema call failed.
enum Failure {
    /// The server answered with an error: retrying will not change it.
    Final(String),
    /// Connection lost or no answer: wait and try again.
    Retry(String),
}

impl From<mysql_async::Error> for Failure {
    fn from(e: mysql_async::Error) -> Self {
        match e {
            mysql_async::Error::Server(_) => Failure::Final(e.to_string()),
            other => Failure::Retry(other.to_string()),
        }
    }
}

impl From<HistoryError> for Failure {
    fn from(e: HistoryError) -> Self {
        match e {
            HistoryError::Sql(sql) => Failure::from(sql).map(|m| format!("schema history: {m}")),
            other => Failure::Final(other.to_string()),
        }
    }
}

impl Failure {
    fn map(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            Failure::Final(m) => Failure::Final(f(m)),
            Failure::Retry(m) => Failure::Retry(f(m)),
        }
    }
}

/// One attempt under CALL_TIMEOUT.
fn attempt<T>(
    handle: &Handle,
    call: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    handle
        .block_on(async { tokio::time::timeout(CALL_TIMEOUT, call).await })
        .unwrap_or_else(|_| Err(Failure::Retry(format!("no answer within {CALL_TIMEOUT:?}"))))
}

/// Attempts until one succeeds or fails for good, backing off between.
fn retrying<T>(what: &str, mut once: impl FnMut() -> Result<T, Failure>) -> Result<T, String> {
    let mut n = 0u32;
    loop {
        n += 1;
        match once() {
            Ok(v) => return Ok(v),
            Err(Failure::Final(message)) => return Err(message),
            Err(Failure::Retry(message)) => {
                tracing::warn!(what, attempt = n, error = %message, "schema call failed; retrying");
                std::thread::sleep(Duration::from_millis(200u64 << n.min(5)));
            }
        }
    }
}

impl SchemaSource for LiveSchema {
    fn recapture(&mut self, database: &str, table: &str) -> Result<Option<Table>, String> {
        let Some(pool) = &self.pool else {
            return Ok(None);
        };
        let handle = &self.handle;
        retrying("capturing a table", || {
            attempt(handle, async {
                let mut conn = pool.get_conn().await?;
                sluice_schema::capture_table(&mut conn, database, table)
                    .await
                    .map_err(|e| match e {
                        sluice_schema::CaptureError::Sql(sql) => Failure::from(sql),
                        value @ sluice_schema::CaptureError::Value(_) => {
                            Failure::Final(value.to_string())
                        }
                    })
            })
        })
    }

    fn record(
        &mut self,
        at: &BinlogPosition,
        ops: &[Op],
        sql: &str,
        catalog: &Catalog,
    ) -> Result<Option<u64>, String> {
        let Some(history) = self.history.as_mut() else {
            return Ok(None);
        };
        history.set_server_id(self.server_id.load(Relaxed));
        let handle = &self.handle;
        retrying("recording a schema change", || {
            attempt(handle, async {
                Ok(history.record(at, ops, sql, catalog).await?)
            })
        })
    }
}
