//! Where producers (engine, tracing layer, plugin capture) hand their entries.
//!
//! The store implements [`EntrySink`]; tests use a `Mutex<Vec<LogEntry>>`. Producers depend on
//! this trait only, so the capture path can be tested without a store and the store without
//! processes.

use parking_lot::Mutex;

use crate::LogEntry;

/// Why a sink refused an entry.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(#[from] pub Box<dyn std::error::Error + Send + Sync>);

/// Something that accepts log entries.
pub trait EntrySink: Send + Sync {
    /// Accepts one entry (buffered: durable only after the sink's flush rules).
    fn append(&self, entry: LogEntry) -> Result<(), SinkError>;
}

impl EntrySink for Mutex<Vec<LogEntry>> {
    fn append(&self, entry: LogEntry) -> Result<(), SinkError> {
        self.lock().push(entry);
        Ok(())
    }
}
