//! A file written through a buffer, knowing its length: the file a seal or a merge writes, and
//! the spill files a seal appends to it.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::PathBuf;

use crate::error::{Result, StoreError};

/// A file written through a buffer, knowing its length.
pub(super) struct SealFile {
    pub(super) file: BufWriter<File>,
    pub(super) path: PathBuf,
    pub(super) len: u64,
}

impl SealFile {
    pub(super) fn create(path: PathBuf) -> Result<SealFile> {
        SealFile::create_with(path, 1 << 20)
    }

    pub(super) fn create_with(path: PathBuf, buffer: usize) -> Result<SealFile> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(StoreError::io("create", &path))?;
        Ok(SealFile {
            file: BufWriter::with_capacity(buffer, file),
            path,
            len: 0,
        })
    }

    /// Writes out the buffer and closes the file.
    pub(super) fn finish(mut self) -> Result<()> {
        self.file
            .flush()
            .map_err(StoreError::io("write", &self.path))
    }

    pub(super) fn write(&mut self, b: &[u8]) -> Result<()> {
        self.file
            .write_all(b)
            .map_err(StoreError::io("write", &self.path))?;
        self.len += b.len() as u64;
        Ok(())
    }

    /// Appends the whole of `spill` (which is then deleted).
    pub(super) fn append_spill(&mut self, spill: SealFile) -> Result<()> {
        let mut file = spill
            .file
            .into_inner()
            .map_err(|e| StoreError::io("write", &spill.path)(e.into_error()))?;
        file.seek(SeekFrom::Start(0))
            .map_err(StoreError::io("read", &spill.path))?;
        let n = std::io::copy(&mut file, &mut self.file)
            .map_err(StoreError::io("copy into", &self.path))?;
        self.len += n;
        drop(file);
        let _ = std::fs::remove_file(&spill.path);
        Ok(())
    }
}
