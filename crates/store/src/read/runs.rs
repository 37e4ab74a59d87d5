//! Random access to the runs of one segment's index, whichever kind it has (the writer's own,
//! another process's live index, or a sorted one): what a reader that walks a segment in
//! offset order (search, by units of work) cuts it by.

use std::sync::Arc;

use crate::error::{Result, StoreError};
use crate::journal::index::{read_live_entry, IndexEntry, ENTRY_LEN, INDEX_HEADER_LEN};
use crate::read::day_files::{DayIndex, SegFiles};
use crate::view::{Access, FileView};

/// Random access to a day's index entries, whichever kind it has.
pub struct RunIndex<'a> {
    day: &'a SegFiles,
    view: Option<Arc<FileView>>,
    count: u64,
}

impl<'a> RunIndex<'a> {
    /// How many runs the index holds.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// None when there is no index to read (a live index that vanished, or a sealed v2 day,
    /// which `sealed.rs` searches).
    pub(crate) fn of(day: &'a SegFiles) -> Result<Option<RunIndex<'a>>> {
        let view = match &day.index() {
            // Open (mapped) with the day's view: never vanishes under it.
            DayIndex::Sorted(s) => {
                return Ok(Some(RunIndex {
                    day,
                    view: None,
                    count: s.len() as u64,
                }));
            }
            DayIndex::Own(live) => match FileView::open(live.index.path(), Access::Pread) {
                Ok(v) => Arc::new(v),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(StoreError::io("open index", live.index.path())(e)),
            },
            DayIndex::Scan(scan) => match scan.view()? {
                Some(v) => v,
                None => return Ok(None),
            },
        };
        let len = view
            .len()
            .map_err(StoreError::io("read index", view.path()))?;
        let count = len.saturating_sub(INDEX_HEADER_LEN) / ENTRY_LEN as u64;
        Ok(Some(RunIndex {
            day,
            view: Some(view),
            count,
        }))
    }

    /// Entry `i` (0-based), None if it fails its CRC.
    pub fn get(&self, i: u64) -> Result<Option<IndexEntry>> {
        match (&self.view, &self.day.index()) {
            (Some(view), _) => read_live_entry(view, u32::try_from(i + 1).unwrap_or(u32::MAX)),
            (None, DayIndex::Sorted(s)) => match s.get(usize::try_from(i).unwrap_or(usize::MAX)) {
                Ok(e) => Ok(Some(e)),
                Err(StoreError::Corrupt { .. }) => Ok(None),
                Err(e) => Err(e),
            },
            (None, _) => Ok(None),
        }
    }

    /// The end of the last run of a live index. Its last entries may be torn by a write in
    /// progress (another process's writer): step back over those.
    pub fn last_end(&self) -> Result<Option<u64>> {
        for i in (0..self.count).rev().take(16) {
            if let Some(e) = self.get(i)? {
                return Ok(Some(e.end()));
            }
        }
        Ok(None)
    }
}

impl SegFiles {
    /// Random access to the runs of its index; None when there is no index to read (a live
    /// index that vanished, or a sealed day, which is read by blocks).
    pub fn run_index(&self) -> Result<Option<RunIndex<'_>>> {
        RunIndex::of(self)
    }
}
