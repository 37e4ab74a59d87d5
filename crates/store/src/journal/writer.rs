//! The writing side: the flush thread, the batch write, the day roll, the shared fsync.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::read::day_files::{DayFiles, DayIndex, LiveHeads, SegFiles};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::day::Day;
use crate::error::{Result, StoreError};
use crate::fs::sync_dir;
use crate::journal::commit::{Batch, ByExecHash, Layout};
use crate::journal::index::{live_index_header, IndexEntry, ENTRY_LEN, INDEX_HEADER_LEN};
use crate::journal::recovery::{self, entry_number, Damage};
use crate::journal::segment::{SegmentWriter, SEGMENT_HEADER_LEN};
use crate::journal::tail::TailMirror;
use crate::names::{heads_file, index_file, segment_file, sorted_index_file, MAX_SEGMENT_BYTES};
use crate::view::{Access, FileView};

/// The segment being written.
pub(crate) struct LiveFiles {
    pub(crate) day: Day,
    pub(crate) seq: u32,
    pub(crate) segment: SegmentWriter,
    pub(crate) index: File,
    pub(crate) index_path: PathBuf,
    pub(crate) index_len: u64,
    pub(crate) index_count: u32,
    pub(crate) heads: Arc<LiveHeads>,
    pub(crate) sync_handle: Arc<crate::journal::segment::SyncHandle>,
    /// The heads checkpoint for other processes (`store::heads`), and the index entries it
    /// covers.
    pub(crate) heads_path: PathBuf,
    pub(crate) checkpoint_at: u32,
}

pub(crate) struct Writer {
    /// Sequence numbers (`store::seq`).
    pub(crate) seqs: crate::journal::seq::Seqs,
    pub(crate) live: Option<LiveFiles>,
    pub(crate) batch: Batch,
    pub(crate) layout: Layout,
    pub(crate) index_bytes: Vec<u8>,
    /// The earliest day the writer may write: never a day that is sealed or being sealed.
    pub(crate) min_day: Day,
    /// Entries accepted since open. Every flush writes all of them, so after a successful
    /// flush "written" is this number; the group commit compares it with what was fsynced.
    pub(crate) appended: u64,
    pub(crate) last_error: Option<String>,
    pub(crate) closed: bool,
}

pub(crate) struct SyncState {
    /// Accepted entries known to be fsynced.
    pub(crate) synced: u64,
    pub(crate) syncing: bool,
    /// The first failed fsync of the live files: from then on nothing is acknowledged
    /// (fail-stop, `docs/DURABILITY.md`).
    pub(crate) failed: Option<String>,
}

pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) segments_dir: PathBuf,
    pub(crate) config: Config,
    pub(crate) writer: Option<Mutex<Writer>>,
    pub(crate) wake: Condvar,
    pub(crate) sync: Mutex<SyncState>,
    pub(crate) synced: Condvar,
    pub(crate) days: RwLock<Vec<Arc<DayFiles>>>,
    /// Days left out of `days` because their file is unreadable (a sealed file whose trailer
    /// and its copy are both damaged), so that readers can report them rather than be silent.
    pub(crate) unreadable_days: RwLock<Vec<crate::Problem>>,
    /// Held for the store's life: the flock is the writer lock.
    pub(crate) _lock: Option<crate::journal::lock::WriterLock>,
    /// Damage found by recovery at open.
    pub(crate) recovered_damage: Vec<Damage>,
    /// fsyncs of the live segment by the group commit (observability: shared fsyncs show as
    /// fewer fsyncs than finished executions).
    pub(crate) fsyncs: std::sync::atomic::AtomicU64,
    /// Set once an fsync of the live files failed (the reason is in `sync`): appends check it
    /// without taking the sync lock.
    pub(crate) sync_failed: std::sync::atomic::AtomicBool,
    /// The background sealer (writers only).
    pub(crate) seal_queue: crate::background::queue::SealQueue,
    /// The segment the writer appends to: the sealer leaves it alone.
    pub(crate) open_segment: Mutex<Option<(Day, u32)>>,
    /// The followers waiting for executions' next entries.
    pub(crate) waiters: crate::read::waiters::Waiters,
    /// The watcher's file-list generation of the last listing (`refresh_days`).
    pub(crate) listed: std::sync::atomic::AtomicU64,
}

impl Inner {
    pub(crate) fn flush_loop(&self) {
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
    pub(crate) fn flush_locked(&self, w: &mut Writer) -> Result<()> {
        if w.batch.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let entries = w.batch.len();
        let result = self.write_batch(w);
        match &result {
            Ok(()) => {
                crate::observe::flushed(entries, w.layout.bytes.len(), started.elapsed());
                w.batch.clear();
                w.last_error = None;
            }
            Err(e) => w.last_error = Some(e.to_string()),
        }
        result
    }

    pub(crate) fn write_batch(&self, w: &mut Writer) -> Result<()> {
        let day = Day::from_unix_ms(self.config.clock.now_ms()).max(w.min_day);
        let part_bytes = self.config.part_bytes.clamp(1, MAX_SEGMENT_BYTES / 2);
        let full =
            |l: &LiveFiles| l.segment.len() > SEGMENT_HEADER_LEN && l.segment.len() >= part_bytes;
        if w.live.as_ref().is_none_or(|l| day > l.day || full(l)) {
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
        // The CRCs, keyed by the segment's salt and each frame's offset, now that both are known.
        crate::journal::record::finish_frames(&mut layout.bytes, live.segment.kind(), base);
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
        // This process's readers copy the newest runs from memory (`store::tail`).
        shared.segment_tail.append(base, &layout.bytes);
        shared.index_tail.append(live.index_len, index_bytes);
        live.index_len += index_bytes.len() as u64;
        live.index_count += u32::try_from(layout.runs.len()).unwrap_or(u32::MAX);
        // Readers learn of the runs only now, after both files hold them.
        for &(hash, n) in &pending_heads {
            heads.insert(hash, n);
        }

        let due =
            live.index_count - live.checkpoint_at >= crate::journal::heads::every(heads.len());
        // The file is written under a read lock: this process's queries go on meanwhile.
        drop(heads);
        if due {
            live.write_checkpoint();
        }
        // And this process's followers of those executions, now.
        self.waiters
            .wake(pending_heads.iter().map(|&(hash, _)| hash));
        Ok(())
    }

    /// Closes the current segment (if any) and starts the next one, of `day`. The closed
    /// segment and its index are fsynced here (the group commit fsyncs only the open segment,
    /// so nothing unsynced may stay behind, and recovery only ever looks at a day's newest
    /// segment); its rewrite into a part is left to the background sealer.
    pub(crate) fn roll(&self, w: &mut Writer, day: Day) -> Result<()> {
        let seq = match &w.live {
            Some(l) if l.day == day => l.seq + 1,
            _ => crate::names::list(&self.segments_dir)?
                .into_iter()
                .find(|l| l.day == day)
                .map_or(1, |l| l.next_seq()),
        };
        // The next segment exists before the old one is handed to the sealer.
        let files = LiveFiles::create(&self.segments_dir, day, seq, self.config.tail_bytes)?;
        let mut closed = None;
        if let Some(old) = w.live.take() {
            if let Err(e) = old.close() {
                // Closing fsyncs the segment and its index: a failure may have dropped what
                // they held, and a later fsync of the next segment would not bring it back.
                w.live = Some(old);
                drop(files);
                let _ = crate::names::remove_segment(&self.segments_dir, day, seq);
                self.stop_after_failed_sync(&mut self.sync.lock(), e.to_string());
                return Err(e);
            }
            closed = Some(old.day);
        }
        // The sealer must know the new segment is the open one before any view shows it:
        // otherwise it could take the new segment for a closed one (the old open one being
        // named open), seal it into a part and delete it under the writer.
        *self.open_segment.lock() = Some((day, seq));
        let view = Arc::new(files.seg_files()?);
        {
            let mut days = self.days.write();
            match days.iter_mut().find(|d| d.day == day) {
                Some(slot) => {
                    let mut segs = slot.segs.clone();
                    segs.push(view);
                    *slot = Arc::new(DayFiles::in_parts(
                        day,
                        slot.open_parts(),
                        slot.parts.clone(),
                        segs,
                    ));
                }
                None => days.push(Arc::new(DayFiles::in_parts(
                    day,
                    Vec::new(),
                    Vec::new(),
                    vec![view],
                ))),
            }
        }
        w.live = Some(files);
        self.seal_queue.request(closed);
        Ok(())
    }

    /// Fail-stop after a failed fsync of the live files: no entry is acknowledged as synced
    /// and none accepted any more, until the store is reopened and recovery has read what
    /// the disk holds. Retrying the fsync would be wrong: Linux may already have dropped the
    /// dirty pages and cleared the error, so the retry would succeed over lost data.
    pub(crate) fn stop_after_failed_sync(&self, s: &mut SyncState, reason: String) {
        tracing::error!(%reason, "an fsync of the live files failed: the store accepts no more writes until it is reopened");
        if s.failed.is_none() {
            s.failed = Some(reason);
        }
        self.sync_failed
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// The reason of the failed fsync that stopped this writer, if one did.
    pub(crate) fn failed_sync(&self) -> Option<String> {
        if !self.sync_failed.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        self.sync.lock().failed.clone()
    }

    /// Group commit: returns once the first `target` accepted entries are fsynced. One caller
    /// at a time is the leader: it flushes everything buffered (its own entries and those of
    /// everyone who asked meanwhile) and fsyncs once; the others wait and find themselves
    /// covered. N executions finishing together cost a few writes and fsyncs, not N.
    pub(crate) fn sync_to(&self, target: u64) -> Result<()> {
        let Some(writer) = self.writer.as_ref() else {
            return Ok(());
        };
        let mut s = self.sync.lock();
        loop {
            if let Some(reason) = &s.failed {
                return Err(StoreError::SyncFailed {
                    reason: reason.clone(),
                });
            }
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
            let mut sync_failed = None;
            let result = flushed.and_then(|(file, written)| {
                if let Some(f) = &file {
                    let started = std::time::Instant::now();
                    if let Err(e) = f.sync() {
                        sync_failed = Some(e.to_string());
                        return Err(e);
                    }
                    crate::observe::fsynced(started.elapsed());
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
            if let Some(reason) = sync_failed {
                self.stop_after_failed_sync(&mut s, reason);
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
    pub(crate) fn create(
        segments_dir: &Path,
        day: Day,
        seq: u32,
        tail: usize,
    ) -> Result<LiveFiles> {
        let seg = segment_file(segments_dir, day, seq);
        let rec = if seg.exists() {
            let sidx = sorted_index_file(segments_dir, day, seq);
            crate::names::remove(&sidx)?;
            recovery::recover(&seg, &index_file(segments_dir, day, seq))?
        } else {
            recovery::Recovered::default()
        };
        let files = LiveFiles::resume(segments_dir, day, seq, &rec, tail)?;
        files.segment.sync()?;
        files
            .index
            .sync_all()
            .map_err(StoreError::io("fsync index", &files.index_path))?;
        sync_dir(segments_dir)?;
        Ok(files)
    }

    /// Opens a day's files for appending, as recovery left them.
    pub(crate) fn resume(
        segments_dir: &Path,
        day: Day,
        seq: u32,
        rec: &recovery::Recovered,
        tail: usize,
    ) -> Result<LiveFiles> {
        let seg_path = segment_file(segments_dir, day, seq);
        let segment = SegmentWriter::open(&seg_path, rec.segment_len)?;
        // Recovery may have rewritten the index's tail: an old checkpoint could describe
        // entries that are no longer there.
        let heads_path = heads_file(segments_dir, day, seq);
        crate::names::remove(&heads_path)?;
        let index_path = index_file(segments_dir, day, seq);
        let index = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&index_path)
            .map_err(StoreError::io("open index", &index_path))?;
        let kept_len = INDEX_HEADER_LEN + (rec.kept_index_entries * ENTRY_LEN) as u64;
        let count = rec.kept_index_entries + rec.rebuilt.len();
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
        let mut bytes = Vec::with_capacity(rec.rebuilt.len() * ENTRY_LEN);
        for e in &rec.rebuilt {
            bytes.extend_from_slice(&e.to_bytes());
        }
        let heads: ByExecHash<u32> = rec.heads.iter().map(|(&h, &n)| (h, n)).collect();
        index
            .write_all_at(&bytes, kept_len)
            .map_err(StoreError::io("write index", &index_path))?;
        let sync_handle = Arc::new(segment.sync_handle()?);
        let view = FileView::open(&index_path, Access::Map)
            .map_err(StoreError::io("open index", &index_path))?;
        let index_len = INDEX_HEADER_LEN + (count * ENTRY_LEN) as u64;
        // The index holds a 32-byte entry per run of a few hundred bytes: a quarter of the
        // segment's share covers the same runs.
        let segment_tail = TailMirror::new(rec.segment_len, tail);
        let index_tail = TailMirror::new(index_len, tail / 4);
        Ok(LiveFiles {
            day,
            seq,
            segment,
            index,
            index_path,
            index_len,
            index_count: u32::try_from(count).unwrap_or(u32::MAX),
            heads: Arc::new(LiveHeads {
                heads: RwLock::new(heads),
                index: view,
                segment_tail,
                index_tail,
            }),
            sync_handle,
            heads_path,
            checkpoint_at: 0,
        })
    }

    /// Fills the mirrors with the newest bytes the files already hold, so that a reopened
    /// writer's readers are as fast as before it stopped (only for the segment it goes on
    /// writing). A failed read leaves them empty: reads then go to the files.
    pub(crate) fn warm_tails(&self) {
        let segment = FileView::open(self.segment.path(), Access::Map).ok();
        for (mirror, view, len, first) in [
            (
                &self.heads.segment_tail,
                segment.as_ref(),
                self.segment.len(),
                SEGMENT_HEADER_LEN,
            ),
            (
                &self.heads.index_tail,
                Some(&self.heads.index),
                self.index_len,
                INDEX_HEADER_LEN,
            ),
        ] {
            let from = len.saturating_sub(mirror.capacity() as u64).max(first);
            let Ok(n) = usize::try_from(len.saturating_sub(from)) else {
                continue;
            };
            if let Some(bytes) = view.and_then(|v| v.read(from, n).ok()) {
                mirror.append(from, &bytes);
            }
        }
    }

    /// Writes the heads checkpoint of the whole index so far. A failure costs other processes
    /// a longer scan, never an entry: it is only logged.
    fn write_checkpoint(&mut self) {
        let written = crate::journal::heads::write(
            &self.heads_path,
            self.index_count,
            &self.heads.heads.read(),
        );
        match written {
            Ok(()) => self.checkpoint_at = self.index_count,
            Err(e) => tracing::warn!(error = %e, "cannot write the heads checkpoint"),
        }
    }

    pub(crate) fn segment_truncate(&mut self, len: u64) -> Result<()> {
        let path = self.segment.path().to_owned();
        self.segment = SegmentWriter::open(&path, len)?;
        Ok(())
    }

    /// Makes the segment and its index durable: what closing it (a roll) requires.
    pub(crate) fn close(&self) -> Result<()> {
        // A closed segment waits for the sealer with a checkpoint of its whole index, so that
        // another process's query of it scans nothing.
        if self.checkpoint_at != self.index_count {
            let heads = self.heads.heads.read();
            if let Err(e) = crate::journal::heads::write(&self.heads_path, self.index_count, &heads)
            {
                tracing::warn!(error = %e, "cannot write the heads checkpoint");
            }
        }
        self.segment.sync()?;
        // Closed: its readers go to the file (soon a part), and the memory goes back now.
        self.heads.segment_tail.clear();
        self.heads.index_tail.clear();
        self.index
            .sync_all()
            .map_err(StoreError::io("fsync index", &self.index_path))
    }

    /// The readers' view of this segment.
    pub(crate) fn seg_files(&self) -> Result<SegFiles> {
        let path = self.segment.path();
        Ok(SegFiles {
            day: self.day,
            seq: self.seq,
            segment: FileView::open(path, Access::Map)
                .map_err(StoreError::io("open segment", path))?,
            kind: self.segment.kind(),
            index: DayIndex::Own(Arc::clone(&self.heads)),
            // The writer knows its own header.
            provisional: false,
        })
    }
}
