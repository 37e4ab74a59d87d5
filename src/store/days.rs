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
use crate::store::segment::segment_path;
use crate::store::view::{Access, FileView};

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

/// Opens a day for readers. `foreign`: the files belong to another process's writer (or none),
/// so a live index is scanned and the segment read with `pread`.
pub(super) fn open_day(segments_dir: &Path, day: Day, foreign: bool) -> Result<DayFiles> {
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
pub(super) fn list_days(segments_dir: &Path) -> Result<Vec<Day>> {
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
