//! A day's files as readers see them: its sealed parts, then its live segments and how their
//! runs are found.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::day::Day;
use crate::error::{Result, StoreError};
use crate::journal::commit::ByExecHash;
use crate::journal::heads::Checkpoint;
use crate::journal::index::{self, IndexEntry, SortedIndex, ENTRY_LEN, INDEX_HEADER_LEN};
use crate::journal::record::FrameKind;
use crate::journal::tail::TailMirror;
use crate::names::{
    heads_file, index_file, part_file, segment_file, sorted_index_file, split_offset,
    virtual_offset, DayListing,
};
use crate::sealed::layout::sealed_path;
use crate::sealed::{SealedDay, SealedFile};
use crate::view::{Access, FileView};

/// Runs of one segment at most this far apart are read with one `pread`.
pub(crate) const COALESCE_GAP: u64 = 16 << 10;
/// The most bytes one coalesced read spans.
pub(crate) const COALESCE_SPAN: u64 = 4 << 20;

/// How a day's runs are found.
pub(crate) enum DayIndex {
    /// A sealed day: binary search in the sorted index.
    Sorted(SortedIndex),
    /// The live day of this process's writer: newest run per hash in memory, chains on disk.
    Own(Arc<LiveHeads>),
    /// A live (or crashed, unsealed) day of another process: scan its live index.
    Scan(ScanIndex),
}

/// Another process's live index, opened on first use and then kept open: if the writer seals
/// the day and deletes the file meanwhile, this reader keeps reading the (unlinked) file it
/// has until its next refresh switches it to the sealed file.
pub(crate) struct ScanIndex {
    path: PathBuf,
    /// Its heads checkpoint (`store::heads`).
    heads: PathBuf,
    view: parking_lot::Mutex<Option<Arc<FileView>>>,
}

impl ScanIndex {
    fn new(path: PathBuf, heads: PathBuf) -> ScanIndex {
        let view = FileView::open(&path, Access::Pread).ok().map(Arc::new);
        ScanIndex {
            path,
            heads,
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
    /// The newest bytes of the segment and of its index, for this process's readers.
    pub(crate) segment_tail: TailMirror,
    pub(crate) index_tail: TailMirror,
}

impl LiveHeads {
    /// Live index entry number `n` (1-based), from memory when the mirror holds it.
    fn entry(&self, n: u32) -> Result<Option<IndexEntry>> {
        match self.index_tail.read(index::live_entry_at(n), ENTRY_LEN) {
            Some(b) => Ok(IndexEntry::from_bytes(&b)),
            None => index::read_live_entry(&self.index, n),
        }
    }
}

/// One segment of a day (and its index), as readers see it. Offsets in its runs are offsets
/// in this file.
pub struct SegFiles {
    pub(crate) day: Day,
    pub(crate) seq: u32,
    pub(crate) segment: FileView,
    /// How its frames are checked (its header's version and salt).
    pub(crate) kind: FrameKind,
    pub(crate) index: DayIndex,
    /// Opened before the writer had written its header (a reader that raced the roll): it
    /// holds nothing yet, and `kind` is a guess, so the next refresh opens it again.
    pub(crate) provisional: bool,
}

/// One day's files, as readers see them: the sealed prefix (parts, or the whole sealed day),
/// then the live segments, in append order. Runs of the segments are given with day-wide
/// offsets (`names::virtual_offset`), so one position orders them across segments.
pub struct DayFiles {
    pub(crate) day: Day,
    /// The parts, or the whole sealed day.
    pub(crate) sealed: Option<Arc<SealedDay>>,
    /// The sealed prefix is the day's `.sealed` file: the day is complete.
    pub(crate) whole: bool,
    /// The part ranges of `sealed` (empty for a whole sealed day).
    pub(crate) parts: Vec<(u32, u32)>,
    /// The live segments after the sealed prefix, oldest first.
    pub(crate) segs: Vec<Arc<SegFiles>>,
    /// The listing this view was opened from (a reader reopens the day when it changes).
    pub(crate) listing: DayListing,
}

impl DayFiles {
    /// The day.
    pub fn day(&self) -> Day {
        self.day
    }

    /// How many parts hold the sealed prefix (0 for a whole sealed day).
    pub fn part_count(&self) -> usize {
        self.parts.len()
    }

    /// The live segments after the sealed prefix, oldest first.
    pub fn segs(&self) -> &[Arc<SegFiles>] {
        &self.segs
    }

    /// The view of a day that is not sealed whole: `files` (the parts `parts`, oldest first)
    /// then the live segments `segs`.
    pub(crate) fn in_parts(
        day: Day,
        files: Vec<Arc<SealedFile>>,
        parts: Vec<(u32, u32)>,
        segs: Vec<Arc<SegFiles>>,
    ) -> DayFiles {
        let listing = DayListing {
            day,
            parts: parts.clone(),
            segments: segs.iter().map(|s| s.seq).collect(),
            ..DayListing::default()
        };
        DayFiles {
            day,
            sealed: (!files.is_empty()).then(|| Arc::new(SealedDay::of(day, files))),
            whole: false,
            parts,
            segs,
            listing,
        }
    }

    /// The part files of the sealed prefix, oldest first (with `parts`, their ranges).
    pub(crate) fn open_parts(&self) -> Vec<Arc<SealedFile>> {
        match &self.sealed {
            Some(s) if !self.whole => s.files().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// How the frames of `run` (day-wide offset) are checked, and the file offset where it
    /// starts in its segment: what [`crate::journal::record::for_each_frame_as`] needs.
    pub(crate) fn frames(&self, run: &IndexEntry) -> (FrameKind, u64) {
        let (seq, at) = split_offset(run.offset);
        (self.seg(seq).map_or(FrameKind::V1, |s| s.kind), at)
    }

    fn seg(&self, seq: u32) -> Option<&SegFiles> {
        self.segs.iter().find(|s| s.seq == seq).map(|s| &**s)
    }

    /// The runs of `hash` among the index entries after `*seen` (a day-wide count: the
    /// segment in the high bits, entries of its index in the low ones), advancing it; see
    /// [`SegFiles::runs_after`]. Segments before the one in `*seen` were read whole.
    ///
    /// With `tails` (a reader process's watcher), the runs the watcher already read are taken
    /// from it rather than read again from the index.
    pub(crate) fn runs_after(
        &self,
        hash: u64,
        seen: &mut u64,
        tails: Option<&crate::read::waiters::Waiters>,
    ) -> Result<Vec<IndexEntry>> {
        let (at_seq, at_n) = split_offset(*seen);
        let tails = tails.filter(|t| t.keeps_tails());
        let mut out = Vec::new();
        for s in &self.segs {
            if s.seq < at_seq {
                continue;
            }
            let mut n = if s.seq == at_seq { at_n } else { 0 };
            let cached = match (&s.index, tails) {
                (DayIndex::Scan(scan), Some(t)) => match scan.view()? {
                    Some(view) => t.runs_after(self.day, s.seq, &view, hash, &mut n),
                    None => None,
                },
                _ => None,
            };
            let runs = match cached {
                Some(runs) => runs?,
                None => s.runs_after(hash, &mut n)?,
            };
            out.extend(runs.into_iter().map(|r| s.virtualize(r)));
            *seen = virtual_offset(s.seq, n).max(*seen);
        }
        Ok(out)
    }

    /// The bytes of `run` (day-wide offset); see [`SegFiles::read_run`].
    pub(crate) fn read_run(&self, run: &IndexEntry, max: usize) -> Result<crate::view::ViewBytes> {
        let (seq, offset) = split_offset(run.offset);
        let seg = self.seg(seq).ok_or_else(|| StoreError::Corrupt {
            file: PathBuf::from(format!("{}", self.day)),
            offset: run.offset,
            reason: format!("segment {seq} of the day is no longer there"),
        })?;
        seg.read_run(&IndexEntry { offset, ..*run }, max)
    }

    /// Calls `f(run, bytes)` for each of `runs` (day-wide offsets, in order), reading
    /// neighbours with one `pread`: runs of one segment less than [`COALESCE_GAP`] apart are
    /// read as one span (the gap costs less than a system call), up to [`COALESCE_SPAN`].
    /// The runs of one execution in one segment are often close (it logs in bursts, each
    /// flush writes its entries as one run). `f` returns `false` to stop; so does this.
    pub(crate) fn for_each_run_bytes(
        &self,
        runs: &[IndexEntry],
        f: &mut dyn FnMut(&IndexEntry, &[u8]) -> Result<bool>,
    ) -> Result<bool> {
        let mut i = 0;
        while i < runs.len() {
            let first = runs[i];
            let mut j = i;
            while let Some(next) = runs.get(j + 1) {
                let prev = runs[j];
                let near = split_offset(prev.offset).0 == split_offset(next.offset).0
                    && next.offset >= prev.end()
                    && next.offset - prev.end() <= COALESCE_GAP
                    && next.end() - first.offset <= COALESCE_SPAN;
                if !near {
                    break;
                }
                j += 1;
            }
            let span = IndexEntry {
                length: u32::try_from(runs[j].end() - first.offset).unwrap_or(u32::MAX),
                ..first
            };
            let bytes = self.read_run(&span, usize::MAX)?;
            for run in &runs[i..=j] {
                // A span cut short (a file that shrank) gives each run what exists of it.
                let at = usize::try_from(run.offset - first.offset).unwrap_or(usize::MAX);
                let end = at.saturating_add(run.length as usize).min(bytes.len());
                if !f(run, bytes.get(at.min(end)..end).unwrap_or(&[]))? {
                    return Ok(false);
                }
            }
            i = j + 1;
        }
        Ok(true)
    }

    /// Every run of the day's segments (for `list`, `stats`), day-wide offsets.
    /// Calls `f` with every run of the live segments (day-wide offsets), in order, reading each
    /// index in chunks: memory stays flat however long the index (a full 64 MiB segment of
    /// one-entry runs has a 17 MB index). The first error of `f` stops the walk.
    pub(crate) fn for_each_run(&self, f: &mut dyn FnMut(IndexEntry) -> Result<()>) -> Result<()> {
        for s in &self.segs {
            let mut result = Ok(());
            let mut g = |e: IndexEntry| {
                result = f(s.virtualize(e));
                result.is_ok()
            };
            match &s.index {
                DayIndex::Sorted(x) => {
                    for e in x.entries()?.0 {
                        if !g(e) {
                            break;
                        }
                    }
                }
                DayIndex::Own(live) => {
                    index::scan_live_while(&live.index, 0, |_, e| g(e))?;
                }
                DayIndex::Scan(scan) => {
                    if let Some(v) = scan.view()? {
                        index::scan_live_while(&v, 0, |_, e| g(e))?;
                    }
                }
            }
            result?;
        }
        Ok(())
    }

    /// The sealed prefix (parts, or the whole sealed day), if any.
    pub fn sealed(&self) -> Option<&SealedDay> {
        self.sealed.as_deref()
    }

    /// Whether the day is one `.sealed` file (complete, never written again).
    pub fn is_whole(&self) -> bool {
        self.whole
    }

    /// The file messages about this day name: its newest.
    pub fn path(&self) -> PathBuf {
        match (self.segs.last(), &self.sealed) {
            (Some(s), _) => s.segment.path().to_owned(),
            (None, Some(s)) => s.path().to_owned(),
            (None, None) => PathBuf::from(self.day.to_string()),
        }
    }
}

impl SegFiles {
    /// The day this segment belongs to.
    pub fn day(&self) -> Day {
        self.day
    }

    /// The segment's number in its day.
    pub fn seq(&self) -> u32 {
        self.seq
    }

    /// The segment file.
    pub fn segment(&self) -> &FileView {
        &self.segment
    }

    /// How its frames are checked (its header's version and salt).
    pub fn kind(&self) -> FrameKind {
        self.kind
    }

    /// Its index: the writer's own, another process's live index, or a sorted one.
    pub(crate) fn index(&self) -> &DayIndex {
        &self.index
    }

    /// Its sorted index, if the segment is sealed with a sorted index (the first sealed layout) (a segment beside a sorted
    /// index is never written again: all of it is whole frames).
    pub fn sorted_index(&self) -> Option<&SortedIndex> {
        match &self.index {
            DayIndex::Sorted(s) => Some(s),
            _ => None,
        }
    }

    /// The offset of the segment's first frame (after its header).
    pub fn frames_start(&self) -> u64 {
        crate::journal::segment::SEGMENT_HEADER_LEN
    }

    /// A run of this segment with its day-wide offset.
    fn virtualize(&self, r: IndexEntry) -> IndexEntry {
        IndexEntry {
            offset: virtual_offset(self.seq, r.offset),
            ..r
        }
    }

    /// The runs of `hash` in this day, in segment order.
    pub(crate) fn runs(&self, hash: u64) -> Result<Vec<IndexEntry>> {
        match &self.index {
            DayIndex::Sorted(s) => s.lookup(hash),
            DayIndex::Own(live) => {
                let head = live.heads.read().get(&hash).copied().unwrap_or(0);
                let mut runs = Vec::new();
                let mut n = head;
                while n != 0 {
                    let Some(e) = live.entry(n)? else {
                        return Err(StoreError::Corrupt {
                            file: live.index.path().to_owned(),
                            offset: index::live_entry_at(n),
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
        let DayIndex::Scan(scan) = &self.index else {
            return self.runs(hash);
        };
        let Some(view) = scan.view()? else {
            return Ok(Vec::new());
        };
        if *seen == 0 {
            // A first look: the writer's checkpoint of the chain heads, if sound, spares the
            // scan of everything it covers.
            let cp = Checkpoint::read(&scan.heads);
            if let Some(cp) = cp {
                if let Some(mut runs) = cp.runs(&view, hash)? {
                    let valid = index::scan_live(&view, u64::from(cp.covered), |_, e| {
                        if e.hash == hash {
                            runs.push(e);
                        }
                    })?;
                    // A checkpoint beyond the index (a power cut took its tail) is stale.
                    let len = view
                        .len()
                        .map_err(StoreError::io("read index", view.path()))?;
                    let total = len.saturating_sub(INDEX_HEADER_LEN) / ENTRY_LEN as u64;
                    if u64::from(cp.covered) <= total.min(valid) {
                        *seen = valid;
                        return Ok(runs);
                    }
                }
            }
        }
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
    pub(crate) fn read_run(&self, run: &IndexEntry, max: usize) -> Result<crate::view::ViewBytes> {
        let len = usize::try_from(run.length).unwrap_or(usize::MAX).min(max);
        if let DayIndex::Own(live) = &self.index {
            if let Some(bytes) = live.segment_tail.read(run.offset, len) {
                return Ok(crate::view::ViewBytes::from(bytes));
            }
        }
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
        }
    }
}

/// What [`open_day`] reuses from a day it opened before: files already open stay open (a part
/// or a closed segment never changes).
#[derive(Default)]
pub(crate) struct Reuse<'a> {
    pub(crate) old: Option<&'a DayFiles>,
}

/// Opens a day for readers from its listing. `foreign`: the files belong to another process's
/// writer (or none), so a live index is scanned. Parts that cannot be opened (both trailers
/// damaged) are left out and returned as problems; the rest of the day is read.
pub(crate) fn open_day(
    segments_dir: &Path,
    listing: &DayListing,
    foreign: bool,
    reuse: Reuse<'_>,
) -> Result<(DayFiles, Vec<StoreError>)> {
    let day = listing.day;
    let mut bad = Vec::new();
    if listing.sealed {
        let path = sealed_path(segments_dir, day);
        let sealed = SealedDay::open(&path, day)?;
        return Ok((
            DayFiles {
                day,
                sealed: Some(Arc::new(sealed)),
                whole: true,
                parts: Vec::new(),
                segs: Vec::new(),
                listing: listing.clone(),
            },
            bad,
        ));
    }
    let old_parts: Vec<(u32, u32, Arc<SealedFile>)> = reuse
        .old
        .and_then(|d| d.sealed.as_ref().filter(|_| !d.whole).map(|s| (d, s)))
        .map(|(d, s)| {
            d.parts
                .iter()
                .zip(s.files())
                .map(|(&(a, b), f)| (a, b, Arc::clone(f)))
                .collect()
        })
        .unwrap_or_default();
    let mut files = Vec::new();
    let mut parts = Vec::new();
    for &(a, b) in &listing.parts {
        if let Some((_, _, f)) = old_parts.iter().find(|p| (p.0, p.1) == (a, b)) {
            files.push(Arc::clone(f));
            parts.push((a, b));
            continue;
        }
        match SealedFile::open(&part_file(segments_dir, day, a, b)) {
            Ok(f) => {
                files.push(Arc::new(f));
                parts.push((a, b));
            }
            Err(e @ StoreError::Corrupt { .. }) => bad.push(e),
            Err(e) => return Err(e),
        }
    }
    let mut segs = Vec::new();
    for &seq in &listing.segments {
        let reused = reuse
            .old
            .and_then(|d| d.segs.iter().find(|s| s.seq == seq))
            // A segment whose index was sorted or scanned stays what it was (one opened
            // before its header was written is opened again).
            .filter(|s| (!matches!(s.index, DayIndex::Own(_)) || !foreign) && !s.provisional);
        match reused {
            Some(s) => segs.push(Arc::clone(s)),
            None => segs.push(Arc::new(open_segment(segments_dir, day, seq, foreign)?)),
        }
    }
    let sealed = (!files.is_empty()).then(|| Arc::new(SealedDay::of(day, files)));
    Ok((
        DayFiles {
            day,
            sealed,
            whole: false,
            parts,
            segs,
            listing: listing.clone(),
        },
        bad,
    ))
}

/// Opens a day's whole sealed file; an `Io` error of kind `NotFound` if it has none.
pub(crate) fn open_sealed(segments_dir: &Path, day: Day) -> Result<DayFiles> {
    let path = sealed_path(segments_dir, day);
    let sealed = SealedDay::open(&path, day)?;
    Ok(DayFiles {
        day,
        sealed: Some(Arc::new(sealed)),
        whole: true,
        parts: Vec::new(),
        segs: Vec::new(),
        listing: DayListing {
            day,
            sealed: true,
            ..DayListing::default()
        },
    })
}

/// Opens segment `seq` of `day` for readers.
pub(crate) fn open_segment(
    segments_dir: &Path,
    day: Day,
    seq: u32,
    foreign: bool,
) -> Result<SegFiles> {
    let seg = segment_file(segments_dir, day, seq);
    let sidx = sorted_index_file(segments_dir, day, seq);
    let index = match SortedIndex::open(&sidx) {
        Ok(s) => DayIndex::Sorted(s),
        Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            DayIndex::Scan(ScanIndex::new(
                index_file(segments_dir, day, seq),
                heads_file(segments_dir, day, seq),
            ))
        }
        Err(e) => return Err(e),
    };
    let access = if foreign { Access::Pread } else { Access::Map };
    let segment = FileView::open(&seg, access).map_err(StoreError::io("open segment", &seg))?;
    let provisional = segment
        .len()
        .map_err(StoreError::io("stat segment", &seg))?
        < crate::journal::segment::SEGMENT_HEADER_LEN;
    let kind = crate::journal::segment::read_frame_kind(&segment)?;
    Ok(SegFiles {
        day,
        seq,
        segment,
        kind,
        index,
        provisional,
    })
}
