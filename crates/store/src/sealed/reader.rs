//! Reading one sealed file (a part, or a whole sealed day): [`SealedFile`], open for the life of
//! the store handle (a day's files are read as one by `parts.rs`).
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

use super::block;
use super::catalog;
use super::columns::Columns;
use super::common::{self, CommonWords};
use super::dict;
use super::filter::{word_hash, TokenFilter};
use super::layout::{
    BlockEntry, ExecRecord, Trailer, BLOCK_ENTRY_LEN, DATA_START, EXEC_RECORD_LEN, HEAD_LEN,
    SEALED_MAGIC, SEALED_VERSION, TRAILER_LEN,
};
use crate::error::{Result, StoreError};
use crate::journal::index::exec_hash;
use crate::journal::record::PayloadRef;
use crate::journal::segment::check_header;
use crate::view::{Access, FileView};

/// What reading many blocks reuses from one block to the next (see
/// [`SealedDay::scan_blocks`](super::SealedDay::scan_blocks)): the zstd context, the compressed and the raw bytes.
#[derive(Default)]
pub struct BlockScratch {
    dctx: Option<Dctx>,
    compressed: Vec<u8>,
    raw: Vec<u8>,
}

impl BlockScratch {
    /// A scratch from the process-wide pool (or a new one): creating a zstd context costs about
    /// as much as decompressing a small block, so a query of a few blocks per part must not pay
    /// it per block.
    fn take() -> BlockScratch {
        SCRATCH_POOL.lock().pop().unwrap_or_default()
    }

    /// Returns a scratch to the pool, dropping buffers that grew past [`KEEP_SCRATCH`] so that an
    /// occasional huge block does not stay resident.
    fn give_back(mut self) {
        if self.raw.capacity() > KEEP_SCRATCH {
            self.raw = Vec::new();
        }
        if self.compressed.capacity() > KEEP_SCRATCH {
            self.compressed = Vec::new();
        }
        let mut pool = SCRATCH_POOL.lock();
        if pool.len() < POOL_LEN {
            pool.push(self);
        }
    }
}

/// A zstd decompression context. It holds no dictionary: a frame that needs one is
/// decompressed with its file's dictionary bytes, shared by every context
/// ([`SealedFile::dict`]).
type Dctx = zstd::zstd_safe::DCtx<'static>;

/// The zstd context of a scratch, created on first use.
fn ready(dctx: &mut Option<Dctx>) -> Option<&mut Dctx> {
    if dctx.is_none() {
        *dctx = Dctx::try_create();
    }
    dctx.as_mut()
}

/// Scratches kept for reuse: about one per thread that reads at once.
static SCRATCH_POOL: parking_lot::Mutex<Vec<BlockScratch>> = parking_lot::Mutex::new(Vec::new());
const POOL_LEN: usize = 16;
/// Largest buffer a pooled scratch keeps (a block is at most `BLOCK_TARGET` raw, plus the last
/// entry that crossed it).
const KEEP_SCRATCH: usize = 1 << 20;

/// Most bytes of consecutive blocks read at once by a query.
const READ_SPAN: u64 = 8 << 20;

/// The metadata of one block, as search sees it.
#[derive(Debug, Clone)]
pub struct BlockMeta {
    /// Smallest entry timestamp (Unix ms) in the block.
    pub min_ts: i64,
    /// Largest.
    pub max_ts: i64,
    /// Entries in the block.
    pub entries: u32,
    /// Bit `Level as u8` set when the block has an entry of that level.
    pub level_mask: u8,
    /// `None` when the filter is damaged: then every question answers "maybe".
    filter: Option<TokenFilter>,
    /// The words its file lists once instead of in the filter (version 7).
    common: Option<Arc<CommonWords>>,
}

impl BlockMeta {
    /// False only when no message of the block contains `token` as a word (`token` lowercased,
    /// one word as [`words`](super::filter::words) splits them).
    pub fn may_contain_word(&self, token: &str) -> bool {
        let Some(f) = &self.filter else {
            return true;
        };
        let h = word_hash(token);
        self.common.as_ref().is_some_and(|c| c.hides(h)) || f.may_contain_hash(h)
    }

    /// False only when no entry of the block has a source starting with `prefix`.
    pub fn may_have_source_prefix(&self, prefix: &str) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|f| f.sources.iter().any(|s| s.starts_with(prefix)))
    }

    /// False only when no entry of the block has this task id.
    pub fn may_have_task(&self, task: &str) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|f| f.tasks.binary_search_by(|t| t.as_str().cmp(task)).is_ok())
    }

    /// False only when no entry of the block has an execution id starting with `prefix`.
    pub fn may_have_execution_prefix(&self, prefix: &str) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|f| f.executions.iter().any(|e| e.starts_with(prefix)))
    }
}

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
        let mut tail = [0u8; TRAILER_LEN];
        file.read_into(len - TRAILER_LEN as u64, &mut tail)
            .map_err(StoreError::io("read sealed file", path))?;
        let end = Trailer::from_bytes(&tail, len);
        let spare = Trailer::from_bytes(&head[16..], len);
        let mut damage = Vec::new();
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

    /// Bytes of the v1 files (segment and indexes) this day was sealed from.
    pub(crate) fn v1_bytes(&self) -> u64 {
        self.trailer.v1_bytes
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

    /// Decompresses block `i` after checking its CRC; entries in block order. A damaged block
    /// is `Err(StoreError::Corrupt)`. (Tests read blocks whole; the store reads them through
    /// `with_block` and `with_columns`.)
    #[cfg(test)]
    pub(crate) fn read_block(&self, i: usize) -> Result<Vec<crate::LogEntry>> {
        self.with_block(i, None, |entries| {
            let (mut exec, mut task) = (None, None);
            entries
                .iter()
                .map(|p| {
                    p.to_entry_sharing(&mut exec, &mut task)
                        .map_err(|e| StoreError::Corrupt {
                            file: self.path.clone(),
                            offset: 0,
                            reason: format!("block {i}: {e}"),
                        })
                })
                .collect()
        })?
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

    pub(crate) fn with_block<R>(
        &self,
        i: usize,
        bytes: Option<&[u8]>,
        f: impl FnOnce(&[PayloadRef<'_>]) -> R,
    ) -> Result<R> {
        self.with_block_columns(i, bytes, |c| f(&c.payloads()))
    }

    /// [`with_block`](Self::with_block), by column, with a pooled scratch.
    fn with_block_columns<R>(
        &self,
        i: usize,
        bytes: Option<&[u8]>,
        f: impl FnOnce(&Columns<'_>) -> R,
    ) -> Result<R> {
        let mut scratch = BlockScratch::take();
        let r = match bytes {
            Some(data) => {
                let e = self.entry(i)?;
                let BlockScratch { dctx, raw, .. } = &mut scratch;
                self.unpack(i, &e, data, ready(dctx), raw).map(|c| f(&c))
            }
            None => self.with_columns(i, &mut scratch, f),
        };
        scratch.give_back();
        r
    }

    /// Calls `f` with the columns of block `i`, read, checked and decompressed into `scratch`:
    /// the way to read many blocks without an allocation per block (search).
    pub(crate) fn with_columns<R>(
        &self,
        i: usize,
        scratch: &mut BlockScratch,
        f: impl FnOnce(&Columns<'_>) -> R,
    ) -> Result<R> {
        let e = self.entry(i)?;
        self.read_frame(&e, &mut scratch.compressed)?;
        let BlockScratch {
            dctx,
            compressed,
            raw,
        } = scratch;
        let columns = self.unpack(i, &e, compressed, ready(dctx), raw)?;
        Ok(f(&columns))
    }

    /// Checks the CRC of block `i`'s compressed bytes `data`, decompresses them into `raw`
    /// (with `dctx` if given) and parses the columns.
    fn unpack<'r>(
        &self,
        i: usize,
        e: &BlockEntry,
        data: &[u8],
        dctx: Option<&mut Dctx>,
        raw: &'r mut Vec<u8>,
    ) -> Result<Columns<'r>> {
        self.check_crc(i, e, data)?;
        self.unpack_raw(e, data, dctx, raw)
            .map_err(|reason| self.corrupt(i, e, &reason))?;
        self.parse(i, e, raw)
    }

    /// Reads block `i`'s frame into `frame` and, if its CRC holds, its decompressed bytes into
    /// `raw` (checked against the entry's length and count): `Ok(false)` if the block is
    /// damaged, with the frame read as it is. For a merge that recompresses (`merge.rs`).
    pub(crate) fn frame_and_raw(
        &self,
        i: usize,
        frame: &mut Vec<u8>,
        raw: &mut Vec<u8>,
    ) -> Result<bool> {
        let e = self.entry(i)?;
        self.read_frame(&e, frame)?;
        Ok(self.unpack(i, &e, frame, None, raw).is_ok())
    }

    /// Reads the compressed frame of block entry `e` into `buf`.
    fn read_frame(&self, e: &BlockEntry, buf: &mut Vec<u8>) -> Result<()> {
        buf.resize(e.len as usize, 0);
        self.read_at(buf, e.offset)
    }

    /// The error for block `i` (entry `e`): `reason`, and that its entries are lost.
    fn corrupt(&self, i: usize, e: &BlockEntry, reason: &str) -> StoreError {
        StoreError::Corrupt {
            file: self.path.clone(),
            offset: e.offset,
            reason: format!("block {i}: {reason}; its {} entries are lost", e.entries),
        }
    }

    /// Checks block `i`'s compressed bytes `data` against its CRC.
    fn check_crc(&self, i: usize, e: &BlockEntry, data: &[u8]) -> Result<()> {
        let crc = crc32fast::hash(data);
        if crc != e.crc {
            return Err(self.corrupt(
                i,
                e,
                &format!(
                    "checksum mismatch (stored {:#010x}, computed {crc:#010x})",
                    e.crc
                ),
            ));
        }
        Ok(())
    }

    /// Parses block `i`'s decompressed bytes `raw`, checking them against its entry.
    fn parse<'r>(&self, i: usize, e: &BlockEntry, raw: &'r [u8]) -> Result<Columns<'r>> {
        let corrupt = |reason: String| self.corrupt(i, e, &reason);
        if raw.len() != e.raw_len as usize {
            return Err(corrupt(format!(
                "{} bytes decompressed, {} declared",
                raw.len(),
                e.raw_len
            )));
        }
        let columns = Columns::parse(raw, self.version >= 4).map_err(corrupt)?;
        if columns.len() != e.entries as usize {
            return Err(corrupt(format!(
                "{} entries decoded, {} declared",
                columns.len(),
                e.entries
            )));
        }
        Ok(columns)
    }

    /// Calls `f(k, result)` for blocks `idx[k]` in order (a search worker's blocks); `f`
    /// returns `false` to stop, and so does this. A run of blocks compressed with one
    /// dictionary is decompressed right after a copy of it at the start of `scratch`'s raw
    /// buffer, referenced as zstd's prefix by one context for the run: a match into the
    /// dictionary is then a copy within one buffer, zstd's fast path, rather than a `memmove`
    /// from a separate one, which took 14 % of a scan (`docs/PERFORMANCE.md`).
    pub(crate) fn scan_blocks(
        &self,
        idx: &[usize],
        scratch: &mut BlockScratch,
        f: &mut dyn FnMut(usize, Result<&Columns<'_>>) -> bool,
    ) -> Result<bool> {
        let mut k = 0;
        while k < idx.len() {
            let run_dict = self.entry(idx[k]).ok().map_or(0, |e| e.dict);
            let Some(dict) = self.dict(run_dict).filter(|_| run_dict != 0) else {
                // No dictionary (or a damaged entry or dictionary): one block as any reader.
                let more = match self.with_columns(idx[k], scratch, |c| f(k, Ok(c))) {
                    Ok(more) => more,
                    Err(err) => f(k, Err(err)),
                };
                if !more {
                    return Ok(false);
                }
                k += 1;
                continue;
            };
            let end = idx[k..]
                .iter()
                .position(|&i| self.entry(i).ok().is_none_or(|e| e.dict != run_dict))
                .map_or(idx.len(), |p| k + p);
            let biggest = idx[k..end]
                .iter()
                .filter_map(|&i| self.entry(i).ok())
                .map(|e| e.raw_len as usize)
                .max()
                .unwrap_or(0);
            let BlockScratch {
                compressed, raw, ..
            } = scratch;
            raw.clear();
            raw.extend_from_slice(dict);
            raw.resize(dict.len() + biggest, 0);
            let (prefix, out) = raw.split_at_mut(dict.len());
            let mut dctx = zstd::zstd_safe::DCtx::try_create().ok_or_else(|| {
                StoreError::io("create a zstd context for", &self.path)(std::io::Error::other(
                    "out of memory",
                ))
            })?;
            for (j, &i) in idx.iter().enumerate().take(end).skip(k) {
                let r = (|| {
                    let e = self.entry(i)?;
                    self.read_frame(&e, compressed)?;
                    self.check_crc(i, &e, compressed)?;
                    let zstd_err = |code| {
                        self.corrupt(
                            i,
                            &e,
                            &format!("zstd: {}", zstd::zstd_safe::get_error_name(code)),
                        )
                    };
                    // A prefix serves one frame. Referencing the same bytes again costs nothing
                    // (raw content), and zstd does not take them for new ones (which would
                    // make it pick its slower, prefetching decoder).
                    dctx.ref_prefix(prefix).map_err(zstd_err)?;
                    let dst = &mut out[..e.raw_len as usize];
                    let n = dctx.decompress(dst, compressed).map_err(zstd_err)?;
                    Ok((e, n))
                })();
                let more = match r {
                    Ok((e, n)) => match self.parse(i, &e, &out[..n]) {
                        Ok(c) => f(j, Ok(&c)),
                        Err(err) => f(j, Err(err)),
                    },
                    Err(err) => f(j, Err(err)),
                };
                if !more {
                    return Ok(false);
                }
            }
            k = end;
        }
        Ok(true)
    }

    /// Calls `f(i, result)` for each block `first..=last` in order, reading consecutive blocks
    /// in spans of up to 8 MiB. `f` returns `false` to stop.
    pub(crate) fn for_blocks(
        &self,
        first: u32,
        last: u32,
        f: &mut dyn FnMut(usize, Result<&Columns<'_>>) -> bool,
    ) -> Result<()> {
        let (first, last) = (
            first as usize,
            (last as usize).min(self.table.len().saturating_sub(1)),
        );
        let mut i = first;
        while i <= last && i < self.table.len() {
            // A span of consecutive intact blocks, or one damaged block.
            let Some(start) = self.table[i] else {
                if !f(
                    i,
                    Err(self.entry(i).err().unwrap_or_else(|| self.unknown(i))),
                ) {
                    return Ok(());
                }
                i += 1;
                continue;
            };
            let mut j = i;
            while j < last {
                match self.table[j + 1] {
                    Some(n)
                        if n.offset == self.table[j].map_or(0, |e| e.end())
                            && n.end() - start.offset <= READ_SPAN =>
                    {
                        j += 1
                    }
                    _ => break,
                }
            }
            let end = self.table[j].map_or(start.end(), |e| e.end());
            let mut span = vec![0u8; usize::try_from(end - start.offset).unwrap_or(0)];
            self.read_at(&mut span, start.offset)?;
            for k in i..=j {
                let Some(e) = self.table[k] else { continue };
                let at = usize::try_from(e.offset - start.offset).unwrap_or(0);
                let bytes = &span[at..at + e.len as usize];
                let mut more = true;
                let r = self.with_block_columns(k, Some(bytes), |columns| {
                    more = f(k, Ok(columns));
                });
                if let Err(err) = r {
                    more = f(k, Err(err));
                }
                if !more {
                    return Ok(());
                }
            }
            i = j + 1;
        }
        Ok(())
    }

    fn unknown(&self, i: usize) -> StoreError {
        StoreError::Corrupt {
            file: self.path.clone(),
            offset: 0,
            reason: format!("block {i} is unreadable"),
        }
    }

    /// Record number `i` of the execution table; `None` if it is damaged.
    pub(crate) fn record(&self, i: u32) -> Result<Option<ExecRecord>> {
        let mut b = [0u8; EXEC_RECORD_LEN];
        let at = self.trailer.exec_table + u64::from(i) * EXEC_RECORD_LEN as u64;
        self.read_at(&mut b, at)?;
        Ok(self.checked(&b))
    }

    fn checked(&self, b: &[u8]) -> Option<ExecRecord> {
        ExecRecord::from_bytes(b).filter(|r| {
            r.last_block < self.trailer.blocks
                && r.name_offset + u64::from(r.name_len) <= self.trailer.names_len
        })
    }

    /// Where the catalog section starts, if the file has one.
    fn catalog_at(&self) -> Option<u64> {
        let t = &self.trailer;
        t.catalog
            .then(|| t.exec_table + u64::from(t.execs) * EXEC_RECORD_LEN as u64)
    }

    /// Whether the file has a catalog (version 5): its executions can be taken newest first.
    pub(crate) fn has_catalog(&self) -> bool {
        self.trailer.catalog
    }

    /// Pages of the catalog's order by first entry (0 without a catalog).
    pub(crate) fn time_pages(&self) -> usize {
        if self.trailer.catalog {
            catalog::time_pages(self.trailer.execs)
        } else {
            0
        }
    }

    /// Page `p` of the catalog's order by first entry: record numbers, oldest first entry
    /// first; `None` if the page is damaged (or there is no catalog).
    pub(crate) fn time_page(&self, p: usize) -> Result<Option<Vec<u32>>> {
        let Some(at) = self.catalog_at() else {
            return Ok(None);
        };
        let execs = self.trailer.execs;
        let (rel, n) = catalog::time_page_at(execs, p);
        if n == 0 {
            return Ok(None);
        }
        let mut b = vec![0u8; n * 4 + 4];
        self.read_at(&mut b, at + rel)?;
        Ok(catalog::decode_time_page(&b, execs))
    }

    /// Checks the catalog against the execution table, for `verify`: every page's CRC, every
    /// record listed once in order of first entry, every fence hash that of its record.
    /// Returns the problems as (file offset, what).
    pub(crate) fn check_catalog(&self) -> Result<Vec<(u64, String)>> {
        let Some(at) = self.catalog_at() else {
            return Ok(Vec::new());
        };
        let execs = self.trailer.execs;
        let n = execs as usize;
        // (hash, min_ts) of every record by number; `None` where it is damaged.
        let mut recs: Vec<Option<(u64, i64)>> = Vec::with_capacity(n);
        self.for_each_slot(|_, r| recs.push(r.map(|r| (r.hash, r.min_ts))))?;
        let mut problems = Vec::new();
        let mut listed = vec![false; n];
        let mut whole = true;
        let mut prev: Option<(i64, u32)> = None;
        for p in 0..catalog::time_pages(execs) {
            let (rel, _) = catalog::time_page_at(execs, p);
            let Some(numbers) = self.time_page(p)? else {
                whole = false;
                problems.push((at + rel, format!("catalog page {p} fails its checksum (the newest-first listing reads the execution table instead)")));
                continue;
            };
            for i in numbers {
                if std::mem::replace(&mut listed[i as usize], true) {
                    problems.push((at + rel, format!("catalog page {p} lists record {i} twice")));
                }
                if let Some((_, ts)) = recs[i as usize] {
                    if prev.is_some_and(|q| q > (ts, i)) {
                        problems.push((
                            at + rel,
                            format!("catalog page {p} is out of order at record {i}"),
                        ));
                    }
                    prev = Some((ts, i));
                }
            }
        }
        if whole && listed.iter().any(|l| !l) {
            problems.push((
                at,
                "the catalog leaves out some execution records".to_owned(),
            ));
        }
        let fence_at = at + catalog::by_time_len(execs);
        match self.fence()? {
            None => problems.push((fence_at, "the catalog's fence of hashes fails its checks (executions are found by binary search instead)".to_owned())),
            Some(f) => {
                for (j, &h) in f.iter().enumerate() {
                    if recs
                        .get(j * catalog::STRIDE)
                        .copied()
                        .flatten()
                        .is_some_and(|(hash, _)| hash != h)
                    {
                        problems.push((fence_at, format!("fence entry {j} is not the hash of record {}", j * catalog::STRIDE)));
                    }
                }
            }
        }
        Ok(problems)
    }

    /// Where the dictionaries are (version 6), if the file has any.
    pub(crate) fn dict_layout(&self) -> Option<&dict::DictLayout> {
        self.dict_layout.as_ref()
    }

    /// The bytes of dictionary `i` (0-based), if they pass their CRC.
    pub(crate) fn dict_bytes(&self, i: usize) -> Result<Option<Vec<u8>>> {
        let Some(&(at, len, crc)) = self.dict_layout.as_ref().and_then(|l| l.dicts.get(i)) else {
            return Ok(None);
        };
        let mut b = vec![0u8; len as usize];
        self.read_at(&mut b, at)?;
        Ok((crc32fast::hash(&b) == crc).then_some(b))
    }

    /// The bytes of dictionary number `n` (1-based); read and checked once.
    fn dict(&self, n: u16) -> Option<&[u8]> {
        let all = self.dicts.get_or_init(|| {
            let count = self.dict_layout.as_ref().map_or(0, |l| l.dicts.len());
            (0..count)
                .map(|i| match self.dict_bytes(i) {
                    Ok(Some(b)) => Some(b),
                    _ => {
                        tracing::warn!(file = %self.path.display(), dictionary = i + 1, "damaged zstd dictionary; the blocks compressed with it are lost (run `logstore verify`)");
                        None
                    }
                })
                .collect()
        });
        all.get(usize::from(n).checked_sub(1)?)?.as_deref()
    }

    /// Decompresses a block's frame `data` (for the byte breakdown).
    pub(crate) fn decompress(&self, e: &BlockEntry, data: &[u8]) -> Result<Vec<u8>> {
        let mut raw = Vec::new();
        self.unpack_raw(e, data, None, &mut raw)
            .map_err(|reason| StoreError::Corrupt {
                file: self.path.clone(),
                offset: e.offset,
                reason,
            })?;
        Ok(raw)
    }

    /// Decompresses a block's frame into `raw` with `dctx` (or a new context), and its file's
    /// dictionary if it names one; the reason if it cannot.
    fn unpack_raw(
        &self,
        e: &BlockEntry,
        data: &[u8],
        dctx: Option<&mut Dctx>,
        raw: &mut Vec<u8>,
    ) -> std::result::Result<(), String> {
        raw.clear();
        raw.reserve(e.raw_len as usize);
        let mut own = None;
        let d = match dctx {
            Some(d) => d,
            None => ready(&mut own).ok_or("zstd: cannot create a decompression context")?,
        };
        let r = if e.dict != 0 {
            let dict = self.dict(e.dict).ok_or_else(|| {
                format!(
                    "its zstd dictionary {} is missing or damaged (run `logstore verify`)",
                    e.dict
                )
            })?;
            d.decompress_using_dict(raw, data, dict)
        } else {
            d.decompress(raw, data)
        };
        r.map(|_| ())
            .map_err(|code| format!("zstd: {}", zstd::zstd_safe::get_error_name(code)))
    }

    /// Checks every dictionary's CRC, for `verify`: the problems as (offset, what).
    pub(crate) fn check_dicts(&self) -> Result<Vec<(u64, String)>> {
        let mut out = Vec::new();
        if self.trailer.dicts && self.dict_layout.is_none() {
            out.push((
                self.trailer.block_table,
                "the dictionaries section does not fit before the block table; every block compressed with a dictionary is lost".to_owned(),
            ));
        }
        let count = self.dict_layout.as_ref().map_or(0, |l| l.dicts.len());
        for i in 0..count {
            if self.dict_bytes(i)?.is_none() {
                let at = self.dict_layout.as_ref().map_or(0, |l| l.dicts[i].0);
                out.push((at, format!("zstd dictionary {} fails its checksum; the blocks compressed with it are lost", i + 1)));
            }
        }
        Ok(out)
    }

    /// The catalog's fence of hashes, read once.
    fn fence(&self) -> Result<Option<&[u64]>> {
        if let Some(f) = self.fence.get() {
            return Ok(f.as_deref());
        }
        let fence = match self.catalog_at() {
            None => None,
            Some(at) => {
                let execs = self.trailer.execs;
                let from = at + catalog::by_time_len(execs);
                let len = at + catalog::catalog_len(execs) - from;
                let mut b = vec![0u8; usize::try_from(len).unwrap_or(0)];
                self.read_at(&mut b, from)?;
                let f = catalog::decode_fence(&b, execs);
                if f.is_none() {
                    tracing::warn!(file = %self.path.display(), "damaged catalog fence; finding executions by binary search (run `logstore verify`)");
                }
                f
            }
        };
        Ok(self.fence.get_or_init(|| fence).as_deref())
    }

    /// The execution id of a record; `None` if its bytes are damaged.
    pub(crate) fn name(&self, r: &ExecRecord) -> Result<Option<String>> {
        let mut b = vec![0u8; usize::from(r.name_len)];
        self.read_at(&mut b, self.trailer.names + r.name_offset)?;
        // The names carry no CRC of their own: the record's hash is their check.
        Ok(String::from_utf8(b).ok().filter(|s| {
            crate::entry::check_id("execution_id", s).is_ok() && exec_hash(s) == r.hash
        }))
    }

    /// The record of execution `id` (none if the day does not hold it; the writer writes one
    /// per id). A damaged record on the way of the binary search makes it a linear scan, so
    /// one bad record costs only its own execution.
    pub(crate) fn lookup(&self, id: &str) -> Result<Vec<ExecRecord>> {
        let hash = exec_hash(id);
        let candidates = match self.search(hash)? {
            Some(c) => c,
            None => {
                tracing::warn!(file = %self.path.display(), "damaged execution record; scanning the execution table (run `logstore verify`)");
                let mut c = Vec::new();
                self.for_each_record(|r| {
                    if r.hash == hash {
                        c.push(r);
                    }
                })?;
                c
            }
        };
        let mut out = Vec::new();
        for r in candidates {
            match self.name(&r)? {
                Some(name) if name == id => out.push(r),
                Some(_) => {} // another id with the same hash
                // A damaged name: the hash matched, and the blocks are filtered by id anyway.
                None => out.push(r),
            }
        }
        // A merged file holds one record per part the execution was in: block order is
        // append order.
        out.sort_by_key(|r| r.first_block);
        Ok(out)
    }

    /// Binary search; `None` if a damaged record was met.
    fn search(&self, hash: u64) -> Result<Option<Vec<ExecRecord>>> {
        if let Some(fence) = self.fence()? {
            // One read of the window the fence gives: every record of `hash` is in it.
            let (lo, hi) = catalog::window(fence, self.trailer.execs, hash);
            let n = hi.saturating_sub(lo) as usize;
            let mut b = vec![0u8; n * EXEC_RECORD_LEN];
            let at = self.trailer.exec_table + u64::from(lo) * EXEC_RECORD_LEN as u64;
            self.read_at(&mut b, at)?;
            let mut out = Vec::new();
            for chunk in b.chunks_exact(EXEC_RECORD_LEN) {
                let Some(r) = self.checked(chunk) else {
                    return Ok(None);
                };
                if r.hash == hash {
                    out.push(r);
                }
            }
            return Ok(Some(out));
        }
        let (mut lo, mut hi) = (0u32, self.trailer.execs);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let Some(r) = self.record(mid)? else {
                return Ok(None);
            };
            if r.hash < hash {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut out = Vec::new();
        while lo < self.trailer.execs {
            let Some(r) = self.record(lo)? else {
                return Ok(None);
            };
            if r.hash != hash {
                break;
            }
            out.push(r);
            lo += 1;
        }
        Ok(Some(out))
    }

    /// The records whose hash is `hash` (ids that share it included), by the fence, a binary
    /// search, or a scan of the table if a record on the way is damaged.
    pub(crate) fn records_of_hash(&self, hash: u64) -> Result<Vec<ExecRecord>> {
        if let Some(found) = self.search(hash)? {
            return Ok(found);
        }
        let mut c = Vec::new();
        self.for_each_record(|r| {
            if r.hash == hash {
                c.push(r);
            }
        })?;
        Ok(c)
    }

    /// Calls `f` for every intact execution record, in table order; returns the file offsets
    /// of the damaged ones.
    pub(crate) fn for_each_record(&self, mut f: impl FnMut(ExecRecord)) -> Result<Vec<u64>> {
        let mut bad = Vec::new();
        self.for_each_slot(|at, r| match r {
            Some(r) => f(r),
            None => bad.push(at),
        })?;
        Ok(bad)
    }

    /// Calls `f(offset, record)` for every slot of the execution table in order, `None` for a
    /// damaged one; reads the table in chunks.
    fn for_each_slot(&self, mut f: impl FnMut(u64, Option<ExecRecord>)) -> Result<()> {
        const CHUNK: u32 = 4096;
        let mut i = 0u32;
        while i < self.trailer.execs {
            let n = CHUNK.min(self.trailer.execs - i);
            let at = self.trailer.exec_table + u64::from(i) * EXEC_RECORD_LEN as u64;
            let mut b = vec![0u8; n as usize * EXEC_RECORD_LEN];
            self.read_at(&mut b, at)?;
            for (k, chunk) in b.chunks_exact(EXEC_RECORD_LEN).enumerate() {
                f(at + (k * EXEC_RECORD_LEN) as u64, self.checked(chunk));
            }
            i += n;
        }
        Ok(())
    }
}
