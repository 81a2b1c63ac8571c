//! The producers: where the JSON goes. Each producer is a module with its
//! options and one line in [`registry::PRODUCERS`]. Redis, RabbitMQ and NATS
//! share one acknowledged-delivery core ([`acked`]); every producer shares
//! one refusal policy ([`refusal`]) and Maxwell's routing ([`route`]).

pub mod acked;
mod conn;
mod file;
pub mod kafka;
pub mod nats;
pub mod nats_auth;
pub mod rabbitmq;
pub mod redis;
pub mod refusal;
pub mod registry;
pub mod route;
mod stdout;
mod tls;
mod writer;

pub use file::FileProducer;
pub use registry::{ProducerConfig, Registration, Routing, PRODUCERS};
pub use stdout::StdoutProducer;

pub use sluice_core::producer::{Message, PrimaryKey, Producer, ProducerError, ProducerStats};
