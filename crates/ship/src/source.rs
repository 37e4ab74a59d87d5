//! Reading the store in order, for the shipper: one day at a time, oldest first, each entry
//! with its row key.
//!
//! A live-layout day is read run by run in segment order, through its live index (`.idx`, which the
//! writer keeps appending to while the day is live), or, when only a sorted index is left,
//! through that index sorted by offset. Runs are shipped whole, so a position is a segment
//! offset. An entry's ordinal is its position among its execution's entries of the day: the
//! sum of the counts of that execution's earlier runs plus its place in its run. Executions are
//! told apart by the index's hash of their id (the run's key), so resuming needs only the index,
//! not the records; the ordinals differ from the sealed layout's only for two executions of one
//! day whose ids share a 64-bit FNV-1a hash.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::chunk::{day_u16, Chunk, Limits};
use super::cursor::{DayPosition, Live};
use super::rows::Rows;
use super::schema::RowKey;
use super::sealed_source::SealedReader;
use logstore_store::access::index_file;
use logstore_store::access::record;
use logstore_store::access::IndexEntry;
use logstore_store::access::{Access, FileView};
use logstore_store::access::{DayFiles, SegFiles};
use logstore_store::Day;
use logstore_store::{Result, StoreError};

/// Reads one live-layout day from a position onwards.
pub struct SegmentReader {
    day: Day,
    /// The segment's number in the day.
    segment: u32,
    /// The first number of the last run read (see `DayPosition::V1::floor`).
    floor: u64,
    /// Entries per execution hash in the runs before `offset`.
    counts: HashMap<u64, u32>,
    /// Everything before this segment offset is read.
    offset: u64,
    /// Index entries read (where to resume in the live index).
    runs: u64,
    /// The sequence number of the last record before `offset`.
    end_seq: u64,
    /// Runs of a day that has only its sorted index left, in segment order.
    sorted: Option<Vec<IndexEntry>>,
    index: Option<FileView>,
    /// Entries per execution id that this reader has read (and, as the shipper drops a reader
    /// whose batch failed, that ClickHouse acknowledged): if the day is sealed under the
    /// shipper, these need not be sent again from the sealed file.
    read_here: HashMap<String, u32>,
}

/// The sequence number of the last record of `run`, if it ends exactly at `offset` and its
/// records are intact.
fn last_seq_of(files: &SegFiles, run: Option<IndexEntry>, offset: u64) -> Result<Option<u64>> {
    let Some(run) = run.filter(|r| r.end() == offset) else {
        return Ok(None);
    };
    let Ok(bytes) = files.segment().read(run.offset, run.length as usize) else {
        return Ok(None);
    };
    let mut last = None;
    let damage = record::for_each_frame_as(&bytes, files.kind(), run.offset, |_, p| {
        last = Some(p.seq);
        true
    });
    Ok(if damage.is_empty() { last } else { None })
}

impl SegmentReader {
    /// A reader of `day` positioned at `position` (a segment position, or the start).
    pub fn open(
        files: &SegFiles,
        segments_dir: &Path,
        position: &DayPosition,
    ) -> Result<SegmentReader> {
        let (offset, end_seq, floor) = match position {
            DayPosition::V1 {
                offset,
                end_seq,
                floor,
                ..
            } => (*offset, *end_seq, *floor),
            _ => (0, 0, 0),
        };
        let mut reader = SegmentReader {
            day: files.day(),
            segment: files.seq(),
            floor: 0,
            counts: HashMap::new(),
            offset: 0,
            runs: 0,
            end_seq: 0,
            sorted: None,
            index: None,
            read_here: HashMap::new(),
        };
        let idx_path = index_file(segments_dir, files.day(), files.seq());
        match FileView::open(&idx_path, Access::Pread) {
            Ok(v) => reader.index = Some(v),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let Some(s) = files.sorted_index() else {
                    return Err(StoreError::io("open index", &idx_path)(e));
                };
                let (mut runs, damaged) = s.entries()?;
                if !damaged.is_empty() {
                    tracing::warn!(file = %s.path().display(), damaged = damaged.len(), "shipping a day whose sorted index has damaged entries: their runs are skipped (run `logstore verify`)");
                }
                runs.sort_by_key(|r| r.offset);
                reader.sorted = Some(runs);
            }
            Err(e) => return Err(StoreError::io("open index", &idx_path)(e)),
        }
        // Rebuild the per-execution counts of everything before the position. A run that
        // straddles it (only after a recovery regrouped frames) is left to `read`, which counts
        // its frames before the offset without sending them.
        if offset > 0 {
            let mut counts = HashMap::new();
            let mut runs = 0u64;
            let mut last: Option<IndexEntry> = None;
            reader.for_runs_from(0, &mut |_, run| {
                if run.end() <= offset {
                    *counts.entry(run.hash).or_insert(0u32) += run.count;
                    runs += 1;
                    last = Some(*run);
                    true
                } else {
                    false
                }
            })?;
            if end_seq != 0 && last_seq_of(files, last, offset)? != Some(end_seq) {
                // The records the shipper sent up to `offset` are not all there any more: a
                // power cut took back the segment's tail, and what is there now was written
                // after. Start the segment again; its rows carry their keys, so those sent
                // before collapse under FINAL and nothing new is skipped.
                tracing::warn!(file = %files.segment().path().display(), offset, end_seq, "the segment was cut back under the shipper's cursor (a power cut): shipping it again from its start");
                return Ok(reader);
            }
            reader.counts = counts;
            reader.runs = runs;
            reader.offset = offset;
            reader.end_seq = end_seq;
            reader.floor = floor;
        }
        Ok(reader)
    }

    /// The day.
    pub fn day(&self) -> Day {
        self.day
    }

    /// Calls `f(number, run)` for runs from index entry `from` (0-based) on, in segment
    /// order, until `f` returns false or the valid part of the index ends.
    fn for_runs_from(&self, from: u64, f: &mut dyn FnMut(u64, &IndexEntry) -> bool) -> Result<()> {
        if let Some(sorted) = &self.sorted {
            let start = usize::try_from(from).unwrap_or(usize::MAX);
            for (i, run) in sorted.iter().enumerate().skip(start) {
                if !f(i as u64, run) {
                    break;
                }
            }
            return Ok(());
        }
        let Some(view) = &self.index else {
            return Ok(());
        };
        logstore_store::access::scan_live_while(view, from, |number, e| {
            f(u64::from(number) - 1, &e)
        })
        .map(|_| ())
    }

    /// Encodes the entries after the position into `out`, whole runs, until `limits`; returns
    /// what was read (zero entries: nothing new). The reader moves past what it returned.
    pub fn read(
        &mut self,
        files: &SegFiles,
        node: &str,
        limits: Limits,
        out: &mut Rows,
    ) -> Result<Chunk> {
        let day16 = day_u16(self.day, files.segment().path())?;
        // Collect the runs to read first: one contiguous span of the segment, read at once.
        let mut runs = Vec::new();
        let mut entries = 0usize;
        let mut span = 0u64;
        let offset = self.offset;
        self.for_runs_from(self.runs, &mut |_, run| {
            if run.end() <= offset {
                return true; // shipped already (a resumed or regrouped index)
            }
            runs.push(*run);
            entries += run.count as usize;
            span = run.end() - runs[0].offset;
            entries < limits.entries && span < limits.bytes as u64
        })?;
        let Some(first) = runs.first() else {
            return Ok(self.chunk(0, None));
        };
        let base = first.offset;
        let bytes = files
            .segment()
            .read(base, usize::try_from(span).unwrap_or(usize::MAX))
            .map_err(StoreError::io("read segment", files.segment().path()))?;
        let mut sent = 0usize;
        let mut min_ts: Option<i64> = None;
        for run in &runs {
            let from = usize::try_from(run.offset - base).unwrap_or(usize::MAX);
            let to = usize::try_from(run.end() - base).unwrap_or(usize::MAX);
            let Some(run_bytes) = bytes.get(from..to.min(bytes.len())) else {
                break;
            };
            let before = *self.counts.get(&run.hash).unwrap_or(&0);
            let mut i = 0u32;
            let mut run_last = 0u64;
            let mut run_first = 0u64;
            let damage = record::for_each_frame_as(run_bytes, files.kind(), run.offset, |at, p| {
                let ordinal = before + i;
                i += 1;
                run_last = p.seq;
                if run_first == 0 {
                    run_first = p.seq;
                }
                if run.offset + (at as u64) < offset {
                    return true; // before the position: counted, not sent
                }
                let key = RowKey::of(node, day16, ordinal, p.seq);
                if !out.push_payload(key, &p) {
                    return true;
                }
                min_ts = Some(min_ts.map_or(p.timestamp, |m| m.min(p.timestamp)));
                sent += 1;
                match self.read_here.get_mut(p.execution_id) {
                    Some(n) => *n += 1,
                    None => {
                        self.read_here.insert(p.execution_id.to_owned(), 1);
                    }
                }
                true
            });
            for (at, len, e) in damage {
                tracing::warn!(file = %files.segment().path().display(), offset = run.offset + at as u64, len, error = %e, "not shipping damaged bytes (run `logstore verify`)");
            }
            *self.counts.entry(run.hash).or_insert(0) += run.count;
            self.offset = run.end();
            self.end_seq = run_last;
            // A flush writes each execution's entries together, in the order of their first
            // entries: every entry not read yet is numbered above this run's first.
            self.floor = self.floor.max(run_first);
            self.runs += 1;
        }
        Ok(self.chunk(sent, min_ts))
    }

    fn chunk(&self, entries: usize, min_ts: Option<i64>) -> Chunk {
        Chunk {
            entries,
            min_ts,
            end: DayPosition::V1 {
                offset: self.offset,
                runs: self.runs,
                end_seq: self.end_seq,
                floor: self.floor,
            },
        }
    }

    /// What this reader has read, per execution id (see `read_here`), and its floor.
    pub fn into_read_here(self) -> (HashMap<String, u32>, u64) {
        (self.read_here, self.floor)
    }

    /// Entries after the position and the smallest timestamp among them (for `--status`).
    pub fn pending(&self) -> Result<(u64, Option<i64>)> {
        let mut n = 0u64;
        let mut min_ts: Option<i64> = None;
        let offset = self.offset;
        self.for_runs_from(self.runs, &mut |_, run| {
            if run.end() > offset {
                n += u64::from(run.count);
                min_ts = Some(min_ts.map_or(run.min_ts, |m| m.min(run.min_ts)));
            }
            true
        })?;
        Ok((n, min_ts))
    }
}

/// A reader of one day in whichever layout it has.
pub enum DayReader {
    /// A day of one live segment (or sealed with a sorted index, from before parts).
    Segment(SegmentReader),
    /// A day with sealed files: their blocks, then its first live segment once every block is
    /// read (a segment of numbered entries; one of version 1 waits for its part).
    Sealed {
        /// The blocks.
        blocks: SealedReader,
        /// The live segment being read, once every block is.
        live: Option<SegmentReader>,
        /// Where the live segments' indexes are.
        segments_dir: PathBuf,
    },
}

/// The one segment of a day the segment reader ships from: a day with no part and one segment.
pub(crate) fn single_segment(files: &DayFiles) -> Option<&SegFiles> {
    match files.segs() {
        [only] if files.sealed().is_none() => Some(only),
        _ => None,
    }
}

/// The live segment after a day's sealed files that the shipper may read: the first, if its
/// entries are numbered (so that, once it is a part, what was shipped from it is known by
/// number).
fn first_live(files: &DayFiles) -> Option<&SegFiles> {
    files
        .segs()
        .first()
        .map(|s| &**s)
        .filter(|s| matches!(s.kind(), record::FrameKind::V2 { .. }))
}

/// Whether the shipper can read `files` now: a day with sealed files (whole, or parts) is
/// read through them, block by block (block numbers hold across merges, so a position does
/// too), then its first live segment; a day of one live segment is read by the segment reader. A
/// day of several live segments and no part waits for its first part.
pub(crate) fn shippable(files: &DayFiles) -> bool {
    files.sealed().is_some() || single_segment(files).is_some()
}

impl DayReader {
    /// A reader of `files` at `position`; a position of the other layout means the start
    /// (less what a segment position's floor says was shipped). `None` when the day cannot be
    /// shipped yet (see [`shippable`]).
    pub fn open(
        files: &DayFiles,
        segments_dir: &Path,
        position: &DayPosition,
    ) -> Result<Option<DayReader>> {
        if files.sealed().is_some() {
            let blocks = SealedReader::open(files.day(), position, HashMap::new());
            let mut live = None;
            if let DayPosition::Sealed {
                live: Some(l),
                floor,
                ..
            } = position
            {
                // Still live: go on in it. Otherwise it is a part now, and the floor skips
                // what was shipped from it.
                if let Some(seg) = first_live(files).filter(|s| s.seq() == l.segment) {
                    live = Some(SegmentReader::open(
                        seg,
                        segments_dir,
                        &DayPosition::V1 {
                            offset: l.offset,
                            runs: l.runs,
                            end_seq: l.end_seq,
                            floor: *floor,
                        },
                    )?);
                }
            }
            return Ok(Some(DayReader::Sealed {
                blocks,
                live,
                segments_dir: segments_dir.to_owned(),
            }));
        }
        match single_segment(files) {
            Some(seg) => Ok(Some(DayReader::Segment(SegmentReader::open(
                seg,
                segments_dir,
                position,
            )?))),
            None => Ok(None),
        }
    }

    /// The reader of a day that got its first part while its one segment was being read:
    /// its blocks from the first, less what `from` read.
    pub fn sealed_after(from: SegmentReader, segments_dir: &Path) -> DayReader {
        let day = from.day();
        let (read_here, floor) = from.into_read_here();
        let mut blocks = SealedReader::open(day, &DayPosition::Start, read_here);
        blocks.raise_floor(floor);
        DayReader::Sealed {
            blocks,
            live: None,
            segments_dir: segments_dir.to_owned(),
        }
    }

    /// Whether this reader reads `files` as they are now (same day, same layout).
    pub fn fits(&self, files: &DayFiles) -> bool {
        match self {
            DayReader::Segment(r) => r.day() == files.day() && single_segment(files).is_some(),
            DayReader::Sealed { blocks, .. } => {
                blocks.day() == files.day() && files.sealed().is_some()
            }
        }
    }

    /// The day.
    pub fn day(&self) -> Day {
        match self {
            DayReader::Segment(r) => r.day(),
            DayReader::Sealed { blocks, .. } => blocks.day(),
        }
    }

    /// See [`SegmentReader::read`] and [`SealedReader::read`]; a day with sealed files reads its
    /// blocks, then its first live segment.
    pub fn read(
        &mut self,
        files: &DayFiles,
        node: &str,
        limits: Limits,
        out: &mut Rows,
    ) -> Result<Chunk> {
        match self {
            DayReader::Segment(r) => match single_segment(files) {
                Some(seg) => r.read(seg, node, limits, out),
                None => Ok(r.chunk(0, None)),
            },
            DayReader::Sealed {
                blocks,
                live,
                segments_dir,
            } => {
                // The live segment became a part: its blocks come next, less the floor.
                if live
                    .as_ref()
                    .is_some_and(|l| first_live(files).is_none_or(|s| s.seq() != l.segment))
                {
                    *live = None;
                }
                if !blocks.at_end(files) || live.is_none() {
                    let chunk = blocks.read(files, node, limits, out)?;
                    if chunk.entries > 0 || !blocks.at_end(files) {
                        return Ok(chunk);
                    }
                }
                let Some(seg) = first_live(files) else {
                    return Ok(Self::chunk_of(blocks, live.as_ref(), 0, None));
                };
                if live.is_none() {
                    *live = Some(SegmentReader::open(seg, segments_dir, &DayPosition::Start)?);
                }
                let Some(reader) = live.as_mut() else {
                    return Ok(Self::chunk_of(blocks, None, 0, None));
                };
                let chunk = reader.read(seg, node, limits, out)?;
                blocks.raise_floor(reader.floor);
                Ok(Self::chunk_of(
                    blocks,
                    live.as_ref(),
                    chunk.entries,
                    chunk.min_ts,
                ))
            }
        }
    }

    /// The chunk of a day with sealed files: the blocks' position plus the live one's.
    fn chunk_of(
        blocks: &SealedReader,
        live: Option<&SegmentReader>,
        entries: usize,
        min_ts: Option<i64>,
    ) -> Chunk {
        let mut end = blocks.position();
        if let (DayPosition::Sealed { live: l, .. }, Some(r)) = (&mut end, live) {
            *l = Some(Live {
                segment: r.segment,
                offset: r.offset,
                runs: r.runs,
                end_seq: r.end_seq,
            });
        }
        Chunk {
            entries,
            min_ts,
            end,
        }
    }

    /// Entries after the position and the smallest timestamp among them: a day with sealed
    /// files counts its live segments too.
    pub fn pending(&self, files: &DayFiles) -> Result<(u64, Option<i64>)> {
        match self {
            DayReader::Segment(r) => r.pending(),
            DayReader::Sealed {
                blocks,
                live,
                segments_dir,
            } => {
                let (mut n, mut min_ts) = blocks.pending(files)?;
                for seg in files.segs() {
                    let (more, ts) = match live.as_ref().filter(|l| l.segment == seg.seq()) {
                        Some(l) => l.pending()?,
                        None => SegmentReader::open(seg, segments_dir, &DayPosition::Start)?
                            .pending()?,
                    };
                    n += more;
                    min_ts = match (min_ts, ts) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                Ok((n, min_ts))
            }
        }
    }
}
