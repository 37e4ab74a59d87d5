//! Sequence numbers: every entry the writer accepts gets the next one, store-wide, in append
//! order, and no number is ever given to two entries, even across power cuts.
//!
//! A number is handed out at `append` and reaches disk with its record at the next flush; a
//! power cut can take back records that a reader (or the shipper) already saw. So the writer
//! never hands out a number above the **reservation** that `DIR/seq` holds durably: when it
//! runs out, it writes a new reservation ([`RESERVE`] numbers ahead: a temporary file, fsync,
//! rename, directory fsync) before handing out the next number. A new writer starts at the old
//! reservation, skipping what the last one may have used. Numbers are therefore unique and
//! increasing, with gaps after each restart (at most [`RESERVE`]).
//!
//! ```text
//! DIR/seq: magic b"LOGSTSEQ", version u32 LE (1), reserved u32   16 bytes
//!          reservation: u64 LE    no number at or above it has been handed out
//!          crc32: u32 LE          of the reservation's 8 bytes
//! ```
//!
//! If the file is missing in a store that holds numbered entries, or damaged, the writer
//! starts [`LOST_GAP`] above the highest number on disk (with a warning): numbers that a lost
//! reservation covered were below that.

use std::path::{Path, PathBuf};

use crate::error::{Result, StoreError};
use crate::fs::sync_dir;
use crate::journal::segment::{check_header, file_header};

/// Numbers reserved at once: one fsync per this many entries.
pub const RESERVE: u64 = 1 << 20;
/// How far above the highest number on disk a writer starts when `DIR/seq` is lost.
pub const LOST_GAP: u64 = 1 << 32;

const MAGIC: [u8; 8] = *b"LOGSTSEQ";
const VERSION: u32 = 1;
const FILE_LEN: usize = 28;

/// The writer's numbering.
#[derive(Debug)]
pub(crate) struct Seqs {
    next: u64,
    reserved: u64,
    path: PathBuf,
}

/// What `DIR/seq` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqFile {
    /// No file.
    Missing,
    /// A file that fails its checks.
    Damaged,
    /// The reservation.
    Reserved(u64),
}

/// Parses `DIR/seq`'s bytes.
pub fn parse(bytes: &[u8]) -> SeqFile {
    if bytes.len() != FILE_LEN
        || check_header(Path::new("seq"), &bytes[..16], MAGIC, VERSION).is_err()
    {
        return SeqFile::Damaged;
    }
    let reserved = u64::from_le_bytes(bytes[16..24].try_into().unwrap_or_default());
    let crc = u32::from_le_bytes(bytes[24..28].try_into().unwrap_or_default());
    if crc32fast::hash(&bytes[16..24]) != crc {
        return SeqFile::Damaged;
    }
    SeqFile::Reserved(reserved)
}

/// Reads `DIR/seq`.
pub fn read(dir: &Path) -> Result<SeqFile> {
    let path = dir.join("seq");
    match std::fs::read(&path) {
        Ok(b) => Ok(parse(&b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SeqFile::Missing),
        Err(e) => Err(StoreError::io("read", &path)(e)),
    }
}

impl Seqs {
    /// The numbering of the store in `dir`. `highest` gives the highest number on disk (0 if
    /// none); it is asked only when `DIR/seq` cannot say.
    pub(crate) fn open(dir: &Path, highest: impl FnOnce() -> Result<u64>) -> Result<Seqs> {
        let path = dir.join("seq");
        let next = match read(dir)? {
            SeqFile::Reserved(r) => r.max(1),
            other => match highest()? {
                0 => 1,
                h => {
                    tracing::warn!(file = %path.display(), state = ?other, highest = h, "sequence reservation lost; numbering continues {LOST_GAP} above the highest number on disk");
                    h.saturating_add(LOST_GAP)
                }
            },
        };
        let mut s = Seqs {
            next,
            reserved: next,
            path,
        };
        s.reserve()?;
        Ok(s)
    }

    /// The next number. Reserves more first when the reservation is used up.
    pub(crate) fn take(&mut self) -> Result<u64> {
        if self.next >= self.reserved {
            self.reserve()?;
        }
        let n = self.next;
        self.next += 1;
        Ok(n)
    }

    /// Makes `next + RESERVE` the durable reservation.
    fn reserve(&mut self) -> Result<()> {
        let reserved = self.next.saturating_add(RESERVE);
        let mut b = file_header(MAGIC, VERSION).to_vec();
        b.extend_from_slice(&reserved.to_le_bytes());
        b.extend_from_slice(&crc32fast::hash(&reserved.to_le_bytes()).to_le_bytes());
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, &b)?;
            f.sync_all()
        };
        write().map_err(StoreError::io("write sequence reservation", &tmp))?;
        std::fs::rename(&tmp, &self.path)
            .map_err(StoreError::io("rename sequence reservation", &self.path))?;
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
        self.reserved = reserved;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_writer_starts_at_the_old_reservation_and_never_below() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Seqs::open(dir.path(), || Ok(0)).unwrap();
        assert_eq!(a.take().unwrap(), 1);
        assert_eq!(a.take().unwrap(), 2);
        assert_eq!(read(dir.path()).unwrap(), SeqFile::Reserved(1 + RESERVE));
        drop(a);
        let mut b = Seqs::open(dir.path(), || panic!("not asked")).unwrap();
        assert_eq!(b.take().unwrap(), 1 + RESERVE);
        // Running out reserves more before handing out the number.
        b.next = b.reserved;
        let n = b.take().unwrap();
        assert_eq!(read(dir.path()).unwrap(), SeqFile::Reserved(n + RESERVE));
    }

    #[test]
    fn a_lost_or_damaged_reservation_continues_far_above_what_is_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Seqs::open(dir.path(), || Ok(41)).unwrap();
        assert_eq!(a.take().unwrap(), 41 + LOST_GAP);
        let mut bytes = std::fs::read(dir.path().join("seq")).unwrap();
        bytes[20] ^= 1;
        std::fs::write(dir.path().join("seq"), &bytes).unwrap();
        assert_eq!(read(dir.path()).unwrap(), SeqFile::Damaged);
        let mut b = Seqs::open(dir.path(), || Ok(41 + LOST_GAP)).unwrap();
        assert_eq!(b.take().unwrap(), 41 + 2 * LOST_GAP);
    }
}
