//! The replication session with a MySQL or MariaDB server and the parsing of
//! binlog events. This crate only reads: it never reconnects by itself (the
//! supervisor decides when to), and it holds no schema knowledge.

pub mod auth;
pub mod error;
pub mod event;
pub mod file;
pub mod gtid;
mod handshake;
pub mod mysql_gtid;
pub mod packet;
pub mod payload;
pub mod position;
pub mod resume;
pub mod rows;
pub mod session;
pub mod tls;

pub use auth::AuthOptions;
pub use error::SourceError;
pub use event::{Event, EventHeader};
pub use gtid::GtidState;
pub use position::BinlogPosition;
pub use session::{BinlogSession, SessionOptions};
pub use tls::{SslMode, TlsError, TlsOptions};
