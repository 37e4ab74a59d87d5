//! Reading one sealed file (a part, or a whole sealed day): [`SealedFile`], open for the life of
//! the store handle (a day's files are read as one by `sealed_day.rs`).
//!
//! Opening reads the trailer and the block table (64 bytes per block, about 1/4096 of the
//! day's raw bytes); everything else is read with `pread` when asked: an execution is a binary
//! search in the execution table plus one contiguous read of its blocks. Nothing is memory
//! mapped, so a process that queries many executions holds only what it decompresses.
//!
//! Damage stays local: a block whose CRC or contents fail is an error for that block only
//! (its entries are lost, the others read), a damaged block-table entry loses its block, a
//! damaged execution record falls back to a linear scan of the table, and a damaged trailer
//! is replaced by its copy after the header.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::error::{Result, StoreError};
use crate::journal::segment::check_header;
use crate::sealed::block;
use crate::sealed::common::{self, CommonWords};
use crate::sealed::dict;
use crate::sealed::filter::TokenFilter;
use crate::sealed::layout::{
    BlockEntry, Trailer, BLOCK_ENTRY_LEN, DATA_START, HEAD_LEN, SEALED_MAGIC, SEALED_VERSION,
    TRAILER_LEN,
};
use crate::view::{Access, FileView};

mod blocks;
mod execs;

pub use blocks::{BlockMeta, BlockScratch};

/// One open sealed file: a part (`YYYY-MM-DD.N-M.part`) or a whole sealed day
/// (`YYYY-MM-DD.sealed`). Readers see a day's files through [`SealedDay`](super::SealedDay).
pub(crate) struct SealedFile {
    path: PathBuf,
    /// Its format version (blocks of version 4 carry sequence numbers).
    version: u32,
    file: FileView,
    trailer: Trailer,
    /// The block table; `None` for an entry that fails its checks.
    table: Vec<Option<BlockEntry>>,
    /// Damage found by `open` that did not stop it (offset, what), for `verify`.
    damage: Vec<(u64, String)>,
    metas: OnceLock<Vec<BlockMeta>>,
    /// The catalog's fence, read on first use; `None` inside if there is none or it is damaged.
    fence: OnceLock<Option<Vec<u64>>>,
    /// Where the zstd dictionaries are (version 6).
    dict_layout: Option<dict::DictLayout>,
    /// The dictionaries' bytes, read and checked on first use, once per file whatever the
    /// number of threads reading it; `None` for a damaged one. They are raw content, which
    /// zstd takes as it is for each frame: no context holds a copy.
    dicts: OnceLock<Vec<Option<Vec<u8>>>>,
    /// Where the common-words section is, (start, end) (version 7); `None` without one, or
    /// if it does not fit (then its words are lost).
    common_at: Option<(u64, u64)>,
    /// The common words, read and checked on first use.
    common: OnceLock<Option<Arc<CommonWords>>>,
}

impl std::fmt::Debug for SealedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedFile")
            .field("path", &self.path)
            .field("blocks", &self.table.len())
            .finish_non_exhaustive()
    }
}

impl SealedFile {
    /// Opens the sealed file (or part) at `path`: checks the header, reads the trailer (or its
    /// copy) and the block table.
    pub(crate) fn open(path: &Path) -> Result<SealedFile> {
        let file =
            FileView::open(path, Access::Map).map_err(StoreError::io("open sealed file", path))?;
        let len = file
            .len()
            .map_err(StoreError::io("stat sealed file", path))?;
        let corrupt = |offset: u64, reason: String| StoreError::Corrupt {
            file: path.to_owned(),
            offset,
            reason,
        };
        if len < DATA_START + TRAILER_LEN as u64 {
            return Err(corrupt(
                0,
                format!("{len} bytes is too short for a sealed file"),
            ));
        }
        let mut head = [0u8; HEAD_LEN];
        file.read_into(0, &mut head)
            .map_err(StoreError::io("read sealed file", path))?;
        check_header(path, &head[..16], SEALED_MAGIC, SEALED_VERSION)?;
        let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if version < 2 {
            return Err(corrupt(
                8,
                format!("sealed file version {version}: no such version"),
            ));
        }
        let mut damage = Vec::new();
        let trailer = read_trailer(&file, path, len, &head, &mut damage)?;
        let (dict_layout, common_at) = section_places(&file, path, &trailer, &mut damage)?;
        let table = read_block_table(&file, path, &trailer)?;
        Ok(SealedFile {
            path: path.to_owned(),
            version,
            file,
            trailer,
            table,
            damage,
            metas: OnceLock::new(),
            fence: OnceLock::new(),
            dict_layout,
            dicts: OnceLock::new(),
            common_at,
            common: OnceLock::new(),
        })
    }

    /// Reads `buf.len()` bytes at `at` (for `breakdown`).
    pub(super) fn read_exact_at(&self, buf: &mut [u8], at: u64) -> Result<()> {
        self.read_at(buf, at)
    }

    /// Reads `buf.len()` bytes at `at`. A file shorter than that (truncated under this reader)
    /// is an error that says how long it is and what was asked.
    fn read_at(&self, buf: &mut [u8], at: u64) -> Result<()> {
        self.file
            .read_into(at, buf)
            .map_err(StoreError::io("read sealed file", &self.path))
    }

    /// The trailer in use.
    pub(super) fn trailer(&self) -> &Trailer {
        &self.trailer
    }

    /// Whether `open` found nothing wrong and every block-table entry checks out: what a
    /// merge requires of its inputs (it copies their bytes and rebases their offsets).
    pub(super) fn is_clean(&self) -> bool {
        self.damage.is_empty() && self.table.iter().all(Option::is_some)
    }

    /// Copies `len` bytes at `offset` of this file into `out`.
    pub(super) fn copy_range(
        &self,
        offset: u64,
        len: u64,
        out: &mut impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        const CHUNK: u64 = 1 << 20;
        let mut buf = vec![0u8; usize::try_from(len.min(CHUNK)).unwrap_or(0)];
        let mut done = 0u64;
        while done < len {
            let n = usize::try_from((len - done).min(CHUNK)).unwrap_or(0);
            self.read_at(&mut buf[..n], offset + done)?;
            out(&buf[..n])?;
            done += n as u64;
        }
        Ok(())
    }

    /// Damage that `open` worked around (offset, what): for `verify`.
    pub(crate) fn open_damage(&self) -> &[(u64, String)] {
        &self.damage
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Entries in the file.
    pub(crate) fn entries(&self) -> u64 {
        self.trailer.entries
    }

    /// Bytes of the live-layout files (segment and indexes) this day was sealed from.
    pub(crate) fn segment_bytes(&self) -> u64 {
        self.trailer.segment_bytes
    }

    /// Executions in the file.
    pub(crate) fn executions(&self) -> u32 {
        self.trailer.execs
    }

    /// Metadata of every block, in file order (executions clustered, append order inside).
    /// The filters are read on the first call.
    pub(crate) fn blocks(&self) -> &[BlockMeta] {
        self.metas.get_or_init(|| self.block_metas())
    }

    /// [`blocks`](Self::blocks), computed and not kept (a day of several files keeps them).
    pub(crate) fn block_metas(&self) -> Vec<BlockMeta> {
        self.table
            .iter()
            .map(|e| match e {
                Some(e) => BlockMeta {
                    min_ts: e.min_ts,
                    max_ts: e.max_ts,
                    entries: e.entries,
                    level_mask: e.level_mask,
                    filter: self.filter(e),
                    common: self.common_words(),
                },
                // Unknown: "maybe" everywhere, so a search reads it and reports the damage.
                None => BlockMeta {
                    min_ts: i64::MIN,
                    max_ts: i64::MAX,
                    entries: 0,
                    level_mask: 0x0f,
                    filter: None,
                    common: None,
                },
            })
            .collect()
    }

    pub(super) fn filter(&self, e: &BlockEntry) -> Option<TokenFilter> {
        let mut b = vec![0u8; e.filter_len as usize];
        self.file.read_into(e.filter_offset, &mut b).ok()?;
        if crc32fast::hash(&b) != e.filter_crc {
            tracing::warn!(file = %self.path.display(), offset = e.filter_offset, "damaged block filter; the block will be read by every search (run `logstore verify`)");
            return None;
        }
        TokenFilter::decode(&b)
    }

    /// The words the block filters leave out, read once (`None`: the file lists none). A
    /// section that is damaged or does not fit gives [`CommonWords::Lost`].
    pub(crate) fn common_words(&self) -> Option<Arc<CommonWords>> {
        self.common
            .get_or_init(|| {
                if !self.trailer.common {
                    return None;
                }
                let words = self
                    .common_at
                    .and_then(|(start, end)| {
                        let mut b = vec![0u8; usize::try_from(end - start).ok()?];
                        self.read_at(&mut b, start).ok()?;
                        Some(common::decode(&b))
                    })
                    .unwrap_or(CommonWords::Lost);
                if words == CommonWords::Lost {
                    tracing::warn!(file = %self.path.display(), "damaged common-words section; every search reads every block of the file (run `logstore verify`)");
                }
                Some(Arc::new(words))
            })
            .clone()
    }

    /// Where the sections after the filters start: the common words, else the dictionaries,
    /// else the block table.
    pub(crate) fn filters_end(&self) -> u64 {
        self.common_at.map(|(start, _)| start).unwrap_or_else(|| {
            self.dict_layout
                .as_ref()
                .map_or(self.trailer.block_table, |l| l.start)
        })
    }

    /// The common-words section's damage, for `verify`: (offset, what).
    pub(crate) fn check_common(&self) -> Vec<(u64, String)> {
        match self.common_words().as_deref() {
            Some(CommonWords::Lost) => vec![(
                self.common_at.map_or(self.trailer.block_table, |(s, _)| s),
                "the common-words section fails its checksum or does not fit; every search reads every block of this file"
                    .to_owned(),
            )],
            _ => Vec::new(),
        }
    }

    /// The decoded token filter of block `i` (for `verify`): `Err` names the damage.
    pub(crate) fn check_filter(&self, i: usize) -> Result<()> {
        let e = self.entry(i)?;
        self.filter(&e)
            .map(|_| ())
            .ok_or_else(|| StoreError::Corrupt {
                file: self.path.clone(),
                offset: e.filter_offset,
                reason: format!("the filter of block {i} fails its checksum or does not decode"),
            })
    }

    /// The block table as read (`None`: a damaged entry).
    pub(crate) fn block_table(&self) -> &[Option<BlockEntry>] {
        &self.table
    }

    /// Number of blocks.
    pub(crate) fn block_count(&self) -> usize {
        self.table.len()
    }

    fn entry(&self, i: usize) -> Result<BlockEntry> {
        self.table
            .get(i)
            .copied()
            .flatten()
            .ok_or_else(|| StoreError::Corrupt {
                file: self.path.clone(),
                offset: self.trailer.block_table + (i * BLOCK_ENTRY_LEN) as u64,
                reason: format!(
                    "the block table entry of block {i} fails its checks; its entries are lost"
                ),
            })
    }

    /// Calls `f` with the decoded entries of block `i`. `bytes`: the block's compressed bytes
    /// if the caller has already read them.
    /// Its format version.
    pub(crate) fn version(&self) -> u32 {
        self.version
    }

    /// The highest sequence number in the file (0 for files before version 4): every block is
    /// read, so only for the rare writer open that lost `DIR/seq`. Damaged blocks are skipped.
    pub(crate) fn max_seq(&self) -> u64 {
        if self.version < 4 {
            return 0;
        }
        let mut scratch = BlockScratch::take();
        let highest = (0..self.table.len())
            .filter_map(|i| self.with_columns(i, &mut scratch, |c| c.max_seq()).ok())
            .max()
            .unwrap_or(0);
        scratch.give_back();
        highest
    }
}

/// The trailer at the end of the file, or its copy after the header when the end is damaged;
/// the damage either shows is pushed to `damage`.
fn read_trailer(
    file: &FileView,
    path: &Path,
    len: u64,
    head: &[u8; HEAD_LEN],
    damage: &mut Vec<(u64, String)>,
) -> Result<Trailer> {
    let corrupt = |offset: u64, reason: String| StoreError::Corrupt {
        file: path.to_owned(),
        offset,
        reason,
    };
    let mut tail = [0u8; TRAILER_LEN];
    file.read_into(len - TRAILER_LEN as u64, &mut tail)
        .map_err(StoreError::io("read sealed file", path))?;
    let end = Trailer::from_bytes(&tail, len);
    let spare = Trailer::from_bytes(&head[16..], len);
    if head[12..16] != [0; 4] {
        damage.push((12, "reserved header bytes are not zero".to_owned()));
    }
    if end.is_none() {
        damage.push((
            len - TRAILER_LEN as u64,
            "the trailer fails its checks (its copy after the header is used)".to_owned(),
        ));
    }
    if spare.is_none() || (end.is_some() && spare != end) {
        damage.push((
            16,
            "the trailer copy after the header fails its checks or differs from the trailer"
                .to_owned(),
        ));
    }
    let trailer = end
        .or_else(|| {
            let copy = Trailer::from_bytes(&head[16..], len);
            if copy.is_some() {
                tracing::warn!(file = %path.display(), "damaged trailer; using its copy after the header (run `logstore verify`)");
            }
            copy
        })
        .ok_or_else(|| {
            corrupt(
                len - TRAILER_LEN as u64,
                "the trailer and its copy both fail their checks".to_owned(),
            )
        })?;
    Ok(trailer)
}

/// Where the dictionaries are, and the common words' `(start, end)`.
type SectionPlaces = (Option<dict::DictLayout>, Option<(u64, u64)>);

/// Where the dictionaries and the common words are (versions 6 and 7), each `None` when the
/// file has none or when it does not fit (pushed to `damage`).
fn section_places(
    file: &FileView,
    path: &Path,
    trailer: &Trailer,
    damage: &mut Vec<(u64, String)>,
) -> Result<SectionPlaces> {
    let dict_layout = if trailer.dicts {
        let found = dict::layout(trailer.block_table, DATA_START, &mut |b, at| {
            file.read_into(at, b)
                .map_err(StoreError::io("read sealed file", path))
        })?;
        if found.is_none() {
            damage.push((
                trailer.block_table,
                "the dictionaries section does not fit before the block table".to_owned(),
            ));
        }
        found
    } else {
        None
    };
    let common_at = if trailer.common {
        let end = dict_layout
            .as_ref()
            .map_or(trailer.block_table, |l| l.start);
        let found = common::start(end, DATA_START, &mut |b, at| {
            file.read_into(at, b)
                .map_err(StoreError::io("read sealed file", path))
        })?;
        if found.is_none() {
            damage.push((
                end,
                "the common-words section does not fit before the dictionaries and the block table"
                    .to_owned(),
            ));
        }
        found.map(|start| (start, end))
    } else {
        None
    };
    Ok((dict_layout, common_at))
}

/// The block table; an entry that fails its checks or points outside the blocks is `None`.
fn read_block_table(
    file: &FileView,
    path: &Path,
    trailer: &Trailer,
) -> Result<Vec<Option<BlockEntry>>> {
    let n = usize::try_from(trailer.blocks).unwrap_or(0);
    let mut bytes = vec![0u8; n * BLOCK_ENTRY_LEN];
    file.read_into(trailer.block_table, &mut bytes)
        .map_err(StoreError::io("read sealed file", path))?;
    let table = bytes
        .chunks_exact(BLOCK_ENTRY_LEN)
        .map(|b| {
            BlockEntry::from_bytes(b).filter(|e| {
                e.offset >= DATA_START
                    && e.end() <= trailer.block_table
                    && e.filter_offset.saturating_add(u64::from(e.filter_len))
                        <= trailer.block_table
                    && (e.raw_len as usize) <= block::MAX_RAW_BLOCK
            })
        })
        .collect();
    Ok(table)
}
