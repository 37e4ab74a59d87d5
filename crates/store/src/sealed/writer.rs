//! [`SealedWriter`]: one sealed file built entry by entry, execution by execution: blocks
//! closed at the target size, their filters, the execution table and its catalog, the common
//! words and the dictionary decided from the first blocks, then the envelope.

use std::collections::HashSet;
use std::fs::File;

use super::block::{BlockBuilder, BlockStats, BlockWords, WordHashing};
use super::catalog::CatalogBuilder;
use super::common;
use super::dict;
use super::envelope::{Envelope, Execs, Totals};
use super::frames::{self, FrameWriter};
use super::layout::{state_byte, BlockEntry, ExecRecord, HEAD_LEN, SEALED_MAGIC, SEALED_VERSION};
use super::options::{SealOptions, EXEC_CUT};
use super::seal_file::SealFile;
use crate::error::{Result, StoreError};
use crate::journal::index::{self};
use crate::journal::record::FrameKind;
use crate::journal::record::PayloadRef;
use crate::journal::segment::file_header;
use crate::Level;

/// The execution being written.
struct Exec {
    id: String,
    rec: ExecRecord,
    state: Option<String>,
}

/// The sealed file being built.
pub(super) struct SealedWriter {
    pub(super) opts: SealOptions,
    out: SealFile,
    filters: SealFile,
    execs: SealFile,
    names: SealFile,
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
    /// A writer of the file `out` (its header written here) with its spill files for the
    /// filters, the execution table and the names, in that order. A dictionary handed in
    /// (`preset`: the day's) is used as it is; otherwise one is decided from the first blocks.
    pub(super) fn create(
        opts: SealOptions,
        [mut out, filters, execs, names]: [SealFile; 4],
        preset: Option<&[u8]>,
        frame_kind: FrameKind,
    ) -> Result<SealedWriter> {
        out.write(&file_header(SEALED_MAGIC, SEALED_VERSION))?;
        out.write(&[0u8; HEAD_LEN - 16])?;
        Ok(SealedWriter {
            opts,
            out,
            filters,
            execs,
            names,
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
            dict: preset.map(<[u8]>::to_vec),
            frame_kind,
        })
    }

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
        self.catalog.push(rec.hash, rec.min_ts);
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
    pub(super) fn finish(mut self, segment_bytes: u64) -> Result<(File, u64, u64, u32)> {
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
        let mut write_execs = |out: &mut SealFile| match spilled.take() {
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
