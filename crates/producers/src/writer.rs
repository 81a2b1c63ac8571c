//! A writer thread for the line-oriented producers: the pipeline fills one
//! buffer while the previous one is written, so the kernel's copy into the
//! page cache (or the terminal) does not stall decoding.

use std::io::Write;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

const BUF_BYTES: usize = 256 * 1024;

enum Job {
    Write(Vec<u8>),
    /// Write everything queued, make it durable, then answer.
    Flush,
}

pub struct BackgroundWriter {
    buf: Vec<u8>,
    jobs: Option<SyncSender<Job>>,
    /// Empty buffers coming back for reuse, and flush answers.
    returned: Receiver<Result<Option<Vec<u8>>, std::io::Error>>,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundWriter {
    /// `sync` runs after each flush (e.g. fdatasync for files).
    pub fn new<W, F>(mut out: W, mut sync: F, name: &str) -> std::io::Result<Self>
    where
        W: Write + Send + 'static,
        F: FnMut(&mut W) -> std::io::Result<()> + Send + 'static,
    {
        let (jobs, rx) = sync_channel::<Job>(2);
        let (back, returned) = sync_channel(4);
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                for job in rx {
                    let answer = match job {
                        Job::Write(mut b) => out.write_all(&b).map(|_| {
                            b.clear();
                            Some(b)
                        }),
                        Job::Flush => out.flush().and_then(|_| sync(&mut out)).map(|_| None),
                    };
                    let failed = answer.is_err();
                    if back.send(answer).is_err() || failed {
                        return;
                    }
                }
            })?;
        Ok(BackgroundWriter {
            buf: Vec::with_capacity(BUF_BYTES),
            jobs: Some(jobs),
            returned,
            thread: Some(thread),
        })
    }

    fn dead() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::BrokenPipe, "writer thread stopped")
    }

    /// Appends a line (the newline is added here).
    pub fn write_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.buf.extend_from_slice(line);
        self.buf.push(b'\n');
        if self.buf.len() >= BUF_BYTES {
            self.hand_over()?;
        }
        Ok(())
    }

    /// Queues `block` (whole lines) as it is, after anything buffered;
    /// returns an empty buffer for the caller's next block: one the thread
    /// has written, when one is back, else a new one.
    pub fn write_block(&mut self, block: Vec<u8>) -> std::io::Result<Vec<u8>> {
        if !self.buf.is_empty() {
            self.hand_over()?;
        }
        let spare = self.take_returned()?.unwrap_or_default();
        self.send(block)?;
        Ok(spare)
    }

    /// A buffer the thread has written, if one is back (a write error
    /// surfaces here).
    fn take_returned(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        match self.returned.try_recv() {
            Ok(Ok(b)) => Ok(b),
            Ok(Err(e)) => Err(e),
            Err(_) => Ok(None),
        }
    }

    fn send(&mut self, full: Vec<u8>) -> std::io::Result<()> {
        self.jobs
            .as_ref()
            .ok_or_else(Self::dead)?
            .send(Job::Write(full))
            .map_err(|_| Self::dead())
    }

    fn hand_over(&mut self) -> std::io::Result<()> {
        // Take back a finished buffer when one is ready (errors surface here).
        // A block the pipeline handed over can be megabytes: it is not kept
        // as the line buffer for good.
        let next = match self.take_returned()? {
            Some(b) if (BUF_BYTES..=4 * BUF_BYTES).contains(&b.capacity()) => b,
            _ => Vec::with_capacity(BUF_BYTES),
        };
        let full = std::mem::replace(&mut self.buf, next);
        self.send(full)
    }

    /// Returns once everything written so far is out (and synced).
    pub fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.hand_over()?;
        }
        self.jobs
            .as_ref()
            .ok_or_else(Self::dead)?
            .send(Job::Flush)
            .map_err(|_| Self::dead())?;
        loop {
            match self.returned.recv() {
                Ok(Ok(None)) => return Ok(()),
                Ok(Ok(Some(_))) => continue,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(Self::dead()),
            }
        }
    }
}

impl Drop for BackgroundWriter {
    fn drop(&mut self) {
        let _ = self.flush();
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
