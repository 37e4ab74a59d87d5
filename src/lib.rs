//! logstore: the embedded log store and log capture layer of a workflow execution engine.
//!
//! The engine embeds it to keep every log line of every execution (its own lifecycle events,
//! its components' `tracing` events, whatever its plugins print) and to hand one execution's
//! logs back fast. There is no general database underneath: each UTC day is a sequence of
//! append-only segments with per-execution offset indexes and group commit; in the
//! background, closed segments become compressed, searchable parts, and a finished day one
//! sealed file.
//!
//! This crate is a facade and the `logstore` binary. The work is done by five crates, each a
//! layer; a lower one never names a higher one, and an engine may depend on the lowest it
//! needs:
//!
//! | crate | what it holds | re-exported here as |
//! |---|---|---|
//! | [`logstore_store`] | entries, the journal (segments, index, group commit, recovery), parts and sealed days, queries and follow, retention, metric names | the root names, [`format`](mod@format), [`observe`] |
//! | [`logstore_search`] | words, phrases and regexes over every execution | [`Search`], [`StoreSearch`] ... |
//! | [`logstore_capture`] | the engine API ([`Engine`]), plugin processes and containers, the `tracing` layer | [`capture`], [`Engine`] ... |
//! | [`logstore_ship`] | shipping to ClickHouse and OTLP | [`ship`] |
//! | [`logstore_serve`] | the read-only HTTP API, live follow and the viewer | [`serve`] |
//!
//! ```text
//!              logstore (CLI + this facade)
//!        ┌──────────┬──────────┼──────────┐
//!     serve       ship      capture     search
//!        └─ search  │          │          │
//!        └──────────┴──────────┴──────────┴──► store
//! ```
//!
//! # The path of an entry
//!
//! ```text
//!  plugin stdout/stderr ─ capture (pipe → lines → entries) ─┐
//!  engine lifecycle     ─ Engine / ExecutionLog ────────────┼─► Engine (masks secrets)
//!  tracing events       ─ LogstoreLayer ────────────────────┘         │
//!                                                                      ▼
//!  store: LogStore::append ─► journal (frame, batch, segment + index, fsync)
//!        ─► background: parts, merges, the sealed day ─► read: query, follow, list
//!  search: every day's token filters and frames ─► matches of any execution
//!  ship: a cursor over the store ─► ClickHouse / OTLP;  serve: HTTP over the store
//! ```
//!
//! The store's crate doc tells the storage path in detail; `docs/FORMAT.md` gives the byte
//! layout of every file, `docs/DURABILITY.md` what survives what, `docs/PLUGINS.md` the
//! plugin author's side.
//!
//! # Durability
//!
//! - An entry in the buffer may be lost by a crash; the buffer never holds more than 100
//!   entries or 1 s of entries (both configurable in [`CommitPolicy`]).
//! - A flushed entry ([`Durability::Written`]) survives a crash of the process.
//! - When [`LogStore::finish_execution`] (or [`ExecutionLog::finish`], or the async
//!   [`ExecutionLog::finish_async`]) returns, every entry of the execution is fsynced
//!   ([`Durability::Synced`]) and survives a power cut.
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

#![forbid(unsafe_code)]

pub use logstore_capture as capture;
pub use logstore_serve as serve;
pub use logstore_ship as ship;
pub use logstore_store::{format, observe};

pub use logstore_capture::{
    run_plugin_task, Engine, ExecutionLog, FinalState, LogstoreLayer, TaskError, TaskOutcome,
    TaskResult, MASK, MAX_VALUE_BYTES, PREVIEW_CHARS, WORKER_SOURCE,
};
pub use logstore_search::{
    words, Hit, Matches, Place, Position, Query, Search, SearchDamage, SearchError, SearchOverhead,
    SearchStats, StoreSearch,
};
pub use logstore_ship::{ShipConfig, ShipError, ShipStatus, Shipper};
pub use logstore_store::{
    check_source, format_rfc3339_ms, holds, metadata_from_json, metadata_to_json, remove_hold,
    set_hold, Clock, CommitPolicy, Config, Damage, Day, DayStats, Durability, EntryError,
    EntrySink, ExecutionId, ExecutionSummary, Filter, Follower, Hold, Level, LineCursor,
    ListFilter, ListPage, LogEntry, LogStore, ManualClock, Problem, RunCache, SealOutcome,
    SealStep, SinkError, StoreError, Stored, SystemClock, TaskId, VerifyReport, Wake,
    DEFAULT_DAY_LEVEL, DEFAULT_PART_BYTES, DEFAULT_TAIL_BYTES, MAX_ID_LEN, MAX_MESSAGE_LEN,
    MAX_METADATA_LEN, MAX_SOURCE_LEN, SCHEDULER_SOURCE, TERMINAL_STATES,
};
