//! Merging sealed files by copying their blocks.
//!
//! The parts of a day are merged (and, once the day is over, merged into `YYYY-MM-DD.sealed`)
//! without re-tokenizing or regrouping anything: the blocks of every input are copied in input
//! order (byte for byte during the day; compressed again at a higher level once, at the day's
//! end: [`Frames`]), then their filters byte for byte; the block tables are copied
//! with their offsets moved; the execution tables are concatenated, block numbers and name
//! offsets moved, and sorted by (hash, first block). An execution that was in several inputs
//! keeps one record per input, in block order, which is append order. The cost of a merge
//! during the day is a sequential copy of its inputs; the day-end one also decompresses and
//! compresses every block once (both measured in `docs/PERFORMANCE.md`).
//!
//! An input with damage of any kind (a trailer, a block-table entry, an execution record) is
//! not merged: its offsets cannot be trusted to move. It stays a part of its own, read as it is.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::common::{self, CommonWords};
use super::dict;
use super::envelope::{Envelope, Execs, Totals};
use super::frames::FrameWriter;
use super::layout::{
    BlockEntry, ExecRecord, Trailer, DATA_START, HEAD_LEN, SEALED_MAGIC, SEALED_VERSION,
};
use super::reader::SealedFile;
use super::seal::{SealOutcome, SealStep};
use super::seal_file::SealFile;
use crate::day::Day;
use crate::error::{Result, StoreError};
use crate::journal::segment::file_header;

/// What one merge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeOutcome {
    /// Files merged.
    pub inputs: usize,
    /// Bytes of the inputs.
    pub bytes_in: u64,
    /// Bytes of the output.
    pub bytes_out: u64,
    /// Entries (the same before and after).
    pub entries: u64,
    /// Time the merge took.
    pub elapsed: Duration,
}

/// Whether `file` can be merged (see the module doc).
pub(crate) fn mergeable(file: &SealedFile) -> bool {
    // Blocks are copied as they are, so only files whose blocks have this version's columns
    // and dictionaries merge (version 6, which has no common words, and this one); older
    // parts stay parts.
    if !file.is_clean() || !(6..=SEALED_VERSION).contains(&file.version()) {
        return false;
    }
    let mut bad = !file.check_dicts().is_ok_and(|p| p.is_empty());
    bad |= !file.check_common().is_empty();
    match file.for_each_record(|_| {}) {
        Ok(damaged) => bad |= !damaged.is_empty(),
        Err(_) => bad = true,
    }
    !bad && regions(file).is_some()
}

/// The blocks region and the filters region of a file, as (offset, len), if the block table
/// lays them out as a sealer writes them: blocks back to back from the data start, then the
/// filters back to back up to the block table.
fn regions(file: &SealedFile) -> Option<((u64, u64), (u64, u64))> {
    let table = file.block_table();
    let mut blocks_end = DATA_START;
    for e in table {
        let e = (*e)?;
        if e.offset != blocks_end {
            return None;
        }
        blocks_end = e.end();
    }
    let mut filters_end = blocks_end;
    for e in table {
        let e = (*e)?;
        if e.filter_offset != filters_end {
            return None;
        }
        filters_end = e.filter_offset + u64::from(e.filter_len);
    }
    // Version 6 and 7: the common words and the dictionaries sit between the filters and the
    // block table.
    (filters_end == file.filters_end()).then_some((
        (DATA_START, blocks_end - DATA_START),
        (blocks_end, filters_end - blocks_end),
    ))
}

/// How a merge writes the blocks' frames. Either way every block keeps its number, its raw
/// bytes, its filter and its dictionary, so positions counted in blocks (a shipping cursor, a
/// follower) hold across the merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frames {
    /// Byte for byte: a sequential copy (merges of parts during the day).
    Copy,
    /// Each frame decompressed and compressed again at this zstd level, with the same
    /// dictionary; the smaller of the two frames is kept, and a damaged block is copied as it
    /// is (its damage stays reported). Once per day, when its parts become its sealed file:
    /// parts are sealed at [`ZSTD_LEVEL`](super::options::ZSTD_LEVEL) to keep up with ingest, the
    /// finished day is kept for its retention at a level that costs more CPU once.
    Recompress(i32),
}

/// Writes the merge of `inputs` (oldest first, each [`mergeable`]) to `tmp`, fsynced. The
/// caller renames it into place. `None` if `stop` was raised (`tmp` is removed).
pub(crate) fn merge(
    inputs: &[Arc<SealedFile>],
    tmp: &Path,
    frames: Frames,
    stop: &AtomicBool,
) -> Result<Option<MergeOutcome>> {
    let started = Instant::now();
    let mut layout = Vec::with_capacity(inputs.len());
    for f in inputs {
        let r = regions(f).ok_or_else(|| StoreError::Corrupt {
            file: f.path().to_owned(),
            offset: 0,
            reason: "its blocks and filters are not laid out as a sealer writes them; not merged"
                .to_owned(),
        })?;
        layout.push(r);
    }
    let mut out = SealFile::create(tmp.to_owned())?;
    out.write(&file_header(SEALED_MAGIC, SEALED_VERSION))?;
    out.write(&[0u8; HEAD_LEN - 16])?;
    let result = (|| -> Result<Option<MergeOutcome>> {
        let MergedDicts { dicts, renumber } = merged_dicts(inputs, tmp)?;
        // Blocks of every input, then filters of every input: the day's blocks stay back to
        // back, so a query's span read crosses the former part boundaries.
        let mut block_at = Vec::with_capacity(inputs.len());
        // Recompressed: where each block's new frame went, per input.
        let mut moved: Vec<Vec<Placed>> = Vec::new();
        match frames {
            Frames::Copy => {
                for (f, ((off, len), _)) in inputs.iter().zip(&layout) {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(None);
                    }
                    block_at.push(out.len);
                    f.copy_range(*off, *len, &mut |b| out.write(b))?;
                }
            }
            Frames::Recompress(level) => {
                let mut zstd = Recompressor::new(level, &dicts);
                for (k, f) in inputs.iter().enumerate() {
                    block_at.push(out.len);
                    let Some(these) = zstd.write_file(f, &renumber[k], &mut out, stop)? else {
                        return Ok(None);
                    };
                    moved.push(these);
                }
            }
        }
        let mut filter_at = Vec::with_capacity(inputs.len());
        for (f, (_, (off, len))) in inputs.iter().zip(&layout) {
            filter_at.push(out.len);
            f.copy_range(*off, *len, &mut |b| out.write(b))?;
        }
        let common = merged_common(inputs, tmp)?;
        let mut blocks = Vec::new();
        let mut bases = Vec::with_capacity(inputs.len());
        for (k, (f, ((boff, _), (foff, _)))) in inputs.iter().zip(&layout).enumerate() {
            bases.push(u32::try_from(blocks.len()).unwrap_or(u32::MAX));
            for (i, e) in f.block_table().iter().flatten().enumerate() {
                let Placed { offset, len, crc } = match moved.get(k).and_then(|m| m.get(i)) {
                    Some(&m) => m,
                    None => Placed {
                        offset: e.offset - boff + block_at[k],
                        len: e.len,
                        crc: e.crc,
                    },
                };
                blocks.push(BlockEntry {
                    offset,
                    len,
                    crc,
                    filter_offset: e.filter_offset - foff + filter_at[k],
                    dict: renumber[k]
                        .get(usize::from(e.dict))
                        .copied()
                        .unwrap_or(u16::MAX),
                    ..*e
                });
            }
        }
        let (records, totals) = merged_records(inputs, &bases)?;
        let entries = totals.entries;
        let envelope = Envelope {
            common: &common,
            dicts: &dicts,
            totals,
        };
        let (file, bytes_out) = envelope.write(out, blocks, Execs::Records(&records), |out| {
            for f in inputs {
                let t = f.trailer();
                f.copy_range(t.names, t.names_len, &mut |b| out.write(b))?;
            }
            Ok(())
        })?;
        // The rename must not become visible before the contents are durable.
        file.sync_all()
            .map_err(StoreError::io("fsync merged file", tmp))?;
        let bytes_in = inputs
            .iter()
            .map(|f| std::fs::metadata(f.path()).map_or(0, |m| m.len()))
            .sum();
        Ok(Some(MergeOutcome {
            inputs: inputs.len(),
            bytes_in,
            bytes_out,
            entries,
            elapsed: started.elapsed(),
        }))
    })();
    if !matches!(result, Ok(Some(_))) {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

/// The union of the inputs' common words: each block's filter left out its own file's, a
/// subset of the union, so the union is right for every block.
fn merged_common(inputs: &[Arc<SealedFile>], tmp: &Path) -> Result<Vec<u64>> {
    let mut lists = Vec::with_capacity(inputs.len());
    for f in inputs {
        match f.common_words().as_deref() {
            None => {}
            Some(CommonWords::Listed(w)) => lists.push(w.clone()),
            Some(CommonWords::Lost) => {
                return Err(StoreError::Corrupt {
                    file: f.path().to_owned(),
                    offset: 0,
                    reason: "its common-words section is damaged; not merged".to_owned(),
                })
            }
        }
    }
    let words: Vec<&[u64]> = lists.iter().map(|w| &w[..]).collect();
    let common = common::union(&words).ok_or_else(|| StoreError::Corrupt {
        file: tmp.to_owned(),
        offset: 0,
        reason: "more common words than a file may hold; not merged".to_owned(),
    })?;
    Ok(common)
}

/// The execution records of the merged file in table order (each input's renumbered by its
/// first block `bases[k]` and its names' place), and the file's totals.
fn merged_records(inputs: &[Arc<SealedFile>], bases: &[u32]) -> Result<(Vec<ExecRecord>, Totals)> {
    let mut records: Vec<ExecRecord> = Vec::new();
    let mut names_base = 0u64;
    let mut totals = Totals {
        entries: 0,
        segment_bytes: 0,
    };
    for (k, f) in inputs.iter().enumerate() {
        let t: &Trailer = f.trailer();
        f.for_each_record(|r| {
            records.push(ExecRecord {
                first_block: r.first_block + bases[k],
                last_block: r.last_block + bases[k],
                name_offset: r.name_offset + names_base,
                ..r
            })
        })?;
        names_base += t.names_len;
        totals.entries += t.entries;
        totals.segment_bytes += t.segment_bytes;
    }
    records.sort_by_key(|r| (r.hash, r.first_block));
    Ok((records, totals))
}

/// The dictionaries of a merged file, and each input's map to them.
struct MergedDicts {
    dicts: Vec<Vec<u8>>,
    /// Per input: its dictionary number `n` is the merged file's `renumber[k][n]`.
    renumber: Vec<Vec<u16>>,
}

/// Every input's dictionaries, in input order, each once (parts of one day share its
/// dictionary), and per input the map from its dictionary numbers to the merged list's (0 is
/// none).
fn merged_dicts(inputs: &[Arc<SealedFile>], tmp: &Path) -> Result<MergedDicts> {
    let mut dicts: Vec<Vec<u8>> = Vec::new();
    let mut renumber: Vec<Vec<u16>> = Vec::with_capacity(inputs.len());
    for f in inputs {
        let n = f.dict_layout().map_or(0, |l| l.dicts.len());
        let mut map = vec![0u16];
        for i in 0..n {
            let d = f.dict_bytes(i)?.ok_or_else(|| StoreError::Corrupt {
                file: f.path().to_owned(),
                offset: 0,
                reason: format!("dictionary {} fails its checksum; not merged", i + 1),
            })?;
            let at = match dicts.iter().position(|x| *x == d) {
                Some(k) => k,
                None => {
                    dicts.push(d);
                    dicts.len() - 1
                }
            };
            map.push(u16::try_from(at + 1).unwrap_or(u16::MAX));
        }
        renumber.push(map);
    }
    if dicts.len() > dict::MAX_DICTS {
        return Err(StoreError::Corrupt {
            file: tmp.to_owned(),
            offset: 0,
            reason: "more dictionaries than a file may hold; not merged".to_owned(),
        });
    }
    Ok(MergedDicts { dicts, renumber })
}

/// Compresses blocks again for [`Frames::Recompress`], through the sealer's [`FrameWriter`],
/// with the buffers a block is read into.
struct Recompressor<'d> {
    frames: FrameWriter,
    /// The merged file's dictionaries.
    dicts: &'d [Vec<u8>],
    frame: Vec<u8>,
    raw: Vec<u8>,
    out: Vec<u8>,
}

impl<'d> Recompressor<'d> {
    fn new(level: i32, dicts: &'d [Vec<u8>]) -> Recompressor<'d> {
        Recompressor {
            frames: FrameWriter::new(level),
            dicts,
            frame: Vec::new(),
            raw: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Writes every block of `f` compressed again to `out`, `renumber` mapping its dictionary
    /// numbers to the merged file's; where each block went, or `None` if `stop` was raised.
    fn write_file(
        &mut self,
        f: &SealedFile,
        renumber: &[u16],
        out: &mut SealFile,
        stop: &AtomicBool,
    ) -> Result<Option<Vec<Placed>>> {
        let mut moved = Vec::with_capacity(f.block_count());
        for (i, e) in f.block_table().iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            let dict = e.map_or(0, |e| {
                renumber
                    .get(usize::from(e.dict))
                    .copied()
                    .unwrap_or(u16::MAX)
            });
            let at = out.len;
            // A frame carried over keeps its CRC: a damaged one stays damaged.
            let (frame, crc) = match self.frame(f, i, dict, &out.path)? {
                Frame::Again(b) => (b, crc32fast::hash(b)),
                Frame::AsItWas(b) => (b, e.map_or(0, |e| e.crc)),
            };
            out.write(frame)?;
            moved.push(Placed {
                offset: at,
                len: u32::try_from(frame.len()).unwrap_or(u32::MAX),
                crc,
            });
        }
        Ok(Some(moved))
    }

    /// The frame to write for block `i` of `f`, whose dictionary is number `dict` of the
    /// merged file: compressed again, or as it was if that is smaller or the block is damaged.
    fn frame(&mut self, f: &SealedFile, i: usize, dict: u16, tmp: &Path) -> Result<Frame<'_>> {
        if !f.frame_and_raw(i, &mut self.frame, &mut self.raw)? {
            return Ok(Frame::AsItWas(&self.frame));
        }
        self.frames
            .compress(&self.raw, dict, self.dicts, &mut self.out)
            .map_err(StoreError::io("compress block", tmp))?;
        Ok(if self.out.len() < self.frame.len() {
            Frame::Again(&self.out)
        } else {
            Frame::AsItWas(&self.frame)
        })
    }
}

/// Where a block's frame went in the merged file.
#[derive(Debug, Clone, Copy)]
struct Placed {
    offset: u64,
    len: u32,
    crc: u32,
}

/// A block's frame as a recompressing merge writes it.
enum Frame<'a> {
    /// Compressed again.
    Again(&'a [u8]),
    /// The input's bytes, damaged or not (smaller than compressed again, or unreadable).
    AsItWas(&'a [u8]),
}

impl SealOutcome {
    /// The outcome of a merge.
    pub(crate) fn of_merge(day: Day, step: SealStep, m: &MergeOutcome) -> SealOutcome {
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
