//! systemd service notifications (`Type=notify`, `WatchdogSec=`), the
//! sd_notify protocol without libsystemd: datagrams of `NAME=value` lines
//! to the unix socket `NOTIFY_SOCKET` names (a path, or `@name` for the
//! abstract namespace).
//!
//! - `READY=1` once the node streams (leader) or stands by (leader election),
//!   derived from the role telemetry reports; `STATUS=` with every change.
//! - `WATCHDOG=1` every half of `WATCHDOG_USEC` while the node is healthy
//!   (the same rule as `/healthcheck`), from a task on the async runtime:
//!   a runtime that hangs stops feeding the watchdog too.
//! - `STOPPING=1` when the node shuts down.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::telemetry::{Role, Telemetry};

/// A connection to systemd's notification socket.
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// The socket `NOTIFY_SOCKET` names; None when sluice does not run
    /// under systemd (or a supervisor that speaks the protocol).
    pub fn from_env() -> Option<io::Result<Notifier>> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        Some(Notifier::to(&path.to_string_lossy()))
    }

    /// `path`: a file system path, or `@name` (abstract namespace).
    pub fn to(path: &str) -> io::Result<Notifier> {
        let addr = match path.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name.as_bytes())?
            }
            None => SocketAddr::from_pathname(path)?,
        };
        Ok(Notifier {
            socket: UnixDatagram::unbound()?,
            addr,
        })
    }

    pub fn send(&self, state: &str) -> io::Result<()> {
        self.socket
            .send_to_addr(state.as_bytes(), &self.addr)
            .map(|_| ())
    }
}

/// How often to feed the watchdog: half of `WATCHDOG_USEC`, if it is set
/// for this process (`WATCHDOG_PID` absent or ours).
pub fn watchdog_period(usec: Option<&str>, pid: Option<&str>, mine: u32) -> Option<Duration> {
    if pid.is_some_and(|p| p.trim().parse::<u32>().ok() != Some(mine)) {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok().filter(|u| *u > 0)?;
    Some(Duration::from_micros(usec / 2))
}

/// The notification a change of role calls for; `ready` remembers whether
/// READY=1 went out already.
pub fn message_for(role: Role, epoch: u64, ready: &AtomicBool) -> Option<String> {
    match role {
        Role::Leader | Role::Standby => {
            let status = match role {
                Role::Leader => format!("STATUS=leader, streaming (epoch {epoch})"),
                _ => "STATUS=standby, waiting to be elected".to_string(),
            };
            if ready.swap(true, Ordering::Relaxed) {
                Some(status)
            } else {
                Some(format!("READY=1\n{status}"))
            }
        }
        Role::Stopping => Some("STOPPING=1\nSTATUS=stopping".into()),
        Role::Starting => None,
    }
}

/// Starts notifying systemd if `NOTIFY_SOCKET` is set: READY/STATUS/
/// STOPPING on role changes, and the watchdog task on `rt`.
pub fn start(telemetry: &Arc<Telemetry>, rt: &tokio::runtime::Handle) {
    let notifier = match Notifier::from_env() {
        None => return,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "NOTIFY_SOCKET is set but unusable: no systemd notifications");
            return;
        }
        Some(Ok(n)) => Arc::new(n),
    };
    let ready = AtomicBool::new(false);
    {
        let notifier = notifier.clone();
        let weak = Arc::downgrade(telemetry);
        telemetry.on_role_change(Box::new(move |role| {
            let epoch = weak.upgrade().map_or(0, |t| t.epoch());
            if let Some(msg) = message_for(role, epoch, &ready) {
                if let Err(e) = notifier.send(&msg) {
                    tracing::warn!(error = %e, "cannot notify systemd");
                }
            }
        }));
    }
    let period = watchdog_period(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    );
    if let Some(period) = period {
        rt.spawn(feed_watchdog(notifier, Arc::downgrade(telemetry), period));
    }
}

async fn feed_watchdog(
    notifier: Arc<Notifier>,
    telemetry: std::sync::Weak<Telemetry>,
    period: Duration,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_healthy = true;
    loop {
        tick.tick().await;
        let Some(t) = telemetry.upgrade() else { return };
        match t.unhealthy() {
            None => {
                was_healthy = true;
                let _ = notifier.send("WATCHDOG=1");
            }
            Some(why) => {
                // systemd restarts the service once the watchdog runs out.
                if was_healthy {
                    tracing::error!(reason = %why, "unhealthy: no longer feeding the systemd watchdog");
                }
                was_healthy = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_is_fed_at_half_its_timeout_for_this_process_only() {
        assert_eq!(
            watchdog_period(Some("30000000"), None, 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_period(Some("30000000"), Some("7"), 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(watchdog_period(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_period(None, None, 7), None);
        assert_eq!(watchdog_period(Some("0"), None, 7), None);
        assert_eq!(watchdog_period(Some("x"), None, 7), None);
    }

    #[test]
    fn ready_once_when_streaming_or_standing_by_then_status_then_stopping() {
        let ready = AtomicBool::new(false);
        assert_eq!(message_for(Role::Starting, 0, &ready), None);
        assert_eq!(
            message_for(Role::Standby, 0, &ready).as_deref(),
            Some("READY=1\nSTATUS=standby, waiting to be elected")
        );
        assert_eq!(
            message_for(Role::Leader, 3, &ready).as_deref(),
            Some("STATUS=leader, streaming (epoch 3)")
        );
        assert_eq!(
            message_for(Role::Stopping, 3, &ready).as_deref(),
            Some("STOPPING=1\nSTATUS=stopping")
        );
        let fresh = AtomicBool::new(false);
        assert!(message_for(Role::Leader, 1, &fresh)
            .unwrap()
            .starts_with("READY=1\n"));
    }

    #[test]
    fn datagrams_reach_a_path_and_an_abstract_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        Notifier::to(path.to_str().unwrap())
            .unwrap()
            .send("READY=1")
            .unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("sluice-notify-test-{}", std::process::id());
        let abs = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
        Notifier::to(&format!("@{name}"))
            .unwrap()
            .send("WATCHDOG=1")
            .unwrap();
        let n = abs.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
    }
}
