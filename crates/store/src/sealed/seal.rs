//! Sealing: the rewrite of a finished live-layout day (segment + index) into one sealed file.
//!
//! Memory is bounded whatever the size of the day. The day's entries are never held, and
//! neither is its run list (56 bytes per run on disk, up to one run per entry): the runs are
//! grouped by execution by the spill partition sort of [`partition`](super::partition), which
//! reads the segment and the index once each, sequentially, and holds one 4 MiB partition at
//! a time. The block table (64 bytes per block) is the only thing that grows with the day, at
//! 1/4096 of the raw bytes; filters, execution records and names go to spill files and are
//! copied in at the end.
//!
//! So executions come out in hash order, each contiguous, in append order inside: the file is
//! in the same order as its execution table.
//!
//! Crash safety: everything is written to `YYYY-MM-DD.sealed.tmp`, fsynced, renamed to
//! `YYYY-MM-DD.sealed`, and the directory fsynced. The caller deletes the live-layout files only after
//! that. A reader or a recovering writer that finds both prefers the sealed file, which is
//! whole by construction (the rename is atomic and came after the fsync).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::layout::sealed_tmp_path;
use super::options::SealOptions;
use super::partition::{self, ReadFile};
use super::seal_file::SealFile;
use super::writer::SealedWriter;
use crate::day::Day;
use crate::error::{Result, StoreError};
use crate::journal::index::{self, SortedIndex};
use crate::names;
use crate::view::{Access, FileView};

/// Which step of the sealer an outcome reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealStep {
    /// A finished day rewritten into its `.sealed` file from its segment.
    Whole,
    /// Segments `first..=last` of the day sealed into a part.
    Part {
        /// First segment number.
        first: u32,
        /// Last segment number.
        last: u32,
    },
    /// `inputs` adjacent parts merged into part `first..=last`.
    Merge {
        /// First segment number.
        first: u32,
        /// Last segment number.
        last: u32,
        /// Parts merged.
        inputs: usize,
    },
    /// A finished day's `parts` parts merged into its `.sealed` file.
    Day {
        /// Parts merged.
        parts: usize,
    },
}

impl std::fmt::Display for SealStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            SealStep::Whole => write!(f, "sealed the day"),
            SealStep::Part { first, last } if first == last => write!(f, "segment {first} -> part"),
            SealStep::Part { first, last } => write!(f, "segments {first}-{last} -> part"),
            SealStep::Merge {
                first,
                last,
                inputs,
            } => {
                write!(f, "merged {inputs} parts -> part {first}-{last}")
            }
            SealStep::Day { parts } => write!(f, "merged {parts} parts -> sealed day"),
        }
    }
}

/// What one seal did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealOutcome {
    /// The day sealed.
    pub day: Day,
    /// What was done.
    pub step: SealStep,
    /// Bytes of the live-layout files (segment and indexes) before.
    pub segment_bytes: u64,
    /// Bytes of the sealed file.
    pub sealed_bytes: u64,
    /// Entries sealed.
    pub entries: u64,
    /// Executions sealed.
    pub executions: u64,
    /// Time the rewrite took.
    pub elapsed: Duration,
}

impl SealOutcome {
    /// A step that wrote nothing (an empty segment dropped, a part renamed).
    pub(crate) fn empty(day: Day, step: SealStep) -> SealOutcome {
        SealOutcome {
            day,
            step,
            segment_bytes: 0,
            sealed_bytes: 0,
            entries: 0,
            executions: 0,
            elapsed: Duration::ZERO,
        }
    }
}

/// What a seal reads and where it writes.
pub(crate) struct SealInput {
    pub(crate) segment: PathBuf,
    pub(crate) live_index: PathBuf,
    pub(crate) sorted_index: PathBuf,
    /// The temporary output; its spill files are named after it.
    pub(crate) tmp: PathBuf,
    /// A dictionary to compress with instead of training one: the one the day's earlier parts
    /// use, so that the day holds one once its parts merge, and training is paid once a day.
    pub(crate) dict: Option<Vec<u8>>,
}

impl SealInput {
    /// Segment `seq` of `day`, sealed into `tmp`.
    pub(crate) fn segment(dir: &Path, day: Day, seq: u32, tmp: PathBuf) -> SealInput {
        SealInput {
            segment: names::segment_file(dir, day, seq),
            live_index: names::index_file(dir, day, seq),
            sorted_index: names::sorted_index_file(dir, day, seq),
            tmp,
            dict: None,
        }
    }

    /// Compress with `dict` (see [`SealInput::dict`]).
    pub(crate) fn with_dict(self, dict: Option<Vec<u8>>) -> SealInput {
        SealInput { dict, ..self }
    }
}

/// Where the runs of a live-layout day are listed, chosen once before the rewrite.
enum RunSource {
    /// The live index (append order): what the partition sort reads.
    Live(FileView),
    /// A whole sorted index (a day sealed by a version-1 writer), already in (hash, offset)
    /// order.
    Sorted(SortedIndex),
}

impl RunSource {
    /// The live index, unless a whole sorted index beside it lists more runs: damage can cut a
    /// live index short, and so can a power cut on a version-1 store, whose writer fsynced the
    /// sorted index when it sealed a day but never the live one. (The count costs a read of
    /// the live index, only on such days.)
    fn open(input: &SealInput) -> Result<RunSource> {
        let sidx = &input.sorted_index;
        let sorted = match SortedIndex::open_with(sidx, Access::Pread) {
            // A sorted index with a damaged entry would lose that run.
            Ok(s) if s.for_each(|_| {})? == 0 => Some(s),
            _ => None,
        };
        let idx = &input.live_index;
        let live = match FileView::open(idx, Access::Pread) {
            Ok(v) => v,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return sorted
                    .map(RunSource::Sorted)
                    .ok_or_else(|| StoreError::io("open index", idx)(e));
            }
            Err(e) => return Err(StoreError::io("open index", idx)(e)),
        };
        match sorted {
            Some(sorted) if index::scan_live(&live, 0, |_, _| {})? < sorted.len() as u64 => {
                Ok(RunSource::Sorted(sorted))
            }
            _ => Ok(RunSource::Live(live)),
        }
    }
}

/// Rewrites the live-layout files of `day` into `YYYY-MM-DD.sealed.tmp`, fsynced. The caller renames it
/// to `YYYY-MM-DD.sealed`, fsyncs the directory, and only then deletes the live-layout files
/// (`names::remove_segment`). Returns `None` if `stop` was raised (the temp files are removed).
///
/// The day must be complete and consistent: a past day that recovery has checked, or a day
/// the writer has rolled away from.
pub(crate) fn write_sealed(
    segments_dir: &Path,
    day: Day,
    opts: SealOptions,
    stop: &AtomicBool,
) -> Result<Option<SealOutcome>> {
    let seq = day_segment(segments_dir, day)?;
    let input = SealInput::segment(segments_dir, day, seq, sealed_tmp_path(segments_dir, day));
    write_sealed_from(&input, day, opts, stop)
}

/// The one segment of a closed `day` that has no part (for sealing it whole): its newest.
pub(crate) fn day_segment(segments_dir: &Path, day: Day) -> Result<u32> {
    Ok(names::list(segments_dir)?
        .into_iter()
        .find(|l| l.day == day)
        // (A sealed file beside it, from an earlier seal, covers it in the listing.)
        .and_then(|l| l.segments.iter().chain(&l.covered_segments).max().copied())
        .unwrap_or(0))
}

/// Rewrites one segment (`input`) of `day` into `input.tmp`, fsynced: a part, or a whole
/// day's `.sealed` file. The caller renames it into place, fsyncs the directory, and only
/// then deletes the segment. Returns `None` if `stop` was raised (the temp files are removed).
pub(crate) fn write_sealed_from(
    input: &SealInput,
    day: Day,
    opts: SealOptions,
    stop: &AtomicBool,
) -> Result<Option<SealOutcome>> {
    let result = write_tmp(input, day, opts, stop);
    if !matches!(result, Ok(Some(_))) {
        // Stopped, or failed (a full disk, say): what was written is of no use, and must not
        // hold on to the space the retry will need.
        remove_tmp_of(&input.tmp);
    }
    result
}

fn write_tmp(
    input: &SealInput,
    day: Day,
    opts: SealOptions,
    stop: &AtomicBool,
) -> Result<Option<SealOutcome>> {
    let started = Instant::now();
    let segment = ReadFile::open(&input.segment)?;
    let frame_kind = crate::journal::segment::read_frame_kind(&segment.view)?;
    let runs = RunSource::open(input)?;
    let segment_bytes = [&input.segment, &input.sorted_index, &input.live_index]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let tmp = input.tmp.clone();
    let spill = |ext: &str| SealFile::create(partition::spill_path(&tmp, ext));
    let preset = input.dict.as_deref().filter(|_| opts.dict_bytes > 0);
    let mut s = SealedWriter::create(
        opts,
        [
            SealFile::create(tmp.clone())?,
            spill("filters")?,
            spill("execs")?,
            spill("names")?,
        ],
        preset,
        frame_kind,
    )?;

    let done = match &runs {
        RunSource::Live(live) => partition::seal_partitioned(&mut s, &segment, live, &tmp, stop)?,
        RunSource::Sorted(sorted) => partition::seal_sorted(&mut s, &segment, sorted, stop)?,
    };
    if !done {
        return Ok(None);
    }
    let (file, sealed_bytes, entries, executions) = s.finish(segment_bytes)?;
    // The rename must not become visible before the contents are durable.
    file.sync_all()
        .map_err(StoreError::io("fsync sealed file", &tmp))?;
    drop(file);
    Ok(Some(SealOutcome {
        day,
        step: SealStep::Whole,
        segment_bytes,
        sealed_bytes,
        entries,
        executions: u64::from(executions),
        elapsed: started.elapsed(),
    }))
}

/// Deletes the temporary file `tmp` and its spill files.
fn remove_tmp_of(tmp: &Path) {
    let (Some(dir), Some(name)) = (tmp.parent(), tmp.file_name().and_then(|n| n.to_str())) else {
        return;
    };
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for ent in rd.flatten() {
        if ent
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(name))
        {
            let _ = std::fs::remove_file(ent.path());
        }
    }
}
