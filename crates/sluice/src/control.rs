//! What the daemon is told while it runs: stop, or re-read its
//! configuration. The process forwards its signals here (SIGTERM/SIGINT:
//! stop, SIGHUP: reload); an embedding program or a test sends requests
//! through a channel, or hands over a shutdown future.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc;

/// A request to the running daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Stop reading, deliver what is held, store the position, return.
    Stop,
    /// Re-read the configuration and stream again with a new producer.
    Reload,
}

/// Where requests come from; resolved once the daemon's runtime exists
/// (signal handlers and futures need it).
pub enum Controls {
    /// SIGTERM and SIGINT stop, SIGHUP reloads.
    Signals,
    /// Requests sent by the caller; a dropped sender means stop.
    Channel(mpsc::UnboundedReceiver<Request>),
    /// Stops when the future completes.
    Shutdown(Pin<Box<dyn Future<Output = ()> + Send>>),
}

impl Controls {
    /// A channel to control the daemon with.
    pub fn channel() -> (mpsc::UnboundedSender<Request>, Controls) {
        let (tx, rx) = mpsc::unbounded_channel();
        (tx, Controls::Channel(rx))
    }

    /// Starts listening; must run inside the daemon's runtime. Signal
    /// handlers are installed at once, so a signal during startup is not
    /// fatal: it is seen once the daemon looks, and handled cleanly.
    pub fn listen(self) -> std::io::Result<Control> {
        let rx = match self {
            Controls::Channel(rx) => rx,
            Controls::Signals => {
                use tokio::signal::unix::{signal, SignalKind};
                let (tx, rx) = mpsc::unbounded_channel();
                let mut term = signal(SignalKind::terminate())?;
                let mut int = signal(SignalKind::interrupt())?;
                let mut hup = signal(SignalKind::hangup())?;
                tokio::spawn(async move {
                    loop {
                        let request = tokio::select! {
                            _ = term.recv() => Request::Stop,
                            _ = int.recv() => Request::Stop,
                            _ = hup.recv() => Request::Reload,
                        };
                        if tx.send(request).is_err() {
                            return;
                        }
                    }
                });
                rx
            }
            Controls::Shutdown(fut) => {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(async move {
                    fut.await;
                    let _ = tx.send(Request::Stop);
                    // Kept open: a closed channel would read as a stop
                    // anyway, but a stop is what was asked.
                    tx.closed().await;
                });
                rx
            }
        };
        Ok(Control { rx })
    }
}

/// The daemon's end: requests, one at a time.
pub struct Control {
    rx: mpsc::UnboundedReceiver<Request>,
}

impl Control {
    /// The next request; a closed channel is a stop.
    pub async fn recv(&mut self) -> Request {
        self.rx.recv().await.unwrap_or(Request::Stop)
    }
}
