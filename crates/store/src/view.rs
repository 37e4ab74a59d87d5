//! Random reads of a segment or index file, with `pread`.
//!
//! Files are never memory-mapped. A mapped page past the end of a file that shrank raises
//! SIGBUS, which kills the process instead of giving an error, and any file can shrink under
//! a reader: a writer recovering a crashed tail truncates a live segment, a clock that went
//! back makes the writer unseal a sealed day and recover it, and an operator can truncate
//! anything. With `pread` a file that shrank gives a short read, reported as an
//! [`UnexpectedEof`](io::ErrorKind::UnexpectedEof) error that names the file. (The cost, one
//! system call and one copy per read, is measured in `docs/PERFORMANCE.md`; it also keeps a
//! query's page cache out of the reader's resident set.)

use std::fs::File;
use std::io;
use std::ops::Deref;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How the file behind a [`FileView`] may change while it is read. Both kinds are read with
/// `pread`; the names come from when sealed and own files were mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A file that does not grow while read (sealed, or the writer's own).
    Map,
    /// Another process's live file, which grows (and may be cut back by recovery).
    Pread,
}

/// Bytes read from a view.
pub struct ViewBytes(Vec<u8>);

impl From<Vec<u8>> for ViewBytes {
    fn from(bytes: Vec<u8>) -> ViewBytes {
        ViewBytes(bytes)
    }
}

impl Deref for ViewBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// A read-only view of one file.
pub struct FileView {
    file: File,
    path: PathBuf,
    /// The length the file had when last looked at. Reads below it go straight to `pread`
    /// (one system call); a read past it looks again first, so a length taken from an index is
    /// checked against the file before anything is allocated for it.
    known_len: AtomicU64,
}

impl FileView {
    /// Opens `path` for reading.
    pub fn open(path: &Path, access: Access) -> io::Result<FileView> {
        // Both kinds read the same way (see `Access`).
        let _ = access;
        Ok(FileView {
            file: File::open(path)?,
            path: path.to_owned(),
            known_len: AtomicU64::new(0),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's current length.
    #[allow(clippy::len_without_is_empty)] // a length read from the file system, not a container's
    pub fn len(&self) -> io::Result<u64> {
        let len = self.file.metadata()?.len();
        self.known_len.store(len, Ordering::Relaxed);
        Ok(len)
    }

    /// Reads `len` bytes at `offset`; an [`UnexpectedEof`](io::ErrorKind::UnexpectedEof) error
    /// if the file is shorter, including when it shrank since it was last looked at.
    pub fn read(&self, offset: u64, len: usize) -> io::Result<ViewBytes> {
        let end = offset
            .checked_add(len as u64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "range overflows"))?;
        if end > self.known_len.load(Ordering::Relaxed) {
            let file_len = self.len()?;
            if end > file_len {
                return Err(self.short(file_len, end));
            }
        }
        let mut buf = vec![0; len];
        self.read_into(offset, &mut buf)?;
        Ok(ViewBytes(buf))
    }

    /// Fills `buf` from `offset`, into the caller's buffer (for readers that reuse one); the
    /// same error as [`read`](Self::read) if the file is shorter.
    pub fn read_into(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        match self.file.read_exact_at(buf, offset) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                // It shrank since we last looked: say by how much.
                let end = offset.saturating_add(buf.len() as u64);
                Err(self.short(self.len()?, end))
            }
            Err(e) => Err(e),
        }
    }

    fn short(&self, file_len: u64, end: u64) -> io::Error {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "{} is {file_len} bytes, read up to {end} asked",
                self.path.display()
            ),
        )
    }
}
