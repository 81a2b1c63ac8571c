//! DDL: parsing the statements the binlog carries and applying them to the
//! schema model.

pub mod apply;
pub mod ast;
pub mod lex;
pub mod parse;
pub mod types;

pub use apply::{apply, ApplyError, Change, Context};
pub use ast::Statement;
pub use parse::{parse, ParseError};
pub use types::{charset_of_collation, normalize_charset, Flavor};

#[cfg(test)]
mod tests;
