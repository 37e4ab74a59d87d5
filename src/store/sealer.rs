//! The background sealer: one thread per writer that rewrites finished days into the sealed
//! format (`sealed/`), one day at a time, off the write path.
//!
//! Days come from the writer's open (every past day not sealed yet), from the day roll (the
//! day just left), and from [`LogStore::seal`]. The thread never takes the writer's lock, so
//! `append` and `finish_execution` never wait for it; it takes the days list's lock only to
//! swap a day's view, and the gate shared with `gc` only for the commit (rename, swap, delete),
//! so a day that `gc` deletes is never brought back by a seal that was running meanwhile.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use crate::error::{Result, StoreError};
use crate::store::day::Day;
use crate::store::days::open_sealed;
use crate::store::index::sync_dir;
use crate::store::sealed::layout::{sealed_path, sealed_tmp_path};
use crate::store::sealed::seal::{self, remove_tmp, remove_v1, SealOptions, SealOutcome};
use crate::store::segment::segment_path;
use crate::store::writer::Inner;
use crate::store::LogStore;

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
pub(crate) struct Sealer {
    queue: Mutex<Queue>,
    changed: Condvar,
    stop: AtomicBool,
    /// Held by a seal's commit and by `gc`.
    pub(crate) gate: Mutex<()>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Sealer {
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

    /// Stops the thread: a seal in progress is abandoned (its temporary file removed; the day
    /// stays in the v1 layout and is sealed at the next open).
    pub(crate) fn shut_down(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.queue.lock().closed = true;
        self.changed.notify_all();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

/// Starts the sealer thread of a writer.
pub(crate) fn start(inner: &Arc<Inner>) -> Result<()> {
    let thread = {
        let inner = Arc::clone(inner);
        std::thread::Builder::new()
            .name("logstore-seal".to_owned())
            .spawn(move || run(&inner))
            .map_err(StoreError::io(
                "start seal thread",
                std::path::PathBuf::new(),
            ))?
    };
    *inner.sealer.thread.lock() = Some(thread);
    Ok(())
}

/// Nice value of the sealer thread: under CPU contention the writer's threads (nice 0) get
/// about ten times its share, so ingest keeps its rate while a day seals; on an idle core the
/// seal runs at full speed.
const SEALER_NICE: i32 = 19;

/// Lowers the calling thread's CPU priority to [`SEALER_NICE`]. On Linux a nice value is per
/// thread, and `setpriority(PRIO_PROCESS, tid)` sets the thread `tid`'s.
#[allow(unsafe_code)]
fn lower_priority() {
    let tid = nix::unistd::gettid().as_raw();
    let Ok(who) = libc::id_t::try_from(tid) else {
        return;
    };
    // SAFETY: setpriority reads only its integer arguments; no memory is shared with it.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, who, SEALER_NICE) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower the seal thread's priority");
    }
}

fn run(inner: &Inner) {
    lower_priority();
    let s = &inner.sealer;
    loop {
        let day = {
            let mut q = s.queue.lock();
            loop {
                if q.closed {
                    return;
                }
                if let Some(d) = q.pending.pop_front() {
                    q.busy = true;
                    break d;
                }
                s.changed.wait(&mut q);
            }
        };
        let result = seal_day(inner, day);
        let mut q = s.queue.lock();
        q.busy = false;
        match result {
            Ok(Some(done)) => {
                tracing::info!(day = %done.day, v1_bytes = done.v1_bytes, sealed_bytes = done.sealed_bytes, entries = done.entries, ms = done.elapsed.as_millis(), "sealed day");
                q.done.push(done);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(%day, error = %e, "sealing failed; the day stays in the live layout and is retried at the next open");
                q.failed.push(e);
            }
        }
        s.changed.notify_all();
    }
}

/// Seals one day if it is still in the v1 layout. `None`: nothing to do, or stopped.
fn seal_day(inner: &Inner, day: Day) -> Result<Option<SealOutcome>> {
    let dir = &inner.segments_dir;
    let unsealed = inner
        .days
        .read()
        .iter()
        .any(|d| d.day == day && d.sealed().is_none());
    if !unsealed {
        return Ok(None);
    }
    // The roll fsynced the segment; a day recovered at open may not have been.
    let seg = segment_path(dir, day);
    std::fs::File::open(&seg)
        .and_then(|f| f.sync_all())
        .map_err(StoreError::io("fsync segment", &seg))?;
    let Some(done) = seal::write_sealed(dir, day, SealOptions::default(), &inner.sealer.stop)?
    else {
        return Ok(None);
    };
    let _gate = inner.sealer.gate.lock();
    if !inner.days.read().iter().any(|d| d.day == day) {
        // Deleted by gc while we wrote: do not bring it back.
        remove_tmp(dir, day);
        return Ok(None);
    }
    let path = sealed_path(dir, day);
    std::fs::rename(sealed_tmp_path(dir, day), &path)
        .map_err(StoreError::io("rename sealed file", &path))?;
    // From here the sealed file is the day: a crash leaves it, and the next open deletes the
    // v1 files it finds beside it.
    sync_dir(dir)?;
    let view = Arc::new(open_sealed(dir, day)?);
    if let Some(slot) = inner.days.write().iter_mut().find(|d| d.day == day) {
        *slot = view;
    }
    remove_v1(dir, day)?;
    Ok(Some(done))
}

/// Seals one day of a store that no writer has open, in the calling thread, with `options`
/// (for tools and benchmarks that measure the rewrite alone). Takes the writer lock for the
/// duration. The day must have been closed cleanly (or recovered by a writer's open): its
/// index is trusted as it is. Returns `None` if the day is already sealed.
pub fn seal_closed_day(
    dir: &std::path::Path,
    day: Day,
    options: SealOptions,
) -> Result<Option<SealOutcome>> {
    let _lock = crate::store::lock::take_lock(dir)?;
    let segments = dir.join("segments");
    if sealed_path(&segments, day).exists() {
        return Ok(None);
    }
    remove_tmp(&segments, day);
    let Some(done) = seal::write_sealed(&segments, day, options, &AtomicBool::new(false))? else {
        return Ok(None);
    };
    let path = sealed_path(&segments, day);
    std::fs::rename(sealed_tmp_path(&segments, day), &path)
        .map_err(StoreError::io("rename sealed file", &path))?;
    sync_dir(&segments)?;
    remove_v1(&segments, day)?;
    Ok(Some(done))
}

impl LogStore {
    /// Seals every past day that is still in the live layout, now, and waits: each becomes one
    /// compressed `YYYY-MM-DD.sealed` file (`docs/FORMAT.md`, version 2). Returns what was
    /// sealed since this store was opened (the background sealing that the open started
    /// included), oldest first. The live day is not sealed; it is sealed after it rolls.
    ///
    /// Appends and queries go on meanwhile. An error is the first seal that failed; the day it
    /// names stays readable in the live layout.
    pub fn seal(&self) -> Result<Vec<SealOutcome>> {
        let writer = self.inner.writer.as_ref().ok_or(StoreError::ReadOnly)?;
        let live = writer.lock().live.as_ref().map(|l| l.day);
        let past: Vec<Day> = self
            .days()
            .iter()
            .filter(|d| d.sealed().is_none() && Some(d.day) != live)
            .map(|d| d.day)
            .collect();
        let s = &self.inner.sealer;
        s.request(past);
        let mut q = s.queue.lock();
        while (!q.pending.is_empty() || q.busy) && !q.closed {
            s.changed.wait(&mut q);
        }
        if !q.failed.is_empty() {
            return Err(q.failed.remove(0));
        }
        let mut done = std::mem::take(&mut q.done);
        done.sort_by_key(|d| d.day);
        Ok(done)
    }
}
