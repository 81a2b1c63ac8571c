//! Plumbing of the operations tests: test certificates, curl as an
//! independent HTTPS client, a systemd notification socket, a headless
//! browser.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// The test certificates of scripts/tls.sh (made once, kept under .run/tls).
pub fn tls_dir() -> PathBuf {
    let out = Command::new(repo_root().join("scripts/tls.sh"))
        .output()
        .expect("run scripts/tls.sh");
    assert!(out.status.success(), "scripts/tls.sh failed");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The arguments of a node with HTTPS and basic authentication.
pub fn tls_auth_args(tls: &Path, auth: &str) -> Vec<String> {
    vec![
        format!("--http_ssl_cert={}", tls.join("server.pem").display()),
        format!("--http_ssl_key={}", tls.join("server.key").display()),
        format!("--http_ssl_ca={}", tls.join("ca.pem").display()),
        format!("--http_auth={auth}"),
    ]
}

/// GET over HTTPS with curl, trusting `ca`: (status, body); None when no
/// HTTP answer came (refused, TLS failure).
pub fn curl(ca: &Path, port: u16, path: &str, auth: Option<&str>) -> Option<(u16, String)> {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(["-w", "\n%{http_code}"]);
    if let Some(a) = auth {
        c.args(["-u", a]);
    }
    let out = c
        .arg(format!("https://127.0.0.1:{port}{path}"))
        .stderr(Stdio::null())
        .output()
        .expect("run curl");
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n')?;
    Some((code.trim().parse().ok()?, body.to_string()))
}

/// A socket standing in for systemd's NOTIFY_SOCKET.
pub struct NotifySocket {
    pub path: PathBuf,
    socket: UnixDatagram,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    pub fn new() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        NotifySocket {
            path,
            socket,
            _dir: dir,
        }
    }

    /// The next datagram within `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<String> {
        self.socket.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// Datagrams until one satisfies `done` (which is included), within
    /// `timeout`.
    pub fn until(&self, timeout: Duration, done: impl Fn(&str) -> bool) -> Vec<String> {
        let t0 = Instant::now();
        let mut got = Vec::new();
        while let Some(left) = timeout.checked_sub(t0.elapsed()) {
            match self.recv(left.max(Duration::from_millis(1))) {
                Some(m) => {
                    let stop = done(&m);
                    got.push(m);
                    if stop {
                        break;
                    }
                }
                None => break,
            }
        }
        got
    }
}

/// Runs Debian's chromium headless on `url` with a fresh profile; `what`
/// is `--dump-dom` or `--screenshot=FILE`. Returns stdout. Scripts run for
/// `virtual_ms` of virtual time (fetches complete within it).
pub fn chromium(url: &str, what: &str, virtual_ms: u64) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1500,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--virtual-time-budget={virtual_ms}"))
        .arg(what)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium (scripts/install-deps.sh installs Debian's chromium)");
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(90) {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("chromium output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Where tests leave files for people to look at.
pub fn artifacts_dir() -> PathBuf {
    let dir = repo_root().join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
