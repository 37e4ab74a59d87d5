//! The background work: closed segments sealed into parts, parts merged, a finished day kept
//! as one sealed file, one step at a time, off the write path.
//!
//! - `queue`: the days waiting, what was done, the gate shared with `gc`; it knows nothing of
//!   the store, so the writer (`journal/writer.rs`) can hold it and queue days.
//! - `worker`: the thread that takes days from the queue and does each step with `sealed/`.
//!
//! Imports go down: the worker uses the journal's shared state, the read side's day views and
//! the sealed format; the journal uses only the queue.

pub(crate) mod queue;
pub(crate) mod worker;
