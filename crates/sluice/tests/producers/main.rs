//! Every broker producer against its real broker (Kafka-API, Redis, RabbitMQ, NATS): rows consumed back and compared with the source, outages, refusals.
//! One test binary per group of tests that share servers (a binary links
//! the whole daemon once).

#[path = "../common/mod.rs"]
mod common;

#[cfg(feature = "kafka")]
mod kafka;
#[cfg(feature = "kafka")]
mod maxwell_config;
mod nats;
mod rabbitmq;
mod redis;
mod tls;
