//! Merging sealed files by copying their blocks.
//!
//! The parts of a day are merged (and, once the day is over, merged into `YYYY-MM-DD.sealed`)
//! without decompressing, re-tokenizing or recompressing anything: the blocks of every input
//! are copied byte for byte, in input order, then their filters; the block tables are copied
//! with their offsets moved; the execution tables are concatenated, block numbers and name
//! offsets moved, and sorted by (hash, first block). An execution that was in several inputs
//! keeps one record per input, in block order, which is append order. The cost of a merge is
//! a sequential copy of its inputs (measured in `docs/PERFORMANCE.md`).
//!
//! An input with damage of any kind (a trailer, a block-table entry, an execution record) is
//! not merged: its offsets cannot be trusted to move. It stays a part of its own, read as it is.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::catalog::CatalogBuilder;
use super::common::{self, CommonWords};
use super::dict;
use super::layout::{
    BlockEntry, ExecRecord, Trailer, DATA_START, HEAD_LEN, SEALED_MAGIC, SEALED_VERSION,
};
use super::reader::SealedFile;
use super::seal::Out;
use crate::error::{Result, StoreError};
use crate::store::segment::file_header;

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

/// Writes the merge of `inputs` (oldest first, each [`mergeable`]) to `tmp`, fsynced. The
/// caller renames it into place. `None` if `stop` was raised (`tmp` is removed).
pub(crate) fn merge(
    inputs: &[Arc<SealedFile>],
    tmp: &Path,
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
    let mut out = Out::create(tmp.to_owned())?;
    out.write(&file_header(SEALED_MAGIC, SEALED_VERSION))?;
    out.write(&[0u8; HEAD_LEN - 16])?;
    let result = (|| -> Result<Option<MergeOutcome>> {
        // Blocks of every input, then filters of every input: the day's blocks stay back to
        // back, so a query's span read crosses the former part boundaries.
        let mut block_at = Vec::with_capacity(inputs.len());
        for (f, ((off, len), _)) in inputs.iter().zip(&layout) {
            if stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            block_at.push(out.len);
            f.copy_range(*off, *len, &mut |b| out.write(b))?;
        }
        let mut filter_at = Vec::with_capacity(inputs.len());
        for (f, (_, (off, len))) in inputs.iter().zip(&layout) {
            filter_at.push(out.len);
            f.copy_range(*off, *len, &mut |b| out.write(b))?;
        }
        // The union of the inputs' common words: each block's filter left out its own file's,
        // a subset of the union, so the union is right for every block.
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
        common::write_section(&common, &mut |b| out.write(b))?;
        // Every input's dictionaries, in input order, each written once: parts of one day
        // share its dictionary. Each block's number is renumbered to the merged list.
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
        dict::write_section(&dicts, &mut |b| out.write(b))?;
        let block_table = out.len;
        let mut blocks = 0u32;
        let mut bases = Vec::with_capacity(inputs.len());
        for (k, (f, ((boff, _), (foff, _)))) in inputs.iter().zip(&layout).enumerate() {
            bases.push(blocks);
            for e in f.block_table().iter().flatten() {
                let moved = BlockEntry {
                    offset: e.offset - boff + block_at[k],
                    filter_offset: e.filter_offset - foff + filter_at[k],
                    dict: renumber[k]
                        .get(usize::from(e.dict))
                        .copied()
                        .unwrap_or(u16::MAX),
                    ..*e
                };
                out.write(&moved.to_bytes())?;
                blocks += 1;
            }
        }
        let mut records: Vec<ExecRecord> = Vec::new();
        let mut names_base = 0u64;
        let mut entries = 0u64;
        let mut v1_bytes = 0u64;
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
            entries += t.entries;
            v1_bytes += t.v1_bytes;
        }
        records.sort_by_key(|r| (r.hash, r.first_block));
        let exec_table = out.len;
        let mut catalog = CatalogBuilder::default();
        for r in &records {
            out.write(&r.to_bytes())?;
            catalog.push(r);
        }
        catalog.write(&mut |b| out.write(b))?;
        let names = out.len;
        for f in inputs {
            let t = f.trailer();
            f.copy_range(t.names, t.names_len, &mut |b| out.write(b))?;
        }
        let trailer = Trailer {
            block_table,
            exec_table,
            names,
            names_len: names_base,
            entries,
            v1_bytes,
            blocks,
            execs: u32::try_from(records.len()).map_err(|_| StoreError::Corrupt {
                file: tmp.to_owned(),
                offset: 0,
                reason: "more than 4 billion execution records".to_owned(),
            })?,
            catalog: true,
            dicts: !dicts.is_empty(),
            common: !common.is_empty(),
        }
        .to_bytes();
        out.write(&trailer)?;
        let bytes_out = out.len;
        let file = out
            .file
            .into_inner()
            .map_err(|e| StoreError::io("write", tmp)(e.into_error()))?;
        file.write_all_at(&trailer, 16)
            .map_err(StoreError::io("write", tmp))?;
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
