//! Connections to the MySQL servers of the configuration, each with its
//! role's TLS and the login options, under the connect timeout; failures
//! explained with the option to change.

use mysql_async::{Conn, OptsBuilder};
use sluice_binlog::AuthOptions;
use sluice_schema::connect;

use crate::config::MysqlServer;
use crate::error::Error;

impl MysqlServer {
    /// A connection (TLS as configured; PREFERRED falls back as MySQL's
    /// client does).
    fn timed_out(&self) -> Error {
        Error::definite(format!(
            "connecting to MySQL at {} timed out after {:?} (mysql_connect_timeout_ms): no \
             greeting or login answer in time (a MySQL server greets at once: check the host \
             and port, and that the server is not overloaded)",
            self.address(),
            self.connect_timeout
        ))
    }

    pub async fn connect(&self, auth: &AuthOptions) -> Result<Conn, Error> {
        let attempt = connect::connect(&self.endpoint, &self.tls, auth);
        match tokio::time::timeout(self.connect_timeout, attempt).await {
            Ok(Ok((conn, _))) => Ok(conn),
            Ok(Err(e)) => Err(Error::definite(e)),
            Err(_) => Err(self.timed_out()),
        }
    }

    /// Options a pool can open connections with: the TLS mode resolved by
    /// one connection (closed again).
    pub async fn pool_opts(&self, auth: &AuthOptions) -> Result<OptsBuilder, Error> {
        let attempt = connect::resolve_opts(&self.endpoint, &self.tls, auth);
        match tokio::time::timeout(self.connect_timeout, attempt).await {
            Ok(Ok(opts)) => Ok(opts),
            Ok(Err(e)) => Err(Error::definite(e)),
            Err(_) => Err(self.timed_out()),
        }
    }
}

/// Talks to MySQL outside the binlog stream one step at a time, each step
/// under `mysql_query_timeout_ms` (a lock held by another session or a
/// stalled server must not hang sluice), and, at startup, shown by
/// `/healthcheck` while it waits.
pub struct Steps<'a> {
    pub timeout: std::time::Duration,
    pub telemetry: Option<&'a crate::telemetry::Telemetry>,
}

impl Steps<'_> {
    /// Runs `fut` as the step `what` (e.g. "reading the stored position").
    pub async fn run<T, E: Into<Error>>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, Error> {
        self.run_for(self.timeout, what, fut).await
    }

    /// As `run`, with a deadline of its own (a schema capture reads every
    /// table's definition).
    pub async fn run_for<T, E: Into<Error>>(
        &self,
        timeout: std::time::Duration,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, Error> {
        if let Some(t) = self.telemetry {
            t.set_startup_step(Some(what));
        }
        let res = tokio::time::timeout(timeout, fut).await;
        if let Some(t) = self.telemetry {
            t.set_startup_step(None);
        }
        match res {
            Ok(r) => r.map_err(Into::into),
            Err(_) => Err(Error::definite(format!(
                "{}. Start sluice again once it answers",
                stalled(timeout, what)
            ))),
        }
    }
}

/// The message for a step MySQL did not answer in time.
pub fn stalled(timeout: std::time::Duration, what: &str) -> String {
    format!(
        "no answer from MySQL within {} ms while {what}: another session holds a lock this \
         needs (FLUSH TABLES WITH READ LOCK, a long ALTER TABLE; SHOW PROCESSLIST shows who \
         waits for what), or the server stopped answering (mysql_query_timeout_ms sets how long \
         to wait)",
        timeout.as_millis()
    )
}
