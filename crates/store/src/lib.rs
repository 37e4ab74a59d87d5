//! logstore-store: the storage layer of logstore. It keeps every log entry of every execution
//! of a workflow engine without a general database, and hands one execution's entries back
//! fast. This crate has no async runtime, no HTTP and no CLI: an engine that only stores
//! compiles this and its few dependencies (the `async` feature adds a `tokio::sync::Notify`
//! to [`Wake`] for async followers).
//!
//! # The path of an entry
//!
//! ```text
//!  LogStore::append ─► entry.rs (validated) ─► journal/record.rs (len, CRC32, payload)
//!        ─► journal/commit.rs: the batch, flushed at 100 entries or 1 s, or at finish
//!        ─► journal/segment.rs YYYY-MM-DD.NNNNNN.log: each execution's entries of a batch
//!           as one run; journal/index.rs .idx: one 56-byte entry per run, chained per
//!           execution (journal/heads.rs: a checkpoint of the chain heads for other processes)
//!        ─► journal/writer.rs: the flush thread, the segment roll, one fsync shared by all
//!           who wait for it (group commit)
//!  closed segment ─► background/ (a queue and a thread) ─► sealed/: a .part file, entries
//!        grouped by execution in zstd blocks stored by column, token filters, an execution
//!        table and its catalog; > 8 parts are merged by copying blocks; a finished day
//!        becomes one .sealed file, its blocks compressed again at zstd level 6
//!  LogStore::query ─► read/days.rs (a day's files) ─► read/query.rs: the sealed blocks of
//!        the execution, then the live runs of its chain ─► entries in append order
//!  LogStore::executions, LogStore::list ─► read/listing.rs (the files' catalogs, newest first)
//!  a flush ─► read/waiters.rs wakes the followers of the executions it wrote
//!  LogStore::gc ─► retention/holds.rs: a held day is kept
//! ```
//!
//! The folders are the life of an entry: `journal/` (today's appends), `sealed/` (the sealed
//! format, its writer and reader), `read/` (queries, pages, follow, lists, verify),
//! `background/` (parts, merges, days, off the write path) and `retention/`; `store.rs` is the
//! handle over them. Each folder uses those before it in that list; the one exception is the
//! journal's writer, which hands its flushes to the read side's followers and day views and its
//! closed segments to the background queue (`journal/`'s module doc). No file imports one that
//! imports it back. [`access`] is the narrow read API that the search and ship crates use. The
//! byte layout of every file is in `docs/FORMAT.md`.
//!
//! # Durability
//!
//! - An entry in the buffer may be lost by a crash; the buffer never holds more than 100
//!   entries or 1 s of entries (both configurable in [`CommitPolicy`]).
//! - A flushed entry ([`Durability::Written`]) survives a crash of the process.
//! - When [`LogStore::finish_execution`] returns, every entry of the execution is fsynced
//!   ([`Durability::Synced`]) and survives a power cut. Executions finishing together share
//!   fsyncs.
//! - On open, a torn tail is cut back to the last whole record and the index rebuilt; a damaged
//!   record in the middle loses only itself. `docs/DURABILITY.md` states and tests this.
//!
//! One process writes a directory (a lock file enforces it); any number of readers, in any
//! process ([`LogStore::open_read_only`]), read without blocking it and never see a
//! half-written record.
//!
//! # Example
//!
//! ```
//! use logstore_store::{ExecutionId, Filter, Level, LogEntry, LogStore};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let store = LogStore::open(dir.path())?;
//! let exec: ExecutionId = "exec-1".parse()?;
//! let entry = LogEntry::new(exec.clone(), 1_700_000_000_000, Level::Info, "scheduler", "started");
//! store.append(&entry)?;
//! store.finish_execution(&exec)?; // flushed + fsynced
//!
//! let entries = store.query(&exec, &Filter::default())?;
//! assert_eq!(entries.len(), 1);
//! assert_eq!(entries[0].message, "started");
//! # Ok(()) }
//! ```

#![deny(unsafe_code)]

mod background;
mod clock;
mod config;
mod day;
mod entry;
mod error;
mod fs;
mod journal;
mod names;
pub mod observe;
mod read;
mod retention;
mod sealed;
mod sink;
mod store;
mod view;

pub mod access;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Config, DEFAULT_DAY_LEVEL, DEFAULT_PART_BYTES, DEFAULT_TAIL_BYTES};
pub use day::{format_rfc3339_ms, Day};
pub use entry::{
    check_id, check_source, metadata_from_json, metadata_to_json, EntryError, ExecutionId, Level,
    LogEntry, TaskId, MAX_ID_LEN, MAX_MESSAGE_LEN, MAX_METADATA_LEN, MAX_SOURCE_LEN,
    SCHEDULER_SOURCE, TERMINAL_STATES,
};
pub use error::{Problem, Result, StoreError};
pub use journal::commit::{CommitPolicy, Durability};
pub use journal::recovery::Damage;
pub use read::filter::Filter;
pub use read::page::{LineCursor, RunCache};
pub use read::query::{Follower, Stored};
pub use read::summary::{DayStats, ExecutionSummary, ListFilter, ListPage};
pub use read::verify::VerifyReport;
pub use read::waiters::Wake;
pub use retention::holds::{holds, remove_hold, set_hold, Hold};
pub use sealed::seal::{SealOutcome, SealStep};
pub use sink::{EntrySink, SinkError};
pub use store::LogStore;

/// Low-level access to the on-disk format, for fuzzing, tests and tools that read segments.
pub mod format {
    pub use crate::background::worker::{recompress_sealed, seal_closed_day};
    pub use crate::journal::heads::Checkpoint as HeadsCheckpoint;
    pub use crate::journal::index::{
        exec_hash, IndexEntry, SortedIndex, ENTRY_LEN, INDEX_HEADER_LEN,
    };
    pub use crate::journal::record::{
        check_frame, check_frame_as, decode, decode_as, decode_payload, encode, encode_as,
        finish_frames, for_each_frame_as, next_frame, next_frame_as, set_seq, FrameError,
        FrameKind, PayloadRef, FRAME_HEADER_LEN, MAX_PAYLOAD_LEN,
    };
    pub use crate::journal::segment::frame_kind;
    pub use crate::journal::segment::{SEGMENT_HEADER_LEN, SEGMENT_MAGIC, SEGMENT_VERSION};
    pub use crate::journal::seq::{parse as parse_seq_file, SeqFile, LOST_GAP, RESERVE};
    pub use crate::sealed::breakdown::{breakdown as sealed_breakdown, Section};
    pub use crate::sealed::layout::{sealed_path, SEALED_MAGIC, SEALED_VERSION};
    pub use crate::sealed::merge::MergeOutcome;
    pub use crate::sealed::options::SealOptions;
}
