//! The HTTP endpoint every node serves from process start, leader or not,
//! under `http_path_prefix`: probes (`/ping`, `/healthcheck`, `/leader`,
//! always open), `/status`, `/metrics` (and Maxwell's `/prometheus`),
//! `/config`, `/diagnostic`, `/cluster` and the status page at the root
//! (behind `http_auth` when it is set), over TLS with `http_ssl_cert`.
//!
//! A deliberately small HTTP/1.x server (GET/HEAD, one request per
//! connection): these are probes, scrapes and one page, not an API, and a
//! full HTTP stack would double the build for nothing.
//!
//! - [`options`]: the options and their checks;
//! - [`server`]: accepting connections (TLS or plain), reading a request;
//! - [`routes`]: what each path answers;
//! - [`auth`], [`tls`]: basic authentication, certificates;
//! - [`cluster`] with [`client`]: the cluster view (every node, from
//!   ZooKeeper and the peers' `/status`);
//! - [`page`]: the status page.

pub mod auth;
pub mod client;
pub mod cluster;
mod options;
mod page;
mod routes;
mod server;
pub mod tls;

pub use options::{HttpOptions, OPTIONS};
pub use server::HttpServer;
