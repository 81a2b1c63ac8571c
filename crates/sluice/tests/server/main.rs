//! The daemon against real MariaDB servers: output, Maxwell's conformance corpus, schema following, positions, reconnects, HTTP, startup errors, hostile servers, bounded memory, filters, split hosts, take-over from Maxwell, replay, TLS, secrets.
//! One test binary per group of tests that share servers (a binary links
//! the whole daemon once).

#[path = "../common/mod.rs"]
mod common;

mod binlog_files;
mod bootstrap;
mod bootstrap_corpus;
mod bounded_memory;
mod conformance;
mod ddl_errors;
mod ddl_events;
mod filters;
mod gtid_failover;
mod heartbeat;
mod hostile;
mod http;
mod library;
mod operator_input;
mod ops;
mod output;
mod positions;
mod reconnect;
mod replay_recapture;
mod replica;
mod schema_follow;
mod schema_restore;
mod secrets;
mod startup_errors;
mod takeover;
mod tls;
