//! Random reads of a segment or index file: a memory map where that is safe, `pread` elsewhere.
//!
//! A map is used only for files that cannot shrink under us: every file in the writer's own
//! process (it truncates only during recovery, before any view exists, and never below what
//! readers were shown), and sealed files everywhere. A reader in another process reads a live
//! file with `pread`, because a new writer recovering a crashed tail may truncate it, and a
//! mapped page past the new end would raise SIGBUS instead of an error.

#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::ops::{Deref, Range};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::{Mmap, MmapOptions};
use parking_lot::RwLock;

/// How a [`FileView`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Memory-map (the file never shrinks while mapped).
    Map,
    /// `pread` (the file may be truncated by another process).
    Pread,
}

/// Bytes read from a view.
pub enum Chunk {
    /// A range of a shared map.
    Mapped(Arc<Mmap>, Range<usize>),
    /// Bytes copied out by `pread`.
    Owned(Vec<u8>),
}

impl Deref for Chunk {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Chunk::Mapped(map, r) => &map[r.clone()],
            Chunk::Owned(v) => v,
        }
    }
}

/// A read-only view of one file.
pub struct FileView {
    file: File,
    path: PathBuf,
    access: Access,
    map: RwLock<Option<Arc<Mmap>>>,
}

impl FileView {
    /// Opens `path` for reading.
    pub fn open(path: &Path, access: Access) -> io::Result<FileView> {
        Ok(FileView {
            file: File::open(path)?,
            path: path.to_owned(),
            access,
            map: RwLock::new(None),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's current length.
    pub fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Reads `len` bytes at `offset`; an error if the file is shorter.
    pub fn read(&self, offset: u64, len: usize) -> io::Result<Chunk> {
        let end = offset
            .checked_add(len as u64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "range overflows"))?;
        match self.access {
            Access::Pread => {
                // A length from an index is bounded by the file before anything is allocated.
                let file_len = self.len()?;
                if end > file_len {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "{} is {file_len} bytes, read up to {end} asked",
                            self.path.display()
                        ),
                    ));
                }
                let mut buf = vec![0; len];
                self.file.read_exact_at(&mut buf, offset)?;
                Ok(Chunk::Owned(buf))
            }
            Access::Map => {
                let map = self.map_covering(end)?;
                let range = usize::try_from(offset)
                    .ok()
                    .zip(usize::try_from(end).ok())
                    .map(|(s, e)| s..e)
                    .ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidInput, "range too large")
                    })?;
                Ok(Chunk::Mapped(map, range))
            }
        }
    }

    fn map_covering(&self, end: u64) -> io::Result<Arc<Mmap>> {
        if let Some(map) = self.map.read().as_ref() {
            if map.len() as u64 >= end {
                return Ok(Arc::clone(map));
            }
        }
        let mut slot = self.map.write();
        if let Some(map) = slot.as_ref() {
            if map.len() as u64 >= end {
                return Ok(Arc::clone(map));
            }
        }
        let file_len = self.len()?;
        if file_len < end {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} is {file_len} bytes, read up to {end} asked",
                    self.path.display()
                ),
            ));
        }
        let len = usize::try_from(file_len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large to map"))?;
        // SAFETY: see the module doc: a mapped file is never truncated while this process
        // maps it, and bytes below the length we map are never rewritten (append-only).
        let map = unsafe { MmapOptions::new().len(len).map(&self.file)? };
        // Readers touch scattered runs: no read-ahead on a fault that has to go to disk. (The
        // kernel still maps up to 64 KiB of already-cached pages around each fault, so the
        // resident set of a long-lived reader grows towards the file size: clean page cache,
        // shared and reclaimable, not anonymous memory; see docs/PERFORMANCE.md.)
        let _ = map.advise(memmap2::Advice::Random);
        let map = Arc::new(map);
        *slot = Some(Arc::clone(&map));
        Ok(map)
    }
}
