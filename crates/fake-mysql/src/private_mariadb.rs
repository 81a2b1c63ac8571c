//! The real servers of the tests: private MariaDB instances started through
//! `scripts/mariadb.sh` (in this checkout's `.run/`), and the certificates
//! of `scripts/tls.sh`. Shared here so that every crate's tests start them
//! the same way.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The directory of the test certificates (made on first use).
pub fn tls_dir() -> PathBuf {
    let out = Command::new(repo_root().join("scripts/tls.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/tls.sh");
    assert!(out.status.success(), "scripts/tls.sh failed");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// How a private server does TLS (`SLUICE_MYSQL_TLS`, `SLUICE_MYSQL_TLS_CERT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerTls {
    Off,
    /// TLS with the certificate of that name in [`tls_dir`].
    On(&'static str),
    /// TLS (good certificate) and require_secure_transport=ON.
    Require,
}

/// A private MariaDB on `port`, stopped when dropped.
pub struct MariaDb {
    pub port: u16,
}

impl MariaDb {
    pub fn start(port: u16, tls: ServerTls) -> MariaDb {
        let (mode, cert) = match tls {
            ServerTls::Off => ("off", "server"),
            ServerTls::On(cert) => ("on", cert),
            ServerTls::Require => ("require", "server"),
        };
        // An instance left running by an interrupted run may have other
        // TLS settings: start afresh.
        let db = MariaDb { port };
        db.script("stop");
        let st = Command::new(repo_root().join("scripts/mariadb.sh"))
            .arg("start")
            .env("SLUICE_MYSQL_PORT", port.to_string())
            .env("SLUICE_MYSQL_TLS", mode)
            .env("SLUICE_MYSQL_TLS_CERT", cert)
            .env("SLUICE_MYSQL_BUFFER_POOL", "32M")
            .stdout(Stdio::null())
            .status()
            .expect("run scripts/mariadb.sh");
        assert!(
            st.success(),
            "scripts/mariadb.sh start on {port} ({tls:?}) failed"
        );
        db
    }

    fn script(&self, cmd: &str) {
        let _ = Command::new(repo_root().join("scripts/mariadb.sh"))
            .arg(cmd)
            .env("SLUICE_MYSQL_PORT", self.port.to_string())
            .stdout(Stdio::null())
            .status();
    }

    /// Runs SQL as root over the socket; returns the rows, tab-separated,
    /// without headers. Panics on failure (test setup).
    pub fn sql(&self, sql: &str) -> String {
        let out = Command::new(repo_root().join("scripts/mariadb.sh"))
            .args(["sql", "-N", "-B", "-e", sql])
            .env("SLUICE_MYSQL_PORT", self.port.to_string())
            .output()
            .expect("run scripts/mariadb.sh sql");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The current binlog position: (file, offset).
    pub fn master_position(&self) -> (String, u64) {
        let row = self.sql("SHOW MASTER STATUS");
        let mut cols = row.split('\t');
        let file = cols.next().unwrap_or_default().trim().to_string();
        let pos = cols
            .next()
            .and_then(|p| p.trim().parse().ok())
            .expect("binlog position");
        (file, pos)
    }

    /// Installs MariaDB's ed25519 plugin (once per instance).
    pub fn install_ed25519(&self) {
        let n = self
            .sql("SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'ed25519'");
        if n.trim() == "0" {
            self.sql("INSTALL SONAME 'auth_ed25519'");
        }
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.script("stop");
    }
}
