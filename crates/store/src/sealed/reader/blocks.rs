//! Reading a sealed file's blocks: one block, a run of blocks with their filters checked first,
//! and the zstd dictionaries they are compressed with.

use std::sync::Arc;

use crate::error::{Result, StoreError};
use crate::journal::record::PayloadRef;
use crate::sealed::columns::Columns;
use crate::sealed::common::CommonWords;
use crate::sealed::dict;
use crate::sealed::filter::{word_hash, TokenFilter};
use crate::sealed::layout::BlockEntry;

use super::SealedFile;

/// What reading many blocks reuses from one block to the next (see
/// [`SealedDay::scan_blocks`](crate::sealed::SealedDay::scan_blocks)): the zstd context, the compressed and the raw bytes.
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
    pub(super) fn take() -> BlockScratch {
        SCRATCH_POOL.lock().pop().unwrap_or_default()
    }

    /// Returns a scratch to the pool, dropping buffers that grew past [`KEEP_SCRATCH`] so that an
    /// occasional huge block does not stay resident.
    pub(super) fn give_back(mut self) {
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
    pub(super) filter: Option<TokenFilter>,
    /// The words its file lists once instead of in the filter (version 7).
    pub(super) common: Option<Arc<CommonWords>>,
}

impl BlockMeta {
    /// False only when no message of the block contains `token` as a word (`token` lowercased,
    /// one word as [`words`](crate::sealed::filter::words) splits them).
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

impl SealedFile {
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
}
