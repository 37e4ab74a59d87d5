//! The read side: a day's files as readers see them ([`day_files`]), one execution's entries
//! ([`query`]), pages and follow cursors ([`page`]), waking followers ([`waiters`]), the lists
//! of executions ([`listing`] for pages from the catalogs, [`summary`] for `stats`), and the
//! operator's check ([`verify`]).
//!
//! Imports go down: the read side uses the journal's frames and index and the sealed reader;
//! nothing below imports it back, but for the writer handing its live heads to `days`.

pub(crate) mod day_files;
pub(crate) mod filter;
#[cfg(test)]
mod list_oracle;
pub(crate) mod listing;
pub(crate) mod page;
pub(crate) mod query;
pub(crate) mod runs;
pub(crate) mod summary;
pub(crate) mod verify;
pub(crate) mod waiters;
