//! The replication session's ssl modes against private MariaDB servers with
//! TLS (certificates of scripts/tls.sh: good, expired, for a wrong host),
//! without TLS, and with require_secure_transport=ON; client certificates;
//! MariaDB's ed25519 login. Ports 24301-24305.
//!
//! Each test owns one server and runs its cases in turn, reporting every
//! failed case at the end.

use std::time::Duration;

use sluice_binlog::{
    AuthOptions, BinlogPosition, BinlogSession, SessionOptions, SourceError, SslMode, TlsOptions,
};
use sluice_fake_mysql::private_mariadb::{tls_dir, MariaDb, ServerTls};

struct Case<'a> {
    db: &'a MariaDb,
    host: &'static str,
    user: &'static str,
    password: &'static str,
    tls: TlsOptions,
}

fn tls(mode: SslMode, ca: Option<&str>) -> TlsOptions {
    TlsOptions {
        mode,
        ca: ca.map(|f| tls_dir().join(f)),
        option_prefix: "replication_".into(),
        ..Default::default()
    }
}

impl<'a> Case<'a> {
    fn new(db: &'a MariaDb, tls: TlsOptions) -> Self {
        Case {
            db,
            host: "127.0.0.1",
            user: "sluice",
            password: "sluice",
            tls,
        }
    }

    fn connect(&self, rt: &tokio::runtime::Runtime) -> Result<BinlogSession, SourceError> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT_ID: AtomicU32 = AtomicU32::new(900);
        let (file, offset) = self.db.master_position();
        let opts = SessionOptions {
            host: self.host.into(),
            port: self.db.port,
            user: self.user.into(),
            password: self.password.into(),
            server_id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            start: BinlogPosition {
                file,
                offset,
                gtid: None,
            },
            heartbeat: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            gtid_mode: false,
            tls: self.tls.clone(),
            auth: AuthOptions::default(),
        };
        rt.block_on(async {
            let mut s = BinlogSession::connect(&opts).await?;
            // The stream itself works: the first event (a rotate) arrives.
            s.next_event().await?;
            Ok(s)
        })
    }

    /// Connects; Ok(whether TLS) or the error's text.
    fn outcome(&self, rt: &tokio::runtime::Runtime) -> Result<bool, String> {
        self.connect(rt).map(|s| s.is_tls()).map_err(|e| {
            let text = e.to_string();
            assert!(
                !text.contains(self.password) || self.password == self.user,
                "password in: {text}"
            );
            text
        })
    }
}

/// Runs named checks and fails once at the end with every failure.
#[derive(Default)]
struct Report(Vec<String>);

impl Report {
    fn expect_tls(&mut self, name: &str, got: Result<bool, String>, tls: bool) {
        match got {
            Ok(t) if t == tls => {}
            Ok(t) => self
                .0
                .push(format!("{name}: connected, TLS {t} (expected {tls})")),
            Err(e) => self.0.push(format!("{name}: failed: {e}")),
        }
    }

    fn expect_err(&mut self, name: &str, got: Result<bool, String>, needles: &[&str]) {
        match got {
            Ok(_) => self
                .0
                .push(format!("{name}: connected, expected a failure")),
            Err(e) => {
                for n in needles {
                    if !e.contains(n) {
                        self.0.push(format!("{name}: message lacks '{n}': {e}"));
                    }
                }
            }
        }
    }

    fn finish(self) {
        assert!(self.0.is_empty(), "failed cases:\n{}", self.0.join("\n"));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn server_with_a_good_certificate() {
    let rt = runtime();
    let db = MariaDb::start(24301, ServerTls::On("server"));
    let mut r = Report::default();
    for mode in SslMode::ALL {
        let got = Case::new(&db, tls(mode, Some("ca.pem"))).outcome(&rt);
        r.expect_tls(
            &format!("{mode} with the right CA"),
            got,
            mode != SslMode::Disabled,
        );
    }
    let mut by_name = Case::new(&db, tls(SslMode::VerifyIdentity, Some("ca.pem")));
    by_name.host = "localhost";
    r.expect_tls("VERIFY_IDENTITY by DNS name", by_name.outcome(&rt), true);

    for mode in [SslMode::VerifyCa, SslMode::VerifyIdentity] {
        let got = Case::new(&db, tls(mode, Some("other-ca.pem"))).outcome(&rt);
        r.expect_err(
            &format!("{mode} with the wrong CA"),
            got,
            &["not signed by a CA in replication_ssl_ca", "other-ca.pem"],
        );
        let got = Case::new(&db, tls(mode, None)).outcome(&rt);
        r.expect_err(
            &format!("{mode} without ssl_ca"),
            got,
            &["replication_ssl_ca is not set"],
        );
    }
    for mode in [SslMode::Preferred, SslMode::Required] {
        let got = Case::new(&db, tls(mode, Some("other-ca.pem"))).outcome(&rt);
        r.expect_tls(&format!("{mode} does not verify"), got, true);
    }

    // Client certificates.
    db.sql(
        "CREATE USER IF NOT EXISTS 'certuser'@'127.0.0.1' IDENTIFIED BY 'certpw' \
         REQUIRE SUBJECT '/CN=sluice-client'; \
         GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'certuser'@'127.0.0.1'",
    );
    let mut with_cert = Case::new(&db, tls(SslMode::VerifyIdentity, Some("ca.pem")));
    with_cert.user = "certuser";
    with_cert.password = "certpw";
    with_cert.tls.cert = Some(tls_dir().join("client.pem"));
    with_cert.tls.key = Some(tls_dir().join("client.key"));
    r.expect_tls("client certificate", with_cert.outcome(&rt), true);
    with_cert.tls.cert = None;
    with_cert.tls.key = None;
    r.expect_err(
        "no client certificate",
        with_cert.outcome(&rt),
        &["certuser"],
    );

    // MariaDB's ed25519 plugin, plain and over TLS.
    db.install_ed25519();
    db.sql(
        "CREATE USER IF NOT EXISTS 'eduser'@'127.0.0.1' IDENTIFIED VIA ed25519 USING PASSWORD('ed-Secret-1'); \
         GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'eduser'@'127.0.0.1'",
    );
    for mode in [SslMode::Disabled, SslMode::VerifyIdentity] {
        let mut ed = Case::new(&db, tls(mode, Some("ca.pem")));
        ed.user = "eduser";
        ed.password = "ed-Secret-1";
        r.expect_tls(
            &format!("ed25519 login, {mode}"),
            ed.outcome(&rt),
            mode != SslMode::Disabled,
        );
        ed.password = "ed-Wrong-2";
        r.expect_err(
            &format!("ed25519 wrong password, {mode}"),
            ed.outcome(&rt),
            &["authentication failed for user 'eduser'"],
        );
    }
    r.finish();
}

#[test]
fn server_with_an_expired_certificate() {
    let rt = runtime();
    let db = MariaDb::start(24302, ServerTls::On("expired"));
    let mut r = Report::default();
    for mode in [SslMode::VerifyCa, SslMode::VerifyIdentity] {
        let got = Case::new(&db, tls(mode, Some("ca.pem"))).outcome(&rt);
        r.expect_err(
            &format!("{mode} expired"),
            got,
            &["certificate has expired", "replication_ssl=REQUIRED"],
        );
    }
    for mode in [SslMode::Preferred, SslMode::Required] {
        let got = Case::new(&db, tls(mode, Some("ca.pem"))).outcome(&rt);
        r.expect_tls(&format!("{mode} does not verify"), got, true);
    }
    r.finish();
}

#[test]
fn server_with_a_certificate_for_another_host() {
    let rt = runtime();
    let db = MariaDb::start(24303, ServerTls::On("wronghost"));
    let mut r = Report::default();
    let got = Case::new(&db, tls(SslMode::VerifyIdentity, Some("ca.pem"))).outcome(&rt);
    r.expect_err(
        "VERIFY_IDENTITY, wrong host",
        got,
        &[
            "not valid for host name '127.0.0.1'",
            "replication_ssl=VERIFY_CA",
        ],
    );
    for mode in [SslMode::Preferred, SslMode::Required, SslMode::VerifyCa] {
        let got = Case::new(&db, tls(mode, Some("ca.pem"))).outcome(&rt);
        r.expect_tls(&format!("{mode} ignores the name"), got, true);
    }
    r.finish();
}

#[test]
fn server_without_tls() {
    let rt = runtime();
    let db = MariaDb::start(24304, ServerTls::Off);
    let mut r = Report::default();
    r.expect_tls(
        "DISABLED",
        Case::new(&db, tls(SslMode::Disabled, None)).outcome(&rt),
        false,
    );
    r.expect_tls(
        "PREFERRED falls back to plain",
        Case::new(&db, tls(SslMode::Preferred, Some("ca.pem"))).outcome(&rt),
        false,
    );
    for mode in [
        SslMode::Required,
        SslMode::VerifyCa,
        SslMode::VerifyIdentity,
    ] {
        let got = Case::new(&db, tls(mode, Some("ca.pem"))).outcome(&rt);
        r.expect_err(
            &format!("{mode} without TLS on the server"),
            got,
            &["does not offer TLS", &format!("replication_ssl={mode}")],
        );
    }
    r.finish();
}

#[test]
fn server_requiring_secure_transport() {
    let rt = runtime();
    let db = MariaDb::start(24305, ServerTls::Require);
    let mut r = Report::default();
    r.expect_err(
        "DISABLED against require_secure_transport=ON",
        Case::new(&db, tls(SslMode::Disabled, None)).outcome(&rt),
        &["require_secure_transport=ON", "replication_ssl=REQUIRED"],
    );
    for mode in [
        SslMode::Preferred,
        SslMode::Required,
        SslMode::VerifyIdentity,
    ] {
        let got = Case::new(&db, tls(mode, Some("ca.pem"))).outcome(&rt);
        r.expect_tls(&format!("{mode}"), got, true);
    }
    r.finish();
}
