//! The bootstrap controller: part of the leader's stream (a standby never
//! snapshots; a new leader finds the interrupted task in the table and
//! resumes it). Polls `bootstrap` as Maxwell does (every second, and at
//! once when the stream sees a request inserted), runs the tasks one at a
//! time, retries transient failures with exponential backoff, and fails a
//! task once on a definite error (a where clause the server refuses).

use std::collections::HashSet;
use std::time::Duration;

use super::tables::Request;
use super::task::{attempt, fail, Outcome, TaskContext, TaskError};

/// Transient failures in a row before a task is marked failed.
const MAX_FAILURES: u64 = 10;
const POLL_EVERY: Duration = Duration::from_secs(1);

/// Runs until the stream ends (the caller aborts it) or a newer leader
/// fences this one.
pub async fn run(ctx: TaskContext) {
    let mut told_elsewhere: HashSet<u64> = HashSet::new();
    let mut poll_failing = false;
    loop {
        ctx.exchange.take_request_seen();
        match ctx.tables.pending().await {
            Ok(requests) => {
                poll_failing = false;
                for req in requests {
                    if !run_task(&ctx, &req).await {
                        return;
                    }
                }
            }
            Err(e) => {
                if !poll_failing {
                    tracing::warn!(error = %e, "cannot read the bootstrap requests; retrying");
                }
                poll_failing = true;
            }
        }
        if let Ok(elsewhere) = ctx.tables.pending_elsewhere().await {
            for (id, client) in elsewhere {
                if told_elsewhere.insert(id) {
                    tracing::info!(id, request_client_id = %client, client_id = %ctx.tables.client_id(),
                        "bootstrap request for another client_id: left to the sluice or Maxwell with that client_id");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL_EVERY) => {}
            _ = ctx.exchange.changed() => {}
        }
    }
}

/// Runs `req` to its end; false when this node must stop snapshotting.
async fn run_task(ctx: &TaskContext, req: &Request) -> bool {
    let mut failures = 0u64;
    let mut req = req.clone();
    loop {
        let result = attempt(ctx, &req, failures).await;
        // A later attempt continues this one (its progress is not stale).
        req.started = true;
        let req = &req;
        let message = match result {
            Ok(Outcome::Complete | Outcome::Aborted | Outcome::Missing) => return true,
            Err(TaskError::Fenced(m)) => {
                tracing::warn!(id = req.id, error = %m, "bootstrap taken over by a newer leader");
                return false;
            }
            Err(TaskError::Definite(m)) => {
                failures += 1;
                format!(
                    "the server refused the snapshot of {}.{}: {m}",
                    req.database, req.table
                )
            }
            Err(TaskError::Transient(m)) => {
                failures += 1;
                if failures < MAX_FAILURES {
                    let wait = Duration::from_millis(500u64 << failures.min(6));
                    tracing::warn!(id = req.id, attempt = failures, error = %m, retry_in_ms = wait.as_millis() as u64,
                        "bootstrap attempt failed; it resumes after its last delivered chunk");
                    ctx.telemetry
                        .bootstrap
                        .update(req.id, &req.database, &req.table, |t| {
                            t.failures = failures;
                            t.error = Some(m.clone());
                        });
                    tokio::time::sleep(wait).await;
                    continue;
                }
                format!(
                    "{failures} attempts at the snapshot of {}.{} failed; the last: {m}",
                    req.database, req.table
                )
            }
        };
        tracing::error!(id = req.id, error = %message, "bootstrap failed");
        return match fail(ctx, req, failures, &message).await {
            Ok(()) => true,
            Err(TaskError::Fenced(_)) => false,
            Err(e) => {
                tracing::warn!(id = req.id, error = %e, "cannot mark the bootstrap failed; it is tried again");
                tokio::time::sleep(Duration::from_secs(30)).await;
                true
            }
        };
    }
}
