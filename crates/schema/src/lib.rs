//! The schema model (databases, tables, ordered columns) and its capture from
//! `information_schema`.
//!
//! The schema follows the binlog: DDL statements are parsed (`ddl::parse`)
//! and applied to the model (`ddl::apply`) as the server applied them, so
//! every row is decoded with the schema in force at its position; the
//! schema history (kept by the daemon) stores each change as `serial`
//! JSON. `information_schema` is read only on a first start, for tables
//! created by a statement skipped with `ddl_parse_errors=skip`, and for
//! `CREATE TABLE … SELECT`. Where the server logs full row metadata
//! (`binlog_row_metadata=FULL`), the decoder also uses the binlog's own
//! column names, signedness, charsets and enum/set values.

pub mod capture;
pub mod connect;
pub mod ddl;
pub mod model;
pub mod serial;

pub use capture::{capture_catalog, capture_server, capture_table, CaptureError};
pub use model::{Catalog, Column, Database, Table};
