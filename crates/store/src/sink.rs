//! Where producers (engine, tracing layer, plugin capture) hand their entries.
//!
//! The store implements [`EntrySink`]; tests use a `Mutex<Vec<LogEntry>>`. Producers depend on
//! this trait only, so the capture path can be tested without a store and the store without
//! processes.

use parking_lot::Mutex;

use crate::{ExecutionId, LogEntry};

/// Why a sink refused an entry.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(#[from] pub Box<dyn std::error::Error + Send + Sync>);

/// Something that accepts log entries.
pub trait EntrySink: Send + Sync {
    /// Accepts one entry (buffered: durable only after the sink's flush rules).
    fn append(&self, entry: LogEntry) -> Result<(), SinkError>;

    /// The secrets this sink masks in `execution_id`'s entries, longest first. A producer that
    /// cuts text into several entries (the capture layer's 64 KiB split) asks for them, so that
    /// it never cuts a secret in two halves that masking each entry alone would miss. None by
    /// default.
    fn secrets(&self, execution_id: &ExecutionId) -> Vec<String> {
        let _ = execution_id;
        Vec::new()
    }
}

impl EntrySink for Mutex<Vec<LogEntry>> {
    fn append(&self, entry: LogEntry) -> Result<(), SinkError> {
        self.lock().push(entry);
        Ok(())
    }
}
