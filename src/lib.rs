//! logstore: the embedded log store and log capture layer of a workflow execution engine.
//!
//! The engine embeds this crate to keep every log line of every execution — its own lifecycle
//! events, its components' `tracing` events, and whatever its plugins print — and to hand one
//! execution's logs back fast. There is no general database underneath: each UTC day is a
//! sequence of append-only segments with per-execution offset indexes, and group commit; in
//! the background, closed segments become compressed, searchable parts.
//!
//! # The path of an entry
//!
//! ```text
//!  plugin stdout/stderr ─ capture (pipe → lines → entries) ─┐
//!  engine lifecycle     ─ Engine / ExecutionLog ────────────┼─► Engine (masks secrets)
//!  tracing events       ─ LogstoreLayer ────────────────────┘         │
//!                                                                      ▼
//!  LogStore::append ─► entry (validated) ─► record frame (len, CRC32, bincode payload)
//!        ─► Batch (commit.rs): flush at 100 entries or 1 s, or at finish_execution
//!        ─► segment YYYY-MM-DD.NNNNNN.log: each execution's entries of the batch as one run
//!        ─► live index YYYY-MM-DD.NNNNNN.idx: one 56-byte entry per run, chained per execution
//!           (and now and then .heads: each chain's head, for readers in other processes)
//!        ─► (fsync, shared by everyone waiting: group commit)
//!  segment full (part_bytes) or day over ─► roll to the next segment
//!  closed segment ─► background seal (store/sealed/): YYYY-MM-DD.N-N.part, entries grouped
//!        by execution in zstd blocks stored by column (with the day's zstd dictionary),
//!        token filters (less the words most blocks hold, listed once per file), execution
//!        table and its catalog (the table by first entry, a fence of its hashes)
//!  > 8 parts ─► merge by copying blocks (sealed/merge.rs); day over ─► YYYY-MM-DD.sealed,
//!        the same blocks compressed again at a higher zstd level (kept for the retention)
//!  LogStore::query ─► a day's sealed files, read as one sequence of blocks (sealed/parts.rs):
//!        execution tables (through the fence) ─► its blocks; then the live segments: the
//!        chain of runs (from the writer's memory, or the .heads checkpoint plus the index
//!        after it) ─► runs (the writer's own process copies the newest 16 MiB from memory,
//!        store/tail.rs) ─► frames ─► filters ─► entries in append order
//!  LogStore::executions ─► the files' catalogs merged newest first (store/listing.rs)
//!  LogStore::search ─► every day: sealed blocks whose token filters may match, live frames
//!        with a literal hit (aho-corasick) ─► matches of any execution, streamed in order
//!  a flush ─► wakes the followers of the executions it wrote (store/waiters.rs); in another
//!        process, one watcher thread (inotify) reads the new tail of each live index and
//!        wakes exactly theirs
//! ```
//!
//! Modules follow that path: [`entry`](LogEntry) (the format and its validation), then the
//! storage folder `store/`: `record` (the frame), `commit` (buffer and group commit), `segment`,
//! `index`, `heads` (the checkpoint of the index's chain heads), `recovery`, `writer` (flush thread, segment roll, shared fsync), `names` (the files
//! of a day and which one holds each entry), `sealed/` (the sealed format: blocks, filters, the
//! partition sort and the rewrite, merges, one file's reader and a day's files read as one) and
//! `sealer` (the background thread that turns segments into parts, merges parts and seals
//! days), `days` (a day's files as readers see them), `lock`, `holds` (retention holds that
//! `gc` honours), `waiters` (waking followers), `tail` (the open segment's newest bytes in
//! memory), `mod` (the `LogStore` handle: directory, retention), `query`, `summary` (`list`,
//! `stats`), `listing` (pages of executions, newest first, from the catalogs), `verify`; `search/`
//! finds entries of any execution by words, phrase or regex (its module doc tells how it skips
//! what cannot match); the capture side is `capture`
//! (lines, the `0x1E` protocol, limits, processes and containers), `engine` (lifecycle and
//! task entries, secrets), `runner` (a plugin task with its retry policy) and `trace` (the
//! `tracing` layer). `serve` is the read-only HTTP API, live follow and log viewer over a store
//! (`docs/HTTP.md`); `ship` tails a store into ClickHouse (one server or a sharded cluster),
//! exactly once as readers see it, or into any OpenTelemetry backend over OTLP/HTTP, for a
//! fleet of engines (`docs/FLEET.md`); `observe` names the metrics the store, the server and
//! the shipper report through the `metrics` facade. The byte layout of every file is in `docs/FORMAT.md`; the plugin author's
//! side is `docs/PLUGINS.md`.
//!
//! # Durability
//!
//! - An entry in the buffer may be lost by a crash; the buffer never holds more than 100
//!   entries or 1 s of entries (both configurable in [`CommitPolicy`]).
//! - A flushed entry ([`Durability::Written`]) survives a crash of the process.
//! - When [`LogStore::finish_execution`] (or [`ExecutionLog::finish`], or the async
//!   [`ExecutionLog::finish_async`]) returns, every entry of the execution is fsynced
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
//! use std::sync::Arc;
//! use logstore::{Engine, FinalState, Filter, LogStore, SystemClock, TaskId, TaskOutcome};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let store = Arc::new(LogStore::open(dir.path())?);
//! let engine = Engine::new(store.clone(), Arc::new(SystemClock));
//!
//! let exec = engine.start_execution("exec-1".parse()?, "nightly")?;   // RUNNING, scheduler
//! let task: TaskId = "fetch".parse()?;
//! exec.task_started(&task, "http.get", &serde_json::json!({"url": "https://x.test"}))?;
//! exec.task_completed(&task, &TaskOutcome::Success { outputs: serde_json::json!(200) })?;
//! exec.finish(FinalState::Success, "all tasks succeeded")?;          // flushed + fsynced
//!
//! let entries = store.query(&"exec-1".parse()?, &Filter::default())?;
//! assert_eq!(entries.len(), 4);
//! assert_eq!(entries[3].terminal_state(), Some("SUCCESS"));
//! # Ok(()) }
//! ```

#![deny(unsafe_code)]

pub mod capture;
mod clock;
mod engine;
mod entry;
mod error;
pub mod observe;
mod runner;
mod search;
pub mod serve;
pub mod ship;
mod sink;
mod store;
mod trace;

pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{
    Engine, ExecutionLog, FinalState, TaskOutcome, MASK, MAX_VALUE_BYTES, PREVIEW_CHARS,
    WORKER_SOURCE,
};
pub use entry::{
    check_source, metadata_from_json, metadata_to_json, EntryError, ExecutionId, Level, LogEntry,
    TaskId, MAX_ID_LEN, MAX_MESSAGE_LEN, MAX_METADATA_LEN, MAX_SOURCE_LEN, SCHEDULER_SOURCE,
    TERMINAL_STATES,
};
pub use error::StoreError;
pub use runner::{run_plugin_task, TaskError, TaskResult};
pub use search::{
    words, Hit, Matches, Place, Position, Query, Search, SearchDamage, SearchError, SearchOverhead,
    SearchStats,
};
pub use ship::{ShipConfig, ShipError, ShipStatus, Shipper};
pub use sink::{EntrySink, SinkError};
pub use store::commit::{CommitPolicy, Durability};
pub use store::day::{format_rfc3339_ms, Day};
pub use store::holds::{holds, remove_hold, set_hold, Hold};
pub use store::page::{LineCursor, RunCache};
pub use store::query::{DayStats, ExecutionSummary, Filter, Follower, Stored};
pub use store::recovery::Damage;
pub use store::sealed::seal::{SealOutcome, SealStep};
pub use store::summary::{ListFilter, ListPage};
pub use store::verify::{Problem, VerifyReport};
pub use store::waiters::Wake;
pub use store::{Config, LogStore, DEFAULT_DAY_LEVEL, DEFAULT_PART_BYTES, DEFAULT_TAIL_BYTES};
pub use trace::LogstoreLayer;

/// Low-level access to the on-disk format, for fuzzing, tests and tools that read segments.
pub mod format {
    pub use crate::store::heads::Checkpoint as HeadsCheckpoint;
    pub use crate::store::index::{
        exec_hash, IndexEntry, SortedIndex, ENTRY_LEN, INDEX_HEADER_LEN,
    };
    pub use crate::store::record::{
        check_frame, check_frame_as, decode, decode_as, decode_payload, encode, encode_as,
        finish_frames, for_each_frame_as, next_frame, next_frame_as, set_seq, FrameError,
        FrameKind, PayloadRef, FRAME_HEADER_LEN, MAX_PAYLOAD_LEN,
    };
    pub use crate::store::sealed::breakdown::{breakdown as sealed_breakdown, Section};
    pub use crate::store::sealed::layout::{sealed_path, SEALED_MAGIC, SEALED_VERSION};
    pub use crate::store::sealed::merge::MergeOutcome;
    pub use crate::store::sealed::seal::SealOptions;
    pub use crate::store::sealer::{recompress_sealed, seal_closed_day};
    pub use crate::store::segment::frame_kind;
    pub use crate::store::segment::{SEGMENT_HEADER_LEN, SEGMENT_MAGIC, SEGMENT_VERSION};
    pub use crate::store::seq::{parse as parse_seq_file, SeqFile, LOST_GAP, RESERVE};
}
