//! The per-execution offset index of a segment.
//!
//! When a batch is flushed, each execution's entries in it are written contiguously (a *run*),
//! and the run gets one 56-byte [`IndexEntry`]: execution hash, offset, length, count, time
//! range, error count, a terminal flag, and a back pointer to the same execution's previous run.
//! So an execution writing ten entries per batch costs one index entry, not ten.
//!
//! Two forms exist:
//! - `YYYY-MM-DD.idx`, the live index: entries in flush order. The writer keeps only the newest
//!   run number per execution hash in memory and walks the `prev` chain on disk to answer a
//!   query, so memory is per execution, not per run. A reader in another process scans it.
//! - `YYYY-MM-DD.sidx`, the sorted index of a sealed day: the same entries sorted by
//!   (hash, offset), written once through a temporary file and a rename; a lookup is a binary
//!   search over a memory map, without loading the file.
//!
//! The index is derived data: recovery rebuilds the live index from the segment, so it is never
//! fsynced on the commit path (the segment is).

use std::cmp::Ordering;
use std::path::Path;

use crate::error::{Result, StoreError};
use crate::fs::sync_dir;
use crate::journal::segment::{check_header, file_header};
use crate::view::{Access, FileView};

/// First bytes of a live index.
pub const LIVE_INDEX_MAGIC: [u8; 8] = *b"LOGSTIDX";
/// First bytes of a sorted index.
pub const SORTED_INDEX_MAGIC: [u8; 8] = *b"LOGSTSIX";
/// Index format version (both forms).
pub const INDEX_VERSION: u32 = 1;
/// Bytes before the first index entry.
pub const INDEX_HEADER_LEN: u64 = 16;
/// Bytes per index entry.
pub const ENTRY_LEN: usize = 56;

/// Run flag: the run holds the execution's terminal entry.
pub const FLAG_TERMINAL: u8 = 1;

/// 64-bit FNV-1a of the execution id's bytes: the index key. Collisions are harmless (every
/// record carries its full id and readers compare it), only slower.
pub fn exec_hash(execution_id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in execution_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// One run of one execution's records in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndexEntry {
    /// [`exec_hash`] of the execution id.
    pub hash: u64,
    /// Segment offset of the run's first record.
    pub offset: u64,
    /// Bytes of the run (whole frames).
    pub length: u32,
    /// Records in the run.
    pub count: u32,
    /// Smallest entry timestamp in the run.
    pub min_ts: i64,
    /// Largest entry timestamp in the run.
    pub max_ts: i64,
    /// Live index: 1-based number of the same execution's previous run, 0 for none.
    /// Sorted index: 0.
    pub prev: u32,
    /// ERROR entries in the run.
    pub errors: u32,
    /// Bit 0: the run holds a terminal entry; other bits zero.
    pub flags: u8,
}

impl IndexEntry {
    /// The 56-byte encoding (see `docs/FORMAT.md`).
    pub fn to_bytes(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[0..8].copy_from_slice(&self.hash.to_le_bytes());
        b[8..16].copy_from_slice(&self.offset.to_le_bytes());
        b[16..20].copy_from_slice(&self.length.to_le_bytes());
        b[20..24].copy_from_slice(&self.count.to_le_bytes());
        b[24..32].copy_from_slice(&self.min_ts.to_le_bytes());
        b[32..40].copy_from_slice(&self.max_ts.to_le_bytes());
        b[40..44].copy_from_slice(&self.prev.to_le_bytes());
        b[44..48].copy_from_slice(&self.errors.to_le_bytes());
        b[48] = self.flags;
        let crc = crc32fast::hash(&b[..52]);
        b[52..56].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks one entry; `None` if the CRC or a field is wrong.
    pub fn from_bytes(b: &[u8]) -> Option<IndexEntry> {
        let b: &[u8; ENTRY_LEN] = b.get(..ENTRY_LEN)?.try_into().ok()?;
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or_default());
        if crc32fast::hash(&b[..52]) != u32_at(52) || b[49..52] != [0, 0, 0] {
            return None;
        }
        let e = IndexEntry {
            hash: u64_at(0),
            offset: u64_at(8),
            length: u32_at(16),
            count: u32_at(20),
            min_ts: u64_at(24).cast_signed(),
            max_ts: u64_at(32).cast_signed(),
            prev: u32_at(40),
            errors: u32_at(44),
            flags: b[48],
        };
        // A run whose end does not fit in a u64 describes no file: damage, even with a good
        // CRC (a crafted or foreign entry), so `end` never overflows on a decoded entry.
        let whole = e.offset.checked_add(u64::from(e.length)).is_some();
        (whole && e.count > 0 && e.length > 0 && e.min_ts <= e.max_ts && e.errors <= e.count)
            .then_some(e)
    }

    /// One past the run's last byte. Saturates for an entry built by hand whose end would
    /// overflow (a decoded entry never does, see [`from_bytes`](Self::from_bytes)): `u64::MAX`
    /// is past the end of any file, so callers treat the run as reaching past the segment.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(u64::from(self.length))
    }

    /// Whether the run holds a terminal entry.
    pub fn is_terminal(&self) -> bool {
        self.flags & FLAG_TERMINAL != 0
    }
}

/// The 16-byte header of a live index file.
pub fn live_index_header() -> [u8; 16] {
    file_header(LIVE_INDEX_MAGIC, INDEX_VERSION)
}

/// Reads a live index: the entries of its valid prefix (stopping at the first entry that is
/// torn, fails its CRC, goes back in the segment, or chains forward), and the byte length of
/// that prefix.
pub fn read_live(view: &FileView) -> Result<(Vec<IndexEntry>, u64)> {
    let mut entries = Vec::new();
    let valid = scan_live(view, 0, |_, e| entries.push(e))?;
    Ok((entries, INDEX_HEADER_LEN + valid * ENTRY_LEN as u64))
}

/// Calls `f(number, entry)` for each entry of a live index's valid prefix after the first
/// `skip` entries, reading the file in chunks (memory stays flat for any size). Returns the
/// number of valid entries in the file. Entries up to `skip` are trusted as a caller saw them.
pub fn scan_live(view: &FileView, skip: u64, mut f: impl FnMut(u32, IndexEntry)) -> Result<u64> {
    scan_live_while(view, skip, |n, e| {
        f(n, e);
        true
    })
}

/// `scan_live` that stops early when `f` returns false. Returns the number of entries
/// scanned (valid and accepted by `f`).
pub fn scan_live_while(
    view: &FileView,
    skip: u64,
    mut f: impl FnMut(u32, IndexEntry) -> bool,
) -> Result<u64> {
    const CHUNK_ENTRIES: u64 = 16 * 1024;
    let len = view
        .len()
        .map_err(StoreError::io("read index", view.path()))?;
    if len < INDEX_HEADER_LEN {
        return Ok(0);
    }
    let header = view
        .read(0, 16)
        .map_err(StoreError::io("read index", view.path()))?;
    check_header(view.path(), &header, LIVE_INDEX_MAGIC, INDEX_VERSION)?;
    let total = (len - INDEX_HEADER_LEN) / ENTRY_LEN as u64;
    let mut n = skip;
    let mut end = 0u64;
    while n < total {
        let count = CHUNK_ENTRIES.min(total - n);
        let at = INDEX_HEADER_LEN + n * ENTRY_LEN as u64;
        let bytes = view
            .read(at, usize::try_from(count).unwrap_or(0) * ENTRY_LEN)
            .map_err(StoreError::io("read index", view.path()))?;
        for chunk in bytes.chunks_exact(ENTRY_LEN) {
            let number = u32::try_from(n + 1).unwrap_or(u32::MAX);
            let Some(e) = IndexEntry::from_bytes(chunk) else {
                return Ok(n);
            };
            if e.offset < end || e.prev >= number {
                return Ok(n);
            }
            end = e.end();
            if !f(number, e) {
                return Ok(n);
            }
            n += 1;
        }
    }
    Ok(n)
}

/// Where live index entry number `n` (1-based) is in its file.
pub fn live_entry_at(n: u32) -> u64 {
    INDEX_HEADER_LEN + u64::from(n).saturating_sub(1) * ENTRY_LEN as u64
}

/// Reads live index entry number `n` (1-based) at random.
pub fn read_live_entry(view: &FileView, n: u32) -> Result<Option<IndexEntry>> {
    let at = live_entry_at(n);
    let chunk = view
        .read(at, ENTRY_LEN)
        .map_err(StoreError::io("read index", view.path()))?;
    Ok(IndexEntry::from_bytes(&chunk))
}

/// The sorted index of a sealed day.
pub struct SortedIndex {
    view: FileView,
    count: usize,
}

impl SortedIndex {
    /// Writes the sorted index for `entries` at `path`, atomically (temporary file, fsync,
    /// rename, directory fsync), so a reader sees either no sorted index or a whole one.
    pub fn write(path: &Path, entries: &[IndexEntry]) -> Result<()> {
        let mut sorted: Vec<IndexEntry> = entries
            .iter()
            .map(|e| IndexEntry { prev: 0, ..*e })
            .collect();
        sorted.sort_by(cmp_key);
        let mut bytes = Vec::with_capacity(16 + sorted.len() * ENTRY_LEN);
        bytes.extend_from_slice(&file_header(SORTED_INDEX_MAGIC, INDEX_VERSION));
        for e in &sorted {
            bytes.extend_from_slice(&e.to_bytes());
        }
        let tmp = path.with_extension("sidx.tmp");
        std::fs::write(&tmp, &bytes).map_err(StoreError::io("write sorted index", &tmp))?;
        let f = std::fs::File::open(&tmp).map_err(StoreError::io("open sorted index", &tmp))?;
        // The rename must not become visible before the contents are durable.
        f.sync_all()
            .map_err(StoreError::io("fsync sorted index", &tmp))?;
        std::fs::rename(&tmp, path).map_err(StoreError::io("rename sorted index", path))?;
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    }

    /// Opens a sorted index (immutable once renamed into place).
    pub fn open(path: &Path) -> Result<SortedIndex> {
        SortedIndex::open_with(path, Access::Map)
    }

    /// Opens a sorted index read with `access` (sealing reads it once with `pread`, so that its
    /// pages are not charged to the process).
    pub fn open_with(path: &Path, access: Access) -> Result<SortedIndex> {
        let view =
            FileView::open(path, access).map_err(StoreError::io("open sorted index", path))?;
        let len = view
            .len()
            .map_err(StoreError::io("open sorted index", path))?;
        let header = view
            .read(0, 16.min(usize::try_from(len).unwrap_or(0)))
            .map_err(StoreError::io("read sorted index", path))?;
        check_header(path, &header, SORTED_INDEX_MAGIC, INDEX_VERSION)?;
        if !(len - INDEX_HEADER_LEN).is_multiple_of(ENTRY_LEN as u64) {
            return Err(StoreError::Corrupt {
                file: path.to_owned(),
                offset: len,
                reason: format!("length {len} is not 16 + a multiple of {ENTRY_LEN}"),
            });
        }
        let count = usize::try_from((len - INDEX_HEADER_LEN) / ENTRY_LEN as u64).unwrap_or(0);
        Ok(SortedIndex { view, count })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        self.view.path()
    }

    /// Entries in the index.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the index has no entry.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Entry `i` (0-based); an error names the place if it fails its CRC.
    pub fn get(&self, i: usize) -> Result<IndexEntry> {
        let at = INDEX_HEADER_LEN + (i * ENTRY_LEN) as u64;
        let chunk = self
            .view
            .read(at, ENTRY_LEN)
            .map_err(StoreError::io("read sorted index", self.view.path()))?;
        IndexEntry::from_bytes(&chunk).ok_or_else(|| StoreError::Corrupt {
            file: self.view.path().to_owned(),
            offset: at,
            reason: "index entry fails its checksum".to_owned(),
        })
    }

    /// The runs of `hash`, in segment order: a binary search, then a forward walk. If an
    /// entry on the way fails its checksum, a linear scan that skips damaged entries answers
    /// instead: one bad entry costs its own run, never other executions' queries. (`verify`
    /// reports it; deleting the `.sidx` makes the next writer open rebuild it from the segment.)
    pub fn lookup(&self, hash: u64) -> Result<Vec<IndexEntry>> {
        match self.search(hash) {
            Err(StoreError::Corrupt { offset, .. }) => {
                tracing::warn!(file = %self.view.path().display(), offset, "damaged sorted index entry; scanning the index linearly (run `logstore verify`)");
                self.scan(hash)
            }
            other => other,
        }
    }

    /// Every intact entry, in file order, and the file offsets of the damaged ones.
    pub fn entries(&self) -> Result<(Vec<IndexEntry>, Vec<u64>)> {
        let (mut good, mut bad) = (Vec::with_capacity(self.count), Vec::new());
        self.walk(0, |at, e| {
            match e {
                Some(e) => good.push(e),
                None => bad.push(at),
            }
            Ok(true)
        })?;
        Ok((good, bad))
    }

    /// Calls `f` for every intact entry in file order, reading the file in chunks (memory
    /// stays flat for any size). Returns how many entries were damaged (and skipped).
    pub fn for_each(&self, mut f: impl FnMut(IndexEntry)) -> Result<u64> {
        const CHUNK_ENTRIES: usize = 16 * 1024;
        let (mut i, mut damaged) = (0, 0u64);
        while i < self.count {
            let n = CHUNK_ENTRIES.min(self.count - i);
            let at = INDEX_HEADER_LEN + (i * ENTRY_LEN) as u64;
            let bytes = self
                .view
                .read(at, n * ENTRY_LEN)
                .map_err(StoreError::io("read sorted index", self.view.path()))?;
            for chunk in bytes.chunks_exact(ENTRY_LEN) {
                match IndexEntry::from_bytes(chunk) {
                    Some(e) => f(e),
                    None => damaged += 1,
                }
            }
            i += n;
        }
        Ok(damaged)
    }

    fn scan(&self, hash: u64) -> Result<Vec<IndexEntry>> {
        let mut out = Vec::new();
        self.walk(0, |_, e| {
            out.extend(e.filter(|e| e.hash == hash));
            Ok(true)
        })?;
        out.sort_by_key(|e| e.offset);
        Ok(out)
    }

    /// Calls `f(file offset, entry or None if damaged)` for the entries from `from` on, until
    /// it returns false. Entries are read in spans (16, doubling up to 1024 per read): the file
    /// is read with `pread`, and one system call per entry made `list`, `stats` and the
    /// forward walk of a lookup slow.
    fn walk(
        &self,
        from: usize,
        mut f: impl FnMut(u64, Option<IndexEntry>) -> Result<bool>,
    ) -> Result<()> {
        let (mut i, mut span) = (from, 16usize);
        while i < self.count {
            let n = span.min(self.count - i);
            let at = INDEX_HEADER_LEN + (i * ENTRY_LEN) as u64;
            let bytes = self
                .view
                .read(at, n * ENTRY_LEN)
                .map_err(StoreError::io("read sorted index", self.view.path()))?;
            for (k, raw) in bytes.chunks_exact(ENTRY_LEN).enumerate() {
                if !f(at + (k * ENTRY_LEN) as u64, IndexEntry::from_bytes(raw))? {
                    return Ok(());
                }
            }
            i += n;
            span = (span * 2).min(1024);
        }
        Ok(())
    }

    fn search(&self, hash: u64) -> Result<Vec<IndexEntry>> {
        let (mut lo, mut hi) = (0usize, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.get(mid)?.hash < hash {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut out = Vec::new();
        self.walk(lo, |offset, e| match e {
            Some(e) if e.hash == hash => {
                out.push(e);
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Err(StoreError::Corrupt {
                file: self.view.path().to_owned(),
                offset,
                reason: "index entry fails its checksum".to_owned(),
            }),
        })?;
        Ok(out)
    }
}

fn cmp_key(a: &IndexEntry, b: &IndexEntry) -> Ordering {
    (a.hash, a.offset).cmp(&(b.hash, b.offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(hash: u64, offset: u64) -> IndexEntry {
        IndexEntry {
            hash,
            offset,
            length: 10,
            count: 2,
            min_ts: -3,
            max_ts: 9,
            prev: 0,
            errors: 1,
            flags: FLAG_TERMINAL,
        }
    }

    #[test]
    fn entry_round_trips_and_detects_flips() {
        let e = entry(u64::MAX - 3, 1 << 40);
        let b = e.to_bytes();
        assert_eq!(IndexEntry::from_bytes(&b), Some(e));
        for bit in 0..ENTRY_LEN * 8 {
            let mut c = b;
            c[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(IndexEntry::from_bytes(&c), Some(e), "bit {bit}");
        }
    }

    #[test]
    fn fnv1a_matches_reference_vectors() {
        assert_eq!(exec_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(exec_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(exec_hash("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn sorted_index_finds_every_run_of_a_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sidx");
        let mut entries = Vec::new();
        for i in 0..1000u64 {
            entries.push(entry(i % 37, i * 10));
        }
        SortedIndex::write(&path, &entries).unwrap();
        let idx = SortedIndex::open(&path).unwrap();
        assert_eq!(idx.entries().unwrap().0.len(), 1000);
        for h in 0..37 {
            let runs = idx.lookup(h).unwrap();
            let want: Vec<u64> = (0..1000).filter(|i| i % 37 == h).map(|i| i * 10).collect();
            assert_eq!(runs.iter().map(|e| e.offset).collect::<Vec<_>>(), want);
        }
        assert!(idx.lookup(999).unwrap().is_empty());
    }
}
