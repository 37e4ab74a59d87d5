//! The one file-system call every layer needs beyond reads and writes.

use std::path::Path;

use crate::error::{Result, StoreError};

/// fsyncs the directory `dir`: a file created, renamed or removed in it is durable only once
/// its directory entry is (a new segment, a part that replaces segments, a cursor's rename).
pub fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io("fsync directory", dir))
}
