//! A TCP forwarder whose target can be switched: the address sluice knows
//! stays the same while the server behind it changes (a failover).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

pub struct Proxy {
    pub port: u16,
    target: Arc<AtomicU16>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    frozen: Arc<AtomicBool>,
}

/// Forwards bytes; while `frozen`, swallows them (a peer that stopped
/// answering without closing anything: a half-open path).
fn pump(mut from: TcpStream, mut to: TcpStream, frozen: Arc<AtomicBool>) {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) if frozen.load(Ordering::SeqCst) => continue,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

impl Proxy {
    /// Forwards 127.0.0.1:<some free port> to 127.0.0.1:`target`.
    pub fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let port = listener.local_addr().expect("proxy addr").port();
        let target = Arc::new(AtomicU16::new(target));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let frozen = Arc::new(AtomicBool::new(false));
        let (t, o, f) = (target.clone(), open.clone(), frozen.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if f.load(Ordering::SeqCst) {
                    // Accepted and never answered.
                    if let Ok(mut v) = o.lock() {
                        v.push(client);
                    }
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", t.load(Ordering::SeqCst))) else {
                    continue; // dropping the client closes it: nothing behind the address
                };
                if let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) {
                    if let Ok(mut v) = o.lock() {
                        v.push(c2);
                        v.push(s2);
                    }
                }
                let (c, s) = (client.try_clone(), server.try_clone());
                if let (Ok(c), Ok(s)) = (c, s) {
                    let (f1, f2) = (f.clone(), f.clone());
                    std::thread::spawn(move || pump(c, server, f1));
                    std::thread::spawn(move || pump(s, client, f2));
                }
            }
        });
        Proxy {
            port,
            target,
            open,
            frozen,
        }
    }

    /// Stops forwarding without closing anything; `false` resumes.
    pub fn freeze(&self, frozen: bool) {
        self.frozen.store(frozen, Ordering::SeqCst);
    }

    /// Sends new connections to `target` and cuts every open one.
    pub fn switch_to(&self, target: u16) {
        self.target.store(target, Ordering::SeqCst);
        if let Ok(mut v) = self.open.lock() {
            for s in v.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}
