//! Waking followers: who waits for which execution's next entries, and what wakes them.
//!
//! A follower takes its execution's [`Wake`] before it reads, reads what is new, and waits on
//! it; it is woken only when its execution may have new entries, so an idle follower costs
//! nothing and a thousand of them need no thread each.
//!
//! - **In the writer's process** a flush wakes exactly the executions of the runs it wrote,
//!   after their index entries are in place (`Inner::write_batch`).
//! - **In a reader process** (`logstore serve`, `dump -f`), one watcher thread learns of
//!   flushes from inotify on `segments/` (the `inotify` crate) and reads only the tail of each
//!   live index since its last look: the new runs name their executions (by hash), and only
//!   those are woken. A file appearing or going (a new segment, a part, a sealed day) wakes
//!   every follower, which is rare. Without inotify (or when it fails), the watcher looks
//!   every 100 ms instead; with it, it also looks every second in case an event was lost.
//!
//! A wake is a hint, never the data: followers read the store, so a spurious wake costs one
//! read and a lost one at most the follower's own safety interval.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use inotify::{EventMask, Inotify, WatchMask};
use parking_lot::{Condvar, Mutex};
#[cfg(feature = "async")]
use tokio::sync::Notify;

use crate::day::Day;
use crate::journal::heads::Checkpoint;
use crate::journal::index::{exec_hash, scan_live_while, IndexEntry, ENTRY_LEN, INDEX_HEADER_LEN};
use crate::names;
use crate::view::{Access, FileView};

/// The wake-up of one execution's followers: blocking ones wait on [`Wake::wait`], async ones
/// (with the `async` feature) on `Wake::notify`.
#[derive(Debug, Default)]
pub struct Wake {
    #[cfg(feature = "async")]
    notify: Notify,
    generation: Mutex<u64>,
    changed: Condvar,
}

impl Wake {
    #[cfg(feature = "async")]
    /// The async side: enable a `notified()` future before reading, then await it.
    pub fn notify(&self) -> &Notify {
        &self.notify
    }

    /// The current generation, to pass to [`wait`](Self::wait) after reading.
    pub fn generation(&self) -> u64 {
        *self.generation.lock()
    }

    /// Blocks until woken after `generation`, or `timeout`; true when woken.
    pub fn wait(&self, generation: u64, timeout: Duration) -> bool {
        let mut g = self.generation.lock();
        if *g != generation {
            return true;
        }
        self.changed.wait_for(&mut g, timeout);
        *g != generation
    }

    fn wake(&self) {
        *self.generation.lock() += 1;
        self.changed.notify_all();
        #[cfg(feature = "async")]
        self.notify.notify_waiters();
    }
}

/// Every execution's [`Wake`], by execution hash, while someone follows it.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    wakes: Mutex<HashMap<u64, Weak<Wake>>>,
    /// The watcher of a reader process, once started.
    watching: Mutex<bool>,
    /// The same, read without a lock by every query (`keeps_tails`).
    tailing: AtomicBool,
    /// What the watcher read of each live index, by execution: followers take their new runs
    /// from here instead of each scanning the same new index entries.
    tails: Mutex<HashMap<(Day, u32), TailIndex>>,
    /// Bumped by the watcher whenever files came or went; 0 while no watcher with inotify
    /// runs (then every refresh lists the directory).
    files: AtomicU64,
}

/// The entries of one live index from position `from` to `to`, by execution hash; and the
/// writer's heads checkpoint that describes the entries before `from`, when there is one.
#[derive(Debug)]
struct TailIndex {
    checkpoint: Option<Arc<Checkpoint>>,
    from: u64,
    to: u64,
    by_hash: HashMap<u64, Vec<(u64, IndexEntry)>>,
    entries: usize,
}

/// Most entries kept of one live index (a segment of `part_bytes` holds far fewer runs); past
/// it, readers scan the index themselves.
const MAX_TAIL_ENTRIES: usize = 4 << 20;

impl Shared {
    fn wake(&self, hashes: impl IntoIterator<Item = u64>) {
        let wakes = self.wakes.lock();
        if wakes.is_empty() {
            return;
        }
        for h in hashes {
            if let Some(w) = wakes.get(&h).and_then(Weak::upgrade) {
                w.wake();
            }
        }
    }

    fn wake_all(&self) {
        let mut wakes = self.wakes.lock();
        wakes.retain(|_, w| w.strong_count() > 0);
        for w in wakes.values().filter_map(Weak::upgrade) {
            w.wake();
        }
    }
}

impl Waiters {
    /// The wake of `execution_id`, shared by all its followers in this process. In a reader
    /// process, the first call starts the watcher of `segments_dir`.
    pub(crate) fn subscribe(&self, execution_id: &str, watch: Option<&Path>) -> Arc<Wake> {
        if let Some(dir) = watch {
            let mut watching = self.shared.watching.lock();
            if !*watching {
                *watching = start_watcher(dir.to_owned(), Arc::downgrade(&self.shared));
                self.shared.tailing.store(*watching, Ordering::Release);
            }
        }
        let hash = exec_hash(execution_id);
        let mut wakes = self.shared.wakes.lock();
        if let Some(w) = wakes.get(&hash).and_then(Weak::upgrade) {
            return w;
        }
        // Forget the wakes nobody holds any more before adding one.
        if wakes.len() >= 64 && wakes.len().is_power_of_two() {
            wakes.retain(|_, w| w.strong_count() > 0);
        }
        let w = Arc::new(Wake::default());
        wakes.insert(hash, Arc::downgrade(&w));
        w
    }

    /// Wakes the followers of the executions with these hashes (after a flush).
    pub(crate) fn wake(&self, hashes: impl IntoIterator<Item = u64>) {
        self.shared.wake(hashes);
    }

    /// Whether a watcher keeps tail indexes here: without one, a query need not ask.
    pub(crate) fn keeps_tails(&self) -> bool {
        self.shared.tailing.load(Ordering::Acquire)
    }

    /// The generation of the directory's file list as the watcher saw it: unchanged since a
    /// listing means the listing still holds (0: no watcher knows; list again).
    pub(crate) fn files_generation(&self) -> u64 {
        self.shared.files.load(Ordering::Acquire)
    }

    /// The runs of `hash` in live segment `seq` of `day` (index `view`) from index position
    /// `*seen` on, from what the watcher read, advancing `*seen`; a first look (`*seen` 0)
    /// walks the execution's chain through the checkpoint the watcher started from. `None`
    /// when the watcher does not hold that part of the index (the caller scans it).
    pub(crate) fn runs_after(
        &self,
        day: Day,
        seq: u32,
        view: &FileView,
        hash: u64,
        seen: &mut u64,
    ) -> Option<crate::error::Result<Vec<IndexEntry>>> {
        let (checkpoint, from) = {
            let tails = self.shared.tails.lock();
            let t = tails.get(&(day, seq))?;
            (t.checkpoint.clone(), t.from)
        };
        let mut runs = Vec::new();
        let mut at = *seen;
        if at < from {
            // Only a first look, through a checkpoint covering exactly up to `from`.
            let cp = checkpoint.filter(|c| at == 0 && u64::from(c.covered) == from)?;
            match cp.runs(view, hash) {
                Ok(Some(r)) => runs = r,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            }
            at = from;
        }
        let tails = self.shared.tails.lock();
        let t = tails.get(&(day, seq))?;
        if at > t.to || t.from != from {
            return None;
        }
        if let Some(v) = t.by_hash.get(&hash) {
            runs.extend(v.iter().filter(|(pos, _)| *pos >= at).map(|(_, e)| *e));
        }
        *seen = t.to;
        Some(Ok(runs))
    }
}

/// How often the watcher looks without an event: with inotify, in case one was lost;
/// without, as its only way to learn.
const SAFETY_LOOK: Duration = Duration::from_secs(1);
const POLL_LOOK: Duration = Duration::from_millis(100);

/// Starts the watcher thread of a reader process; false if no thread could be started (the
/// followers then rely on their own safety interval).
fn start_watcher(dir: PathBuf, shared: Weak<Shared>) -> bool {
    let spawned = std::thread::Builder::new()
        .name("logstore-watch".to_owned())
        .spawn(move || watch(&dir, &shared));
    match spawned {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the store watcher; followers poll instead");
            false
        }
    }
}

/// What an inotify watch of `segments/` reports: writes, and files coming or going (opens
/// and reads, ours included, are not news).
fn watch_mask() -> WatchMask {
    WatchMask::MODIFY
        | WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
}

/// Waits up to `timeout` for `fd` to be readable; false on timeout (or an interrupted wait,
/// which the caller treats as one).
#[allow(unsafe_code)]
fn wait_readable(fd: &impl AsRawFd, timeout: Duration) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `p` is one valid pollfd that lives across the call; poll writes only its
    // `revents`, and the descriptor stays open (its owner is borrowed).
    unsafe { libc::poll(&mut p, 1, ms) > 0 }
}

/// Reads every event already queued: (writes seen, files came or went). A full queue
/// (`Q_OVERFLOW`) or a failed read may have hidden anything: files changed.
fn drain(inotify: &mut Inotify, buffer: &mut [u8]) -> (bool, bool) {
    let (mut written, mut files_changed) = (false, false);
    loop {
        match inotify.read_events(buffer) {
            Ok(events) => {
                let mut any = false;
                for ev in events {
                    any = true;
                    if ev.mask.intersects(EventMask::MODIFY) {
                        written = true;
                    } else {
                        files_changed = true;
                    }
                }
                if !any {
                    return (written, files_changed);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                return (written, files_changed)
            }
            Err(_) => return (written, true),
        }
    }
}

fn watch(dir: &Path, shared: &Weak<Shared>) {
    let watcher = Inotify::init().and_then(|i| i.watches().add(dir, watch_mask()).map(|_| i));
    let (mut watcher, interval) = match watcher {
        Ok(w) => {
            // From now on every change of the file list bumps the generation.
            if let Some(s) = shared.upgrade() {
                s.files.fetch_add(1, Ordering::AcqRel);
            }
            (Some(w), SAFETY_LOOK)
        }
        Err(e) => {
            tracing::warn!(error = %e, dir = %dir.display(), "no inotify watch on the store; looking every 100 ms instead");
            (None, POLL_LOOK)
        }
    };
    let mut buffer = [0u8; 4096];
    let mut tails = Tails::default();
    // Where the indexes end now: only what comes after is news.
    let mut last_listing = match shared.upgrade() {
        Some(s) => tails.look(dir, &s, false).1,
        None => return,
    };
    loop {
        let (timed_out, written, mut files_changed) = match watcher.as_mut() {
            Some(w) if wait_readable(w, interval) => {
                let (written, files_changed) = drain(w, &mut buffer);
                (false, written, files_changed)
            }
            Some(_) => (true, false, false),
            None => {
                std::thread::sleep(interval);
                (true, false, false)
            }
        };
        if !(timed_out || written || files_changed) {
            continue;
        }
        let Some(shared) = shared.upgrade() else {
            return; // the store is gone
        };
        let (mut hashes, listing) = tails.look(dir, &shared, true);
        if listing != last_listing {
            // Also when an event was lost: the periodic look compares the listings.
            files_changed = true;
            last_listing = listing;
        }
        if files_changed && watcher.is_some() {
            shared.files.fetch_add(1, Ordering::AcqRel);
        }
        if files_changed || hashes.contains(&WAKE_ALL) {
            shared.wake_all();
        } else if !hashes.is_empty() {
            hashes.sort_unstable();
            hashes.dedup();
            shared.wake(hashes);
        }
    }
}

/// Not a hash the watcher wakes, but "wake everyone" (an index was cut back).
const WAKE_ALL: u64 = u64::MAX;

/// How far the watcher has read each live index.
#[derive(Default)]
struct Tails {
    read: HashMap<(Day, u32), (FileView, u64)>,
}

impl Tails {
    /// Reads the new index entries of every live index in `dir` into `shared`'s tail indexes
    /// and returns their executions' hashes (with `news` false, only notes where each index
    /// ends now); forgets indexes that are gone.
    fn look(
        &mut self,
        dir: &Path,
        shared: &Shared,
        news: bool,
    ) -> (Vec<u64>, Vec<names::DayListing>) {
        let mut hashes = Vec::new();
        let Ok(listed) = names::list(dir) else {
            return (hashes, Vec::new());
        };
        let listing = listed.clone();
        let mut seen = Vec::new();
        let mut cache = shared.tails.lock();
        for l in listed {
            for seq in l.segments {
                let key = (l.day, seq);
                seen.push(key);
                let entry = match self.read.entry(key) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        let path = names::index_file(dir, l.day, seq);
                        let Ok(view) = FileView::open(&path, Access::Pread) else {
                            continue; // not there yet
                        };
                        v.insert((view, 0))
                    }
                };
                let (view, n) = entry;
                let total =
                    view.len().unwrap_or(0).saturating_sub(INDEX_HEADER_LEN) / ENTRY_LEN as u64;
                let mut checkpoint = None;
                if !news && !cache.contains_key(&key) {
                    // Start where the writer's checkpoint ends: a follower's first look then
                    // walks its chain through the checkpoint and takes the rest from here.
                    checkpoint = Checkpoint::read(&names::heads_file(dir, l.day, seq))
                        .filter(|c| u64::from(c.covered) <= total)
                        .map(Arc::new);
                    *n = checkpoint.as_ref().map_or(0, |c| u64::from(c.covered));
                } else if total < *n {
                    // Cut back (a writer's recovery after a crash): what it held past the cut
                    // is gone; start again from here, and let every follower look.
                    *n = total;
                    cache.remove(&key);
                    hashes.push(WAKE_ALL);
                }
                let tail = cache.entry(key).or_insert_with(|| TailIndex {
                    checkpoint,
                    from: *n,
                    to: *n,
                    by_hash: HashMap::new(),
                    entries: 0,
                });
                let from = *n;
                let mut full = tail.entries >= MAX_TAIL_ENTRIES;
                let scanned = scan_live_while(view, from, |number, e| {
                    if news {
                        hashes.push(e.hash);
                    }
                    if !full {
                        let pos = u64::from(number) - 1;
                        tail.by_hash.entry(e.hash).or_default().push((pos, e));
                        tail.entries += 1;
                        full = tail.entries >= MAX_TAIL_ENTRIES;
                    }
                    true
                });
                if let Ok(to) = scanned {
                    *n = to.max(from);
                }
                if full {
                    // Too big to keep: readers scan this index themselves.
                    cache.remove(&key);
                } else {
                    tail.to = *n;
                }
            }
        }
        self.read.retain(|k, _| seen.contains(k));
        cache.retain(|k, _| seen.contains(k));
        (hashes, listing)
    }
}
