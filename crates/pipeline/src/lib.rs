//! From binlog events to Maxwell JSON: resolve tables, decode rows, group
//! them into transactions (bounded memory), encode, and hand them to a producer.

pub mod charset;
pub mod collations;
pub mod ddl_json;
pub mod encode;
pub mod encrypt;
pub mod filter;
pub use sluice_core::json;
pub mod json_diff;
pub mod json_text;
pub mod jsonb;
mod parallel;
pub mod partial_rows;
pub mod processor;
mod render;
pub mod snapshot;
pub mod table;
pub mod txn;
pub mod values;
pub mod wkt;

pub use encode::{ColumnPattern, OutputConfig};
pub use encrypt::{EncryptMode, Encryptor};
pub use filter::Filter;
pub use processor::{PipelineError, Processor, ProcessorOptions, SchemaSource};
