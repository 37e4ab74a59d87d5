//! Grouping a day's runs by execution in bounded memory: a spill partition sort.
//!
//! A live day lists its runs in append order, and an interleaved day has one entry per run,
//! so reading each execution's runs where they lie is millions of small reads. Instead:
//!
//! 1. **Spill.** One sequential pass over the live index and the segment together (read in
//!    [`WINDOW`]-sized chunks) copies each run, behind a 12-byte header (hash `u64` LE,
//!    length `u32` LE), into one of P partition files `YYYY-MM-DD.sealed.tmp-partK`. P is the
//!    segment's size over [`SealOptions::partition_bytes`](super::options::SealOptions::partition_bytes),
//!    and partition K holds one range of execution hashes (cut at the byte quantiles of a
//!    sample of the index, see [`hash_bounds`]), so the partitions in order are in hash order.
//! 2. **Sort.** Each partition is read whole, its runs sorted by (hash, position), which keeps
//!    append order inside an execution, and fed to the sealer; the partition file is then
//!    deleted. A partition over twice the budget (one huge execution) is not read whole: its
//!    runs are read one by one.
//!
//! A day of at most one partition skips the spill: its segment is read whole. Memory is the
//! window, the partition buffers, one partition and its run list, whatever the day's size;
//! the segment is read once and the index once.
//!
//! A day whose run list is a sorted index (sealed by a version-1 writer, see `seal.rs`'s
//! `RunSource`) is already in (hash, offset) order and is read run by run.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::seal_file::SealFile;
use super::writer::SealedWriter;
use crate::error::{Result, StoreError};

use crate::journal::index::{self, IndexEntry, SortedIndex};
use crate::journal::record;
use crate::view::{Access, FileView};

/// Most partitions of one seal (each has a [`SPILL_BUFFER`] and an open file).
const MAX_PARTITIONS: u64 = 256;
/// Write buffer of one partition file.
const SPILL_BUFFER: usize = 64 << 10;
/// Bytes of segment read at a time by the spill pass.
const WINDOW: usize = 8 << 20;
/// Bytes before each run in a partition file: hash (u64 LE), length (u32 LE).
const RUN_HEADER: usize = 12;
/// Runs between two looks at the stop flag.
const STOP_EVERY: u64 = 1 << 14;

/// A run: where its bytes are (in the segment or a partition file) and whose they are.
#[derive(Clone, Copy)]
pub(super) struct RunRef {
    pub(super) hash: u64,
    pub(super) offset: u64,
    pub(super) length: u32,
}

/// A file that does not change while sealed, read into the caller's buffer, clipped to its
/// length (the index may promise more than a damaged segment has).
pub(super) struct ReadFile {
    pub(super) view: FileView,
    len: u64,
}

impl ReadFile {
    pub(super) fn open(path: &Path) -> Result<ReadFile> {
        let view = FileView::open(path, Access::Map).map_err(StoreError::io("open", path))?;
        let len = view.len().map_err(StoreError::io("stat", path))?;
        Ok(ReadFile { view, len })
    }

    /// Reads `[offset, offset + len)` into `buf`, or what of it the file has (with a warning
    /// if that is less).
    fn read(&self, offset: u64, len: u64, buf: &mut Vec<u8>) -> Result<()> {
        self.read_clipped(offset, len, buf)?;
        if (buf.len() as u64) < len {
            tracing::warn!(file = %self.view.path().display(), offset, "index run reaches past the end of the file; sealing what exists");
        }
        Ok(())
    }

    /// Reads `[offset, offset + len)` into `buf`, or what of it the file has.
    fn read_clipped(&self, offset: u64, len: u64, buf: &mut Vec<u8>) -> Result<()> {
        let have = offset
            .saturating_add(len)
            .min(self.len)
            .saturating_sub(offset);
        buf.resize(usize::try_from(have).unwrap_or(0), 0);
        self.view
            .read_into(offset, buf)
            .map_err(StoreError::io("read", self.view.path()))
    }
}

/// Seals a day from its live index. Returns false if `stop` was raised (the caller removes
/// the temporary files).
pub(super) fn seal_partitioned(
    s: &mut SealedWriter,
    segment: &ReadFile,
    index: &FileView,
    tmp: &Path,
    stop: &AtomicBool,
) -> Result<bool> {
    let listed = index
        .len()
        .map_err(StoreError::io("read index", index.path()))?
        .saturating_sub(index::INDEX_HEADER_LEN)
        / index::ENTRY_LEN as u64;
    let budget = s.opts.partition_bytes.max(1);
    let parts = segment.len.div_ceil(budget).clamp(1, MAX_PARTITIONS);
    if parts == 1 {
        // Small day: the whole segment in memory, no spill.
        let mut runs = Vec::new();
        index::scan_live(index, 0, |_, e| {
            runs.push(RunRef {
                hash: e.hash,
                offset: e.offset,
                length: e.length,
            });
        })?;
        let mut bytes = Vec::new();
        segment.read(0, segment.len, &mut bytes)?;
        return seal_runs(s, &mut runs, &Bytes::Mem(&bytes), stop);
    }
    let paths: Vec<PathBuf> = (0..parts)
        .map(|k| spill_path(tmp, &format!("part{k}")))
        .collect();
    let mut outs = paths
        .iter()
        .map(|p| SealFile::create_with(p.clone(), SPILL_BUFFER))
        .collect::<Result<Vec<SealFile>>>()?;
    let bounds = hash_bounds(index, listed, parts)?;
    if !spill(segment, s.frame_kind, index, &bounds, &mut outs, stop)? {
        return Ok(false);
    }
    for out in outs {
        out.finish()?;
    }
    for path in &paths {
        if !seal_partition(s, path, budget, stop)? {
            return Ok(false);
        }
        std::fs::remove_file(path).map_err(StoreError::io("delete", path))?;
    }
    Ok(true)
}

/// A spill file beside the temporary file `tmp`: `tmp` + `-` + `what`.
pub(super) fn spill_path(tmp: &Path, what: &str) -> PathBuf {
    let mut name = tmp.as_os_str().to_owned();
    name.push(format!("-{what}"));
    PathBuf::from(name)
}

/// The first hash of each partition after the first (`parts - 1` bounds, ascending), so that
/// the partitions hold about equal bytes: cut at the byte quantiles of a sample of the index
/// (execution hashes are FNV-1a, whose high bits barely differ between similar ids, so equal
/// hash ranges would not do).
fn hash_bounds(index: &FileView, listed: u64, parts: u64) -> Result<Vec<u64>> {
    const SAMPLES: u64 = 64;
    const SAMPLE_ENTRIES: u64 = 1024;
    let mut sample: Vec<(u64, u64)> = Vec::new();
    let step = (listed / SAMPLES).max(SAMPLE_ENTRIES);
    let mut at = 0;
    while at < listed {
        let n = SAMPLE_ENTRIES.min(listed - at);
        let bytes = index
            .read(
                index::INDEX_HEADER_LEN + at * index::ENTRY_LEN as u64,
                usize::try_from(n).unwrap_or(0) * index::ENTRY_LEN,
            )
            .map_err(StoreError::io("read index", index.path()))?;
        sample.extend(
            bytes
                .chunks_exact(index::ENTRY_LEN)
                .filter_map(IndexEntry::from_bytes)
                .map(|e| (e.hash, u64::from(e.length) + RUN_HEADER as u64)),
        );
        at += step;
    }
    sample.sort_unstable();
    let total: u64 = sample.iter().map(|&(_, len)| len).sum();
    let mut bounds = Vec::new();
    let mut held = 0u64;
    for &(hash, len) in &sample {
        let next = u64::try_from(bounds.len() + 1).unwrap_or(u64::MAX);
        // Cut before this hash once the parts so far hold their share.
        if held >= total / parts * next
            && bounds.last() != Some(&hash)
            && (bounds.len() as u64) + 1 < parts
        {
            bounds.push(hash);
        }
        held += len;
    }
    Ok(bounds)
}

/// The spill pass: every run of the index, with its header, into its partition. False if
/// `stop` was raised.
fn spill(
    segment: &ReadFile,
    kind: record::FrameKind,
    index: &FileView,
    bounds: &[u64],
    outs: &mut [SealFile],
    stop: &AtomicBool,
) -> Result<bool> {
    let mut window = Vec::new();
    let mut window_at = 0u64;
    let mut moved = Vec::new();
    let mut result = Ok(true);
    let mut n = 0u64;
    index::scan_live_while(index, 0, |_, e| {
        n += 1;
        if n.is_multiple_of(STOP_EVERY) && stop.load(Ordering::Relaxed) {
            result = Ok(false);
            return false;
        }
        let end = e.offset + u64::from(e.length);
        let window_end = window_at + window.len() as u64;
        if e.offset < window_at || end > window_end {
            // Runs come in file order, so this reads the segment once, front to back.
            let want = u64::from(e.length).max(WINDOW as u64);
            if let Err(err) = segment.read_clipped(e.offset, want, &mut window) {
                result = Err(err);
                return false;
            }
            window_at = e.offset;
        }
        let from = usize::try_from(e.offset - window_at).unwrap_or(usize::MAX);
        let bytes = window
            .get(from..)
            .map_or(&[][..], |w| &w[..w.len().min(e.length as usize)]);
        if bytes.len() < e.length as usize {
            tracing::warn!(file = %segment.view.path().display(), offset = e.offset, "index run reaches past the end of the segment; sealing what exists");
        }
        let k = bounds.partition_point(|&b| b <= e.hash);
        let out = &mut outs[k.min(outs.len() - 1)];
        // Version-2 CRCs are keyed by the frame's offset: re-key the frames for their place in
        // the spill file, where the partition pass reads and checks them.
        let bytes = if kind == record::FrameKind::V1 {
            bytes
        } else {
            moved.clear();
            moved.extend_from_slice(bytes);
            record::rekey_frames(&mut moved, kind, e.offset, out.len + RUN_HEADER as u64);
            &moved[..]
        };
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        let mut header = [0u8; RUN_HEADER];
        header[..8].copy_from_slice(&e.hash.to_le_bytes());
        header[8..].copy_from_slice(&len.to_le_bytes());
        if let Err(err) = out.write(&header).and_then(|()| out.write(bytes)) {
            result = Err(err);
            return false;
        }
        true
    })?;
    result
}

/// Sorts one partition file's runs by execution and feeds them to the sealer.
fn seal_partition(
    s: &mut SealedWriter,
    path: &Path,
    budget: u64,
    stop: &AtomicBool,
) -> Result<bool> {
    let file = ReadFile::open(path)?;
    let corrupt = |offset: u64| StoreError::Corrupt {
        file: path.to_owned(),
        offset,
        reason: "partition file of a seal is cut short".to_owned(),
    };
    let mut runs = Vec::new();
    if file.len <= 2 * budget {
        let mut bytes = Vec::new();
        file.read(0, file.len, &mut bytes)?;
        let mut pos = 0usize;
        while pos < bytes.len() {
            let (hash, length) =
                run_header(bytes.get(pos..pos + RUN_HEADER)).ok_or_else(|| corrupt(pos as u64))?;
            let start = pos + RUN_HEADER;
            pos = start + length as usize;
            if pos > bytes.len() {
                return Err(corrupt(start as u64));
            }
            runs.push(RunRef {
                hash,
                offset: start as u64,
                length,
            });
        }
        seal_runs(s, &mut runs, &Bytes::Mem(&bytes), stop)
    } else {
        // Over twice the budget (a few huge executions): list the runs, read them one by one.
        let mut reader = std::io::BufReader::with_capacity(
            1 << 20,
            File::open(path).map_err(StoreError::io("open", path))?,
        );
        let mut pos = 0u64;
        while pos < file.len {
            let mut header = [0u8; RUN_HEADER];
            reader.read_exact(&mut header).map_err(|_| corrupt(pos))?;
            let (hash, length) = run_header(Some(&header)).ok_or_else(|| corrupt(pos))?;
            reader
                .seek_relative(i64::from(length))
                .map_err(StoreError::io("read", path))?;
            runs.push(RunRef {
                hash,
                offset: pos + RUN_HEADER as u64,
                length,
            });
            pos += RUN_HEADER as u64 + u64::from(length);
        }
        if pos != file.len {
            return Err(corrupt(pos));
        }
        seal_runs(s, &mut runs, &Bytes::File(&file), stop)
    }
}

fn run_header(b: Option<&[u8]>) -> Option<(u64, u32)> {
    let b = b.filter(|b| b.len() == RUN_HEADER)?;
    let hash = u64::from_le_bytes(b[..8].try_into().ok()?);
    let length = u32::from_le_bytes(b[8..].try_into().ok()?);
    Some((hash, length))
}

/// Seals a day from its sorted index (a version-1 seal without the live index): the runs are
/// in (hash, offset) order already.
pub(super) fn seal_sorted(
    s: &mut SealedWriter,
    segment: &ReadFile,
    sorted: &SortedIndex,
    stop: &AtomicBool,
) -> Result<bool> {
    let mut group: Vec<RunRef> = Vec::new();
    let mut buf = Vec::new();
    let mut result = Ok(true);
    let mut n = 0u64;
    let bytes = Bytes::File(segment);
    sorted.for_each(|e| {
        if !matches!(result, Ok(true)) {
            return;
        }
        if group.last().is_some_and(|g| g.hash != e.hash) {
            n += 1;
            if n.is_multiple_of(STOP_EVERY) && stop.load(Ordering::Relaxed) {
                result = Ok(false);
                return;
            }
            if let Err(err) = seal_group(s, &bytes, &group, &mut buf) {
                result = Err(err);
                return;
            }
            group.clear();
        }
        group.push(RunRef {
            hash: e.hash,
            offset: e.offset,
            length: e.length,
        });
    })?;
    if result? {
        seal_group(s, &bytes, &group, &mut buf)?;
        return Ok(true);
    }
    Ok(false)
}

/// Where the runs' bytes are.
enum Bytes<'a> {
    /// In memory: a run's offset is into this slice.
    Mem(&'a [u8]),
    /// In a file, read with `pread`.
    File(&'a ReadFile),
}

impl Bytes<'_> {
    /// Calls `f` with the bytes of `group`'s runs (in offset order), adjacent runs together.
    fn for_each_span(
        &self,
        group: &[RunRef],
        buf: &mut Vec<u8>,
        mut f: impl FnMut(&[u8], u64) -> Result<()>,
    ) -> Result<()> {
        match self {
            Bytes::Mem(mem) => {
                for r in group {
                    let start = usize::try_from(r.offset)
                        .unwrap_or(usize::MAX)
                        .min(mem.len());
                    let end = start.saturating_add(r.length as usize).min(mem.len());
                    if end - start < r.length as usize {
                        tracing::warn!(
                            offset = r.offset,
                            "index run reaches past the end of the segment; sealing what exists"
                        );
                    }
                    f(&mem[start..end], r.offset)?;
                }
            }
            Bytes::File(file) => {
                // One read for runs that are adjacent in the file (at most 8 MiB).
                for span in group.chunk_by(|a, b| {
                    a.offset + u64::from(a.length) == b.offset
                        && b.offset - group[0].offset < 8 << 20
                }) {
                    let (Some(first), Some(last)) = (span.first(), span.last()) else {
                        continue;
                    };
                    let end = last.offset + u64::from(last.length);
                    file.read(first.offset, end - first.offset, buf)?;
                    f(buf, first.offset)?;
                }
            }
        }
        Ok(())
    }
}

/// Sorts `runs` by (hash, offset) and seals them, one hash group at a time.
fn seal_runs(
    s: &mut SealedWriter,
    runs: &mut [RunRef],
    bytes: &Bytes,
    stop: &AtomicBool,
) -> Result<bool> {
    runs.sort_unstable_by_key(|r| (r.hash, r.offset));
    let mut buf = Vec::new();
    for (n, group) in runs.chunk_by(|a, b| a.hash == b.hash).enumerate() {
        if n % 1024 == 1023 && stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        seal_group(s, bytes, group, &mut buf)?;
    }
    Ok(true)
}

/// Seals the runs of one hash, in offset order. Almost always one execution; if two ids share
/// the hash, the first seen is written first, then each other one in a further read.
fn seal_group(
    s: &mut SealedWriter,
    bytes: &Bytes,
    group: &[RunRef],
    buf: &mut Vec<u8>,
) -> Result<()> {
    let mut others = BTreeSet::new();
    let first = for_each_entry(s, bytes, group, buf, None, &mut others)?;
    let Some(first) = first else { return Ok(()) };
    others.remove(&first);
    for id in others {
        for_each_entry(s, bytes, group, buf, Some(&id), &mut BTreeSet::new())?;
    }
    Ok(())
}

/// Feeds the entries of `want` (or of the first id met, if `None`) to the sealer, noting the
/// other ids met. Damaged frames are skipped (the segment reader skips them too).
fn for_each_entry(
    s: &mut SealedWriter,
    bytes: &Bytes,
    group: &[RunRef],
    buf: &mut Vec<u8>,
    want: Option<&str>,
    others: &mut BTreeSet<String>,
) -> Result<Option<String>> {
    let mut target = want.map(str::to_owned);
    let kind = s.frame_kind;
    bytes.for_each_span(group, buf, |span, base| {
        let mut result = Ok(());
        record::for_each_frame_as(span, kind, base, |_, p| {
            let id = target.get_or_insert_with(|| p.execution_id.to_owned());
            if p.execution_id == id.as_str() {
                if let Err(e) = s.push(&p) {
                    result = Err(e);
                    return false;
                }
            } else if want.is_none() && !others.contains(p.execution_id) {
                others.insert(p.execution_id.to_owned());
            }
            true
        });
        result
    })?;
    s.end_exec()?;
    Ok(target)
}
