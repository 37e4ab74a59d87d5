//! logstore: the embedded log store and log capture layer of a workflow execution engine.
//!
//! (Architecture overview: filled in as modules land.)

#![deny(unsafe_code)]

mod clock;
mod commit;
mod day;
mod engine;
mod entry;
mod error;
mod index;
mod query;
mod record;
mod recovery;
mod segment;
mod sink;
mod store;
mod trace;
mod verify;
mod view;

pub use clock::{Clock, ManualClock, SystemClock};
pub use commit::{CommitPolicy, Durability};
pub use day::{format_rfc3339_ms, Day};
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
pub use query::{DayStats, ExecutionSummary, Filter, Follower};
pub use recovery::Damage;
pub use sink::{EntrySink, SinkError};
pub use store::{Config, LogStore};
pub use trace::LogstoreLayer;
pub use verify::{Problem, VerifyReport};

/// Low-level access to the on-disk format, for fuzzing, tests and tools that read segments.
pub mod format {
    pub use crate::index::{exec_hash, IndexEntry, ENTRY_LEN, INDEX_HEADER_LEN};
    pub use crate::record::{
        check_frame, decode, decode_payload, encode, FrameError, PayloadRef, FRAME_HEADER_LEN,
        MAX_PAYLOAD_LEN,
    };
    pub use crate::segment::{SEGMENT_HEADER_LEN, SEGMENT_MAGIC, SEGMENT_VERSION};
}
