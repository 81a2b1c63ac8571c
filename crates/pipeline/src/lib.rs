//! From binlog events to Maxwell JSON: resolve tables, decode rows, group
//! them into transactions (bounded memory), encode, and hand them to a sink.

pub mod charset;
pub mod ddl_json;
pub mod encode;
pub mod json;
pub mod jsonb;
pub mod processor;
pub mod table;
pub mod txn;
pub mod values;
pub mod wkt;

pub use encode::{ColumnPattern, OutputConfig};
pub use processor::{PipelineError, Processor, ProcessorOptions, SchemaSource};
