//! The schema model (databases, tables, ordered columns) and its capture from
//! `information_schema`.
//!
//! Interim (until the schema-history issue lands): the catalog is captured at
//! start and a DDL statement in the stream re-captures the tables it may
//! touch from the *current* catalog. Where the server logs full row metadata
//! (`binlog_row_metadata=FULL`), the decoder prefers the binlog's own column
//! names, signedness, charsets and enum/set values, which are exact at the
//! event's position.

pub mod capture;
pub mod ddl;
pub mod model;

pub use capture::{capture_catalog, capture_table, CaptureError};
pub use model::{Catalog, Column, Database, Table};
