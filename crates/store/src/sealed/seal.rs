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

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::block::{BlockBuilder, BlockStats, BlockWords, WordHashing};
use super::catalog::CatalogBuilder;
use super::common;
use super::dict;
use super::envelope::{Envelope, Execs, Totals};
use super::frames::{self, FrameWriter};
use super::layout::{
    sealed_tmp_path, state_byte, BlockEntry, ExecRecord, HEAD_LEN, SEALED_MAGIC, SEALED_VERSION,
};
use super::partition::{self, ReadFile};
use crate::day::Day;
use crate::error::{Result, StoreError};
use crate::journal::index::{self, SortedIndex};
use crate::journal::record::FrameKind;
use crate::journal::record::PayloadRef;
use crate::journal::segment::file_header;
use crate::names;
use crate::view::{Access, FileView};
use crate::Level;

/// Raw bytes at which a block is closed. 256 KiB: measured on real log text in
/// docs/PERFORMANCE.md ("Sealed days"), the ratio gains little above it and a query of a small
/// execution decompresses more for nothing.
pub(crate) const BLOCK_TARGET: usize = 256 * 1024;
/// A block holding `BLOCK_TARGET / EXEC_CUT` raw bytes or more is closed where an execution
/// ends.
const EXEC_CUT: usize = 2;
/// zstd level of the blocks as they are sealed (parts, and a day sealed whole).
pub(crate) const ZSTD_LEVEL: i32 = 3;
/// zstd level of a finished day's blocks: compressed again once when its parts are merged
/// into its sealed file (`merge::Frames::Recompress`), or sealed at it when the day is sealed
/// whole. Measured in docs/PERFORMANCE.md ("A finished day at level 6"): 8 % fewer bytes than
/// level 3 for 2.6x its compression CPU, and blocks that decompress a little faster; level 9
/// saves 2 % more for twice level 6's CPU.
pub(crate) const DAY_LEVEL: i32 = 6;
/// Bytes of segment per partition of the spill sort (see `partition`): the most a seal reads
/// into memory at once. 4 MiB, so that a partition, which is read in execution order rather
/// than file order, stays in the CPU's cache: measured 20 % less CPU than 32 MiB.
pub(crate) const PARTITION_BYTES: u64 = 4 << 20;

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

    /// The outcome of a merge.
    pub(crate) fn of_merge(
        day: Day,
        step: SealStep,
        m: &super::merge::MergeOutcome,
    ) -> SealOutcome {
        SealOutcome {
            day,
            step,
            segment_bytes: m.bytes_in,
            sealed_bytes: m.bytes_out,
            entries: m.entries,
            executions: 0,
            elapsed: m.elapsed,
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

/// Options of a seal (tests and benchmarks vary them; the store seals parts with the defaults
/// and a day sealed whole with [`SealOptions::finished_day`]).
#[derive(Debug, Clone, Copy)]
pub struct SealOptions {
    /// Raw bytes at which a block is closed.
    pub block_target: usize,
    /// Bytes of segment per partition of the spill sort: the most read into memory at once.
    pub partition_bytes: u64,
    /// zstd level of the blocks.
    pub level: i32,
    /// Bytes of the zstd dictionary trained for the file (0: none).
    pub dict_bytes: usize,
    /// Raw block bytes sampled to train it; a smaller file gets none.
    pub train_bytes: usize,
}

impl SealOptions {
    /// The options of a finished day's sealed file: the defaults at [`crate::DEFAULT_DAY_LEVEL`] (what the
    /// store seals a day whole with; a day of parts gets the same level when they are merged).
    pub fn finished_day() -> SealOptions {
        SealOptions {
            level: DAY_LEVEL,
            ..SealOptions::default()
        }
    }
}

impl Default for SealOptions {
    fn default() -> SealOptions {
        SealOptions {
            block_target: BLOCK_TARGET,
            partition_bytes: PARTITION_BYTES,
            level: ZSTD_LEVEL,
            dict_bytes: dict::DICT_BYTES,
            train_bytes: dict::TRAIN_BYTES,
        }
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

/// A file written through a buffer, knowing its length.
pub(super) struct Out {
    pub(super) file: BufWriter<File>,
    pub(super) path: PathBuf,
    pub(super) len: u64,
}

impl Out {
    pub(super) fn create(path: PathBuf) -> Result<Out> {
        Out::create_with(path, 1 << 20)
    }

    pub(super) fn create_with(path: PathBuf, buffer: usize) -> Result<Out> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(StoreError::io("create", &path))?;
        Ok(Out {
            file: BufWriter::with_capacity(buffer, file),
            path,
            len: 0,
        })
    }

    /// Writes out the buffer and closes the file.
    pub(super) fn finish(mut self) -> Result<()> {
        self.file
            .flush()
            .map_err(StoreError::io("write", &self.path))
    }

    pub(super) fn write(&mut self, b: &[u8]) -> Result<()> {
        self.file
            .write_all(b)
            .map_err(StoreError::io("write", &self.path))?;
        self.len += b.len() as u64;
        Ok(())
    }

    /// Appends the whole of `spill` (which is then deleted).
    pub(super) fn append_spill(&mut self, spill: Out) -> Result<()> {
        let mut file = spill
            .file
            .into_inner()
            .map_err(|e| StoreError::io("write", &spill.path)(e.into_error()))?;
        file.seek(SeekFrom::Start(0))
            .map_err(StoreError::io("read", &spill.path))?;
        let n = std::io::copy(&mut file, &mut self.file)
            .map_err(StoreError::io("copy into", &self.path))?;
        self.len += n;
        drop(file);
        let _ = std::fs::remove_file(&spill.path);
        Ok(())
    }
}

/// The execution being written.
struct Exec {
    id: String,
    rec: ExecRecord,
    state: Option<String>,
}

/// The sealed file being built.
pub(super) struct SealedWriter {
    pub(super) opts: SealOptions,
    out: Out,
    filters: Out,
    execs: Out,
    names: Out,
    table: Vec<BlockEntry>,
    builder: BlockBuilder,
    raw: Vec<u8>,
    filter_bytes: Vec<u8>,
    frames: FrameWriter,
    /// The frame being written.
    frame: Vec<u8>,
    exec: Option<Exec>,
    entries: u64,
    exec_count: u32,
    /// The catalog of the execution table, built as records are written.
    catalog: CatalogBuilder,
    /// The blocks closed before the common words and the dictionary are decided: raw bytes,
    /// stats, what their filters are made of.
    pending: Vec<(Vec<u8>, BlockStats, BlockWords)>,
    /// `None` until decided; then the words the block filters leave out (`common.rs`).
    common: Option<HashSet<u64, WordHashing>>,
    /// The dictionary the blocks are compressed with: handed in, or decided with the common
    /// words.
    dict: Option<Vec<u8>>,
    /// How the frames of the segment being sealed are checked; spill files keep them checkable
    /// the same way (`partition::spill` re-keys each frame to its place there).
    pub(super) frame_kind: FrameKind,
}

impl SealedWriter {
    /// The number the next block closed will have (blocks waiting to be written count).
    fn block_index(&self) -> u32 {
        u32::try_from(self.table.len() + self.pending.len()).unwrap_or(u32::MAX)
    }

    pub(super) fn push(&mut self, p: &PayloadRef<'_>) -> Result<()> {
        if self.exec.as_ref().is_none_or(|e| e.id != p.execution_id) {
            self.end_exec()?;
            // A new execution starts a new block once the current one holds half of the
            // target: a query then decompresses little besides its own execution, while small
            // executions still share blocks (and their compression context).
            if self.builder.raw_len() >= self.opts.block_target / EXEC_CUT {
                self.flush_block()?;
            }
        }
        let block = self.block_index();
        if self.exec.as_ref().is_none_or(|e| e.id != p.execution_id) {
            self.exec = Some(Exec {
                id: p.execution_id.to_owned(),
                rec: ExecRecord {
                    hash: index::exec_hash(p.execution_id),
                    first_block: block,
                    min_ts: p.timestamp,
                    max_ts: p.timestamp,
                    ..ExecRecord::default()
                },
                state: None,
            });
        }
        if let Some(e) = self.exec.as_mut() {
            let r = &mut e.rec;
            r.last_block = block;
            r.entries += 1;
            r.errors += u32::from(p.level == Level::Error.to_byte());
            r.min_ts = r.min_ts.min(p.timestamp);
            r.max_ts = r.max_ts.max(p.timestamp);
            if crate::journal::recovery::is_terminal(p) {
                e.state = p
                    .to_entry()
                    .ok()
                    .and_then(|x| x.terminal_state().map(str::to_owned));
            }
        }
        self.builder.push(p);
        self.entries += 1;
        if self.builder.raw_len() >= self.opts.block_target {
            self.flush_block()?;
        }
        Ok(())
    }

    pub(super) fn end_exec(&mut self) -> Result<()> {
        let Some(e) = self.exec.take() else {
            return Ok(());
        };
        let rec = ExecRecord {
            name_offset: self.names.len,
            // Ids are at most 128 bytes (checked when the record was decoded).
            name_len: u8::try_from(e.id.len()).unwrap_or(u8::MAX),
            state: state_byte(e.state.as_deref()),
            ..e.rec
        };
        self.names.write(e.id.as_bytes())?;
        self.execs.write(&rec.to_bytes())?;
        self.catalog.push(&rec);
        self.exec_count += 1;
        Ok(())
    }

    fn flush_block(&mut self) -> Result<()> {
        if self.builder.len() == 0 {
            return Ok(());
        }
        let (stats, words) = self.builder.finish(&mut self.raw);
        let Some(common) = &self.common else {
            // The first blocks wait for the common words their filters leave out and the
            // dictionary they will be compressed with.
            let raw = std::mem::take(&mut self.raw);
            self.pending.push((raw, stats, words));
            if self.pending_bytes() >= self.opts.train_bytes {
                self.decide()?;
            }
            return Ok(());
        };
        self.filter_bytes.clear();
        words.into_filter(common).encode(&mut self.filter_bytes);
        let (raw, fb) = (
            std::mem::take(&mut self.raw),
            std::mem::take(&mut self.filter_bytes),
        );
        let r = self.write_block(&raw, stats, &fb);
        (self.raw, self.filter_bytes) = (raw, fb);
        r
    }

    /// Decides the common words and the dictionary from the blocks waiting, then writes them.
    /// A word is common if half of them hold it (`common::choose`). A dictionary handed in is
    /// used as it is; otherwise one is built (`dict::train`) and the blocks are compressed
    /// without it, with it and with its last quarter: the dictionary whose frames plus a
    /// quarter of its own bytes are smallest is kept, if that beats the frames without, and
    /// its frames are the ones written.
    fn decide(&mut self) -> Result<()> {
        let sampled = self.pending_bytes();
        let pending = std::mem::take(&mut self.pending);
        let sets: Vec<&[u64]> = pending.iter().map(|p| p.2.words.as_slice()).collect();
        let common: HashSet<u64, WordHashing> = common::choose(&sets).into_iter().collect();
        let io = |what: &'static str| StoreError::io(what, &self.out.path);
        let level = self.opts.level;
        let compress_all = |dict: Option<&[u8]>| -> std::io::Result<Vec<Vec<u8>>> {
            let mut c = frames::compressor(level, dict)?;
            pending.iter().map(|p| c.compress(&p.0)).collect()
        };
        let mut frames = None;
        if self.dict.is_none() && self.opts.dict_bytes > 0 && sampled >= self.opts.train_bytes {
            let raws: Vec<&[u8]> = pending.iter().map(|p| p.0.as_slice()).collect();
            if let Some(d) = dict::train(&raws, self.opts.dict_bytes) {
                let total = |f: &[Vec<u8>]| f.iter().map(Vec::len).sum::<usize>();
                // Only the plain frames' total is kept (memory): if no dictionary pays, the
                // blocks are compressed again as they are written.
                let plain = total(&compress_all(None).map_err(io("compress block"))?);
                // A dictionary must pay back a quarter of its bytes on the sample alone: the
                // files that get one (a default part holds ~40 MiB of blocks) are several
                // samples long. The whole one is tried, then its last quarter (the pieces
                // nearest every frame), in case text that repeats less pays for less.
                // One context at a time (each holds its dictionary and tables, megabytes):
                // the winner's is built again when the next block is written.
                let mut best_cost = plain;
                let mut best = None;
                let quarter = d.len() - d.len() / 4;
                for cand in [&d[..], &d[quarter..]] {
                    if cand.len() < dict::MIN_DICT_BYTES {
                        continue;
                    }
                    let frames = compress_all(Some(cand)).map_err(io("compress block"))?;
                    let cost = total(&frames) + cand.len() / 4;
                    if cost < best_cost {
                        best_cost = cost;
                        best = Some((cand, frames));
                    }
                }
                if let Some((d, with)) = best {
                    self.dict = Some(d.to_vec());
                    frames = Some(with);
                }
            }
        }
        let mut fb = Vec::new();
        for (k, (raw, stats, words)) in pending.into_iter().enumerate() {
            fb.clear();
            words.into_filter(&common).encode(&mut fb);
            match &frames {
                Some(f) => self.write_frame(&f[k], raw.len(), stats, &fb)?,
                None => self.write_block(&raw, stats, &fb)?,
            }
        }
        self.common = Some(common);
        Ok(())
    }

    /// Raw bytes of the blocks waiting for the dictionary.
    fn pending_bytes(&self) -> usize {
        self.pending.iter().map(|p| p.0.len()).sum()
    }

    fn write_block(&mut self, raw: &[u8], stats: BlockStats, filter_bytes: &[u8]) -> Result<()> {
        let mut frame = std::mem::take(&mut self.frame);
        self.frames
            .compress(
                raw,
                u16::from(self.dict.is_some()),
                self.dict.as_slice(),
                &mut frame,
            )
            .map_err(StoreError::io("compress block", &self.out.path))?;
        let r = self.write_frame(&frame, raw.len(), stats, filter_bytes);
        self.frame = frame;
        r
    }

    /// Writes a block's frame `compressed` (of `raw_len` bytes) and its filter.
    fn write_frame(
        &mut self,
        compressed: &[u8],
        raw_len: usize,
        stats: BlockStats,
        filter_bytes: &[u8],
    ) -> Result<()> {
        let too_big = || StoreError::Corrupt {
            file: self.out.path.clone(),
            offset: self.out.len,
            reason: "a block is over 4 GiB".to_owned(),
        };
        let entry = BlockEntry {
            offset: self.out.len,
            len: u32::try_from(compressed.len()).map_err(|_| too_big())?,
            raw_len: u32::try_from(raw_len).map_err(|_| too_big())?,
            entries: stats.entries,
            crc: crc32fast::hash(compressed),
            min_ts: stats.min_ts,
            max_ts: stats.max_ts,
            // Relative to the filter section until `finish` knows where it starts.
            filter_offset: self.filters.len,
            filter_len: u32::try_from(filter_bytes.len()).map_err(|_| too_big())?,
            filter_crc: crc32fast::hash(filter_bytes),
            level_mask: stats.level_mask,
            dict: u16::from(self.dict.is_some()),
        };
        self.out.write(compressed)?;
        self.filters.write(filter_bytes)?;
        self.table.push(entry);
        Ok(())
    }

    /// Writes the sections after the blocks (filters, then the envelope); returns the file,
    /// its length, its entries and executions.
    fn finish(mut self, segment_bytes: u64) -> Result<(File, u64, u64, u32)> {
        self.end_exec()?;
        self.flush_block()?;
        if self.common.is_none() {
            self.decide()?;
        }
        let filters_at = self.out.len;
        self.out.append_spill(self.filters)?;
        let mut common: Vec<u64> = self.common.take().unwrap_or_default().into_iter().collect();
        common.sort_unstable();
        let dicts: Vec<Vec<u8>> = self.dict.take().into_iter().collect();
        let blocks = self.table.iter().map(|e| BlockEntry {
            filter_offset: filters_at + e.filter_offset,
            ..*e
        });
        let mut spilled = Some(self.execs);
        let mut write_execs = |out: &mut Out| match spilled.take() {
            Some(execs) => out.append_spill(execs),
            None => Ok(()),
        };
        let envelope = Envelope {
            common: &common,
            dicts: &dicts,
            totals: Totals {
                entries: self.entries,
                segment_bytes,
            },
        };
        let names = self.names;
        let (file, len) = envelope.write(
            self.out,
            blocks,
            Execs::Written {
                count: u64::from(self.exec_count),
                write: &mut write_execs,
                catalog: std::mem::take(&mut self.catalog),
            },
            |out| out.append_spill(names),
        )?;
        Ok((file, len, self.entries, self.exec_count))
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
    let spill = |ext: &str| Out::create(partition::spill_path(&tmp, ext));
    let preset = input.dict.as_deref().filter(|_| opts.dict_bytes > 0);
    let mut s = SealedWriter {
        opts,
        out: Out::create(tmp.clone())?,
        filters: spill("filters")?,
        execs: spill("execs")?,
        names: spill("names")?,
        table: Vec::new(),
        builder: BlockBuilder::default(),
        raw: Vec::new(),
        filter_bytes: Vec::new(),
        frames: FrameWriter::new(opts.level),
        frame: Vec::new(),
        exec: None,
        entries: 0,
        exec_count: 0,
        catalog: CatalogBuilder::default(),
        pending: Vec::new(),
        common: None,
        // A dictionary handed in (the day's) is used as it is; otherwise one is decided.
        dict: preset.map(<[u8]>::to_vec),
        frame_kind,
    };
    s.out.write(&file_header(SEALED_MAGIC, SEALED_VERSION))?;
    s.out.write(&[0u8; HEAD_LEN - 16])?;

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
