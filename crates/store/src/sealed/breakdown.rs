//! Where a sealed file's bytes go: each block column's raw bytes and its share of the
//! compressed blocks, and each table and section, for `examples/sealed.rs` to set beside a
//! ClickHouse table's per-column sizes.
//!
//! A block is one zstd frame over all its columns, so a column's compressed size is not stored
//! anywhere: it is estimated by compressing each column of each block on its own at the
//! sealer's level and sharing the block's real compressed size in proportion.

use std::path::Path;

use super::catalog;
use super::columns::Columns;
use super::frames::compressor;
use super::layout::{BLOCK_ENTRY_LEN, EXEC_RECORD_LEN, HEAD_LEN, TRAILER_LEN};
use super::options::ZSTD_LEVEL;
use super::reader::SealedFile;
use crate::error::{Result, StoreError};

/// One row of a breakdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// A block column (`messages`, `timestamps`, ...) or a section of the file.
    pub name: String,
    /// Bytes before compression (for a section: as stored).
    pub raw: u64,
    /// Bytes in the file: for a column, its share of the blocks' compressed bytes.
    pub stored: u64,
}

/// The breakdown of the sealed file or part at `path`: block columns first (largest first),
/// then the file's other sections. The `stored` column sums to the file's length.
pub fn breakdown(path: &Path) -> Result<Vec<Section>> {
    let file = SealedFile::open(path)?;
    let corrupt = |reason: String| StoreError::Corrupt {
        file: path.to_owned(),
        offset: 0,
        reason,
    };
    // Per column: raw bytes, bytes compressed alone, and the real compressed bytes shared out.
    let mut cols: Vec<(&'static str, u64, u64, u64)> = Vec::new();
    let mut blocks_stored = 0u64;
    let mut filters = 0u64;
    let with_seq = file.version() >= 4;
    let mut zstd = compressor(ZSTD_LEVEL, None).map_err(StoreError::io("start zstd", path))?;
    for e in file.block_table().iter().flatten() {
        let mut data = vec![0u8; e.len as usize];
        file.read_exact_at(&mut data, e.offset)?;
        let raw = file.decompress(e, &data)?;
        let mut ends: Vec<(&'static str, usize)> = Vec::new();
        Columns::parse_marking(&raw, with_seq, &mut |name, end| ends.push((name, end)))
            .map_err(corrupt)?;
        let mut start = 0;
        let mut alone = Vec::with_capacity(ends.len());
        for &(name, end) in &ends {
            let bytes = &raw[start..end];
            let z = zstd
                .compress(bytes)
                .map_err(StoreError::io("compress", path))?;
            alone.push((name, (end - start) as u64, z.len() as u64));
            start = end;
        }
        let sum: u64 = alone.iter().map(|a| a.2).sum::<u64>().max(1);
        for (name, raw_len, z) in alone {
            let share = u128::from(e.len) * u128::from(z) / u128::from(sum);
            let share = u64::try_from(share).unwrap_or(u64::MAX);
            match cols.iter_mut().find(|c| c.0 == name) {
                Some(c) => {
                    c.1 += raw_len;
                    c.2 += z;
                    c.3 += share;
                }
                None => cols.push((name, raw_len, z, share)),
            }
        }
        blocks_stored += u64::from(e.len);
        filters += u64::from(e.filter_len);
    }
    cols.sort_by_key(|c| std::cmp::Reverse(c.3));
    let mut out: Vec<Section> = cols
        .iter()
        .map(|c| Section {
            name: format!("column: {}", c.0),
            raw: c.1,
            stored: c.3,
        })
        .collect();
    // Rounding: the columns sum to the blocks exactly.
    let rounded: u64 = out.iter().map(|s| s.stored).sum();
    if let Some(first) = out.first_mut() {
        first.stored = (first.stored + blocks_stored).saturating_sub(rounded);
    }
    let t = file.trailer();
    let execs = u64::from(t.execs);
    let catalog = if t.catalog {
        catalog::catalog_len(t.execs)
    } else {
        0
    };
    let dicts_at = file.dict_layout().map_or(t.block_table, |l| l.start);
    let dicts = t.block_table - dicts_at;
    let common = dicts_at - file.filters_end();
    for (name, bytes) in [
        ("token filters", filters),
        ("common words", common),
        ("zstd dictionaries", dicts),
        ("block table", u64::from(t.blocks) * BLOCK_ENTRY_LEN as u64),
        ("execution table", execs * EXEC_RECORD_LEN as u64),
        ("catalog", catalog),
        ("execution ids (names)", t.names_len),
        ("header and trailers", (HEAD_LEN + TRAILER_LEN) as u64),
    ] {
        out.push(Section {
            name: name.to_owned(),
            raw: bytes,
            stored: bytes,
        });
    }
    let len = std::fs::metadata(path)
        .map_err(StoreError::io("stat", path))?
        .len();
    let counted: u64 = out.iter().map(|s| s.stored).sum();
    if counted != len {
        out.push(Section {
            name: "unaccounted (damaged blocks)".to_owned(),
            raw: len.saturating_sub(counted),
            stored: len.saturating_sub(counted),
        });
    }
    Ok(out)
}
