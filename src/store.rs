//! `LogStore`: the directory, the writer lock, the day roll, the flush thread, retention.
//!
//! ```text
//! DIR/LOCK                       writer lock (flock), holds the writer's pid
//! DIR/segments/YYYY-MM-DD.log    records of that UTC day (segment.rs)
//! DIR/segments/YYYY-MM-DD.idx    live index (index.rs)
//! DIR/segments/YYYY-MM-DD.sidx   sorted index, once the day is sealed
//! ```

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::clock::{Clock, SystemClock};
use crate::commit::{Batch, ByExecHash, CommitPolicy, Durability, Layout};
use crate::day::Day;
use crate::error::{Result, StoreError};
use crate::index::{
    self, live_index_header, live_index_path, sorted_index_path, sync_dir, IndexEntry, SortedIndex,
    ENTRY_LEN, INDEX_HEADER_LEN,
};
use crate::record;
use crate::recovery::{self, entry_number, Damage};
use crate::segment::{segment_path, SegmentWriter};
use crate::view::{Access, FileView};
use crate::{EntrySink, ExecutionId, LogEntry, SinkError};

/// How a store is opened.
#[derive(Clone)]
pub struct Config {
    /// Group commit thresholds.
    pub commit: CommitPolicy,
    /// Where "now" comes from (the day of a write, the age of the buffer).
    pub clock: Arc<dyn Clock>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            commit: CommitPolicy::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("commit", &self.commit)
            .finish_non_exhaustive()
    }
}

/// How a day's runs are found.
pub(crate) enum DayIndex {
    /// A sealed day: binary search in the sorted index.
    Sorted(SortedIndex),
    /// The live day of this process's writer: newest run per hash in memory, chains on disk.
    Own(Arc<LiveHeads>),
    /// A live (or crashed, unsealed) day of another process: scan its live index.
    Scan(PathBuf),
}

/// The writer's in-memory head of every execution's chain in the live index.
pub(crate) struct LiveHeads {
    pub(crate) heads: RwLock<ByExecHash<u32>>,
    pub(crate) index: FileView,
}

/// One day's files, as readers see them.
pub(crate) struct DayFiles {
    pub(crate) day: Day,
    pub(crate) segment: FileView,
    pub(crate) index: DayIndex,
}

impl DayFiles {
    /// The runs of `hash` in this day, in segment order.
    pub(crate) fn runs(&self, hash: u64) -> Result<Vec<IndexEntry>> {
        match &self.index {
            DayIndex::Sorted(s) => s.lookup(hash),
            DayIndex::Own(live) => {
                let head = live.heads.read().get(&hash).copied().unwrap_or(0);
                let mut runs = Vec::new();
                let mut n = head;
                while n != 0 {
                    let Some(e) = index::read_live_entry(&live.index, n)? else {
                        return Err(StoreError::Corrupt {
                            file: live.index.path().to_owned(),
                            offset: INDEX_HEADER_LEN + (u64::from(n) - 1) * ENTRY_LEN as u64,
                            reason: "index entry fails its checksum".to_owned(),
                        });
                    };
                    // A chain only points backwards; anything else is damage, not a loop to follow.
                    if e.prev >= n {
                        break;
                    }
                    runs.push(e);
                    n = e.prev;
                }
                runs.reverse();
                Ok(runs)
            }
            DayIndex::Scan(_) => self.runs_after(hash, &mut 0),
        }
    }

    /// The runs of `hash` among the index entries after the first `*seen`, advancing `*seen`:
    /// for another process's live index, so that a follower reads each index entry once and a
    /// query reads the index in chunks instead of whole. Other kinds of day answer from their
    /// index directly (cheap) and leave `*seen` alone.
    pub(crate) fn runs_after(&self, hash: u64, seen: &mut u64) -> Result<Vec<IndexEntry>> {
        let DayIndex::Scan(path) = &self.index else {
            return self.runs(hash);
        };
        let view = match FileView::open(path, Access::Pread) {
            Ok(v) => v,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("open index", path)(e)),
        };
        let mut runs = Vec::new();
        let valid = index::scan_live(&view, *seen, |_, e| {
            if e.hash == hash {
                runs.push(e);
            }
        })?;
        *seen = valid.max(*seen);
        Ok(runs)
    }

    /// The bytes of `run` (at most `max` of them). A run that reaches past the end of the
    /// segment (an index that outlived a power cut before recovery, or a damaged sealed file)
    /// gives what exists, with a warning: damage costs the damaged records, not the query.
    pub(crate) fn read_run(&self, run: &IndexEntry, max: usize) -> Result<crate::view::Chunk> {
        let len = usize::try_from(run.length).unwrap_or(usize::MAX).min(max);
        let io = || StoreError::io("read segment", self.segment.path());
        match self.segment.read(run.offset, len) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                let file_len = self.segment.len().map_err(io())?;
                let have = usize::try_from(file_len.saturating_sub(run.offset))
                    .unwrap_or(0)
                    .min(len);
                tracing::warn!(file = %self.segment.path().display(), offset = run.offset, length = run.length, file_len, "index run reaches past the end of the segment; reading what exists (run `logstore verify`)");
                self.segment
                    .read(run.offset.min(file_len), have)
                    .map_err(io())
            }
            other => other.map_err(io()),
        }
    }

    /// Every run of the day (for `list`, `stats`, `verify`), in index order.
    /// (Damaged sorted-index entries are left out; `verify` reports them.)
    pub(crate) fn all_runs(&self) -> Result<Vec<IndexEntry>> {
        match &self.index {
            DayIndex::Sorted(s) => Ok(s.entries()?.0),
            DayIndex::Own(live) => Ok(index::read_live(&live.index)?.0),
            DayIndex::Scan(path) => self.all_runs_scan(path),
        }
    }

    fn all_runs_scan(&self, path: &Path) -> Result<Vec<IndexEntry>> {
        match FileView::open(path, Access::Pread) {
            Ok(v) => Ok(index::read_live(&v)?.0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(StoreError::io("open index", path)(e)),
        }
    }
}

/// The files of the day being written.
struct LiveFiles {
    day: Day,
    segment: SegmentWriter,
    index: File,
    index_path: PathBuf,
    index_len: u64,
    index_count: u32,
    heads: Arc<LiveHeads>,
    sync_handle: Arc<File>,
}

struct Writer {
    live: Option<LiveFiles>,
    batch: Batch,
    layout: Layout,
    index_bytes: Vec<u8>,
    /// Entries accepted since open. Every flush writes all of them, so after a successful
    /// flush "written" is this number; the group commit compares it with what was fsynced.
    appended: u64,
    last_error: Option<String>,
    closed: bool,
}

struct SyncState {
    /// Accepted entries known to be fsynced.
    synced: u64,
    syncing: bool,
}

struct Inner {
    dir: PathBuf,
    segments_dir: PathBuf,
    config: Config,
    writer: Option<Mutex<Writer>>,
    wake: Condvar,
    sync: Mutex<SyncState>,
    synced: Condvar,
    days: RwLock<Vec<Arc<DayFiles>>>,
    /// Held for the store's life: the flock is the writer lock.
    _lock: Option<File>,
    /// Damage found by recovery at open.
    recovered_damage: Vec<Damage>,
    /// fsyncs of the live segment by the group commit (observability: shared fsyncs show as
    /// fewer fsyncs than finished executions).
    fsyncs: std::sync::atomic::AtomicU64,
}

/// An embedded log store: one writer per directory, any number of readers.
///
/// Cheap to share: wrap it in an `Arc`. Dropping it flushes and fsyncs what is buffered.
pub struct LogStore {
    inner: Arc<Inner>,
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
        let mut days = Vec::new();
        let mut live = None;
        let mut damage = Vec::new();
        let listed = list_days(&segments_dir)?;
        let newest = listed.last().copied();
        for day in listed {
            let seg = segment_path(&segments_dir, day);
            let sidx = sorted_index_path(&segments_dir, day);
            if !sidx.exists() {
                let rec = recovery::recover(&seg, &live_index_path(&segments_dir, day))?;
                if let Some((offset, bytes)) = rec.cut_tail {
                    tracing::warn!(file = %seg.display(), offset, bytes, "cut torn tail of segment");
                }
                for d in &rec.damage {
                    tracing::warn!(file = %d.file.display(), offset = d.offset, len = d.len, reason = %d.reason, "damaged records skipped");
                }
                damage.extend(rec.damage.iter().cloned());
                let files = LiveFiles::resume(&segments_dir, day, &rec)?;
                // The newest day stays live if it is today (or later: a clock that went back).
                if Some(day) == newest && day >= today {
                    live = Some(files);
                    continue;
                }
                files.seal()?;
            }
            days.push(Arc::new(open_day(&segments_dir, day, false)?));
        }
        if let Some(l) = &live {
            days.push(Arc::new(l.day_files()?));
        }
        let inner = Arc::new(Inner {
            dir,
            segments_dir,
            config,
            writer: Some(Mutex::new(Writer {
                live,
                batch: Batch::default(),
                layout: Layout::default(),
                index_bytes: Vec::new(),
                appended: 0,
                last_error: None,
                closed: false,
            })),
            wake: Condvar::new(),
            sync: Mutex::new(SyncState {
                synced: 0,
                syncing: false,
            }),
            synced: Condvar::new(),
            days: RwLock::new(days),
            _lock: Some(lock),
            recovered_damage: damage,
            fsyncs: std::sync::atomic::AtomicU64::new(0),
        });
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
            }),
            synced: Condvar::new(),
            days: RwLock::new(Vec::new()),
            _lock: None,
            recovered_damage: Vec::new(),
            fsyncs: std::sync::atomic::AtomicU64::new(0),
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
        SCRATCH.with(|scratch| {
            let mut frame = scratch.borrow_mut();
            frame.clear();
            record::encode(entry, &mut frame)?;
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
    /// Returns the days deleted.
    pub fn gc(&self, keep_days: u32) -> Result<Vec<Day>> {
        let writer = self.inner.writer.as_ref().ok_or(StoreError::ReadOnly)?;
        let today = Day::from_unix_ms(self.inner.config.clock.now_ms());
        let cutoff = Day(today.0 - i64::from(keep_days));
        // Holding the writer lock: no day roll can race with the deletion.
        let w = writer.lock();
        let live_day = w.live.as_ref().map(|l| l.day);
        let mut deleted = Vec::new();
        let mut days = self.inner.days.write();
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
            // The segment goes first: an index without its segment is ignored and cleaned up.
            for path in [
                segment_path(&self.inner.segments_dir, *day),
                sorted_index_path(&self.inner.segments_dir, *day),
                live_index_path(&self.inner.segments_dir, *day),
            ] {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::io("delete", &path)(e)),
                }
            }
        }
        if !deleted.is_empty() {
            sync_dir(&self.inner.segments_dir)?;
        }
        Ok(deleted)
    }

    /// Re-reads the directory listing (read-only handles: days another process added).
    pub(crate) fn refresh_days(&self) -> Result<()> {
        if self.inner.writer.is_some() {
            return Ok(());
        }
        let listed = list_days(&self.inner.segments_dir)?;
        let mut days = self.inner.days.write();
        let mut fresh = Vec::with_capacity(listed.len());
        for day in listed {
            let sealed = sorted_index_path(&self.inner.segments_dir, day).exists();
            match days.iter().find(|d| d.day == day) {
                Some(d) if sealed == matches!(d.index, DayIndex::Sorted(_)) => {
                    fresh.push(Arc::clone(d))
                }
                _ => match open_day(&self.inner.segments_dir, day, true) {
                    Ok(d) => fresh.push(Arc::new(d)),
                    // Deleted by gc between the listing and the open.
                    Err(StoreError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                },
            }
        }
        *days = fresh;
        Ok(())
    }

    /// The days as readers see them now.
    pub(crate) fn days(&self) -> Vec<Arc<DayFiles>> {
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

impl Inner {
    fn flush_loop(&self) {
        let Some(writer) = self.writer.as_ref() else {
            return;
        };
        let policy = self.config.commit;
        let delay = i64::try_from(policy.max_batch_delay.as_millis()).unwrap_or(i64::MAX);
        let mut w = writer.lock();
        loop {
            if w.closed {
                return;
            }
            let now = self.config.clock.now_ms();
            // Wake at least every IDLE_WAKE of real time, so an injected clock that jumps is
            // noticed, a new batch is seen without a wake-up, and retries of a failing disk are
            // paced.
            let wait_ms = match w.batch.oldest_ms() {
                None => 100,
                Some(t) if now.saturating_sub(t) >= delay => {
                    if let Err(e) = self.flush_locked(&mut w) {
                        tracing::error!(error = %e, "logstore: timed flush failed; will retry");
                        100
                    } else {
                        continue;
                    }
                }
                Some(t) => (delay - now.saturating_sub(t)).clamp(1, 100),
            };
            self.wake.wait_for(
                &mut w,
                Duration::from_millis(u64::try_from(wait_ms).unwrap_or(100)),
            );
        }
    }

    /// Writes the batch: the day's files are rolled if the day changed, each execution's
    /// entries go out as one run, and the run's index entries follow. On any failure both files
    /// are cut back, the batch stays buffered, and the error is returned (and remembered).
    fn flush_locked(&self, w: &mut Writer) -> Result<()> {
        if w.batch.is_empty() {
            return Ok(());
        }
        let result = self.write_batch(w);
        match &result {
            Ok(()) => {
                w.batch.clear();
                w.last_error = None;
            }
            Err(e) => w.last_error = Some(e.to_string()),
        }
        result
    }

    fn write_batch(&self, w: &mut Writer) -> Result<()> {
        let day = Day::from_unix_ms(self.config.clock.now_ms());
        if w.live.as_ref().is_none_or(|l| day > l.day) {
            self.roll(w, day)?;
        }
        let Writer {
            live,
            batch,
            layout,
            index_bytes,
            ..
        } = w;
        let Some(live) = live.as_mut() else {
            return Err(StoreError::ReadOnly);
        };
        batch.layout(layout);
        let base = live.segment.len();
        let shared = Arc::clone(&live.heads);
        let mut heads = shared.heads.write();
        index_bytes.clear();
        let mut pending_heads = Vec::with_capacity(layout.runs.len());
        for (i, run) in layout.runs.iter().enumerate() {
            let prev = pending_heads
                .iter()
                .rev()
                .find(|(h, _)| *h == run.hash)
                .map(|&(_, n)| n)
                .or_else(|| heads.get(&run.hash).copied())
                .unwrap_or(0);
            let n = live.index_count + entry_number(i);
            let entry = IndexEntry {
                offset: base + run.offset,
                prev,
                ..*run
            };
            index_bytes.extend_from_slice(&entry.to_bytes());
            pending_heads.push((run.hash, n));
        }
        live.segment.append(&layout.bytes)?;
        if let Err(e) = live.index.write_all_at(index_bytes, live.index_len) {
            let _ = live.index.set_len(live.index_len);
            // Keep the two files in step: the batch is retried whole, so its records must go.
            let _ = live.segment_truncate(base);
            return Err(StoreError::io("append to index", &live.index_path)(e));
        }
        live.index_len += index_bytes.len() as u64;
        live.index_count += u32::try_from(layout.runs.len()).unwrap_or(u32::MAX);
        // Readers learn of the runs only now, after both files hold them.
        for (hash, n) in pending_heads {
            heads.insert(hash, n);
        }
        Ok(())
    }

    /// Seals the current day (if any) and starts `day`.
    fn roll(&self, w: &mut Writer, day: Day) -> Result<()> {
        if let Some(old) = w.live.take() {
            let old_day = old.day;
            if let Err(e) = old.seal() {
                // Keep writing the old day rather than lose the ability to write at all; the
                // seal is retried at the next roll or open.
                w.live = Some(old);
                return Err(e);
            }
            let sealed = open_day(&self.segments_dir, old_day, false)?;
            let mut days = self.days.write();
            if let Some(slot) = days.iter_mut().find(|d| d.day == old_day) {
                *slot = Arc::new(sealed);
            }
        }
        let files = LiveFiles::create(&self.segments_dir, day)?;
        let view = Arc::new(files.day_files()?);
        let mut days = self.days.write();
        match days.iter_mut().find(|d| d.day == day) {
            Some(slot) => *slot = view,
            None => days.push(view),
        }
        w.live = Some(files);
        Ok(())
    }

    /// Group commit: returns once the first `target` accepted entries are fsynced. One caller
    /// at a time is the leader: it flushes everything buffered (its own entries and those of
    /// everyone who asked meanwhile) and fsyncs once; the others wait and find themselves
    /// covered. N executions finishing together cost a few writes and fsyncs, not N.
    fn sync_to(&self, target: u64) -> Result<()> {
        let Some(writer) = self.writer.as_ref() else {
            return Ok(());
        };
        let mut s = self.sync.lock();
        loop {
            if s.synced >= target {
                return Ok(());
            }
            if s.syncing {
                self.synced.wait(&mut s);
                continue;
            }
            s.syncing = true;
            drop(s);
            let flushed = {
                let mut w = writer.lock();
                self.flush_locked(&mut w).map(|()| {
                    (
                        w.live.as_ref().map(|l| Arc::clone(&l.sync_handle)),
                        w.appended,
                    )
                })
            };
            // Earlier days were fsynced when they were sealed, so the live segment is all
            // that can hold unsynced flushes.
            let result = flushed.and_then(|(file, written)| {
                if let Some(f) = &file {
                    f.sync_data()
                        .map_err(StoreError::io("fsync segment", &self.segments_dir))?;
                    self.fsyncs
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(written)
            });
            s = self.sync.lock();
            s.syncing = false;
            if let Ok(written) = result {
                s.synced = s.synced.max(written);
            }
            self.synced.notify_all();
            result?;
        }
    }
}

impl LiveFiles {
    /// Starts writing `day`: a new segment and live index with their headers, both fsynced with
    /// their directory so the new files survive a power cut. If the day already has a segment
    /// (a clock that went back to a sealed day), it is unsealed and appended to, never rewritten.
    fn create(segments_dir: &Path, day: Day) -> Result<LiveFiles> {
        let seg = segment_path(segments_dir, day);
        let rec = if seg.exists() {
            let sidx = sorted_index_path(segments_dir, day);
            match std::fs::remove_file(&sidx) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("delete sorted index", &sidx)(e)),
            }
            recovery::recover(&seg, &live_index_path(segments_dir, day))?
        } else {
            recovery::Recovered::default()
        };
        let files = LiveFiles::resume(segments_dir, day, &rec)?;
        files.segment.sync()?;
        files
            .index
            .sync_all()
            .map_err(StoreError::io("fsync index", &files.index_path))?;
        sync_dir(segments_dir)?;
        Ok(files)
    }

    /// Opens a day's files for appending, as recovery left them.
    fn resume(segments_dir: &Path, day: Day, rec: &recovery::Recovered) -> Result<LiveFiles> {
        let seg_path = segment_path(segments_dir, day);
        let segment = SegmentWriter::open(&seg_path, rec.segment_len)?;
        let index_path = live_index_path(segments_dir, day);
        let index = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&index_path)
            .map_err(StoreError::io("open index", &index_path))?;
        let kept_len = INDEX_HEADER_LEN + (rec.kept_index_entries * ENTRY_LEN) as u64;
        let keep = if rec.kept_index_entries == 0 {
            0
        } else {
            kept_len
        };
        index
            .set_len(keep)
            .map_err(StoreError::io("truncate index", &index_path))?;
        if keep == 0 {
            index
                .write_all_at(&live_index_header(), 0)
                .map_err(StoreError::io("write index", &index_path))?;
        }
        let mut bytes = Vec::new();
        let mut heads = ByExecHash::default();
        for (i, e) in rec.entries.iter().enumerate() {
            heads.insert(e.hash, entry_number(i));
            if i >= rec.kept_index_entries {
                bytes.extend_from_slice(&e.to_bytes());
            }
        }
        index
            .write_all_at(&bytes, kept_len)
            .map_err(StoreError::io("write index", &index_path))?;
        let sync_handle = Arc::new(segment.sync_handle()?);
        let view = FileView::open(&index_path, Access::Map)
            .map_err(StoreError::io("open index", &index_path))?;
        Ok(LiveFiles {
            day,
            segment,
            index,
            index_path,
            index_len: INDEX_HEADER_LEN + (rec.entries.len() * ENTRY_LEN) as u64,
            index_count: u32::try_from(rec.entries.len()).unwrap_or(u32::MAX),
            heads: Arc::new(LiveHeads {
                heads: RwLock::new(heads),
                index: view,
            }),
            sync_handle,
        })
    }

    fn segment_truncate(&mut self, len: u64) -> Result<()> {
        let path = self.segment.path().to_owned();
        self.segment = SegmentWriter::open(&path, len)?;
        Ok(())
    }

    /// The readers' view of this live day.
    fn day_files(&self) -> Result<DayFiles> {
        let path = self.segment.path();
        Ok(DayFiles {
            day: self.day,
            segment: FileView::open(path, Access::Map)
                .map_err(StoreError::io("open segment", path))?,
            index: DayIndex::Own(Arc::clone(&self.heads)),
        })
    }

    /// Ends the day: fsync the segment, then write the sorted index (which is itself written
    /// atomically), so a sorted index only ever describes durable records.
    fn seal(&self) -> Result<()> {
        self.segment.sync()?;
        let view = FileView::open(&self.index_path, Access::Pread)
            .map_err(StoreError::io("open index", &self.index_path))?;
        let (entries, _) = index::read_live(&view)?;
        SortedIndex::write(
            &sorted_index_path(self.index_path.parent().unwrap_or(Path::new(".")), self.day),
            &entries,
        )
    }
}

/// Opens a day for readers. `foreign`: the files belong to another process's writer (or none),
/// so a live index is scanned and the segment read with `pread`.
fn open_day(segments_dir: &Path, day: Day, foreign: bool) -> Result<DayFiles> {
    let seg = segment_path(segments_dir, day);
    let sidx = sorted_index_path(segments_dir, day);
    let (index, access) = match SortedIndex::open(&sidx) {
        Ok(s) => (DayIndex::Sorted(s), Access::Map),
        Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => (
            DayIndex::Scan(live_index_path(segments_dir, day)),
            if foreign { Access::Pread } else { Access::Map },
        ),
        Err(e) => return Err(e),
    };
    let segment = FileView::open(&seg, access).map_err(StoreError::io("open segment", &seg))?;
    Ok(DayFiles {
        day,
        segment,
        index,
    })
}

/// The days that have a segment file, oldest first. Index files without a segment (left by an
/// interrupted `gc`) are ignored.
fn list_days(segments_dir: &Path) -> Result<Vec<Day>> {
    let mut days = Vec::new();
    let rd = std::fs::read_dir(segments_dir).map_err(StoreError::io("list", segments_dir))?;
    for ent in rd {
        let ent = ent.map_err(StoreError::io("list", segments_dir))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(".log") {
            if let Ok(day) = stem.parse::<Day>() {
                days.push(day);
            }
        }
    }
    days.sort();
    Ok(days)
}

/// Takes the writer lock on `dir`, writing our pid into the lock file.
fn take_lock(dir: &Path) -> Result<File> {
    let path = dir.join("LOCK");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(StoreError::io("open lock file", &path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(StoreError::Locked {
                dir: dir.to_owned(),
                holder: text.trim().parse().ok(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(StoreError::io("lock", &path)(e)),
    }
    file.set_len(0)
        .map_err(StoreError::io("write lock file", &path))?;
    file.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0)
        .map_err(StoreError::io("write lock file", &path))?;
    Ok(file)
}
