//! What every stage of sluice shares, and nothing heavier: the producer
//! contract (the pipeline hands messages to a [`Producer`] without
//! compiling any broker client), option declarations (each option is
//! declared once, where it is used, and read through a typed accessor), and
//! the one JSON string writer.

pub mod json;
pub mod options;
pub mod producer;

pub use options::{ConfigError, Given, Opt, OptionInfo, Section, Values};
pub use producer::{Message, PrimaryKey, Producer, ProducerError, ProducerStats};
