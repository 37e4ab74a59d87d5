//! The read API that the search and ship crates use: a day's files as a reader sees them,
//! the runs of a live index, frames and their payloads, a sealed day's blocks and the words
//! of its token filters. None of the layout's constants (header and entry sizes) is here:
//! readers walk runs, frames and blocks through these types.

pub use crate::fs::sync_dir;
pub use crate::journal::index::SortedIndex;
pub use crate::journal::index::{scan_live_while, IndexEntry};
pub use crate::journal::record::{self, PayloadRef};
pub use crate::names::index_file;
pub use crate::read::day_files::{DayFiles, SegFiles};
pub use crate::read::runs::RunIndex;
pub use crate::sealed::filter::{word_spans, words};
pub use crate::sealed::{BlockMeta, BlockScratch, Columns, ExecRange, SealedDay};
pub use crate::view::{Access, FileView};
