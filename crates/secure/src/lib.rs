//! What secures sluice's outgoing connections, shared by the replication
//! session, the SQL connections and the producers: TLS client settings with
//! the semantics of MySQL's `--ssl-mode` ([`tls`]), and Ed25519 signatures
//! for the logins that sign a server's nonce ([`ed25519`]: MariaDB's
//! `client_ed25519`, NATS NKeys).

pub mod ed25519;
pub mod tls;

pub use tls::{SslMode, TlsError, TlsOptions};
