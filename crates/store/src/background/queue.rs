//! The seal queue: the days waiting for the background worker (`worker.rs`), what it
//! reported, and the gate a seal's commit shares with `gc`. It knows nothing of the store:
//! the writer queues days here, the worker takes them, [`LogStore::seal`](crate::LogStore::seal)
//! waits here for both.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use crate::day::Day;
use crate::error::{Result, StoreError};
use crate::sealed::seal::SealOutcome;

#[derive(Default)]
struct Queue {
    pending: VecDeque<Day>,
    busy: bool,
    closed: bool,
    done: Vec<SealOutcome>,
    failed: Vec<StoreError>,
}

/// The sealer's shared state (in the store's `Inner`).
#[derive(Default)]
pub(crate) struct SealQueue {
    queue: Mutex<Queue>,
    changed: Condvar,
    stop: AtomicBool,
    /// Held by a seal's commit and by `gc`.
    pub(crate) gate: Mutex<()>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl SealQueue {
    /// Queues `days` for sealing (each once).
    pub(crate) fn request(&self, days: impl IntoIterator<Item = Day>) {
        let mut q = self.queue.lock();
        for d in days {
            if !q.pending.contains(&d) {
                q.pending.push_back(d);
            }
        }
        self.changed.notify_all();
    }

    /// Queues `days` and waits until the worker has done every queued day: what it sealed since
    /// the store was opened (oldest first), or the first failure of this round. Failures of
    /// earlier background attempts are stale: every day they left is asked again here.
    pub(crate) fn seal_now(&self, days: Vec<Day>) -> Result<Vec<SealOutcome>> {
        self.queue.lock().failed.clear();
        self.request(days);
        let mut q = self.queue.lock();
        while (!q.pending.is_empty() || q.busy) && !q.closed {
            self.changed.wait(&mut q);
        }
        if !q.failed.is_empty() {
            return Err(q.failed.remove(0));
        }
        let mut done = std::mem::take(&mut q.done);
        done.sort_by_key(|d| d.day);
        Ok(done)
    }

    /// The worker's next day, once there is one; `None` once the queue is closed.
    pub(super) fn next_day(&self) -> Option<Day> {
        let mut q = self.queue.lock();
        loop {
            if q.closed {
                return None;
            }
            if let Some(d) = q.pending.pop_front() {
                q.busy = true;
                return Some(d);
            }
            self.changed.wait(&mut q);
        }
    }

    /// What the worker did with `day`.
    pub(super) fn report(&self, day: Day, result: Result<Vec<SealOutcome>>) {
        let mut q = self.queue.lock();
        q.busy = false;
        match result {
            Ok(steps) => {
                for done in steps {
                    tracing::info!(day = %done.day, step = %done.step, segment_bytes = done.segment_bytes, sealed_bytes = done.sealed_bytes, entries = done.entries, ms = done.elapsed.as_millis(), "sealed");
                    q.done.push(done);
                }
            }
            Err(e) => {
                // Full disk, say: what was not committed stays as it was, readable, and the
                // step is tried again at the next roll or open.
                tracing::error!(%day, error = %e, "sealing failed; the files stay as they are and the step is retried later");
                q.failed.push(e);
            }
        }
        self.changed.notify_all();
    }

    /// Raised to abandon a seal in progress.
    pub(super) fn stop_flag(&self) -> &AtomicBool {
        &self.stop
    }

    /// Keeps the worker's thread, to join it at shut-down.
    pub(super) fn set_thread(&self, thread: JoinHandle<()>) {
        *self.thread.lock() = Some(thread);
    }

    /// Stops the thread: a seal in progress is abandoned (its temporary file removed; the day
    /// stays in the live layout and is sealed at the next open).
    pub(crate) fn shut_down(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.queue.lock().closed = true;
        self.changed.notify_all();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}
