//! [`LogStore`], the handle: opening a directory (the writer lock, recovery, the flush thread
//! and the seal queue), appending, flushing, and `gc`. Reads are in `read/`, the writing
//! itself in `journal/`.
//!
//! ```text
//! DIR/LOCK                              writer lock (flock), holds the writer's pid (journal/lock.rs)
//! DIR/seq                               the sequence-number reservation (journal/seq.rs)
//! DIR/holds/NAME                        retention holds that gc honours (retention/holds.rs)
//! DIR/segments/YYYY-MM-DD.NNNNNN.log    segment N of that UTC day (journal/segment.rs)
//! DIR/segments/YYYY-MM-DD.NNNNNN.idx    its live index (journal/index.rs), and .heads its checkpoint
//! DIR/segments/YYYY-MM-DD.N-M.part      segments N..=M sealed (sealed/), replaces them
//! DIR/segments/YYYY-MM-DD.sealed        the whole day sealed: replaces everything above
//! ```
//!
//! Which file holds an entry is `names.rs`'s business; `docs/FORMAT.md` has the layout.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::background::worker as seal_worker;
use crate::config::Config;
use crate::day::Day;
use crate::error::{Result, StoreError};
use crate::fs::sync_dir;
use crate::journal::commit::{Batch, Durability, Layout};
use crate::journal::recovery::Damage;
use crate::journal::{record, recovery, segment, seq};
use crate::names;
use crate::read::waiters;
use crate::retention::holds;
use crate::sealed::seal::SealOutcome;
use crate::{EntrySink, ExecutionId, LogEntry, SinkError};

/// An embedded log store: one writer per directory, any number of readers.
///
/// Cheap to share: wrap it in an `Arc`. Dropping it flushes and fsyncs what is buffered.
pub struct LogStore {
    pub(crate) inner: Arc<Inner>,
    flusher: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

/// The longest the flush thread sleeps (it matches the 100 ms in `flush_loop`).
const IDLE_WAKE: Duration = Duration::from_millis(100);

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl LogStore {
    /// Opens (creating if needed) the store in `dir` for writing with the default config.
    pub fn open(dir: impl AsRef<Path>) -> Result<LogStore> {
        LogStore::open_with(dir, Config::default())
    }

    /// Opens the store in `dir` for writing: takes the writer lock, recovers unsealed segments
    /// (cutting torn tails, rebuilding indexes) and seals past days.
    pub fn open_with(dir: impl AsRef<Path>, config: Config) -> Result<LogStore> {
        let dir = dir.as_ref().to_owned();
        let segments_dir = dir.join("segments");
        let created = !segments_dir.is_dir();
        std::fs::create_dir_all(&segments_dir)
            .map_err(StoreError::io("create directory", &segments_dir))?;
        if created {
            // The new directory entries must survive a power cut like the files in them.
            sync_dir(&dir)?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let lock = take_lock(&dir)?;
        let today = Day::from_unix_ms(config.clock.now_ms());
        let mut r = Recovered::default();
        let listed = names::list(&segments_dir)?;
        let newest = listed.last().map(|l| l.day);
        for l in listed {
            r.day(&segments_dir, l, newest, today, &config)?;
        }
        let Recovered {
            days,
            live,
            damage,
            to_seal,
            unreadable,
        } = r;
        // The writer never appends to a day that is sealed or being sealed: with a clock that
        // went back, it keeps writing after the newest such day.
        let min_day = match (&live, newest) {
            (Some(l), _) => l.day,
            (None, Some(n)) => Day(n.0 + 1),
            (None, None) => today,
        };
        let seqs = seq::Seqs::open(&dir, || highest_seq(&days))?;
        let inner = Arc::new(Inner {
            dir,
            segments_dir,
            config,
            writer: Some(Mutex::new(Writer {
                seqs,
                live,
                batch: Batch::default(),
                layout: Layout::default(),
                index_bytes: Vec::new(),
                min_day,
                appended: 0,
                last_error: None,
                closed: false,
            })),
            wake: Condvar::new(),
            sync: Mutex::new(SyncState {
                synced: 0,
                syncing: false,
                failed: None,
            }),
            synced: Condvar::new(),
            days: RwLock::new(days),
            unreadable_days: RwLock::new(unreadable),
            _lock: Some(lock),
            recovered_damage: damage,
            fsyncs: std::sync::atomic::AtomicU64::new(0),
            sync_failed: std::sync::atomic::AtomicBool::new(false),
            seal_queue: SealQueue::default(),
            open_segment: Mutex::new(None),
            waiters: waiters::Waiters::default(),
            listed: std::sync::atomic::AtomicU64::new(0),
        });
        *inner.open_segment.lock() = inner
            .writer
            .as_ref()
            .and_then(|w| w.lock().live.as_ref().map(|l| (l.day, l.seq)));
        seal_worker::start(&inner)?;
        inner.seal_queue.request(to_seal);
        let flusher = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("logstore-flush".to_owned())
                .spawn(move || inner.flush_loop())
                .map_err(StoreError::io("start flush thread", PathBuf::new()))?
        };
        Ok(LogStore {
            inner,
            flusher: Some(flusher),
        })
    }

    /// Seals, now, and waits: every past day not yet in its resting shape becomes one
    /// compressed `YYYY-MM-DD.sealed` file (`docs/FORMAT.md`), and today's closed segments
    /// become parts (merged past 8). Returns what was sealed since this store was opened (the
    /// background work included), oldest first. The open segment is left alone.
    ///
    /// Appends and queries go on meanwhile. An error is the first step of this call that
    /// failed; the files it would have replaced stay, readable, and are retried later.
    pub fn seal(&self) -> Result<Vec<SealOutcome>> {
        if self.inner.writer.is_none() {
            return Err(StoreError::ReadOnly);
        }
        // Every day not in its resting shape: past days become their `.sealed` file, today's
        // closed segments become parts.
        let days: Vec<Day> = self
            .days()
            .iter()
            .filter(|d| !d.is_whole())
            .map(|d| d.day)
            .collect();
        self.inner.seal_queue.seal_now(days)
    }

    /// Opens the store in `dir` for reading only: no lock, no recovery, never blocks the writer.
    /// Sees what the writer has flushed; a torn tail of a crashed writer is invisible until the
    /// next writer recovers it.
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<LogStore> {
        let dir = dir.as_ref().to_owned();
        let segments_dir = dir.join("segments");
        if !segments_dir.is_dir() {
            return Err(StoreError::Io {
                op: "open store",
                path: dir,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no segments directory: not a logstore directory",
                ),
            });
        }
        let inner = Arc::new(Inner {
            dir,
            segments_dir,
            config: Config::default(),
            writer: None,
            wake: Condvar::new(),
            sync: Mutex::new(SyncState {
                synced: 0,
                syncing: false,
                failed: None,
            }),
            synced: Condvar::new(),
            days: RwLock::new(Vec::new()),
            unreadable_days: RwLock::new(Vec::new()),
            _lock: None,
            recovered_damage: Vec::new(),
            fsyncs: std::sync::atomic::AtomicU64::new(0),
            sync_failed: std::sync::atomic::AtomicBool::new(false),
            seal_queue: SealQueue::default(),
            open_segment: Mutex::new(None),
            waiters: waiters::Waiters::default(),
            listed: std::sync::atomic::AtomicU64::new(0),
        });
        let store = LogStore {
            inner,
            flusher: None,
        };
        store.refresh_days()?;
        Ok(store)
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Whether this handle can write.
    pub fn is_writer(&self) -> bool {
        self.inner.writer.is_some()
    }

    /// Damage that recovery skipped when this store was opened.
    pub fn recovered_damage(&self) -> &[Damage] {
        &self.inner.recovered_damage
    }

    /// Buffers `entry`. It reaches disk at the next flush (100 entries or 1 s by default).
    ///
    /// Refuses an invalid entry ([`StoreError::Entry`]); refuses with
    /// [`StoreError::BufferFull`] when writes have been failing long enough to fill the buffer.
    /// A failing flush triggered by this call does not refuse the entry: it stays buffered and
    /// the flush is retried.
    pub fn append(&self, entry: &LogEntry) -> Result<()> {
        let writer = self.inner.writer.as_ref().ok_or(StoreError::ReadOnly)?;
        if let Some(reason) = self.inner.failed_sync() {
            return Err(StoreError::SyncFailed { reason });
        }
        SCRATCH.with(|scratch| {
            let mut frame = scratch.borrow_mut();
            frame.clear();
            record::encode_as(entry, record::FrameKind::V2 { salt: 0 }, &mut frame)?;
            let mut w = writer.lock();
            let policy = &self.inner.config.commit;
            if w.batch.len() >= policy.max_pending_entries {
                return Err(StoreError::BufferFull {
                    pending: w.batch.len(),
                    last_error: w.last_error.clone().unwrap_or_else(|| "none".to_owned()),
                });
            }
            let was_empty = w.batch.is_empty();
            // Only a batch's first entry starts its timer, so only it needs the clock (reading
            // it for every entry was 5 % of `append`).
            let now = if was_empty {
                self.inner.config.clock.now_ms()
            } else {
                0
            };
            // Numbered under the lock: numbers follow the append order.
            record::set_seq(&mut frame, w.seqs.take()?);
            w.batch.push(entry, &frame, now);
            w.appended += 1;
            if w.batch.len() >= policy.max_batch_entries {
                // The caller that fills the batch writes it: no hand-off, no thread wake-up.
                let _ = self.inner.flush_locked(&mut w);
            } else if was_empty && policy.max_batch_delay < IDLE_WAKE {
                // The idle flush thread looks at the buffer every IDLE_WAKE anyway and then
                // sleeps until the oldest entry is due, so only a delay shorter than that needs
                // a wake-up. Waking it for every new batch cost a futex call and lock contention
                // (parking_lot spinning in sched_yield) per 100 entries.
                self.inner.wake.notify_one();
            }
            Ok(())
        })
    }

    /// The wake-up of `execution_id`'s followers in this process: take it before reading,
    /// then wait on it ([`Wake::notify`](crate::Wake::notify) or [`Wake::wait`](crate::Wake::wait)); it fires when the execution may
    /// have new entries (a flush of this writer, or, in a read-only store, one the watcher saw
    /// in the files). A hint, not the data: read the store after it fires.
    pub fn wake_of(&self, execution_id: &ExecutionId) -> Arc<crate::Wake> {
        let watch = self
            .inner
            .writer
            .is_none()
            .then_some(self.inner.segments_dir.as_path());
        self.inner.waiters.subscribe(execution_id.as_str(), watch)
    }

    /// Flushes the buffer and waits until everything appended so far has reached `level`.
    pub fn flush(&self, level: Durability) -> Result<()> {
        let writer = self.inner.writer.as_ref().ok_or(StoreError::ReadOnly)?;
        if level == Durability::Buffered {
            return Ok(());
        }
        let mut w = writer.lock();
        if level == Durability::Written {
            return self.inner.flush_locked(&mut w);
        }
        // Synced: the flush is left to the group commit's leader, so that callers finishing
        // together share the writes as well as the fsync.
        let target = w.appended;
        drop(w);
        self.inner.sync_to(target)
    }

    /// Called when an execution reaches a terminal state (after its terminal entry was
    /// appended): flushes the buffer and fsyncs before returning, sharing the fsync with other
    /// executions finishing at the same moment. When it returns `Ok`, every entry of the
    /// execution survives a power cut.
    pub fn finish_execution(&self, _execution_id: &ExecutionId) -> Result<()> {
        self.flush(Durability::Synced)
    }

    /// Flushes if the buffer is due by the clock. The flush thread calls this on its own; tests
    /// with a [`ManualClock`](crate::ManualClock) call it after moving the clock.
    pub fn tick(&self) -> Result<()> {
        let writer = self.inner.writer.as_ref().ok_or(StoreError::ReadOnly)?;
        let mut w = writer.lock();
        if w.batch
            .is_due(&self.inner.config.commit, self.inner.config.clock.now_ms())
        {
            self.inner.flush_locked(&mut w)?;
        }
        Ok(())
    }

    /// How many fsyncs the group commit has made since open. Executions finishing together
    /// share them, so this grows slower than the number of finished executions.
    pub fn fsyncs(&self) -> u64 {
        self.inner.fsyncs.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Entries waiting in the buffer.
    pub fn buffered(&self) -> usize {
        self.inner
            .writer
            .as_ref()
            .map_or(0, |w| w.lock().batch.len())
    }

    /// Deletes whole days older than `keep_days` days before today (today is never deleted).
    /// Returns the days deleted. A day that a retention hold keeps ([`set_hold`](crate::set_hold): the shipper
    /// keeps one, any consumer of the store may) is never deleted: the call fails with
    /// [`StoreError::Held`] and deletes nothing ([`gc_force`](LogStore::gc_force) does).
    pub fn gc(&self, keep_days: u32) -> Result<Vec<Day>> {
        self.gc_inner(keep_days, false)
    }

    /// [`gc`](LogStore::gc), deleting days that retention holds keep too.
    pub fn gc_force(&self, keep_days: u32) -> Result<Vec<Day>> {
        self.gc_inner(keep_days, true)
    }

    fn gc_inner(&self, keep_days: u32, force: bool) -> Result<Vec<Day>> {
        let writer = self.inner.writer.as_ref().ok_or(StoreError::ReadOnly)?;
        let today = Day::from_unix_ms(self.inner.config.clock.now_ms());
        let cutoff = Day(today.0 - i64::from(keep_days));
        // Holding the seal gate: no seal commits a day we delete. Holding the writer lock: no
        // day roll can race with the deletion.
        let _gate = self.inner.seal_queue.gate.lock();
        let w = writer.lock();
        let live_day = w.live.as_ref().map(|l| l.day);
        let mut deleted = Vec::new();
        let mut days = self.inner.days.write();
        if !force {
            for hold in holds::holds(&self.inner.dir)? {
                let kept = days.iter().map(|d| d.day).find(|&d| {
                    d < cutoff && Some(d) != live_day && hold.through.is_none_or(|t| d > t)
                });
                if let Some(day) = kept {
                    return Err(StoreError::Held {
                        day,
                        hold: hold.name,
                        through: hold.through,
                        reason: hold.reason,
                    });
                }
            }
        }
        days.retain(|d| {
            if d.day >= cutoff || Some(d.day) == live_day {
                return true;
            }
            deleted.push(d.day);
            false
        });
        drop(days);
        drop(w);
        for day in &deleted {
            names::remove_day(&self.inner.segments_dir, *day)?;
        }
        if !deleted.is_empty() {
            sync_dir(&self.inner.segments_dir)?;
        }
        Ok(deleted)
    }

    /// Re-reads the directory listing (read-only handles: days another process added).
    pub fn refresh_days(&self) -> Result<()> {
        if self.inner.writer.is_some() {
            return Ok(());
        }
        // A watcher (inotify) that saw no file come or go since the last listing: it holds.
        // (The watcher bumps the generation before it wakes followers of the change.)
        let generation = self.inner.waiters.files_generation();
        if generation != 0
            && generation == self.inner.listed.load(std::sync::atomic::Ordering::Acquire)
        {
            return Ok(());
        }
        // A file deleted between the listing and its open (a segment that became a part, parts
        // merged) means the listing is stale: list again.
        let mut tries = 0;
        loop {
            match self.refresh_once() {
                Err(StoreError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && tries < 100 =>
                {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Ok(()) => {
                    self.inner
                        .listed
                        .store(generation, std::sync::atomic::Ordering::Release);
                    return Ok(());
                }
                other => return other,
            }
        }
    }

    fn refresh_once(&self) -> Result<()> {
        let mut listed = names::list(&self.inner.segments_dir)?;
        // A listing that raced the sealer's rename of a part can miss it: list again.
        for _ in 0..100 {
            if !listed.iter().any(names::DayListing::has_gap) {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
            listed = names::list(&self.inner.segments_dir)?;
        }
        let old = self.inner.days.read().clone();
        let mut fresh = Vec::with_capacity(listed.len());
        let mut unreadable = Vec::new();
        for l in listed.into_iter().filter(|l| !l.is_empty()) {
            let prev = old.iter().find(|d| d.day == l.day);
            if let Some(d) =
                prev.filter(|d| d.listing == l && !d.segs.iter().any(|s| s.provisional))
            {
                fresh.push(Arc::clone(d));
                continue;
            }
            match open_day(
                &self.inner.segments_dir,
                &l,
                true,
                Reuse {
                    old: prev.map(|d| &**d),
                },
            ) {
                Ok((d, bad)) => {
                    for e in bad {
                        tracing::error!(day = %l.day, error = %e, "skipping an unreadable part (run `logstore verify`)");
                        unreadable.extend(problem_of_unreadable_day(e));
                    }
                    fresh.push(Arc::new(d));
                }
                // One unreadable day must not hide the others; `verify` reports it.
                Err(e @ StoreError::Corrupt { .. }) => {
                    tracing::error!(day = %l.day, error = %e, "skipping an unreadable day (run `logstore verify`)");
                    unreadable.extend(problem_of_unreadable_day(e));
                }
                Err(e) => return Err(e),
            }
        }
        *self.inner.days.write() = fresh;
        *self.inner.unreadable_days.write() = unreadable;
        Ok(())
    }

    /// The days left out of [`LogStore::days`] at the last refresh because their file is
    /// unreadable: what a reader of every day (search) must report as damage.
    pub fn unreadable_days(&self) -> Vec<crate::Problem> {
        self.inner.unreadable_days.read().clone()
    }

    /// The days as readers see them now.
    pub fn days(&self) -> Vec<Arc<DayFiles>> {
        self.inner.days.read().clone()
    }
}

impl EntrySink for LogStore {
    fn append(&self, entry: LogEntry) -> Result<(), SinkError> {
        LogStore::append(self, &entry).map_err(|e| SinkError(Box::new(e)))
    }
}

impl Drop for LogStore {
    fn drop(&mut self) {
        if let Some(writer) = self.inner.writer.as_ref() {
            self.inner.seal_queue.shut_down();
            writer.lock().closed = true;
            self.inner.wake.notify_all();
            if let Some(t) = self.flusher.take() {
                let _ = t.join();
            }
            if let Err(e) = self.flush(Durability::Synced) {
                tracing::error!(error = %e, "logstore: final flush on close failed; buffered entries are lost");
            }
        }
    }
}
use crate::read::day_files::{open_day, open_sealed, DayFiles, Reuse};

use crate::background::queue::SealQueue;
use crate::journal::lock::take_lock;
use crate::journal::writer::{Inner, LiveFiles, SyncState, Writer};

/// What the writer's open found in `segments/`: the days as readers see them, the live segment
/// to go on with, and what recovery cut or had to skip.
#[derive(Default)]
struct Recovered {
    days: Vec<Arc<DayFiles>>,
    live: Option<LiveFiles>,
    damage: Vec<Damage>,
    to_seal: Vec<Day>,
    unreadable: Vec<crate::Problem>,
}

impl Recovered {
    /// Recovers one listed day: a whole sealed file (leftovers beside it deleted), or parts and
    /// segments, the newest segment recovered (its torn tail cut, its index rebuilt) and, on
    /// the live day, kept open. Days to seal are queued.
    fn day(
        &mut self,
        segments_dir: &Path,
        mut l: names::DayListing,
        newest: Option<Day>,
        today: Day,
        config: &Config,
    ) -> Result<()> {
        let day = l.day;
        names::remove_tmp_files(segments_dir, day);
        if l.sealed {
            match open_sealed(segments_dir, day) {
                Ok(files) => {
                    // A seal interrupted after its rename leaves the files it replaced
                    // beside a whole sealed file (fsynced before the rename): the sealed
                    // file is the day, and deleting the leftovers keeps every entry in
                    // exactly one file.
                    names::remove_covered(segments_dir, &l)?;
                    sync_dir(segments_dir)?;
                    self.days.push(Arc::new(files));
                    return Ok(());
                }
                Err(e @ StoreError::Corrupt { .. })
                    if !l.covered_segments.is_empty() || !l.covered_parts.is_empty() =>
                {
                    // Disk damage in a file that was whole when renamed: the files it
                    // replaced are still here, so they are the day and it is sealed again.
                    tracing::error!(error = %e, "unreadable sealed file; using the files beside it and sealing again");
                    l = names::list_without_sealed(segments_dir, day)?;
                }
                Err(e @ StoreError::Corrupt { .. }) => {
                    tracing::error!(error = %e, "unreadable sealed file; its day is skipped (run `logstore verify`)");
                    self.unreadable.extend(problem_of_unreadable_day(e));
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        names::remove_covered(segments_dir, &l)?;
        // Only the newest segment of a day can have been written when the writer stopped:
        // a roll fsyncs the segment it leaves and its index before the next one exists.
        let last = l.segments.last().copied();
        let is_live = Some(day) == newest && day >= today;
        let mut open = None;
        // `open` is a new segment, not the last listed one.
        let mut fresh = false;
        if let Some(seq) = last {
            let seg = names::segment_file(segments_dir, day, seq);
            let rec = recovery::recover(&seg, &names::index_file(segments_dir, day, seq))?;
            if let Some((offset, bytes)) = rec.cut_tail {
                tracing::warn!(file = %seg.display(), offset, bytes, "cut torn tail of segment");
            }
            for d in &rec.damage {
                tracing::warn!(file = %d.file.display(), offset = d.offset, len = d.len, reason = %d.reason, "damaged records skipped");
                crate::observe::damage(1);
            }
            self.damage.extend(rec.damage.iter().cloned());
            let files = LiveFiles::resume(segments_dir, day, seq, &rec, config.tail_bytes)?;
            // A segment of an older format (no sequence numbers, unkeyed CRCs) is closed:
            // the next flush starts a segment of this version.
            if is_live && files.segment.kind() != record::FrameKind::V1 {
                files.warm_tails();
                open = Some(files);
            } else if is_live {
                // Written by an older version: closed like a rolled segment, and the day
                // goes on in a new segment of this version (the day stays live, so the
                // sealer turns the old one into a part, never the day into a sealed file).
                files.close()?;
                open = Some(LiveFiles::create(
                    segments_dir,
                    day,
                    seq + 1,
                    config.tail_bytes,
                )?);
                fresh = true;
            } else {
                // Closed now: durable like a rolled segment.
                files.close()?;
            }
        }
        let mut closed = l.clone();
        if open.is_some() && !fresh {
            closed.segments.pop();
        }
        let (mut files, bad) = open_day(segments_dir, &closed, false, Reuse::default())?;
        for e in bad {
            tracing::error!(error = %e, "unreadable part; its entries are skipped (run `logstore verify`)");
            self.unreadable.extend(problem_of_unreadable_day(e));
        }
        if let Some(o) = &open {
            files.segs.push(Arc::new(o.seg_files()?));
        }
        // Past days are sealed whole; today's closed segments become parts.
        if !is_live || files.segs.len() > 1 || files.parts.len() > seal_worker::MAX_PARTS {
            self.to_seal.push(day);
        }
        if open.is_some() {
            self.live = open;
        }
        self.days.push(Arc::new(files));
        Ok(())
    }
}

/// The report of a day skipped because `e` made its file unreadable.
fn problem_of_unreadable_day(e: StoreError) -> Option<crate::Problem> {
    match e {
        StoreError::Corrupt {
            file,
            offset,
            reason,
        } => Some(crate::Problem {
            file,
            offset,
            reason: format!("the whole day is unreadable and was skipped: {reason}"),
        }),
        _ => None,
    }
}

/// The highest sequence number in `days` (0 if none): what a writer continues from when
/// `DIR/seq` cannot say. Numbers grow with the append order, so the newest day holding any
/// numbered entry has the highest; its live segments are scanned.
fn highest_seq(days: &[Arc<DayFiles>]) -> Result<u64> {
    let mut highest = 0u64;
    for day in days.iter().rev() {
        for seg in &day.segs {
            if seg.kind == record::FrameKind::V1 {
                continue;
            }
            let len = seg
                .segment
                .len()
                .map_err(StoreError::io("stat segment", seg.segment.path()))?;
            segment::scan(
                &seg.segment,
                seg.kind,
                segment::SEGMENT_HEADER_LEN,
                len,
                |ev| {
                    if let segment::ScanEvent::Record { payload, .. } = ev {
                        highest = highest.max(payload.seq);
                    }
                    std::ops::ControlFlow::Continue(())
                },
            )
            .map_err(StoreError::io("read segment", seg.segment.path()))?;
        }
        if let Some(sealed) = day.sealed() {
            highest = highest.max(sealed.max_seq());
        }
        if highest > 0 {
            break;
        }
    }
    Ok(highest)
}
