//! The binlog reader: owns the replication session, hands batches of events
//! to the processor, and — being the supervisor of the connection — opens a
//! new session when the server goes away, freezes, or drops the connection:
//! exponential backoff with jitter, the host name resolved anew each time,
//! the server's identity checked, the stream resumed at the last transaction
//! boundary read (a transaction cut in half is read again from its start).

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use sluice_binlog::resume::ResumeTracker;
use sluice_binlog::{BinlogSession, Event, SessionOptions};
use tokio::sync::mpsc::Sender;

use crate::config::MysqlServer;
use crate::control::{Control, Request};
use crate::error::{Context, Error};
use crate::telemetry::Telemetry;

/// Who the server is; a different server must not be read from a file
/// position meant for another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerIdentity {
    pub server_id: u32,
    pub server_uuid: Option<String>,
}

impl std::fmt::Display for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "server_id {}", self.server_id)?;
        if let Some(u) = &self.server_uuid {
            write!(f, ", server_uuid {u}")?;
        }
        Ok(())
    }
}

pub async fn server_identity(
    conn: &mut mysql_async::Conn,
) -> Result<ServerIdentity, mysql_async::Error> {
    let server_id: Option<u32> = conn.query_first("SELECT @@server_id").await?;
    // MySQL has server_uuid; MariaDB does not.
    let server_uuid: Option<String> = conn
        .query_first("SELECT @@server_uuid")
        .await
        .unwrap_or(None);
    Ok(ServerIdentity {
        server_id: server_id.unwrap_or(0),
        server_uuid,
    })
}

pub struct ReaderConfig {
    pub session: SessionOptions,
    /// The replication host, for the identity check before a new session.
    pub server: MysqlServer,
    pub auth: sluice_binlog::AuthOptions,
    /// `mysql_query_timeout_ms`: the identity check's deadline.
    pub query_timeout: Duration,
    pub identity: ServerIdentity,
    /// 0: retry forever.
    pub max_retries: u32,
    pub max_backoff: Duration,
    /// The server the position store writes for: follows a GTID failover.
    pub server_id: Arc<AtomicU32>,
    pub telemetry: Arc<Telemetry>,
    /// With leader election: becomes true when this node must stop.
    pub lost: Option<tokio::sync::watch::Receiver<bool>>,
}

/// Why reading stopped without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderEnd {
    /// SIGTERM/SIGINT, or the processor stopped.
    Stopped,
    /// The leadership is lost: stop reading, another node takes over.
    LeadershipLost,
    /// SIGHUP: stop, re-read the configuration, stream again from the
    /// stored position with a new producer.
    Reload,
}

pub(crate) fn end_for(request: Request) -> ReaderEnd {
    match request {
        Request::Stop => {
            tracing::info!("signal received: stopping");
            ReaderEnd::Stopped
        }
        Request::Reload => {
            tracing::info!("SIGHUP: reloading the configuration and rebuilding the producer");
            ReaderEnd::Reload
        }
    }
}

/// Completes when the leadership is lost; never without leader election.
pub(crate) async fn leadership_lost(lost: &mut Option<tokio::sync::watch::Receiver<bool>>) {
    match lost {
        Some(rx) => {
            // A closed channel (the monitor is gone) counts as lost too.
            let _ = rx.wait_for(|l| *l).await;
        }
        None => std::future::pending().await,
    }
}

/// Delay before reconnect attempt `attempt` (1-based): 200 ms doubling up to
/// `max`, then scaled by a random factor in [0.5, 1] so that many clients do
/// not reconnect in step.
pub fn backoff(attempt: u32, max: Duration, rng: &mut u64) -> Duration {
    let base = Duration::from_millis(200).saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let capped = base.min(max);
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let factor = 0.5 + (*rng % 1000) as f64 / 2000.0;
    capped.mul_f64(factor)
}

enum Outcome {
    Session(Box<BinlogSession>),
    Stop(ReaderEnd),
}

pub async fn read_binlog(
    mut cfg: ReaderConfig,
    tx: Sender<Vec<Event>>,
    control: &mut Control,
) -> Result<ReaderEnd, Error> {
    let addr = format!("{}:{}", cfg.session.host, cfg.session.port);
    let mut tracker = ResumeTracker::new(cfg.session.start.clone());
    let first = tokio::select! {
        s = BinlogSession::connect(&cfg.session) => s,
        request = control.recv() => return Ok(end_for(request)),
        _ = leadership_lost(&mut cfg.lost) => return Ok(ReaderEnd::LeadershipLost),
    };
    let mut session = match first {
        Ok(s) => s,
        Err(e) if e.is_transient() => {
            tracing::warn!(error = %e, "cannot start replication; retrying");
            match reconnect(&mut cfg, &tracker, control, &tx).await? {
                Outcome::Session(s) => *s,
                Outcome::Stop(end) => return Ok(end),
            }
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "cannot start replication from {addr} at {}",
                    cfg.session.start
                )
            })
        }
    };
    tracing::info!(position = %cfg.session.start, gtid = cfg.session.start.gtid.as_deref().unwrap_or(""), "streaming");
    cfg.telemetry.binlog_connected();
    let mut batch = Vec::with_capacity(256);
    loop {
        tokio::select! {
            res = session.next_batch(&mut batch, 256, 1 << 20) => {
                // Events read before an error are still delivered.
                let full = std::mem::take(&mut batch);
                let mut bytes = 0u64;
                for ev in &full {
                    tracker.observe(ev);
                    bytes += ev.body.len() as u64 + 19;
                }
                cfg.telemetry.binlog_events.fetch_add(full.len() as u64, Relaxed);
                cfg.telemetry.binlog_bytes.fetch_add(bytes, Relaxed);
                if !full.is_empty() {
                    // A full channel (a producer that waits on its brokers)
                    // must not make the reader deaf to signals.
                    tokio::select! {
                        sent = tx.send(full) => if sent.is_err() {
                            return Ok(ReaderEnd::Stopped); // the processor stopped; its error is the one to report
                        },
                        sig = control.recv() => return Ok(end_for(sig)),
                        _ = leadership_lost(&mut cfg.lost) => {
                            tracing::warn!("leadership lost: stopped reading the binlog");
                            return Ok(ReaderEnd::LeadershipLost);
                        }
                    }
                }
                match res {
                    Ok(()) => {}
                    Err(e) if e.is_transient() => {
                        tracing::warn!(error = %e, resume = %tracker.resume_position(), "binlog connection lost; reconnecting");
                        if let Some(at) = tracker.inside_transaction() {
                            // Its rows are held back, never emitted; it is read
                            // again whole from its start.
                            tracing::warn!(began = %tracker.resume_position(), read_up_to = %at,
                                "the connection ended inside a transaction that had not committed: its events read so far are dropped, and it is read again from where it began");
                        }
                        cfg.telemetry.binlog_disconnected();
                        match reconnect(&mut cfg, &tracker, control, &tx).await? {
                            Outcome::Session(s) => {
                                session = *s;
                                cfg.telemetry.reconnects.fetch_add(1, Relaxed);
                                cfg.telemetry.binlog_connected();
                            }
                            Outcome::Stop(end) => return Ok(end),
                        }
                    }
                    Err(sluice_binlog::SourceError::BinlogUnavailable { file, message }) => {
                        return Err(Error::definite(missing_binlog(&cfg, &file, &message).await))
                            .with_context(|| format!("reading the binlog from {addr}"))
                    }
                    Err(e) => {
                        return Err(e).with_context(|| format!("reading the binlog from {addr} (file {})", session.current_file()))
                    }
                }
            }
            _ = tx.closed() => return Ok(ReaderEnd::Stopped),
            sig = control.recv() => return Ok(end_for(sig)),
            _ = leadership_lost(&mut cfg.lost) => {
                tracing::warn!("leadership lost: stopped reading the binlog");
                return Ok(ReaderEnd::LeadershipLost);
            }
        }
    }
}

/// The advice above needs this while a position is stored (the stored one
/// wins over --init_position at every start).
const RESET: &str = ". A stored position wins over --init_position: stop sluice and run \
                     `sluice reset-position` with the same options first";

/// Error 1236 for a file the server does not have, told apart with the
/// server's list of files: purged (it sorts before the first one), or a
/// name the server never had.
async fn missing_binlog(cfg: &ReaderConfig, file: &str, message: &str) -> String {
    let listed = async {
        let mut conn = cfg.server.connect(&cfg.auth).await?;
        let rows: Vec<mysql_async::Row> = conn.query("SHOW BINARY LOGS").await?;
        let _ = conn.disconnect().await;
        Ok::<_, Error>(
            rows.into_iter()
                .filter_map(|r| r.get_opt::<String, _>(0).and_then(Result::ok))
                .collect::<Vec<String>>(),
        )
    };
    let listed = match tokio::time::timeout(cfg.query_timeout, listed).await {
        Ok(Ok(l)) => l,
        // Without the list: the server's own words, both causes named.
        Ok(Err(_)) | Err(_) => {
            return sluice_binlog::SourceError::BinlogUnavailable {
                file: file.to_string(),
                message: message.to_string(),
            }
            .to_string()
        }
    };
    match sluice_binlog::position::missing_file(file, &listed) {
        sluice_binlog::position::MissingFile::Purged { first } => format!(
            "the binlog file {file} is no longer on the server (purged; the oldest it has is {first}): \
             {message}. Restart from a position the server still has with --init_position FILE:POS \
             (SHOW BINARY LOGS lists them), accepting the gap, or re-bootstrap the tables{RESET}"
        ),
        sluice_binlog::position::MissingFile::NotFound { first, last } => {
            let range = match (first, last) {
                (Some(f), Some(l)) => format!("it has {f} to {l}"),
                _ => "it lists no binary logs".into(),
            };
            format!(
                "the binlog file {file} was not found on the server ({range}): {message}. \
                 Check the name (SHOW BINARY LOGS lists the files; a position from another server \
                 or a different log-bin name does not apply here) and give --init_position FILE:POS \
                 with one of them{RESET}"
            )
        }
    }
}

/// Why the server's identity could not be confirmed.
enum IdentityCheck {
    /// Not reachable yet: try again.
    Unreachable(String),
    /// A different server answers where a file position means nothing.
    Changed(String),
}

/// Checks who the server is now. A different server is refused when the
/// position is a file offset; with `gtid_mode` and a GTID position it is
/// followed (a failover), and becomes the expected identity.
async fn check_identity(
    cfg: &mut ReaderConfig,
    tracker: &ResumeTracker,
) -> Result<(), IdentityCheck> {
    let unreachable = |e: String| IdentityCheck::Unreachable(e);
    let ask = async {
        let mut conn = cfg.server.connect(&cfg.auth).await?;
        let now = server_identity(&mut conn).await?;
        let _ = conn.disconnect().await;
        Ok::<_, Error>(now)
    };
    // A server that accepts the login and then stalls is not reachable.
    let now = tokio::time::timeout(cfg.query_timeout, ask)
        .await
        .map_err(|_| {
            unreachable(crate::mysql::stalled(
                cfg.query_timeout,
                "checking the server's identity (SELECT @@server_id)",
            ))
        })?
        .map_err(|e| unreachable(e.to_string()))?;
    if now != cfg.identity && cfg.session.gtid_mode && tracker.resume_position().gtid.is_some() {
        tracing::warn!(was = %cfg.identity, now = %now, gtid = tracker.resume_position().gtid.as_deref().unwrap_or(""),
            "a different server answers at {}:{}; gtid_mode: continuing from the GTID position", cfg.session.host, cfg.session.port);
        cfg.server_id.store(now.server_id, Relaxed);
        cfg.identity = now;
        return Ok(());
    }
    if now != cfg.identity {
        return Err(IdentityCheck::Changed(format!(
            "the server at {}:{} is now {now}, not {} as when sluice started: a binlog file position \
             of one server means nothing on another. Restart sluice with --init_position for the new server \
             (or a different client_id), or use gtid_mode=true where the servers share GTIDs",
            cfg.session.host, cfg.session.port, cfg.identity
        )));
    }
    Ok(())
}

async fn reconnect(
    cfg: &mut ReaderConfig,
    tracker: &ResumeTracker,
    control: &mut Control,
    tx: &Sender<Vec<Event>>,
) -> Result<Outcome, Error> {
    let down_since = Instant::now();
    let mut rng =
        down_since.elapsed().as_nanos() as u64 ^ 0x9E37_79B9_7F4A_7C15 ^ std::process::id() as u64;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        if cfg.max_retries > 0 && attempt > cfg.max_retries {
            return Err(Error::definite(format!(
                "gave up reconnecting to {}:{} after {} attempts (replication_reconnection_retries={}); \
                 restart sluice to resume from {}",
                cfg.session.host,
                cfg.session.port,
                attempt - 1,
                cfg.max_retries,
                tracker.resume_position()
            )));
        }
        let delay = backoff(attempt, cfg.max_backoff, &mut rng);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            sig = control.recv() => {
                tracing::info!("signal received while reconnecting");
                return Ok(Outcome::Stop(match sig {
                    Request::Stop => ReaderEnd::Stopped,
                    Request::Reload => ReaderEnd::Reload,
                }));
            }
            _ = tx.closed() => return Ok(Outcome::Stop(ReaderEnd::Stopped)),
            _ = leadership_lost(&mut cfg.lost) => return Ok(Outcome::Stop(ReaderEnd::LeadershipLost)),
        }
        let checked = tokio::select! {
            c = check_identity(cfg, tracker) => c,
            sig = control.recv() => return Ok(Outcome::Stop(end_for(sig))),
        };
        match checked {
            Ok(()) => {}
            Err(IdentityCheck::Changed(message)) => return Err(Error::Definite(message)),
            Err(IdentityCheck::Unreachable(e)) => {
                tracing::warn!(attempt, error = %e, "server not reachable yet");
                continue;
            }
        }
        let mut opts = cfg.session.clone();
        opts.start = tracker.resume_position().clone();
        let connected = tokio::select! {
            s = BinlogSession::connect(&opts) => s,
            sig = control.recv() => return Ok(Outcome::Stop(end_for(sig))),
        };
        match connected {
            Ok(s) => {
                tracing::warn!(
                    attempts = attempt,
                    seconds_disconnected = down_since.elapsed().as_secs_f64(),
                    position = %opts.start,
                    "reconnected"
                );
                return Ok(Outcome::Session(Box::new(s)));
            }
            Err(e) if e.is_transient() => {
                tracing::warn!(attempt, error = %e, "reconnect failed; retrying")
            }
            Err(e) => return Err(e).with_context(|| format!("reconnecting at {}", opts.start)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        let mut rng = 12345;
        let max = Duration::from_secs(5);
        for attempt in 1..30 {
            let d = backoff(attempt, max, &mut rng);
            let full = Duration::from_millis(200)
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(max);
            assert!(
                d >= full / 2 && d <= full,
                "attempt {attempt}: {d:?} vs {full:?}"
            );
        }
    }
}
