//! The heads checkpoint of a live index (`YYYY-MM-DD.NNNNNN.heads`): where each execution's
//! chain of runs ends, as of some index entry, so that a reader in another process finds one
//! execution's runs without scanning the whole index.
//!
//! The writer keeps the head of every execution's chain in memory ([`crate::read::day_files::LiveHeads`]);
//! another process has only the files. Without this file it scans the whole live index (56
//! bytes per run: 17 MB for a full 64 MiB segment of round-robin executions) on every query.
//! With it, a query reads the checkpoint (12 bytes per execution), walks the execution's `prev`
//! chain back from its head (one read per run), and scans only the index entries written after
//! the checkpoint, which the writer keeps under [`every`] entries.
//!
//! ```text
//! offset 0   magic b"LOGSTHDS", version u32 LE (1), reserved u32    16 bytes
//! offset 16  covered: u32 LE   index entries 1..=covered are what the heads describe
//! offset 20  count: u32 LE     pairs that follow
//! offset 24  crc32: u32 LE     CRC-32 of bytes 16..24 and of every pair
//! offset 28  reserved: u32, zero
//! offset 32  count x (hash: u64 LE, head: u32 LE), hash strictly ascending; head in 1..=covered
//! ```
//!
//! It is a cache: written through a temporary file and a rename, never fsynced, deleted when the
//! writer reopens the segment (recovery may rewrite the index's tail). A reader trusts nothing in
//! it: a file that fails any check, or a chain that leads to an entry of another hash, a failed
//! CRC or a forward pointer, sends the reader back to the full scan. So a stale or damaged
//! checkpoint costs time, never an entry.

use std::path::Path;

use crate::error::{Result, StoreError};
use crate::journal::commit::ByExecHash;
use crate::journal::index::{self, IndexEntry};
use crate::journal::segment::file_header;
use crate::view::FileView;

/// First bytes of a heads checkpoint.
pub const HEADS_MAGIC: [u8; 8] = *b"LOGSTHDS";
/// Its format version.
pub const HEADS_VERSION: u32 = 1;
const HEAD_LEN: usize = 32;
const PAIR_LEN: usize = 12;

/// Index entries the writer lets pass between two checkpoints of an index whose heads number
/// `executions`: at least 4,096 (230 KB of index for a reader to scan after the checkpoint), and
/// twice the executions, so that rewriting the checkpoint costs at most ~11 % of the index bytes.
pub(crate) fn every(executions: usize) -> u32 {
    u32::try_from(executions.saturating_mul(2))
        .unwrap_or(u32::MAX)
        .max(4096)
}

/// Writes the checkpoint of `heads`, which describe index entries `1..=covered`, to `path`
/// (through `path.tmp` and a rename; no fsync: it is a cache).
pub(crate) fn write(path: &Path, covered: u32, heads: &ByExecHash<u32>) -> Result<()> {
    let mut pairs: Vec<(u64, u32)> = heads.iter().map(|(&h, &n)| (h, n)).collect();
    pairs.sort_unstable();
    let mut bytes = Vec::with_capacity(HEAD_LEN + pairs.len() * PAIR_LEN);
    bytes.extend_from_slice(&file_header(HEADS_MAGIC, HEADS_VERSION));
    bytes.extend_from_slice(&covered.to_le_bytes());
    bytes.extend_from_slice(&u32::try_from(pairs.len()).unwrap_or(u32::MAX).to_le_bytes());
    bytes.extend_from_slice(&[0u8; 8]);
    for (h, n) in &pairs {
        bytes.extend_from_slice(&h.to_le_bytes());
        bytes.extend_from_slice(&n.to_le_bytes());
    }
    let crc = crc_of(&bytes);
    bytes[24..28].copy_from_slice(&crc.to_le_bytes());
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, &bytes).map_err(StoreError::io("write heads checkpoint", &tmp))?;
    std::fs::rename(&tmp, path).map_err(StoreError::io("rename heads checkpoint", path))
}

fn crc_of(bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[16..24]);
    h.update(&bytes[HEAD_LEN..]);
    h.finalize()
}

/// A checkpoint that passed its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Index entries `1..=covered` are described.
    pub covered: u32,
    pairs: Vec<(u64, u32)>,
}

impl Checkpoint {
    /// Reads the checkpoint at `path`; `None` if it is missing or fails any check.
    pub(crate) fn read(path: &Path) -> Option<Checkpoint> {
        Checkpoint::parse(&std::fs::read(path).ok()?)
    }

    /// The (execution hash, head entry number) pairs, hash ascending.
    pub fn heads(&self) -> &[(u64, u32)] {
        &self.pairs
    }

    /// Parses and checks checkpoint bytes; `None` for anything that is not a whole, valid one.
    pub fn parse(bytes: &[u8]) -> Option<Checkpoint> {
        let head = bytes.get(..HEAD_LEN)?;
        let u32_at = |i: usize| -> Option<u32> {
            Some(u32::from_le_bytes(head.get(i..i + 4)?.try_into().ok()?))
        };
        if head[..8] != HEADS_MAGIC || u32_at(8)? != HEADS_VERSION {
            return None;
        }
        let (covered, count) = (u32_at(16)?, usize::try_from(u32_at(20)?).ok()?);
        if bytes.len() != HEAD_LEN.checked_add(count.checked_mul(PAIR_LEN)?)?
            || crc_of(bytes) != u32_at(24)?
        {
            return None;
        }
        let mut pairs = Vec::with_capacity(count);
        for c in bytes[HEAD_LEN..].chunks_exact(PAIR_LEN) {
            let h = u64::from_le_bytes(c[..8].try_into().ok()?);
            let n = u32::from_le_bytes(c[8..].try_into().ok()?);
            if n == 0 || n > covered || pairs.last().is_some_and(|&(p, _)| p >= h) {
                return None;
            }
            pairs.push((h, n));
        }
        Some(Checkpoint { covered, pairs })
    }

    /// The runs of `hash` among index entries `1..=covered`, oldest first, by walking its chain
    /// in `view`; `None` if the chain is not sound (then the caller scans).
    pub(crate) fn runs(&self, view: &FileView, hash: u64) -> Result<Option<Vec<IndexEntry>>> {
        let Ok(i) = self.pairs.binary_search_by_key(&hash, |&(h, _)| h) else {
            return Ok(Some(Vec::new()));
        };
        let mut runs = Vec::new();
        let mut n = self.pairs[i].1;
        while n != 0 {
            let Some(e) = index::read_live_entry(view, n)? else {
                return Ok(None);
            };
            let overlaps = runs.last().is_some_and(|l: &IndexEntry| e.end() > l.offset);
            if e.hash != hash || e.prev >= n || overlaps {
                return Ok(None);
            }
            runs.push(e);
            n = e.prev;
        }
        runs.reverse();
        Ok(Some(runs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heads(pairs: &[(u64, u32)]) -> ByExecHash<u32> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn a_checkpoint_round_trips_and_any_flipped_byte_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.heads");
        write(&path, 9, &heads(&[(7, 3), (1, 9), (u64::MAX, 1)])).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let cp = Checkpoint::parse(&bytes).unwrap();
        assert_eq!(cp.covered, 9);
        assert_eq!(cp.pairs, vec![(1, 9), (7, 3), (u64::MAX, 1)]);
        for i in 0..bytes.len() {
            if (12..16).contains(&i) || (28..32).contains(&i) {
                continue; // reserved bytes
            }
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert_eq!(Checkpoint::parse(&b), None, "flip at byte {i} accepted");
        }
        for cut in 0..bytes.len() {
            assert_eq!(
                Checkpoint::parse(&bytes[..cut]),
                None,
                "cut at {cut} accepted"
            );
        }
    }

    #[test]
    fn a_head_beyond_what_the_checkpoint_covers_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.heads");
        write(&path, 2, &heads(&[(1, 3)])).unwrap();
        assert_eq!(Checkpoint::read(&path), None);
    }
}
