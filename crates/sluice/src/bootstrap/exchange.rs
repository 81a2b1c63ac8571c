//! Where the snapshot task (async, on the runtime) and the processor thread
//! meet: the task registers its table and hands over each chunk before the
//! chunk's high watermark is written; the processor takes the chunk at the
//! high watermark and reports what it handed to the producer, and later
//! that the producer flushed it. The task waits on a notification; the
//! processor never waits on the task.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use sluice_pipeline::snapshot::{Chunk, Delivered, SnapshotSource, TaskInfo};
use tokio::sync::Notify;

#[derive(Default)]
struct State {
    tasks: HashMap<u64, TaskInfo>,
    chunks: HashMap<(u64, u64), Chunk>,
    /// Handed to the producer, in binlog order, not read by the task yet.
    handed: VecDeque<Delivered>,
    /// Handed but not flushed yet.
    unflushed: Vec<Delivered>,
    /// Flushed, not read by the task yet.
    delivered: VecDeque<Delivered>,
    request_seen: bool,
    /// Low watermarks seen in the binlog, not yet waited for by the task.
    lows_seen: HashSet<(u64, u64)>,
}

pub struct Exchange {
    state: Mutex<State>,
    changed: Notify,
    next_chunk: AtomicU64,
}

impl Exchange {
    pub fn new() -> Arc<Exchange> {
        Arc::new(Exchange {
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            next_chunk: AtomicU64::new(1),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The processor's side.
    pub fn stream_side(self: &Arc<Self>) -> Box<dyn SnapshotSource> {
        Box::new(StreamSide(self.clone()))
    }

    /// A chunk number never used in this stream (watermarks of an attempt
    /// that failed must not match a later chunk).
    pub fn next_chunk(&self) -> u64 {
        self.next_chunk.fetch_add(1, Relaxed)
    }

    /// Makes `info` known to the processor, forgetting chunks of an earlier
    /// attempt at the same task.
    pub fn register(&self, info: TaskInfo) {
        let mut s = self.state();
        let task = info.task;
        s.chunks.retain(|(t, _), _| *t != task);
        s.lows_seen.retain(|(t, _)| *t != task);
        s.tasks.insert(task, info);
    }

    pub fn forget(&self, task: u64) {
        let mut s = self.state();
        s.tasks.remove(&task);
        s.chunks.retain(|(t, _), _| *t != task);
    }

    pub fn hand_over(&self, chunk: Chunk) {
        self.state().chunks.insert((chunk.task, chunk.chunk), chunk);
    }

    /// What the processor handed to the producer since the last call.
    pub fn take_handed(&self) -> Vec<Delivered> {
        self.state().handed.drain(..).collect()
    }

    /// What the producer delivered since the last call (binlog order).
    pub fn take_delivered(&self) -> Vec<Delivered> {
        self.state().delivered.drain(..).collect()
    }

    /// Whether a request insert went by since the last call.
    pub fn take_request_seen(&self) -> bool {
        std::mem::take(&mut self.state().request_seen)
    }

    /// Whether the low watermark of `chunk` went by in the binlog (once).
    pub fn take_low_seen(&self, task: u64, chunk: u64) -> bool {
        self.state().lows_seen.remove(&(task, chunk))
    }

    /// Returns once something changed (or at once, if something changed
    /// since the last wait).
    pub async fn changed(&self) {
        self.changed.notified().await
    }
}

struct StreamSide(Arc<Exchange>);

impl SnapshotSource for StreamSide {
    fn task(&self, task: u64) -> Option<TaskInfo> {
        self.0.state().tasks.get(&task).cloned()
    }

    fn take_chunk(&mut self, task: u64, chunk: u64) -> Option<Chunk> {
        self.0.state().chunks.remove(&(task, chunk))
    }

    fn handed(&mut self, what: Delivered) {
        {
            let mut s = self.0.state();
            s.handed.push_back(what.clone());
            s.unflushed.push(what);
        }
        self.0.changed.notify_one();
    }

    fn flushed(&mut self) {
        let any = {
            let mut s = self.0.state();
            let done: Vec<Delivered> = s.unflushed.drain(..).collect();
            let any = !done.is_empty();
            s.delivered.extend(done);
            any
        };
        if any {
            self.0.changed.notify_one();
        }
    }

    fn request_seen(&mut self) {
        self.0.state().request_seen = true;
        self.0.changed.notify_one();
    }

    fn low_seen(&mut self, task: u64, chunk: u64) {
        {
            let mut s = self.0.state();
            // Only a registered task waits for it (a restarted stream reads
            // old watermarks again).
            if !s.tasks.contains_key(&task) {
                return;
            }
            s.lows_seen.insert((task, chunk));
        }
        self.0.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(task: u64) -> TaskInfo {
        TaskInfo {
            task,
            database: "d".into(),
            table: "t".into(),
            comment: None,
            key_columns: vec!["id".into()],
        }
    }

    fn chunk(task: u64, chunk: u64) -> Chunk {
        Chunk {
            task,
            chunk,
            columns: vec!["id".into()],
            rows: vec![],
        }
    }

    #[test]
    fn delivery_is_reported_only_after_the_flush() {
        let x = Exchange::new();
        let mut side = x.stream_side();
        x.register(info(7));
        x.hand_over(chunk(7, 1));
        assert!(side.take_chunk(7, 1).is_some());
        assert!(side.take_chunk(7, 1).is_none(), "taken once");
        let done = Delivered::Chunk {
            task: 7,
            chunk: 1,
            emitted: 3,
            superseded: 1,
        };
        side.handed(done.clone());
        assert_eq!(x.take_handed(), vec![done.clone()]);
        assert!(x.take_delivered().is_empty(), "not flushed yet");
        side.flushed();
        assert_eq!(x.take_delivered(), vec![done]);
        assert!(x.take_delivered().is_empty());
    }

    #[test]
    fn a_new_attempt_forgets_the_chunks_of_the_last() {
        let x = Exchange::new();
        let mut side = x.stream_side();
        x.register(info(7));
        x.hand_over(chunk(7, 1));
        x.register(info(7));
        assert!(side.take_chunk(7, 1).is_none());
        assert_ne!(x.next_chunk(), x.next_chunk());
        assert_eq!(side.task(7).map(|t| t.table), Some("t".to_string()));
        x.forget(7);
        assert!(side.task(7).is_none());
    }

    #[test]
    fn a_low_watermark_is_reported_once_for_a_registered_task() {
        let x = Exchange::new();
        let mut side = x.stream_side();
        side.low_seen(7, 1);
        assert!(!x.take_low_seen(7, 1), "no task 7 registered");
        x.register(info(7));
        side.low_seen(7, 1);
        assert!(!x.take_low_seen(7, 2));
        assert!(x.take_low_seen(7, 1));
        assert!(!x.take_low_seen(7, 1), "once");
        side.low_seen(7, 3);
        x.register(info(7));
        assert!(!x.take_low_seen(7, 3), "a new attempt starts clean");
    }

    #[test]
    fn a_change_wakes_the_task_even_if_it_was_not_waiting_yet() {
        let x = Exchange::new();
        x.stream_side().request_seen();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(1), x.changed())
                .await
                .expect("woken");
        });
        assert!(x.take_request_seen());
        assert!(!x.take_request_seen());
    }
}
