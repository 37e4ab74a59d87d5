//! The store's error type: what failed, where, and what to do about it.

use std::io;
use std::path::PathBuf;

use crate::{EntryError, ExecutionId};

/// An error from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A system call on a file failed (full disk, permissions, I/O error).
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done, such as `write segment`.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// Another process holds the writer lock of the directory.
    #[error("{} is already opened for writing by {} (only one writer per directory; readers can use `open_read_only`)", dir.display(), holder.map_or_else(|| "another process".to_owned(), |pid| format!("process {pid}")))]
    Locked {
        /// The store directory.
        dir: PathBuf,
        /// The holder's pid, as it wrote it in the lock file.
        holder: Option<u32>,
    },
    /// A file is not a logstore file, or is of a newer format version.
    #[error("{} at offset {offset}: {reason}", file.display())]
    Corrupt {
        /// The file.
        file: PathBuf,
        /// Byte offset of the problem.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An entry was refused.
    #[error("entry refused: {0}")]
    Entry(#[from] EntryError),
    /// No entry of this execution is stored.
    #[error("no entries stored for execution {0} (check the id, or the store directory with `logstore list`)")]
    UnknownExecution(ExecutionId),
    /// Writes have been failing and the buffer reached its bound; the entry was not accepted.
    #[error("buffer full ({pending} entries waiting) because writes keep failing: {last_error}")]
    BufferFull {
        /// Entries waiting for disk.
        pending: usize,
        /// The latest write error.
        last_error: String,
    },
    /// `gc` would delete a day that a retention hold keeps (`logstore ship`'s, for one).
    #[error("gc would delete {day}, which {reason} (hold {hold:?}: {}); let its holder catch up (for the shipper: `logstore ship --status`), or delete it anyway with `gc --force`", through.map_or_else(|| "done with no day yet".to_owned(), |d| format!("done through {d}")))]
    Held {
        /// The oldest day that would be deleted.
        day: crate::Day,
        /// The hold's name (`DIR/holds/NAME`).
        hold: String,
        /// The last day the holder is done with.
        through: Option<crate::Day>,
        /// What the holder says of the days it keeps.
        reason: String,
    },
    /// A retention hold name or file is invalid.
    #[error("invalid retention hold: {0}")]
    InvalidHold(String),
    /// A write was attempted on a store opened read-only.
    #[error("the store is open read-only")]
    ReadOnly,
    /// An fsync of the live files failed earlier. What was written before it may be gone
    /// from the disk even if a later fsync succeeds (Linux may drop the dirty pages and clear
    /// the error once reported), so this writer accepts and acknowledges nothing more:
    /// reopen the store, which recovers exactly what reached the disk.
    #[error("the store stopped accepting writes after a failed fsync ({reason}); reopen it to recover what reached the disk (docs/DURABILITY.md)")]
    SyncFailed {
        /// The failed fsync, as it was reported.
        reason: String,
    },
    /// `format::seal_closed_day` was asked to rewrite a day that is not one segment.
    #[error("{day} is {segments} segments and {parts} parts; `seal_closed_day` rewrites a day of one segment (seal it with `LogStore::seal`, or `logstore seal`)")]
    NotOneSegment {
        /// The day.
        day: crate::Day,
        /// Its segments in use.
        segments: usize,
        /// Its parts in use.
        parts: usize,
    },
}

impl StoreError {
    /// The error of the I/O operation `op` on `path`, as a closure for `map_err`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { op, path, source }
    }
}

/// Result with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One problem found by [`LogStore::verify`](crate::LogStore::verify).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The damaged file.
    pub file: PathBuf,
    /// Where in it.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at offset {}: {}",
            self.file.display(),
            self.offset,
            self.reason
        )
    }
}
