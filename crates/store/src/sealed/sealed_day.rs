//! A day's sealed files read as one: [`SealedDay`].
//!
//! During the day, closed segments become parts (`YYYY-MM-DD.N-M.part`), parts are merged,
//! and once the day is over they become one `YYYY-MM-DD.sealed`. A merge copies blocks (their
//! raw bytes; the day-end merge compresses their frames again) and filters, in part order, so
//! the blocks of a day are the same blocks in the same
//! order whatever files hold them: readers number them across the files (block `i` of the day
//! is block `i - base` of the file whose range holds it), and an execution's records, one per
//! part it was in, come out in block order, which is append order. A follower or a cursor that
//! counts an execution's entries in the day resumes at the same entry after any merge.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use super::columns::Columns;
use super::layout::{BlockEntry, ExecRecord};
use super::reader::{BlockMeta, BlockScratch, SealedFile};
use crate::day::Day;
use crate::error::Result;
use crate::journal::record::PayloadRef;

/// One file of the day and the day-wide number of its first block.
struct Member {
    file: Arc<SealedFile>,
    base: usize,
}

/// The sealed files of one day, oldest first, read as one sequence of blocks.
pub struct SealedDay {
    day: Day,
    members: Vec<Member>,
    /// The block tables of the members, concatenated.
    table: Vec<Option<BlockEntry>>,
    metas: OnceLock<Vec<BlockMeta>>,
}

impl std::fmt::Debug for SealedDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedDay")
            .field("day", &self.day)
            .field("files", &self.members.len())
            .field("blocks", &self.table.len())
            .finish_non_exhaustive()
    }
}

impl SealedDay {
    /// Opens one sealed file as a day.
    pub(crate) fn open(path: &Path, day: Day) -> Result<SealedDay> {
        Ok(SealedDay::of(day, vec![Arc::new(SealedFile::open(path)?)]))
    }

    /// The day made of `files`, in append order.
    pub(crate) fn of(day: Day, files: Vec<Arc<SealedFile>>) -> SealedDay {
        let mut members = Vec::with_capacity(files.len());
        let mut table = Vec::new();
        for file in files {
            members.push(Member {
                base: table.len(),
                file: Arc::clone(&file),
            });
            table.extend_from_slice(file.block_table());
        }
        SealedDay {
            day,
            members,
            table,
            metas: OnceLock::new(),
        }
    }

    /// The files, oldest first.
    pub(crate) fn files(&self) -> impl Iterator<Item = &Arc<SealedFile>> {
        self.members.iter().map(|m| &m.file)
    }

    /// The member holding day-wide block `i` (the last one for a number past the end).
    fn member_of(&self, i: usize) -> &Member {
        let k = self.members.partition_point(|m| m.base <= i);
        &self.members[k.saturating_sub(1)]
    }

    /// The day.
    pub(crate) fn day(&self) -> Day {
        self.day
    }

    /// The newest file (what messages about the day name).
    pub fn path(&self) -> &Path {
        self.members.last().map_or(Path::new(""), |m| m.file.path())
    }

    /// Entries in all the files.
    pub(crate) fn entries(&self) -> u64 {
        self.members.iter().map(|m| m.file.entries()).sum()
    }

    /// Bytes of the live-layout files the day's files were sealed from.
    pub(crate) fn segment_bytes(&self) -> u64 {
        self.members.iter().map(|m| m.file.segment_bytes()).sum()
    }

    /// Metadata of every block, day-wide numbering. Filters are read on the first call.
    pub fn blocks(&self) -> &[BlockMeta] {
        self.metas.get_or_init(|| {
            if let [only] = self.members.as_slice() {
                return only.file.blocks().to_vec();
            }
            self.members
                .iter()
                .flat_map(|m| m.file.block_metas())
                .collect()
        })
    }

    /// The block table, day-wide numbering (`None`: a damaged entry). Offsets are within the
    /// file holding the block.
    pub(crate) fn block_table(&self) -> &[Option<BlockEntry>] {
        &self.table
    }

    /// Each block's time range `(min_ts, max_ts)` from the block table (no filter is read),
    /// day-wide numbering; `None` for a damaged table entry.
    pub fn block_times(&self) -> impl Iterator<Item = Option<(i64, i64)>> + '_ {
        self.table
            .iter()
            .map(|e| e.as_ref().map(|e| (e.min_ts, e.max_ts)))
    }

    /// The bytes of the blocks' token filters (what search spends to skip blocks).
    pub fn filter_bytes(&self) -> u64 {
        self.table
            .iter()
            .flatten()
            .map(|e| u64::from(e.filter_len))
            .sum()
    }

    /// The highest sequence number in the day's files (see [`SealedFile::max_seq`]).
    pub(crate) fn max_seq(&self) -> u64 {
        self.members
            .iter()
            .map(|m| m.file.max_seq())
            .max()
            .unwrap_or(0)
    }

    /// Number of blocks.
    pub fn block_count(&self) -> usize {
        self.table.len()
    }

    /// Calls `f` with the decoded entries of block `i`; see `SealedFile::with_block`.
    pub fn with_block<R>(
        &self,
        i: usize,
        bytes: Option<&[u8]>,
        f: impl FnOnce(&[PayloadRef<'_>]) -> R,
    ) -> Result<R> {
        let m = self.member_of(i);
        m.file.with_block(i - m.base, bytes, f)
    }

    /// Calls `f(b, result)` for each block `b` of `blocks` (day-wide numbers, ascending) in
    /// order; see `SealedFile::scan_blocks`. `f` returns `false` to stop, and so does this.
    pub fn scan_blocks(
        &self,
        blocks: &[u32],
        scratch: &mut BlockScratch,
        f: &mut dyn FnMut(u32, Result<&Columns<'_>>) -> bool,
    ) -> Result<bool> {
        let mut k = 0;
        while k < blocks.len() {
            let m = self.member_of(blocks[k] as usize);
            let end = self
                .members
                .iter()
                .find(|n| n.base > m.base)
                .map_or(usize::MAX, |n| n.base);
            let group: Vec<u32> = blocks[k..]
                .iter()
                .copied()
                .take_while(|&b| (b as usize) < end)
                .collect();
            let local: Vec<usize> = group.iter().map(|&b| b as usize - m.base).collect();
            if !m
                .file
                .scan_blocks(&local, scratch, &mut |j, r| f(group[j], r))?
            {
                return Ok(false);
            }
            k += group.len();
        }
        Ok(true)
    }

    /// Calls `f(i, result)` for each block `first..=last` (day-wide numbers) in order, reading
    /// consecutive blocks of one file in spans. `f` returns `false` to stop.
    pub(crate) fn for_blocks(
        &self,
        first: u32,
        last: u32,
        f: &mut dyn FnMut(usize, Result<&Columns<'_>>) -> bool,
    ) -> Result<()> {
        let (first, last) = (first as usize, last as usize);
        let mut stopped = false;
        for (k, m) in self.members.iter().enumerate() {
            let end = self.members.get(k + 1).map_or(self.table.len(), |n| n.base);
            if stopped || end <= first || m.base > last || end == m.base {
                continue;
            }
            let lo = first.max(m.base) - m.base;
            let hi = last.min(end - 1) - m.base;
            let (Ok(lo), Ok(hi)) = (u32::try_from(lo), u32::try_from(hi)) else {
                continue;
            };
            m.file.for_blocks(lo, hi, &mut |i, r| {
                let more = f(m.base + i, r);
                stopped |= !more;
                more
            })?;
        }
        Ok(())
    }

    /// Where the entries of execution `id` sit: one block range per part it was in, in block
    /// order.
    pub fn exec_ranges(&self, id: &str) -> Result<Vec<ExecRange>> {
        Ok(self
            .lookup(id)?
            .iter()
            .map(|r| ExecRange {
                first_block: r.first_block,
                last_block: r.last_block,
                entries: r.entries,
            })
            .collect())
    }

    /// The records of execution `id`, day-wide block numbers, in block (append) order: one
    /// per part the execution was in. See [`SealedFile::lookup`].
    pub(crate) fn lookup(&self, id: &str) -> Result<Vec<ExecRecord>> {
        let mut out = Vec::new();
        for m in &self.members {
            out.extend(m.file.lookup(id)?.into_iter().map(|r| rebase(r, m.base)));
        }
        Ok(out)
    }

    /// The execution id of a record (day-wide numbers); `None` if its bytes are damaged.
    #[cfg(test)] // the list oracle reads names by day; the lister reads them by file
    pub(crate) fn name(&self, r: &ExecRecord) -> Result<Option<String>> {
        let m = self.member_of(r.first_block as usize);
        m.file.name(r)
    }

    /// Calls `f` for every intact execution record (day-wide block numbers), file by file in
    /// table order; returns the offsets of damaged ones.
    pub(crate) fn for_each_record(&self, mut f: impl FnMut(ExecRecord)) -> Result<Vec<u64>> {
        let mut bad = Vec::new();
        for m in &self.members {
            bad.extend(m.file.for_each_record(|r| f(rebase(r, m.base)))?);
        }
        Ok(bad)
    }
}

fn rebase(r: ExecRecord, base: usize) -> ExecRecord {
    let base = u32::try_from(base).unwrap_or(u32::MAX);
    ExecRecord {
        first_block: r.first_block.saturating_add(base),
        last_block: r.last_block.saturating_add(base),
        ..r
    }
}

/// Where some of one execution's entries sit in a sealed day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecRange {
    /// The first block holding its entries.
    pub first_block: u32,
    /// The last block holding its entries (inclusive).
    pub last_block: u32,
    /// How many of its entries these blocks hold.
    pub entries: u32,
}
