//! Sluice, the daemon as a library: change data capture from a MySQL or
//! MariaDB binlog to Maxwell-format JSON. `main.rs` only parses the
//! configuration, starts logging and calls [`run`].
//!
//! The shape (details in `docs/architecture.md`):
//! - [`supervisor`] takes the decisions between streams (leadership,
//!   reloads, producer rebuilds, stop); [`node`] carries them out.
//! - [`stream`] wires one term: [`startup`], the binlog [`reader`], the
//!   [`processing`] thread with its [`checkpoint`]er, the [`heartbeat`]
//!   writer; [`live_schema`] serves the pipeline while it streams.
//! - [`http`] and [`telemetry`] answer on every node from the start.

pub mod bootstrap;
pub mod checkpoint;
pub mod config;
pub mod control;
pub mod error;
pub mod file_source;
pub mod ha;
pub mod heartbeat;
pub mod http;
pub mod init_position;
pub mod live_schema;
pub mod logging;
pub mod mysql;
pub mod node;
pub mod notify;
pub mod positions;
pub mod preflight;
pub mod processing;
pub mod reader;
pub mod reset_position;
pub mod resume_boundary;
pub mod schema_history;
pub mod startup;
pub mod stream;
pub mod subcommand;
pub mod supervisor;
pub mod telemetry;

use std::sync::Arc;
use std::time::Duration;

pub use config::Config;
pub use control::{Controls, Request};
pub use error::Error;
pub use supervisor::Reload;

use error::Context;
use http::HttpServer;
use node::DaemonNode;
use telemetry::{Role, Telemetry};

/// Runs the daemon until a stop request (`Ok`) or a definite error. HTTP
/// answers from the start: a node is observable while it connects, waits or
/// fails.
pub fn run(cfg: Config, controls: Controls, reload: Reload) -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let control = rt
        .block_on(async { controls.listen() })
        .context("cannot install signal handlers")?;
    let telemetry = Arc::new(Telemetry::new(&cfg.client_id, &cfg.http.metrics_prefix));
    if let Some(source) = cfg.file_source.clone() {
        // Offline: no HTTP endpoint, no leadership, no positions.
        let mut control = control;
        let result = file_source::run(&rt, &cfg, &source, &mut control, &telemetry).map(|_| ());
        rt.shutdown_timeout(Duration::from_secs(1));
        return result;
    }
    notify::start(&telemetry, rt.handle());
    let http = rt.block_on(HttpServer::bind(&cfg))?;
    tracing::info!(address = %http.address, "http endpoint listening");
    let mut node = DaemonNode::new(&rt, control, telemetry.clone(), http.address.clone());
    rt.spawn(http.serve(telemetry.clone()));
    let result = supervisor::supervise(&mut node, cfg, reload, &telemetry);
    drop(node);
    telemetry.set_role(Role::Stopping);
    if let Err(e) = &result {
        telemetry.set_fatal(e.to_string());
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}
