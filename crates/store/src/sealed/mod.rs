//! The sealed format (version 7) and its writer and reader: closed segments rewritten into
//! compressed, searchable parts, parts merged, and a finished day kept as one sealed file.
//!
//! A live segment is laid out for writing: runs of whatever each batch held, a 56-byte index
//! entry per run. Once it is closed, `seal` rewrites it into a part (and a finished day's parts
//! are merged into `YYYY-MM-DD.sealed`): entries grouped
//! by execution (append order inside), packed into blocks of about 256 KiB stored by column and
//! compressed with zstd, each with its CRC and a token filter; an execution table gives each
//! execution's block range, so a query is a binary search plus one contiguous read.
//!
//! - `codec`: varints, zigzag, strings, a bounds-checked cursor.
//! - `filter`: the words of a message ([`filter::words`]) and the per-block token filter.
//! - `block`: the column layout of one block; `columns`: parsing it, column by column.
//! - `frames`: the one way a block's frame is compressed (sealing and the day-end merge).
//! - `layout`: the fixed-size parts of the file (header, trailer, block table, execution table).
//! - `dict`: the zstd dictionary trained for a file's blocks (version 6).
//! - `common`: the words most blocks of a file hold, listed once instead of in every block
//!   filter (version 7).
//! - `catalog`: the execution table by first entry and a fence of its hashes (version 5), for
//!   the newest executions and for finding one in a big table.
//! - `options`: what a seal is tuned by; `seal_file`: a buffered file that knows its length.
//! - `writer`: [`SealedWriter`](writer::SealedWriter), one file built entry by entry.
//! - `seal`: the rewrite of a segment into one file and its crash-safe commit.
//! - `envelope`: the sections after the blocks, written the same way by `seal` and `merge`.
//! - `partition`: the spill partition sort that groups a day by execution in bounded memory.
//! - `reader`: [`SealedFile`], one open file; `sealed_day`: [`SealedDay`], a day's files read as one.
//! - `merge`: parts merged by copying their blocks (no re-tokenizing; the day-end merge
//!   compresses their frames again).
//! - `breakdown`: where a file's bytes go, column by column (for the benchmarks).
//!
//! The byte layout is in `docs/FORMAT.md` ("Sealed files, version 2" to "version 7"). The
//! background work that decides when to seal and merge is `background/`, beside this folder.

mod block;
pub(crate) mod breakdown;
pub(crate) mod catalog;
mod codec;
pub(crate) mod columns;
pub(crate) mod common;
pub(crate) mod dict;
mod envelope;
pub mod filter;
mod frames;
pub(crate) mod layout;
pub(crate) mod merge;
pub(crate) mod options;
mod partition;
mod reader;
pub(crate) mod seal;
mod seal_file;
mod sealed_day;
#[cfg(test)]
mod tests;
mod writer;

// What search (crates/search) and shipping (crates/ship) read sealed days through; the definition
// of a word is `filter::words`.
pub use columns::Columns;
pub(crate) use reader::SealedFile;
pub use reader::{BlockMeta, BlockScratch};
pub use sealed_day::{ExecRange, SealedDay};
