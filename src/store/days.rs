//! A day's files as readers see them: the segment and how its runs are found.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::error::{Result, StoreError};
use crate::store::commit::ByExecHash;
use crate::store::day::Day;
use crate::store::index::{
    self, live_index_path, sorted_index_path, IndexEntry, SortedIndex, ENTRY_LEN, INDEX_HEADER_LEN,
};
use crate::store::sealed::layout::sealed_path;
use crate::store::sealed::SealedDay;
use crate::store::segment::segment_path;
use crate::store::view::{Access, FileView};

/// How a day's runs are found.
pub(crate) enum DayIndex {
    /// A sealed day: binary search in the sorted index.
    Sorted(SortedIndex),
    /// The live day of this process's writer: newest run per hash in memory, chains on disk.
    Own(Arc<LiveHeads>),
    /// A live (or crashed, unsealed) day of another process: scan its live index.
    Scan(ScanIndex),
    /// A day in the sealed format (v2): no runs, blocks (`src/store/sealed/`).
    Sealed(Arc<SealedDay>),
}

/// Another process's live index, opened on first use and then kept open: if the writer seals
/// the day and deletes the file meanwhile, this reader keeps reading the (unlinked) file it
/// has until its next refresh switches it to the sealed file.
pub(crate) struct ScanIndex {
    path: PathBuf,
    view: parking_lot::Mutex<Option<Arc<FileView>>>,
}

impl ScanIndex {
    fn new(path: PathBuf) -> ScanIndex {
        let view = FileView::open(&path, Access::Pread).ok().map(Arc::new);
        ScanIndex {
            path,
            view: parking_lot::Mutex::new(view),
        }
    }

    /// The index file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The open index, or `None` if it does not exist (yet).
    pub(crate) fn view(&self) -> Result<Option<Arc<FileView>>> {
        let mut slot = self.view.lock();
        if slot.is_none() {
            match FileView::open(&self.path, Access::Pread) {
                Ok(v) => *slot = Some(Arc::new(v)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(StoreError::io("open index", &self.path)(e)),
            }
        }
        Ok(slot.clone())
    }
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
            DayIndex::Sealed(_) => Ok(Vec::new()),
        }
    }

    /// The runs of `hash` among the index entries after the first `*seen`, advancing `*seen`:
    /// for another process's live index, so that a follower reads each index entry once and a
    /// query reads the index in chunks instead of whole. Other kinds of day answer from their
    /// index directly (cheap) and leave `*seen` alone.
    pub(crate) fn runs_after(&self, hash: u64, seen: &mut u64) -> Result<Vec<IndexEntry>> {
        let DayIndex::Scan(scan) = &self.index else {
            return self.runs(hash);
        };
        let Some(view) = scan.view()? else {
            return Ok(Vec::new());
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
    pub(crate) fn read_run(
        &self,
        run: &IndexEntry,
        max: usize,
    ) -> Result<crate::store::view::Chunk> {
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
            DayIndex::Scan(scan) => match scan.view()? {
                Some(v) => Ok(index::read_live(&v)?.0),
                None => Ok(Vec::new()),
            },
            DayIndex::Sealed(_) => Ok(Vec::new()),
        }
    }

    /// The sealed file, if this day is sealed (format v2).
    pub(crate) fn sealed(&self) -> Option<&SealedDay> {
        match &self.index {
            DayIndex::Sealed(s) => Some(s),
            _ => None,
        }
    }
}

/// Opens a day for readers. `foreign`: the files belong to another process's writer (or none),
/// so a live index is scanned and the segment read with `pread`.
pub(super) fn open_day(segments_dir: &Path, day: Day, foreign: bool) -> Result<DayFiles> {
    match open_sealed(segments_dir, day) {
        Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
        other => return other,
    }
    match open_v1(segments_dir, day, foreign) {
        // Sealed between the listing and now: the v1 files are gone, the sealed file is there.
        Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            open_sealed(segments_dir, day)
        }
        other => other,
    }
}

/// Opens a day's sealed file; an `Io` error of kind `NotFound` if it has none.
pub(super) fn open_sealed(segments_dir: &Path, day: Day) -> Result<DayFiles> {
    let path = sealed_path(segments_dir, day);
    let sealed = SealedDay::open(&path, day)?;
    let segment =
        FileView::open(&path, Access::Pread).map_err(StoreError::io("open sealed file", &path))?;
    Ok(DayFiles {
        day,
        segment,
        index: DayIndex::Sealed(Arc::new(sealed)),
    })
}

fn open_v1(segments_dir: &Path, day: Day, foreign: bool) -> Result<DayFiles> {
    let seg = segment_path(segments_dir, day);
    let sidx = sorted_index_path(segments_dir, day);
    let (index, access) = match SortedIndex::open(&sidx) {
        Ok(s) => (DayIndex::Sorted(s), Access::Map),
        Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => (
            DayIndex::Scan(ScanIndex::new(live_index_path(segments_dir, day))),
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

/// The days that have a segment or a sealed file, oldest first. Index files without a segment
/// (left by an interrupted `gc`) are ignored.
pub(super) fn list_days(segments_dir: &Path) -> Result<Vec<Day>> {
    let mut days = Vec::new();
    let rd = std::fs::read_dir(segments_dir).map_err(StoreError::io("list", segments_dir))?;
    for ent in rd {
        let ent = ent.map_err(StoreError::io("list", segments_dir))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        let stem = name
            .strip_suffix(".log")
            .or_else(|| name.strip_suffix(".sealed"));
        if let Some(day) = stem.and_then(|s| s.parse::<Day>().ok()) {
            days.push(day);
        }
    }
    days.sort();
    days.dedup();
    Ok(days)
}
