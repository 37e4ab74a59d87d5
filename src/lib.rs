//! logstore: the embedded log store and log capture layer of a workflow execution engine.
//!
//! (Architecture overview: see the end of the session; filled in as modules land.)

#![deny(unsafe_code)]

pub mod capture;
mod entry;
mod sink;

pub use entry::{
    check_source, metadata_from_json, metadata_to_json, EntryError, ExecutionId, Level, LogEntry,
    TaskId, MAX_ID_LEN, MAX_MESSAGE_LEN, MAX_METADATA_LEN, MAX_SOURCE_LEN, SCHEDULER_SOURCE,
    TERMINAL_STATES,
};
pub use sink::{EntrySink, SinkError};
